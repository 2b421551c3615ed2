// The request-per-message WebSocket plumbing (src/http/socket.ts) on a real Elysia server with a real
// Platform: JSON and schema errors framed by the route, one request at a time, the route's end frame
// after each request, a closed socket aborting its request, and the key checked on upgrade and again
// (with the rate limits) on every message.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Elysia, t } from "elysia";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ApiError } from "../../src/http/errors.ts";
import { requestSocket } from "../../src/http/socket.ts";
import { revokeKey, setKeyLimits } from "../../src/platform/keys.ts";
import { billedPlatform } from "../support/billed.ts";
import { openQueuedSocket } from "../support/ws.ts";

setDefaultTimeout(30_000);

const billed = billedPlatform("socket");
const Message = t.Object({ n: t.Integer({ minimum: 0 }), wait: t.Optional(t.Boolean()) }, { additionalProperties: false });

/** Requests marked `wait` run until released (or aborted); the abort reasons are kept. */
let release: (() => void) | null = null;
const aborted: number[] = [];

function socketApp(withPlatform: boolean) {
  return new Elysia().ws("/s", {
    ...requestSocket({
      auth: withPlatform ? billed.platform : null,
      validator: TypeCompiler.Compile(Message),
      notJson: "not JSON here",
      busy: "still busy",
      error: (err) => `ERR ${err.code ?? err.type} ${err.param ?? "-"} ${err.message}`,
      open: () => ({ count: 0 }),
      async handle({ body, principal, signal, state, send }) {
        state.count++;
        if (body.n === 0) throw new ApiError("not_found", "zero is not found");
        if (body.wait) {
          await new Promise<void>((resolve) => {
            release = resolve;
            signal.addEventListener("abort", () => {
              aborted.push(body.n);
              resolve();
            });
          });
        }
        send(`n=${body.n} count=${state.count} account=${principal?.accountId ?? "none"}`);
      },
      after: "END",
    }),
  });
}

const open = socketApp(false).listen({ hostname: "127.0.0.1", port: 0 });
const keyed = socketApp(true).listen({ hostname: "127.0.0.1", port: 0 });
afterAll(async () => {
  await open.stop(true);
  await keyed.stop(true);
  billed.close();
});

const connect = (app: typeof open, query = "", headers?: Record<string, string>) => openQueuedSocket(`ws://127.0.0.1:${app.server!.port}/s${query}`, headers);

describe("request-per-message WebSocket", () => {
  test("bad messages get the route's error frame and no end frame; the socket stays usable", async () => {
    const c = await connect(open);
    c.send("{not json");
    expect(await c.next()).toBe("ERR invalid_json - not JSON here");
    c.send({ n: -1 });
    expect(await c.next()).toStartWith("ERR invalid_request_error n ");
    c.send({});
    expect(await c.next()).toBe("ERR invalid_request_error n Missing required parameter: 'n'.");
    c.send({ n: 1, extra: true });
    expect(await c.next()).toBe("ERR invalid_request_error extra Unrecognized request argument supplied: extra");
    // A binary frame (here one holding a valid request) is told to come as text, not "missing n".
    c.ws.send(new TextEncoder().encode(JSON.stringify({ n: 1 })));
    expect(await c.next()).toBe("ERR invalid_request_error - send the request as a JSON text frame");
    c.send({ n: 2 });
    expect(await c.next()).toBe("n=2 count=1 account=none");
    expect(await c.next()).toBe("END");
    expect(c.frames).toEqual([]);
    c.ws.close();
  });

  test("a request that throws gets its error frame, then the end frame; the state is kept per socket", async () => {
    const c = await connect(open);
    c.send({ n: 0 });
    expect(await c.next()).toBe("ERR not_found - zero is not found");
    expect(await c.next()).toBe("END");
    c.send({ n: 5 });
    expect(await c.next()).toBe("n=5 count=2 account=none");
    expect(await c.next()).toBe("END");
    // Another socket starts with its own state.
    const d = await connect(open);
    d.send({ n: 6 });
    expect(await d.next()).toBe("n=6 count=1 account=none");
    c.ws.close();
    d.ws.close();
  });

  test("one request at a time: a message sent meanwhile is refused and the running one still ends", async () => {
    const c = await connect(open);
    c.send({ n: 7, wait: true });
    while (!release) await Bun.sleep(1);
    c.send({ n: 8 });
    expect(await c.next()).toBe("ERR invalid_request_error - still busy");
    release!();
    release = null;
    expect(await c.next()).toBe("n=7 count=1 account=none");
    expect(await c.next()).toBe("END");
    c.ws.close();
  });

  test("closing the socket aborts its running request", async () => {
    const c = await connect(open);
    c.send({ n: 9, wait: true });
    while (!release) await Bun.sleep(1);
    release = null;
    c.ws.close();
    const since = performance.now();
    while (!aborted.includes(9) && performance.now() - since < 5000) await Bun.sleep(5);
    expect(aborted).toContain(9);
  });
});

describe("keys on a request-per-message WebSocket", () => {
  test("the upgrade needs a valid key, by ?api_key= or header", async () => {
    await expect(connect(keyed)).rejects.toThrow();
    await expect(connect(keyed, "?api_key=ck_wrong")).rejects.toThrow();
    const { id, key } = billed.account();
    const c = await connect(keyed, `?api_key=${key}`);
    c.send({ n: 1 });
    expect(await c.next()).toBe(`n=1 count=1 account=${id}`);
    c.ws.close();
    const h = await connect(keyed, "", { authorization: `Bearer ${key}` });
    h.send({ n: 2 });
    expect(await h.next()).toBe(`n=2 count=1 account=${id}`);
    h.ws.close();
  });

  test("each message counts against the key's rate limits", async () => {
    const { id, key, keyId } = billed.account();
    setKeyLimits(billed.db, id, keyId, { rpm: 2 });
    const c = await connect(keyed, `?api_key=${key}`);
    for (const n of [1, 2]) {
      c.send({ n });
      expect(await c.next()).toBe(`n=${n} count=${n} account=${id}`);
      expect(await c.next()).toBe("END");
    }
    c.send({ n: 3 });
    expect(await c.next()).toStartWith("ERR rpm_limit_exceeded - ");
    expect(await c.next()).toBe("END");
    c.ws.close();
  });

  test("a key revoked after the socket opened is refused on the next message", async () => {
    const { id, key, keyId } = billed.account();
    const c = await connect(keyed, `?api_key=${key}`);
    c.send({ n: 1 });
    expect(await c.next()).toBe(`n=1 count=1 account=${id}`);
    expect(await c.next()).toBe("END");
    expect(revokeKey(billed.db, id, keyId)).toBe(true);
    c.send({ n: 2 });
    expect(await c.next()).toBe("ERR invalid_api_key - Invalid API key");
    expect(await c.next()).toBe("END");
    c.ws.close();
  });
});

// WS /chat/ws over a real socket, and keys and billing on the seed 003 routes: text token frames and
// the __END__ frame, __ERROR__ frames for bad input, a closed socket cancelling generation, auth by
// header or ?api_key=, and charges that match the ledger and the session.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";
import { billedPlatform } from "../support/billed.ts";
import { openQueuedSocket } from "../support/ws.ts";

setDefaultTimeout(120_000);

const billed = billedPlatform("chat-ws");
let app: InProcessApp;
let base: string;

beforeAll(async () => {
  app = await startInProcessApp({ platform: billed.platform });
  app.app.listen({ hostname: "127.0.0.1", port: 0 });
  base = `127.0.0.1:${app.app.server!.port}`;
});
afterAll(async () => {
  await app.app.stop(true);
  app.close();
  billed.close();
});

const account = () => billed.account().key;

interface End {
  session_id: string;
  model: string;
  device: string;
  finish_reason: string;
  tokens: number;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details: { cached_tokens: number } };
  cost?: { nanoton: number; ton: string };
}

/** A /chat/ws socket; reply() reads one answer. */
async function connect(query: string, headers?: Record<string, string>) {
  const socket = await openQueuedSocket(`ws://${base}/chat/ws${query}`, headers);
  /** Token frames until __END__ (parsed) or __ERROR__. */
  const reply = async (): Promise<{ text: string; frames: string[]; end: End | null; error: string | null }> => {
    const got: string[] = [];
    for (;;) {
      const f = await socket.next();
      if (f.startsWith("__END__:")) return { text: got.join(""), frames: got, end: JSON.parse(f.slice(8)) as End, error: null };
      if (f.startsWith("__ERROR__:")) return { text: got.join(""), frames: got, end: null, error: f.slice(10) };
      got.push(f);
    }
  };
  return { ...socket, reply };
}

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

describe("WS /chat/ws", () => {
  test("with ?extensions=1: text frames, each reply ended by __END__, and the socket's session continues", async () => {
    const key = account();
    const c = await connect(`?api_key=${key}&extensions=1`);
    c.send({ "model-name": "tiny-qwen3", prompt: "Hello!", "max-token": 12, temperature: 0, "system-prompt": "You are helpful", device: "cuda" });
    const first = await c.reply();
    expect(first.error).toBeNull();
    expect(first.frames.length).toBeGreaterThan(1);
    expect(first.frames.every((f) => f.length > 0)).toBe(true);
    const end = first.end!;
    expect(end.model).toBe("tiny-qwen3");
    expect(end.device).toBe("cpu");
    expect(end.tokens).toBe(end.usage.completion_tokens);
    expect(end.cost!.nanoton).toBeGreaterThan(0);
    // No session-id: the socket got one of its own, and the next message continues it.
    c.send({ "model-name": "tiny-qwen3", prompt: "Tell me more.", "max-token": 6, temperature: 0 });
    const second = await c.reply();
    expect(second.end!.session_id).toBe(end.session_id);
    expect(second.end!.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(end.usage.prompt_tokens - 2);
    const history = (await (await app.request(`/chat/history/${end.session_id}`, { headers: auth(key) })).json()) as { role: string; content: string }[];
    expect(history).toEqual([
      { role: "system", content: "You are helpful" },
      { role: "user", content: "Hello!" },
      { role: "assistant", content: first.text },
      { role: "user", content: "Tell me more." },
      { role: "assistant", content: second.text },
    ]);
    // The cost on the session is the sum of what the __END__ frames reported.
    const info = (await (await app.request(`/v1/sessions/${end.session_id}`, { headers: auth(key) })).json()) as { cost: { nanoton: number } };
    expect(info.cost.nanoton).toBe(end.cost!.nanoton + second.end!.cost!.nanoton);
    c.ws.close();
  });

  test("an explicit session-id is used, and the Authorization header works too", async () => {
    const key = account();
    const c = await connect("", { ...auth(key), "x-cocoon-extensions": "1" });
    c.send({ "model-name": "tiny-qwen3", prompt: "Hi", "session-id": "ws-session", "max-token": 3, enable_debug: true, request_guid: "ws-guid" });
    const end = (await c.reply()).end! as End & { debug?: { request_guid: string } };
    expect(end.session_id).toBe("ws-session");
    // Cocoon's enable_debug: the debug object rides on the __END__ frame.
    expect(end.debug!.request_guid).toBe("ws-guid");
    const ids = (await (await app.request("/sessions", { headers: auth(key) })).json()) as string[];
    expect(ids).toEqual(["ws-session"]);
    c.ws.close();
  });

  test("bad input gets an __ERROR__: frame and the socket stays usable", async () => {
    const key = account();
    const c = await connect(`?api_key=${key}&extensions=1`);
    c.send("not json at all");
    expect(await c.next()).toStartWith("__ERROR__:the message is not valid JSON");
    c.send({ prompt: "Hi" });
    expect(await c.next()).toBe("__ERROR__:Missing required parameter: 'model-name'.");
    c.send({ "model-name": "tiny-qwen3", prompt: "Hi", device: "tpu" });
    expect(await c.next()).toStartWith("__ERROR__:Invalid value for 'device'");
    // A binary frame is never a request, whatever its bytes.
    c.ws.send(new TextEncoder().encode(JSON.stringify({ "model-name": "tiny-qwen3", prompt: "Hi" })));
    expect(await c.next()).toBe("__ERROR__:send the request as a JSON text frame");
    c.send({ "model-name": "nope", prompt: "Hi" });
    expect(await c.next()).toBe("__ERROR__:The model 'nope' does not exist");
    c.send({ "model-name": "tiny-qwen3", prompt: "Hi", "max-token": 3 });
    expect((await c.reply()).end).not.toBeNull();
    // A second message while a reply is running is refused; the running one still ends normally.
    c.send({ "model-name": "tiny-qwen3", prompt: "Long", "max-token": 40 });
    c.send({ "model-name": "tiny-qwen3", prompt: "Overlap", "max-token": 3 });
    const frames: string[] = [];
    for (;;) {
      const f = await c.next();
      frames.push(f);
      if (f.startsWith("__END__:")) break;
    }
    expect(frames.filter((f) => f.startsWith("__ERROR__:a reply is still being generated")).length).toBe(1);
    c.ws.close();
  });

  test("by default only token frames are sent, as the seed does: no __END__ frame after a reply", async () => {
    const key = account();
    const c = await connect(`?api_key=${key}`);
    c.send({ "model-name": "tiny-qwen3", prompt: "Hello!", "session-id": "plain-ws", "max-token": 8, temperature: 0 });
    // The turn is stored after its last token frame was sent; then a bad message is answered.
    const started = performance.now();
    while ((await app.request("/chat/history/plain-ws", { headers: auth(key) })).status === 404 && performance.now() - started < 20_000) await Bun.sleep(10);
    c.send("not json");
    const frames: string[] = [];
    for (;;) {
      const f = await c.next();
      if (f.startsWith("__ERROR__:")) break;
      frames.push(f);
    }
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.some((f) => f.startsWith("__END__"))).toBe(false);
    const history = (await (await app.request("/chat/history/plain-ws", { headers: auth(key) })).json()) as { role: string; content: string }[];
    expect(history.at(-1)).toEqual({ role: "assistant", content: frames.join("") });
    c.ws.close();
  });

  test("closing the socket cancels the generation: the slot is freed within a moment and nothing is stored", async () => {
    const key = account();
    const c = await connect(`?api_key=${key}`);
    c.send({ "model-name": "tiny-qwen3", prompt: "Write forever", "session-id": "cut-short", "max-token": 900, temperature: 1 });
    await c.next();
    expect(app.engine.stats()[0]!.slotsBusy).toBe(1);
    const closedAt = performance.now();
    c.ws.close();
    while (app.engine.stats()[0]!.slotsBusy > 0 && performance.now() - closedAt < 5000) await Bun.sleep(5);
    expect(app.engine.stats()[0]!.slotsBusy).toBe(0);
    // Billed as cancelled, far from the 900 tokens asked for (the settlement follows the engine's end).
    type UsageList = { data: { completion_tokens: number; status: string }[] };
    let settled: UsageList = { data: [] };
    while (settled.data.length === 0 && performance.now() - closedAt < 5000) {
      settled = (await (await app.request("/v1/usage", { headers: auth(key) })).json()) as UsageList;
      if (settled.data.length === 0) await Bun.sleep(10);
    }
    expect(settled.data.length).toBe(1);
    expect(settled.data[0]!.status).toBe("cancelled");
    expect(settled.data[0]!.completion_tokens).toBeLessThan(900);
    expect((await app.request("/chat/history/cut-short", { headers: auth(key) })).status).toBe(404);
  });

  test("without a key the upgrade is refused", async () => {
    await expect(connect("")).rejects.toThrow();
    await expect(connect("?api_key=ck_wrong")).rejects.toThrow();
  });
});

describe("WebSocket on /v1/chat/completions with session_id", () => {
  test("a turn sent over the OpenAI WebSocket is stored in the session like an HTTP one", async () => {
    const key = account();
    const ws = new WebSocket(`ws://${base}/v1/chat/completions?api_key=${key}`);
    const frames: string[] = [];
    const done = new Promise<void>((resolve) => {
      ws.onmessage = (e) => {
        frames.push(String(e.data));
        if (String(e.data) === "[DONE]") resolve();
      };
    });
    await new Promise<void>((r) => (ws.onopen = () => r()));
    ws.send(JSON.stringify({ session_id: "over-ws", messages: [{ role: "user", content: "Hello over WS" }], max_tokens: 5, temperature: 0 }));
    await done;
    ws.close();
    const text = frames
      .filter((f) => f.startsWith("{"))
      .map((f) => (JSON.parse(f) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? "")
      .join("");
    const history = (await (await app.request("/chat/history/over-ws", { headers: auth(key) })).json()) as { role: string; content: string }[];
    expect(history).toEqual([
      { role: "user", content: "Hello over WS" },
      { role: "assistant", content: text },
    ]);
  });
});

describe("keys and billing on the seed 003 routes", () => {
  const post = (key: string | null, path: string, body: unknown) =>
    app.request(path, { method: "POST", headers: { "content-type": "application/json", ...(key ? auth(key) : {}) }, body: JSON.stringify(body) });

  test("every session and inference route needs a key (401 in OpenAI's shape); /models stays public", async () => {
    for (const [method, path] of [
      ["POST", "/completions"],
      ["POST", "/chat/completions"],
      ["GET", "/sessions"],
      ["GET", "/chat/history/x"],
      ["DELETE", "/chat/history/x"],
      ["POST", "/chat/history/x/rollback"],
    ] as const) {
      const r = await app.request(path, { method, headers: { "content-type": "application/json" }, body: method === "POST" ? "{}" : undefined });
      expect({ path, status: r.status }).toEqual({ path, status: 401 });
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    }
    expect((await app.request("/models")).status).toBe(200);
  });

  test("/completions is charged: X-Cocoon-Cost-Nanoton is the ledger's charge", async () => {
    const key = account();
    const r = await post(key, "/completions", { model: "tiny-qwen3", prompt: "Hello", max_tokens: 5 });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-ratelimit-limit")).not.toBeNull();
    const cost = Number(r.headers.get("x-cocoon-cost-nanoton"));
    expect(cost).toBeGreaterThan(0);
    const usage = (await (await app.request("/v1/usage", { headers: auth(key) })).json()) as { data: { cost: { nanoton: number }; endpoint: string }[] };
    expect(usage.data.map((u) => [u.endpoint, u.cost.nanoton])).toEqual([["completion", cost]]);
  });

  test("with ?extensions=1 a streamed /chat/completions turn ends with its cost, which the session stores", async () => {
    const key = account();
    const r = await post(key, "/chat/completions?extensions=1", { "model-name": "tiny-qwen3", prompt: "Hello", "max-token": 5, "session-id": "paid", request_guid: "paid-guid" });
    const text = await r.text();
    const m = /\n: X-Cocoon-Cost-Nanoton: (\d+)\n/.exec(text);
    expect(m).not.toBeNull();
    const cost = Number(m![1]);
    expect(cost).toBeGreaterThan(0);
    const info = (await (await app.request("/v1/sessions/paid", { headers: auth(key) })).json()) as { cost: { nanoton: number }; messages: { cost?: { nanoton: number } }[] };
    expect(info.cost.nanoton).toBe(cost);
    expect(info.messages[1]!.cost!.nanoton).toBe(cost);
    const usage = (await (await app.request("/v1/usage", { headers: auth(key) })).json()) as { data: { cost: { nanoton: number }; request_guid: string | null }[] };
    expect(usage.data.map((u) => u.cost.nanoton)).toEqual([cost]);
    // The Cocoon request_guid is accepted on the seed routes and lands in the usage record, as on /v1.
    expect(usage.data[0]!.request_guid).toBe("paid-guid");
  });

  test("without extensions the stream is only data: lines; the cost is on the session and in /v1/usage", async () => {
    const key = account();
    const r = await post(key, "/chat/completions", { "model-name": "tiny-qwen3", prompt: "Hello", "max-token": 5, "session-id": "paid-plain" });
    const text = await r.text();
    expect(text.split("\n").filter((l) => l !== "" && !l.startsWith("data: "))).toEqual([]);
    const info = (await (await app.request("/v1/sessions/paid-plain", { headers: auth(key) })).json()) as { cost: { nanoton: number } };
    expect(info.cost.nanoton).toBeGreaterThan(0);
    const usage = (await (await app.request("/v1/usage", { headers: auth(key) })).json()) as { data: { cost: { nanoton: number } }[] };
    expect(usage.data.map((u) => u.cost.nanoton)).toEqual([info.cost.nanoton]);
  });
});

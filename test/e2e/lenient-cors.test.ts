// The settings reach the real server: `--strict-fields` and `--cors-origins` on the command line,
// driven by the official `openai` SDK and raw fetch over 127.0.0.1.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import { loadConfig } from "../../src/config/config.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { openQueuedSocket } from "../support/ws.ts";

setDefaultTimeout(60_000);

const ORIGIN = "https://app.example";
let server: TestServer;
let client: OpenAI;

beforeAll(async () => {
  server = await startTestServer(["--strict-fields", "--cors-origins", `${ORIGIN},http://localhost:5173`]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
});
afterAll(async () => {
  await server?.stop();
});

describe("settings", () => {
  test("--strict-fields / COCOON_STRICT_FIELDS and --cors-origins / COCOON_CORS_ORIGINS are read", () => {
    expect(loadConfig([], {}).config).toMatchObject({ strictFields: false, corsOrigins: "*" });
    expect(loadConfig(["--strict-fields", "--cors-origins", "off"], {}).config).toMatchObject({ strictFields: true, corsOrigins: "off" });
    expect(loadConfig([], { COCOON_STRICT_FIELDS: "1", COCOON_CORS_ORIGINS: "https://a.example" }).config).toMatchObject({ strictFields: true, corsOrigins: "https://a.example" });
  });
});

describe("a server started with --strict-fields --cors-origins LIST", () => {
  const chat = { model: "tiny-qwen3", messages: [{ role: "user" as const, content: "hi" }], max_tokens: 3 };

  test("rejects an unknown field as OpenAI does, and accepts every field it knows", async () => {
    let status = 0;
    let message = "";
    try {
      await client.chat.completions.create({ ...chat, foo: 1 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    } catch (err) {
      if (!(err instanceof OpenAI.APIError)) throw err;
      status = err.status ?? 0;
      message = err.message;
    }
    expect(status).toBe(400);
    expect(message).toContain("Unrecognized request argument supplied: foo");
    const ok = await client.chat.completions.create({ ...chat, store: true, metadata: { a: "b" }, reasoning_effort: "low", cache_prompt: true, n_probs: 1 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(ok.choices[0]!.logprobs!.content!.length).toBeGreaterThan(0);
  });

  test("answers the listed origins' preflights and echoes them; others get no CORS headers", async () => {
    const pre = await fetch(`${server.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const res = await fetch(`${server.url}/v1/models`, { headers: { origin: "http://localhost:5173" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(res.headers.get("vary")).toContain("Origin");
    const other = await fetch(`${server.url}/v1/models`, { headers: { origin: "https://other.example" } });
    expect(other.status).toBe(200);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("tokenize and detokenize round trip over HTTP", async () => {
    const post = (path: string, body: unknown) => fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json());
    const { tokens } = (await post("/tokenize", { content: "Hello world" })) as { tokens: number[] };
    expect(tokens.length).toBeGreaterThan(0);
    expect(await post("/detokenize", { tokens })).toEqual({ content: "Hello world" });
  });

  test("the WebSocket on /v1/chat/completions keeps working, and refuses unknown fields here too", async () => {
    const socket = await openQueuedSocket(`${server.url.replace(/^http/, "ws")}/v1/chat/completions`, { origin: ORIGIN });
    socket.send({ ...chat, foo: 1 });
    const refused = JSON.parse(await socket.next()) as { error: { message: string; param: string } };
    expect(refused.error).toMatchObject({ message: "Unrecognized request argument supplied: foo", param: "foo" });
    socket.send({ ...chat, store: true });
    const first = JSON.parse(await socket.next()) as { object: string };
    expect(first.object).toBe("chat.completion.chunk");
    while ((await socket.next()) !== "[DONE]");
    socket.ws.close();
  });
});

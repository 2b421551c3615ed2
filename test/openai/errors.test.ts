// Request errors the engine or the OpenAI layer find: each names the field at fault.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

let app: InProcessApp;
beforeAll(async () => {
  app = await startInProcessApp();
});
afterAll(() => app.close());

async function post(path: string, body: unknown) {
  const r = await app.app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
  return { status: r.status, body: (await r.json()) as { error?: { message: string; type: string; param: string | null; code: string | null } } };
}

describe("OpenAI request errors", () => {
  test("a completions prompt longer than the context window is context_length_exceeded on 'prompt'", async () => {
    const r = await post("/v1/completions", { prompt: Array.from({ length: 1100 }, () => 9707), max_tokens: 5 });
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe("context_length_exceeded");
    expect(r.body.error?.param).toBe("prompt");
  });

  test("a chat too long for the context is context_length_exceeded on 'messages'", async () => {
    const r = await post("/v1/chat/completions", { messages: [{ role: "user", content: "word ".repeat(3000) }], max_tokens: 5 });
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe("context_length_exceeded");
    expect(r.body.error?.param).toBe("messages");
  });

  test("tool_choice without tools is rejected", async () => {
    const r = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], tool_choice: "required" });
    expect(r.status).toBe(400);
    expect(r.body.error?.param).toBe("tool_choice");
  });

  test("enable_debug reports the slot that ran the request", async () => {
    const r = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 2, enable_debug: true });
    expect(r.status).toBe(200);
    const debug = (r.body as unknown as { debug: { slot: number; slots: number; model: string } }).debug;
    expect(debug.slot).toBeGreaterThanOrEqual(0);
    expect(debug.slot).toBeLessThan(debug.slots);
    expect(debug.model).toBe("tiny-qwen3");
  });
});

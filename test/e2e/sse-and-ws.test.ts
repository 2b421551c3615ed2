// Wire formats on the real server: raw SSE bytes, Cocoon fields, freed slots, the WebSocket and SIGTERM.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

const userChat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "tiny-qwen3",
  messages: [{ role: "user", content }],
  max_tokens: 16,
  temperature: 0,
  ...extra,
});

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), ...init });
}

async function slotsBusy(): Promise<number> {
  const stats = (await (await fetch(`${server.url}/jsonstats`)).json()) as { models: { slots_busy: number }[] };
  return stats.models[0]!.slots_busy;
}

/** Polls /jsonstats until no slot is busy; resolves with the milliseconds it took (throws after `limitMs`). */
async function waitForIdleSlots(limitMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const busy = await slotsBusy();
    const elapsed = performance.now() - t0;
    if (busy === 0) return elapsed;
    if (elapsed > limitMs) throw new Error(`${busy} slot(s) still busy ${Math.round(elapsed)} ms after the client went away`);
    await Bun.sleep(20);
  }
}

interface SseRead {
  /** Every network read, decoded. */
  reads: string[];
  text: string;
  events: string[];
}

/** Reads a whole SSE response, keeping each network read separately. */
async function readSse(res: Response): Promise<SseRead> {
  const decoder = new TextDecoder();
  const reads: string[] = [];
  for await (const chunk of res.body!) reads.push(decoder.decode(chunk, { stream: true }));
  const text = reads.join("");
  return { reads, text, events: text.split("\n\n").slice(0, -1) };
}

/** Checks the framing rules of one SSE body and returns the parsed data objects (without [DONE]). */
function checkSseFraming(sse: SseRead): { objects: Record<string, unknown>[]; comments: string[] } {
  expect(sse.text.endsWith("data: [DONE]\n\n")).toBe(true);
  // Nothing after [DONE], exactly one [DONE].
  expect(sse.text.indexOf("data: [DONE]")).toBe(sse.text.length - "data: [DONE]\n\n".length);
  const objects: Record<string, unknown>[] = [];
  const comments: string[] = [];
  for (const event of sse.events) {
    const lines = event.split("\n");
    const data = lines.filter((l) => l.startsWith("data: "));
    for (const l of lines) {
      // Each line is a data line or a comment ": ..."; nothing else (no bare CR, no "event:" lines).
      expect(l.startsWith("data: ") || l.startsWith(": ")).toBe(true);
      if (l.startsWith(": ")) comments.push(l.slice(2));
    }
    expect(data.length).toBeLessThanOrEqual(1);
    if (data.length === 0) continue;
    expect(lines).toHaveLength(1); // a data event is exactly one line
    const payload = data[0]!.slice("data: ".length);
    if (payload === "[DONE]") continue;
    const parsed = JSON.parse(payload) as unknown;
    expect(typeof parsed).toBe("object");
    expect(Array.isArray(parsed)).toBe(false);
    objects.push(parsed as Record<string, unknown>);
  }
  // No read ended inside an event: every network read is a sequence of whole events.
  for (const r of sse.reads) expect(r.endsWith("\n\n")).toBe(true);
  return { objects, comments };
}

const SECONDS = /^\d{10}\.\d+$/;

describe("server-sent events, byte by byte", () => {
  test("a chat stream is `data: <one JSON object>\\n\\n` events, comments `: ...`, then `data: [DONE]\\n\\n`", async () => {
    const res = await post("/v1/chat/completions", userChat("Tell me about the sea.", { max_tokens: 24, stream: true, stream_options: { include_usage: true } }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const start = res.headers.get("x-cocoon-client-start");
    expect(start).toMatch(SECONDS);
    const sse = await readSse(res);
    const { objects, comments } = checkSseFraming(sse);
    expect(objects.length).toBeGreaterThanOrEqual(3);
    for (const o of objects) expect(o.object).toBe("chat.completion.chunk");
    expect(objects.at(-1)!.choices).toEqual([]);
    expect((objects.at(-1)!.usage as { completion_tokens: number }).completion_tokens).toBeGreaterThan(0);
    // X-Cocoon-Client-End arrives as a comment and is not before the start.
    const end = comments.find((c) => c.startsWith("X-Cocoon-Client-End: "));
    expect(end).toBeDefined();
    const endSecs = end!.slice("X-Cocoon-Client-End: ".length);
    expect(endSecs).toMatch(SECONDS);
    expect(Number(endSecs)).toBeGreaterThanOrEqual(Number(start));
  });

  test("a completions stream follows the same framing", async () => {
    const res = await post("/v1/completions", { prompt: "Once upon a time", max_tokens: 12, temperature: 0, stream: true });
    expect(res.status).toBe(200);
    const { objects } = checkSseFraming(await readSse(res));
    expect(objects.length).toBeGreaterThan(1);
    for (const o of objects) expect(o.object).toBe("text_completion");
    const text = objects.map((o) => (o.choices as { text: string }[])[0]?.text ?? "").join("");
    const whole = (await (await post("/v1/completions", { prompt: "Once upon a time", max_tokens: 12, temperature: 0 })).json()) as { choices: { text: string }[] };
    expect(text).toBe(whole.choices[0]!.text);
  });

  test("a client that disconnects mid-stream frees its slot within a second", async () => {
    const ac = new AbortController();
    const res = await post("/v1/chat/completions", userChat("Go on forever.", { max_tokens: 1000, ignore_eos: true, stream: true }), { signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    expect(new TextDecoder().decode(first.value)).toStartWith("data: {");
    expect(await slotsBusy()).toBe(1);
    ac.abort();
    await reader.cancel().catch(() => {});
    const took = await waitForIdleSlots(1000);
    expect(took).toBeLessThan(1000);
    // The slot is usable right away.
    const after = await post("/v1/chat/completions", userChat("hello", { max_tokens: 3 }));
    expect(after.status).toBe(200);
  });
});

describe("Cocoon fields and headers", () => {
  test("a non-streamed response carries X-Cocoon-Client-Start and -End (Unix seconds with a fraction)", async () => {
    const before = Date.now() / 1000;
    const res = await post("/v1/chat/completions", userChat("hi", { max_tokens: 4 }));
    expect(res.status).toBe(200);
    const start = res.headers.get("x-cocoon-client-start");
    const end = res.headers.get("x-cocoon-client-end");
    expect(start).toMatch(SECONDS);
    expect(end).toMatch(SECONDS);
    expect(Number(start)).toBeGreaterThanOrEqual(Math.floor(before * 1000) / 1000 - 0.001);
    expect(Number(end)).toBeGreaterThanOrEqual(Number(start));
    expect(Number(end)).toBeLessThanOrEqual(Date.now() / 1000 + 0.001);
    await res.arrayBuffer();
  });

  test("request_guid becomes the id suffix of chat, chat chunks and completions", async () => {
    const chat = (await (await post("/v1/chat/completions", userChat("hi", { max_tokens: 3, request_guid: "guid-123.abc" }))).json()) as { id: string };
    expect(chat.id).toBe("chatcmpl-guid-123.abc");
    const sse = await readSse(await post("/v1/chat/completions", userChat("hi", { max_tokens: 3, stream: true, request_guid: "guid-456" })));
    const { objects } = checkSseFraming(sse);
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) expect(o.id).toBe("chatcmpl-guid-456");
    const cmpl = (await (await post("/v1/completions", { prompt: "hi", max_tokens: 2, request_guid: "guid-789" })).json()) as { id: string };
    expect(cmpl.id).toBe("cmpl-guid-789");
  });

  test("enable_debug adds a debug object with timings, model, device and cached tokens", async () => {
    const body = (await (await post("/v1/chat/completions", userChat("hi", { max_tokens: 5, enable_debug: true, request_guid: "dbg-1" }))).json()) as {
      debug: Record<string, unknown>;
      usage: { prompt_tokens_details: { cached_tokens: number } };
    };
    const d = body.debug;
    expect(d).toBeDefined();
    for (const k of ["queue_ms", "prompt_ms", "generation_ms", "tokens_per_second"]) {
      expect(typeof d[k]).toBe("number");
      expect(d[k] as number).toBeGreaterThanOrEqual(0);
    }
    expect(d.tokens_per_second as number).toBeGreaterThan(0);
    expect(d.model).toBe("tiny-qwen3");
    expect(d.device).toBe("cpu");
    expect(d.cached_tokens).toBe(body.usage.prompt_tokens_details.cached_tokens);
    const plain = (await (await post("/v1/chat/completions", userChat("hi", { max_tokens: 2 }))).json()) as Record<string, unknown>;
    expect("debug" in plain).toBe(false);
  });

  test("a Cocoon timeout that produced nothing is a 504 timeout_error (plain and streamed)", async () => {
    for (const stream of [false, true]) {
      // A long prompt no slot has cached (~700 tokens): its processing alone outlasts 1 ms.
      const salt = Date.now() + (stream ? 50_000 : 0);
      const words = Array.from({ length: 120 }, (_, i) => `w${(i * 7919 + salt) % 100003}`).join(" ");
      const res = await post("/v1/chat/completions", userChat(words, { max_tokens: 20, timeout: 0.001, stream }));
      expect({ stream, status: res.status }).toEqual({ stream, status: 504 });
      const body = (await res.json()) as { error: { type: string; code: string; param: string | null; message: string } };
      expect(body.error.type).toBe("timeout_error");
      expect(body.error.code).toBe("timeout");
      expect(typeof body.error.message).toBe("string");
    }
    expect(await waitForIdleSlots(1000)).toBeLessThan(1000);
  });
});

/** A WebSocket that queues its messages so a test can await them one by one. */
async function openSocket(): Promise<{ ws: WebSocket; next(timeoutMs?: number): Promise<string>; pending(): string[]; closed: Promise<void> }> {
  const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/v1/chat/completions`);
  const queue: string[] = [];
  const waiters: ((m: string) => void)[] = [];
  ws.onmessage = (e) => {
    const m = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer);
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  };
  const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the WebSocket did not open"));
  });
  return {
    ws,
    closed,
    pending: () => queue.splice(0),
    next(timeoutMs = 15_000) {
      const m = queue.shift();
      if (m !== undefined) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((msg) => {
          clearTimeout(timer);
          resolve(msg);
        });
      });
    },
  };
}

/** Messages of one request up to and including "[DONE]". */
async function untilDone(sock: { next(): Promise<string> }): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const m = await sock.next();
    out.push(m);
    if (m === "[DONE]") return out;
    if (out.length > 5000) throw new Error("no [DONE]");
  }
}

describe("WebSocket on /v1/chat/completions", () => {
  test("two requests in sequence on one socket, each answered with chunks then [DONE]", async () => {
    const sock = await openSocket();
    try {
      const texts: string[] = [];
      for (const prompt of ["First question", "Second question"]) {
        sock.ws.send(JSON.stringify(userChat(prompt, { max_tokens: 8 })));
        const msgs = await untilDone(sock);
        expect(msgs.at(-1)).toBe("[DONE]");
        const chunks = msgs.slice(0, -1).map((m) => JSON.parse(m) as { id: string; object: string; choices: { delta: { content?: string }; finish_reason: string | null }[] });
        expect(chunks.length).toBeGreaterThan(1);
        for (const c of chunks) {
          expect(c.object).toBe("chat.completion.chunk");
          expect(c.id).toBe(chunks[0]!.id);
        }
        expect(chunks.at(-1)!.choices[0]!.finish_reason).not.toBeNull();
        texts.push(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""));
      }
      // Same greedy text as over plain HTTP.
      const http = (await (await post("/v1/chat/completions", userChat("Second question", { max_tokens: 8 }))).json()) as { choices: { message: { content: string } }[] };
      expect(texts[1]).toBe(http.choices[0]!.message.content);
      expect(sock.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      sock.ws.close();
    }
  });

  test("malformed frames get an {error} message and the socket stays usable", async () => {
    const sock = await openSocket();
    try {
      const frames = ["this is not JSON", JSON.stringify({ messages: "not an array" }), JSON.stringify(userChat("hi", { temperature: "hot" })), "[1,2,3]"];
      for (const frame of frames) {
        sock.ws.send(frame);
        const reply = JSON.parse(await sock.next()) as { error: { message: string; type: string; param: string | null; code: string | null } };
        expect(typeof reply.error.message).toBe("string");
        expect(reply.error.type).toBe("invalid_request_error");
        expect(reply.error.param === null || typeof reply.error.param === "string").toBe(true);
        expect(reply.error.code === null || typeof reply.error.code === "string").toBe(true);
      }
      await Bun.sleep(100);
      // At most an end marker may follow an error; nothing else.
      for (const m of sock.pending()) expect(m).toBe("[DONE]");
      expect(sock.ws.readyState).toBe(WebSocket.OPEN);
      sock.ws.send(JSON.stringify(userChat("Now a good one", { max_tokens: 4 })));
      const msgs = await untilDone(sock);
      expect(msgs.length).toBeGreaterThan(1);
      expect((JSON.parse(msgs[0]!) as { object: string }).object).toBe("chat.completion.chunk");
    } finally {
      sock.ws.close();
    }
  });

  test("closing the socket mid-generation frees the slot within a second", async () => {
    const sock = await openSocket();
    sock.ws.send(JSON.stringify(userChat("Keep talking.", { max_tokens: 1000, ignore_eos: true })));
    const first = JSON.parse(await sock.next()) as { object: string };
    expect(first.object).toBe("chat.completion.chunk");
    expect(await slotsBusy()).toBe(1);
    sock.ws.close();
    await sock.closed;
    expect(await waitForIdleSlots(1000)).toBeLessThan(1000);
  });
});

describe("shutdown", () => {
  test("SIGTERM lets an in-flight stream finish with [DONE] and exits 0", async () => {
    const res = await post("/v1/chat/completions", userChat("A short story.", { max_tokens: 60, ignore_eos: true, stream: true }));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    server.proc.kill("SIGTERM");
    let after = "";
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      after += new TextDecoder().decode(r.value);
    }
    const text = new TextDecoder().decode(first.value) + after;
    // The generation went on after the signal, to its end.
    expect(after.split("data: {").length - 1).toBeGreaterThan(10);
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    const usage = text.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)) as { choices: { finish_reason: string | null }[] });
    expect(usage.at(-1)!.choices[0]!.finish_reason).toBe("length");
    expect(await server.proc.exited).toBe(0);
    // No longer listening.
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });
});

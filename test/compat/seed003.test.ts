// The seed 003 API, as that service documents it: exact field names and response shapes of every
// route, SSE text framing, sessions through session-id, history, 204 on delete, rollback of exactly
// N messages, device reporting, and errors in OpenAI's shape. Runs --no-auth (the local owner).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { textSse } from "../../src/compat/index.ts";
import { sseEvent } from "../../src/http/sse.ts";
import type { TextPiece, TextRun, TextSummary } from "../../src/compat/service.ts";
import { createApp } from "../../src/app.ts";
import { Engine } from "../../src/inference/engine.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";
import { TINY_MODEL } from "../support/model.ts";

setDefaultTimeout(120_000);

let app: InProcessApp;
beforeAll(async () => {
  app = await startInProcessApp();
});
afterAll(() => app.close());

const post = (path: string, body: unknown) => app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** An SSE body read as the spec says: events split on blank lines, data lines joined with "\n". */
function parseSse(text: string): { event: string; data: string }[] {
  const events: { event: string; data: string }[] = [];
  for (const block of text.split("\n\n")) {
    const data: string[] = [];
    let event = "message";
    for (const line of block.split("\n")) {
      if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      else if (line.startsWith("event:")) event = line.slice(6).trim();
    }
    if (data.length) events.push({ event, data: data.join("\n") });
  }
  return events;
}

const expectOpenAiError = async (r: Response, status: number, param?: string) => {
  expect(r.status).toBe(status);
  const body = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error.message.length).toBeGreaterThan(5);
  if (param !== undefined) expect(body.error.param).toBe(param);
};

describe("SSE framing", () => {
  test("a piece with line breaks becomes several data: lines that an SSE reader joins back", () => {
    expect(sseEvent(" upon")).toBe("data:  upon\n\n");
    expect(sseEvent("a\nb")).toBe("data: a\ndata: b\n\n");
    expect(sseEvent("\n")).toBe("data: \ndata: \n\n");
    expect(sseEvent("x", "reasoning")).toBe("event: reasoning\ndata: x\n\n");
    for (const piece of ["plain", " lead", "two\nlines", "\n\n", "end\n", "crlf\r\nx"]) {
      expect(parseSse(sseEvent(piece))[0]!.data).toBe(piece.replace(/\r\n/g, "\n"));
    }
  });
});

describe("SSE extensions", () => {
  /** A run of given pieces (a thinking model's reasoning first), ending with `end`. */
  const runOf = (pieces: TextPiece[], end: Error | null): TextRun => ({
    model: {} as TextRun["model"],
    sessionId: null,
    pieces: (async function* (): AsyncGenerator<TextPiece, TextSummary | null> {
      for (const p of pieces) yield p;
      if (end) throw end;
      return null;
    })(),
  });
  const pieces = [
    { content: "", reasoning: "thinking" },
    { content: "Hi", reasoning: "" },
  ];

  test("reasoning is sent only with extensions; by default the stream is the answer's data: lines alone", async () => {
    expect(await textSse(runOf(pieces, null), {}, false).text()).toBe("data: Hi\n\n");
    const ext = await textSse(runOf(pieces, null), {}, true).text();
    expect(ext).toStartWith("event: reasoning\ndata: thinking\n\ndata: Hi\n\n: X-Cocoon-Client-End: ");
  });

  test("a failure after streaming began is one event: error either way", async () => {
    const text = await textSse(runOf(pieces, new Error("boom")), {}, false).text();
    const events = parseSse(text);
    expect(events.map((e) => e.event)).toEqual(["message", "error"]);
    expect((JSON.parse(events[1]!.data) as { error: { type: string } }).error.type).toBe("server_error");
  });
});

describe("POST /completions", () => {
  test("answers {text, model, tokens}", async () => {
    const r = await post("/completions", { model: "tiny-qwen3", prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { text: string; model: string; tokens: number };
    expect(Object.keys(body).sort()).toEqual(["model", "text", "tokens"]);
    expect(body.model).toBe("tiny-qwen3");
    expect(body.tokens).toBeGreaterThan(0);
    expect(body.tokens).toBeLessThanOrEqual(12);
    expect(body.text.length).toBeGreaterThan(0);
    expect(r.headers.get("x-cocoon-client-start")).not.toBeNull();
  });

  test("max_tokens defaults to 128", async () => {
    const r = await post("/completions", { model: "tiny-qwen3", prompt: "Count: one two three", temperature: 0, stop: [] });
    const body = (await r.json()) as { tokens: number };
    // Greedy on this prompt never ends by itself that early: the cap is what stops it (without the
    // seed's default it would run to the end of the context).
    expect(body.tokens).toBe(128);
  });

  test("stream: one data: event per token text, the same text as without streaming", async () => {
    const req = { model: "tiny-qwen3", prompt: "The weather today is", max_tokens: 24, temperature: 0 };
    const whole = (await (await post("/completions", req)).json()) as { text: string; tokens: number };
    const r = await post("/completions", { ...req, stream: true });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/event-stream");
    const text = await r.text();
    const events = parseSse(text);
    expect(events.length).toBeGreaterThan(1);
    expect(events.every((e) => e.event === "message")).toBe(true);
    expect(events.map((e) => e.data).join("")).toBe(whole.text);
    // Only data: lines, as the seed sends: its example client prints every non-empty line.
    expect(text.split("\n").filter((l) => l !== "" && !l.startsWith("data: "))).toEqual([]);
    expect(text).not.toContain("[DONE]");
    // ?extensions=1 (or X-Cocoon-Extensions: 1) adds the client-end comment at the end.
    const ext = await (await post("/completions?extensions=1", { ...req, stream: true })).text();
    expect(parseSse(ext).map((e) => e.data).join("")).toBe(whole.text);
    expect(ext).toMatch(/: X-Cocoon-Client-End: \d+\.\d{3}\n\n$/);
    const byHeader = await app.request("/completions", { method: "POST", headers: { "content-type": "application/json", "x-cocoon-extensions": "1" }, body: JSON.stringify({ ...req, stream: true }) });
    expect(await byHeader.text()).toMatch(/: X-Cocoon-Client-End: \d+\.\d{3}\n\n$/);
  });

  test("Cocoon's client fields are accepted and applied as on /v1", async () => {
    const req = { model: "tiny-qwen3", prompt: "Once upon a time", max_tokens: 4, temperature: 0 };
    const r = await post("/completions", { ...req, enable_debug: true, request_guid: "seed-guid-1", max_coefficient: 1000, timeout: 30 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { tokens: number; debug: { request_guid: string; slot: number; model: string } };
    expect(body.tokens).toBe(4);
    expect(body.debug.request_guid).toBe("seed-guid-1");
    expect(body.debug.model).toBe("tiny-qwen3");
    expect(Number.isInteger(body.debug.slot)).toBe(true);
    // The model's coefficient is 1000 here: a lower max_coefficient finds no eligible worker.
    await expectOpenAiError(await post("/completions", { ...req, max_coefficient: 999 }), 504, "max_coefficient");
    await expectOpenAiError(await post("/completions", { ...req, request_guid: "no spaces" }), 400, "request_guid");
    // A timeout ends a long generation with what it produced so far.
    const t0 = performance.now();
    const capped = (await (await post("/completions", { ...req, prompt: "Count: one two three", max_tokens: 900, stop: [], timeout: 0.05 })).json()) as { tokens?: number; error?: { code: string } };
    expect(performance.now() - t0).toBeLessThan(5000);
    if (capped.error) expect(capped.error.code).toBe("timeout");
    else expect(capped.tokens).toBeLessThan(900);
    const chat = await post("/chat/completions?extensions=1", { "model-name": "tiny-qwen3", prompt: "Hi", "max-token": 3, enable_debug: true, request_guid: "seed-guid-2", max_coefficient: 1000, timeout: 30 });
    expect(chat.status).toBe(200);
    const m = /\n: X-Cocoon-Debug: (.+)\n/.exec(await chat.text());
    expect((JSON.parse(m![1]!) as { request_guid: string }).request_guid).toBe("seed-guid-2");
    await expectOpenAiError(await post("/chat/completions", { "model-name": "tiny-qwen3", prompt: "Hi", max_coefficient: 1 }), 504, "max_coefficient");
  });

  test("bad input: OpenAI-shaped 400s naming the field, 404 for an unknown model", async () => {
    await expectOpenAiError(await post("/completions", { prompt: "x" }), 400, "model");
    await expectOpenAiError(await post("/completions", { model: "tiny-qwen3" }), 400, "prompt");
    await expectOpenAiError(await post("/completions", { model: "tiny-qwen3", prompt: "x", temperature: 3 }), 400, "temperature");
    await expectOpenAiError(await post("/completions", { model: "tiny-qwen3", prompt: "x", max_tokens: 0 }), 400, "max_tokens");
    await expectOpenAiError(await post("/completions", { model: "tiny-qwen3", prompt: "x", stop: "\n" }), 400, "stop");
    await expectOpenAiError(await post("/completions", { model: "nope", prompt: "x" }), 404, "model");
  });
});

describe("POST /chat/completions", () => {
  const chat = (body: Record<string, unknown>) => post("/chat/completions", { "model-name": "tiny-qwen3", "max-token": 10, temperature: 0, ...body });

  test("streams SSE text in a new session named by X-Session-Id, and the history holds the turn", async () => {
    const r = await chat({ prompt: "What is Rust?", "system-prompt": "You are a Rust expert" });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/event-stream");
    const id = r.headers.get("x-session-id")!;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.headers.get("x-cocoon-session-id")).toBe(id);
    const answer = parseSse(await r.text())
      .filter((e) => e.event === "message")
      .map((e) => e.data)
      .join("");
    const history = (await (await app.request(`/chat/history/${id}`)).json()) as { role: string; content: string }[];
    expect(history).toEqual([
      { role: "system", content: "You are a Rust expert" },
      { role: "user", content: "What is Rust?" },
      { role: "assistant", content: answer },
    ]);
    // Continuing with session-id appends, and reuses the cached history.
    const next = await chat({ prompt: "And Go?", "session-id": id });
    expect(next.headers.get("x-session-id")).toBe(id);
    await next.text();
    const after = (await (await app.request(`/chat/history/${id}`)).json()) as { role: string }[];
    expect(after.map((m) => m.role)).toEqual(["system", "user", "assistant", "user", "assistant"]);
    expect(((await (await app.request("/sessions")).json()) as string[])).toContain(id);
  });

  test("a client-chosen session-id is used as is; system-prompt replaces the session's", async () => {
    await (await chat({ prompt: "Hi", "session-id": "my-session-id", "system-prompt": "Old" })).text();
    await (await chat({ prompt: "Again", "session-id": "my-session-id", "system-prompt": "New" })).text();
    const history = (await (await app.request("/chat/history/my-session-id")).json()) as { role: string; content: string }[];
    expect(history[0]).toEqual({ role: "system", content: "New" });
    expect(history.filter((m) => m.role === "system").length).toBe(1);
    expect(history.length).toBe(5);
  });

  test("device is accepted and reported: the model cannot move, and the headers say so", async () => {
    const cpu = await chat({ prompt: "Hi", device: "cpu" });
    expect(cpu.headers.get("x-cocoon-device")).toBe("cpu");
    expect(cpu.headers.get("x-cocoon-device-note")).toBeNull();
    await cpu.text();
    const cuda = await chat({ prompt: "Hi", device: "cuda" });
    expect(cuda.status).toBe(200);
    expect(cuda.headers.get("x-cocoon-device")).toBe("cpu");
    expect(cuda.headers.get("x-cocoon-device-note")).toBe("requested cuda; the model is loaded on cpu and cannot move");
    await cuda.text();
    await expectOpenAiError(await chat({ prompt: "Hi", device: "tpu" }), 400, "device");
  });

  test("hyphenated fields are validated by their own names", async () => {
    await expectOpenAiError(await post("/chat/completions", { prompt: "Hi" }), 400, "model-name");
    await expectOpenAiError(await chat({}), 400, "prompt");
    await expectOpenAiError(await chat({ prompt: "Hi", "max-token": 0 }), 400, "max-token");
    await expectOpenAiError(await chat({ prompt: "Hi", "top-p": 2 }), 400, "top-p");
    await expectOpenAiError(await chat({ prompt: "Hi", "top-k": -1 }), 400, "top-k");
    await expectOpenAiError(await chat({ prompt: "Hi", "repeat-penalty": 3 }), 400, "repeat-penalty");
    await expectOpenAiError(await chat({ prompt: "Hi", "session-id": "no spaces" }), 400, "session-id");
    // Errors name the seed's fields, not /v1's ("model", "messages").
    await expectOpenAiError(await chat({ prompt: "Hi", "model-name": "nope" }), 404, "model-name");
  });

  test("the seed's full example request is accepted with every field", async () => {
    const r = await post("/chat/completions", {
      "model-name": "tiny-qwen3",
      prompt: "What is async/await in Rust?",
      "max-token": 8,
      temperature: 0.8,
      "top-p": 0.95,
      "top-k": 40,
      "repeat-penalty": 1.1,
      "system-prompt": "You are a Rust expert",
      stop: [],
      device: "cuda",
    });
    expect(r.status).toBe(200);
    expect(parseSse(await r.text()).length).toBeGreaterThan(0);
  });
});

describe("max-token default in a long session", () => {
  /** A text of about `n` tokens of the tiny model. */
  async function textOf(n: number): Promise<string> {
    const words = (k: number) => Array.from({ length: k }, (_, i) => `w${i % 10}`).join(" ");
    const per = (await app.engine.tokenize("tiny-qwen3", words(200))).length / 200;
    return words(Math.round(n / per));
  }
  const sessionTokens = async (id: string) => ((await (await app.request(`/v1/sessions/${id}`)).json()) as { message_count: number; messages: { usage?: { prompt_tokens: number; completion_tokens: number } }[] });

  test("without max-token, a turn whose history leaves less than 512 tokens is clamped to the context left", async () => {
    const system = await textOf(700);
    const first = await post("/chat/completions", { "model-name": "tiny-qwen3", prompt: "Hi", "session-id": "long-one", "system-prompt": system, "max-token": 2 });
    expect(first.status).toBe(200);
    await first.text();
    const r = await post("/chat/completions", { "model-name": "tiny-qwen3", prompt: "Go on", "session-id": "long-one", temperature: 0 });
    expect(r.status).toBe(200);
    const answer = parseSse(await r.text()).map((e) => e.data).join("");
    const s = await sessionTokens("long-one");
    expect(s.message_count).toBe(5);
    const usage = s.messages.at(-1)!.usage!;
    expect(usage.prompt_tokens + 512).toBeGreaterThan(1024);
    expect(usage.prompt_tokens + usage.completion_tokens).toBeLessThanOrEqual(1024);
    expect(answer.length).toBeGreaterThan(0);
  });

  test("a session with no room left says it is full and how to make room; errors name 'prompt'", async () => {
    const system = await textOf(900);
    const first = await post("/chat/completions", { "model-name": "tiny-qwen3", prompt: "Hi", "session-id": "full-one", "system-prompt": system, "max-token": 1 });
    expect(first.status).toBe(200);
    await first.text();
    const more = { "model-name": "tiny-qwen3", prompt: await textOf(200), "session-id": "full-one" };
    const full = await post("/chat/completions", more);
    expect(full.status).toBe(400);
    const e = ((await full.json()) as { error: { message: string; param: string; code: string } }).error;
    expect(e.code).toBe("context_length_exceeded");
    expect(e.param).toBe("prompt");
    expect(e.message).toContain("Session 'full-one' is full");
    expect(e.message).toContain("/chat/history/full-one/rollback");
    const explicit = await post("/chat/completions", { ...more, "max-token": 10 });
    const e2 = ((await explicit.json()) as { error: { message: string; param: string } }).error;
    expect(explicit.status).toBe(400);
    expect(e2.param).toBe("prompt");
    expect(e2.message).toContain("Lower max-token");
    expect((await sessionTokens("full-one")).message_count).toBe(3);
  });
});

describe("models", () => {
  test("GET /models lists ids as {models: [...]}", async () => {
    const r = await app.request("/models");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ models: ["tiny-qwen3"] });
  });

  test("GET /models/{id} is {id, name, context_length, quantization}; unknown ids are an OpenAI 404", async () => {
    const r = await app.request("/models/tiny-qwen3");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ id: "tiny-qwen3", name: "tiny-qwen3", context_length: 1024, quantization: "F16" });
    await expectOpenAiError(await app.request("/models/unknown-model"), 404, "model");
  });

  test("GET /models/{id} also takes the model's name (\"Model ID or name\")", async () => {
    // A model served under an id other than its file's name.
    const engine = await Engine.start({ models: [{ id: "short-id", path: TINY_MODEL }], slots: 1, ctxSize: 256 });
    try {
      const other = createApp({ engine, metrics: new Metrics({ models: () => [] }), platform: null, version: "0.0.0-test", loadedEngine: () => engine, coefficient: () => 1, ton: null, log: () => {} });
      const byId = (await (await other.handle(new Request("http://localhost/models/short-id"))).json()) as { id: string; name: string };
      expect(byId).toMatchObject({ id: "short-id", name: "tiny-qwen3" });
      const byName = await other.handle(new Request("http://localhost/models/tiny-qwen3"));
      expect(byName.status).toBe(200);
      expect(await byName.json()).toEqual(byId);
    } finally {
      engine.close();
    }
  });
});

describe("WebSocket paths without an upgrade", () => {
  test("a plain GET of /chat/ws (and of /v1/chat/completions) is 426 Upgrade Required in OpenAI's shape", async () => {
    for (const path of ["/chat/ws", "/v1/chat/completions"]) {
      const r = await app.request(path);
      expect(r.headers.get("upgrade")).toBe("websocket");
      const body = (await r.clone().json()) as { error: { code: string } };
      expect(body.error.code).toBe("upgrade_required");
      await expectOpenAiError(r, 426);
    }
  });
});

describe("history", () => {
  const turn = async (id: string, prompt: string) => (await post("/chat/completions", { "model-name": "tiny-qwen3", prompt, "session-id": id, "max-token": 3 })).text();

  test("GET /sessions is an array of ids; GET /chat/history/{id} is [{role, content}]", async () => {
    await turn("hist-a", "Hello");
    const ids = (await (await app.request("/sessions")).json()) as unknown;
    expect(Array.isArray(ids)).toBe(true);
    expect((ids as unknown[]).every((x) => typeof x === "string")).toBe(true);
    expect((ids as string[])[0]).toBe("hist-a");
    const history = (await (await app.request("/chat/history/hist-a")).json()) as Record<string, unknown>[];
    expect(history.map((m) => Object.keys(m).sort())).toEqual([
      ["content", "role"],
      ["content", "role"],
    ]);
    await expectOpenAiError(await app.request("/chat/history/missing"), 404);
  });

  test("rollback removes exactly the last N messages; N outside 1..length is a 400", async () => {
    for (const p of ["one", "two", "three"]) await turn("roll", p);
    const full = (await (await app.request("/chat/history/roll")).json()) as { role: string; content: string }[];
    expect(full.length).toBe(6);
    const rb = (amount: unknown) => post("/chat/history/roll/rollback", { amount });
    const r = await rb(3);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok" });
    expect(await (await app.request("/chat/history/roll")).json()).toEqual(full.slice(0, 3));
    await expectOpenAiError(await rb(4), 400, "amount");
    await expectOpenAiError(await rb(0), 400, "amount");
    await expectOpenAiError(await rb(-1), 400, "amount");
    await expectOpenAiError(await rb(1.5), 400, "amount");
    await expectOpenAiError(await post("/chat/history/roll/rollback", {}), 400, "amount");
    expect(await (await app.request("/chat/history/roll")).json()).toEqual(full.slice(0, 3));
    expect((await rb(3)).status).toBe(200);
    expect(await (await app.request("/chat/history/roll")).json()).toEqual([]);
    await expectOpenAiError(await post("/chat/history/nobody/rollback", { amount: 1 }), 404);
  });

  test("DELETE /chat/history/{id} answers 204 with no body and frees the session's engine cache", async () => {
    await turn("gone", "Remember me");
    const before = app.engine.stats()[0]!;
    const r = await app.request("/chat/history/gone", { method: "DELETE" });
    expect(r.status).toBe(204);
    expect(await r.text()).toBe("");
    const after = app.engine.stats()[0]!;
    expect(after.pinnedSlots + after.parkedSessions).toBe(before.pinnedSlots + before.parkedSessions - 1);
    await expectOpenAiError(await app.request("/chat/history/gone"), 404);
    expect(((await (await app.request("/sessions")).json()) as string[])).not.toContain("gone");
    await expectOpenAiError(await app.request("/chat/history/gone", { method: "DELETE" }), 404);
  });
});

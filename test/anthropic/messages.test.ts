// The Anthropic Messages API in-process on the tiny model: message and stream shapes, tool use, errors
// in Anthropic's shape, count_tokens, and billing (exact cost, usage rows, the ledger, cancellation).
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Message } from "../../src/anthropic/model.ts";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { setKeyLimits } from "../../src/platform/keys.ts";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";
import { billedPlatform, type BilledPlatform } from "../support/billed.ts";

setDefaultTimeout(120_000);

let app: InProcessApp;
let billed: BilledPlatform;
let key: string;
const messageSchema = TypeCompiler.Compile(Message);

beforeAll(async () => {
  billed = billedPlatform("anthropic");
  app = await startInProcessApp({ platform: billed.platform });
  key = billed.account("10").key;
});
afterAll(() => {
  app.close();
  billed.close();
});

const tools = [{ name: "get_weather", description: "The weather in a city", input_schema: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false } }];

function post(path: string, body: unknown, o: { key?: string | null; bearer?: boolean; signal?: AbortSignal } = {}) {
  const k = o.key === undefined ? key : o.key;
  const auth: Record<string, string> = k === null ? {} : o.bearer ? { authorization: `Bearer ${k}` } : { "x-api-key": k };
  return app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", "anthropic-beta": "prompt-caching-2024-07-31", ...auth },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: o.signal,
  });
}

const ask = (extra: Record<string, unknown> = {}) => ({ model: TINY_ID, max_tokens: 8, temperature: 0, messages: [{ role: "user", content: "Name three rivers." }], ...extra });

type Msg = typeof Message.static;
type Sse = { event: string; data: Record<string, unknown> & { type: string } };

function parseSse(text: string): Sse[] {
  return text
    .split("\n\n")
    .filter((f) => f.includes("data: "))
    .map((f) => {
      const lines = f.split("\n").filter((l) => !l.startsWith(":"));
      const event = lines.find((l) => l.startsWith("event: "))!.slice(7);
      const data = JSON.parse(lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"));
      return { event, data };
    });
}

async function expectAnthropicError(r: Response, status: number, type: string): Promise<string> {
  expect(r.status).toBe(status);
  const body = (await r.json()) as { type: string; error: { type: string; message: string } };
  expect(Object.keys(body).sort()).toEqual(["error", "type"]);
  expect(body.type).toBe("error");
  expect(body.error.type).toBe(type);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error.message;
}

describe("POST /v1/messages", () => {
  test("a message has Anthropic's shape, consistent usage, the cost header and the rate-limit headers", async () => {
    const r = await post("/v1/messages", ask({ system: [{ type: "text", text: "Be terse.", cache_control: { type: "ephemeral" } }], metadata: { user_id: "u1" }, service_tier: "auto" }));
    expect(r.status).toBe(200);
    const m = (await r.json()) as Msg;
    expect(messageSchema.Check(m)).toBe(true);
    expect(m.id).toMatch(/^msg_[A-Za-z0-9_-]{20,}$/);
    expect(m.type).toBe("message");
    expect(m.role).toBe("assistant");
    expect(m.model).toBe(TINY_ID);
    expect(m.content[0]!.type).toBe("text");
    expect(["end_turn", "max_tokens"]).toContain(m.stop_reason!);
    expect(m.stop_sequence).toBeNull();
    expect(m.usage.output_tokens).toBeGreaterThan(0);
    expect(m.usage.output_tokens).toBeLessThanOrEqual(8);
    if (m.usage.output_tokens === 8) expect(m.stop_reason).toBe("max_tokens");
    expect(m.usage.input_tokens + m.usage.cache_read_input_tokens).toBeGreaterThan(5);
    expect(m.usage.cache_creation_input_tokens).toBe(0);
    expect(Number(r.headers.get("x-cocoon-cost-nanoton"))).toBeGreaterThan(0);
    expect(r.headers.get("x-ratelimit-limit")).not.toBeNull();
    expect(r.headers.get("x-cocoon-client-start")).not.toBeNull();
  });

  test("the key may also come as Authorization: Bearer; a stop sequence the text contains ends it with stop_sequence", async () => {
    const first = (await (await post("/v1/messages", ask({ max_tokens: 12 }), { bearer: true })).json()) as Msg;
    const text = (first.content[0] as { text: string }).text;
    expect(text.length).toBeGreaterThan(3);
    const stop = text.slice(2, 4);
    const r = (await (await post("/v1/messages", ask({ max_tokens: 12, stop_sequences: [stop] }))).json()) as Msg;
    expect(r.stop_reason).toBe("stop_sequence");
    expect(r.stop_sequence).toBe(stop);
    expect((r.content[0] as { text: string }).text).toBe(text.slice(0, text.indexOf(stop)));
  });

  test("a stream sends Anthropic's events in order, and its text and usage equal the message's", async () => {
    const whole = (await (await post("/v1/messages", ask())).json()) as Msg;
    const r = await post("/v1/messages", ask({ stream: true }));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/event-stream");
    const raw = await r.text();
    expect(raw).toMatch(/: X-Cocoon-Cost-Nanoton: \d+/);
    const events = parseSse(raw);
    for (const e of events) expect(e.event).toBe(e.data.type);
    const types = events.map((e) => e.event);
    expect(types.slice(0, 3)).toEqual(["message_start", "ping", "content_block_start"]);
    expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(types.slice(3, -3).every((t) => t === "content_block_delta")).toBe(true);
    const start = events[0]!.data.message as Msg;
    expect(start.id).toMatch(/^msg_/);
    expect(start.content).toEqual([]);
    expect(start.stop_reason).toBeNull();
    const text = events.filter((e) => e.event === "content_block_delta").map((e) => (e.data.delta as { type: string; text: string }).text).join("");
    expect(text).toBe((whole.content[0] as { text: string }).text);
    const delta = events.at(-2)!.data as unknown as { delta: { stop_reason: string; stop_sequence: null }; usage: Msg["usage"] };
    expect(delta.delta.stop_reason).toBe(whole.stop_reason!);
    expect(delta.delta.stop_sequence).toBeNull();
    expect(delta.usage.output_tokens).toBe(whole.usage.output_tokens);
    expect(delta.usage.input_tokens + delta.usage.cache_read_input_tokens).toBe(whole.usage.input_tokens + whole.usage.cache_read_input_tokens);
  });

  test("a forced tool call: a tool_use block with a toolu_ id and an input object, streamed as input_json_delta; the tool_result round trip answers", async () => {
    const forced = ask({ max_tokens: 200, tools, tool_choice: { type: "tool", name: "get_weather" } });
    const m = (await (await post("/v1/messages", forced)).json()) as Msg;
    expect(m.stop_reason).toBe("tool_use");
    const use = m.content.find((b) => b.type === "tool_use") as { id: string; name: string; input: Record<string, unknown> };
    expect(use.id).toMatch(/^toolu_/);
    expect(use.name).toBe("get_weather");
    expect(typeof use.input.city).toBe("string");

    const events = parseSse(await (await post("/v1/messages", { ...forced, stream: true })).text());
    const start = events.find((e) => e.event === "content_block_start" && (e.data.content_block as { type: string }).type === "tool_use")!;
    const block = start.data.content_block as { id: string; name: string; input: unknown };
    expect(block.id).toMatch(/^toolu_/);
    expect(block.input).toEqual({});
    const json = events
      .filter((e) => e.event === "content_block_delta" && e.data.index === start.data.index)
      .map((e) => (e.data.delta as { type: string; partial_json: string }))
      .map((d) => {
        expect(d.type).toBe("input_json_delta");
        return d.partial_json;
      })
      .join("");
    expect(JSON.parse(json)).toEqual(use.input);
    expect((events.at(-2)!.data.delta as { stop_reason: string }).stop_reason).toBe("tool_use");

    const round = await post("/v1/messages", {
      ...ask({ max_tokens: 6, tools }),
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: [{ type: "thinking", thinking: "Use the tool.", signature: "x" }, { type: "text", text: "Let me check." }, { type: "tool_use", id: use.id, name: "get_weather", input: use.input }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: [{ type: "text", text: "Sunny, 21 C" }] }, { type: "text", text: "Thanks" }] },
      ],
    });
    expect(round.status).toBe(200);
    expect(messageSchema.Check(await round.json())).toBe(true);
  });

  test("max_tokens past the context window is cut to what it leaves: stop_reason model_context_window_exceeded", async () => {
    const count = async (k: number) =>
      ((await (await post("/v1/messages/count_tokens", { model: TINY_ID, messages: [{ role: "user", content: "hello ".repeat(k) }] })).json()) as { input_tokens: number }).input_tokens;
    const [a, b] = [await count(100), await count(200)];
    const perWord = (b - a) / 100;
    const k = 100 + Math.floor((1024 - 6 - a) / perWord);
    const prompt = await count(k);
    expect(1024 - prompt).toBeGreaterThan(0);
    expect(1024 - prompt).toBeLessThan(20);
    const m = (await (await post("/v1/messages", { ...ask({ max_tokens: 4096 }), messages: [{ role: "user", content: "hello ".repeat(k) }] })).json()) as Msg;
    expect(m.usage.input_tokens + m.usage.cache_read_input_tokens).toBe(prompt);
    if (m.usage.output_tokens === 1024 - prompt) expect(m.stop_reason).toBe("model_context_window_exceeded");
    else expect(m.stop_reason).toBe("end_turn");
  });

  test("thinking: budget_tokens must be below max_tokens; disabled and adaptive are accepted", async () => {
    const msg = await expectAnthropicError(await post("/v1/messages", ask({ max_tokens: 8, thinking: { type: "enabled", budget_tokens: 8 } })), 400, "invalid_request_error");
    expect(msg).toContain("budget_tokens");
    expect((await post("/v1/messages", ask({ thinking: { type: "disabled" } }))).status).toBe(200);
    expect((await post("/v1/messages", ask({ max_tokens: 8, thinking: { type: "enabled", budget_tokens: 4 } }))).status).toBe(200);
  });
});

describe("errors in Anthropic's shape", () => {
  test("400: validation, bad JSON, images, server tools, tool_choice without tools", async () => {
    expect(await expectAnthropicError(await post("/v1/messages", { model: TINY_ID, messages: [{ role: "user", content: "hi" }] }), 400, "invalid_request_error")).toContain("max_tokens");
    await expectAnthropicError(await post("/v1/messages", "{not json"), 400, "invalid_request_error");
    const image = { role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }] };
    expect(await expectAnthropicError(await post("/v1/messages", ask({ messages: [image] })), 400, "invalid_request_error")).toContain("image");
    expect(await expectAnthropicError(await post("/v1/messages", ask({ tools: [{ type: "web_search_20250305", name: "web_search" }] })), 400, "invalid_request_error")).toContain("web_search_20250305");
    expect(await expectAnthropicError(await post("/v1/messages", ask({ tool_choice: { type: "any" } })), 400, "invalid_request_error")).toContain("requires tools");
    expect(await expectAnthropicError(await post("/v1/messages", ask({ messages: [{ role: "user", content: [{ type: "text" }] }] })), 400, "invalid_request_error")).toContain("text");
    await expectAnthropicError(await post("/v1/messages", ask({ temperature: 1.5 })), 400, "invalid_request_error");
  });

  test("401 without or with a wrong key, before validation; 404 for an unknown model or route", async () => {
    await expectAnthropicError(await post("/v1/messages", {}, { key: null }), 401, "authentication_error");
    await expectAnthropicError(await post("/v1/messages", ask(), { key: "ck_not_a_real_key" }), 401, "authentication_error");
    await expectAnthropicError(await post("/v1/messages/count_tokens", ask(), { key: null }), 401, "authentication_error");
    await expectAnthropicError(await post("/v1/messages", ask({ model: "claude-sonnet-4-5" })), 404, "not_found_error");
    await expectAnthropicError(await post("/v1/messages/batches", ask()), 404, "not_found_error");
    // Other routes keep OpenAI's shape.
    const openai = (await (await app.request("/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as { error: { type: string } };
    expect(openai.error.type).toBe("invalid_auth");
  });

  test("402 billing_error when the balance is too low; 429 rate_limit_error with Retry-After", async () => {
    const poor = billed.account("0");
    expect(await expectAnthropicError(await post("/v1/messages", ask(), { key: poor.key }), 402, "billing_error")).toContain("Insufficient balance");
    const limited = billed.account("1");
    setKeyLimits(billed.db, null, limited.keyId, { rpm: 1 });
    expect((await post("/v1/messages/count_tokens", ask(), { key: limited.key })).status).toBe(200);
    const r = await post("/v1/messages", ask(), { key: limited.key });
    await expectAnthropicError(r, 429, "rate_limit_error");
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});

describe("count_tokens and billing", () => {
  test("count_tokens is the prompt's real token count through the template, tools included, and is not billed", async () => {
    const a = billed.account("1");
    const before = billed.platform.balance(a.id)!.balance;
    const body = { model: TINY_ID, system: "Be terse.", messages: [{ role: "user", content: "How many tokens is this sentence?" }] };
    const r = await post("/v1/messages/count_tokens", body, { key: a.key });
    expect(r.status).toBe(200);
    const { input_tokens } = (await r.json()) as { input_tokens: number };
    const billedMessage = await post("/v1/messages", { ...body, max_tokens: 2, temperature: 0 }, { key: a.key });
    const m = (await billedMessage.json()) as Msg;
    expect(input_tokens).toBe(m.usage.input_tokens + m.usage.cache_read_input_tokens);
    const withTools = (await (await post("/v1/messages/count_tokens", { ...body, tools }, { key: a.key })).json()) as { input_tokens: number };
    expect(withTools.input_tokens).toBeGreaterThan(input_tokens + 10);
    // Only the one message was charged.
    const usage = (await (await app.request("/v1/usage", { headers: { authorization: `Bearer ${a.key}` } })).json()) as { data: unknown[] };
    expect(usage.data.length).toBe(1);
    expect(r.headers.get("x-cocoon-cost-nanoton")).toBeNull();
    expect(billed.platform.balance(a.id)!.balance).toBe(before - BigInt(billedMessage.headers.get("x-cocoon-cost-nanoton")!));
  });

  test("a message costs its tokens times the published rates, with one /v1/usage row; the balance is the ledger's sum", async () => {
    const a = billed.account("1");
    const pricing = (await (await app.request("/v1/pricing")).json()) as { rates: Record<string, { effective_nanoton: number }> };
    const rates = pricing.rates;
    const r = await post("/v1/messages", ask({ max_tokens: 6 }), { key: a.key });
    const m = (await r.json()) as Msg;
    const u = m.usage;
    const expected = u.input_tokens * rates.prompt_token!.effective_nanoton + u.cache_read_input_tokens * rates.cached_prompt_token!.effective_nanoton + u.output_tokens * rates.completion_token!.effective_nanoton;
    expect(Number(r.headers.get("x-cocoon-cost-nanoton"))).toBe(expected);
    const rows = (await (await app.request("/v1/usage", { headers: { authorization: `Bearer ${a.key}` } })).json()) as { data: { prompt_tokens: number; completion_tokens: number; cost: { nanoton: number }; status: string }[] };
    expect(rows.data.length).toBe(1);
    expect(rows.data[0]!.cost.nanoton).toBe(expected);
    expect(rows.data[0]!.prompt_tokens).toBe(u.input_tokens + u.cache_read_input_tokens);
    expect(rows.data[0]!.completion_tokens).toBe(u.output_tokens);
    expect(rows.data[0]!.status).toBe("ok");
    const b = billed.platform.balance(a.id)!;
    expect(b.reserved).toBe(0n);
    expect(b.balance).toBe(1_000_000_000n - BigInt(expected));
    expect(checkInvariants(billed.db)).toEqual([]);
  });

  test("a stream the client drops is cancelled and billed only for the tokens it processed", async () => {
    const a = billed.account("1");
    const ac = new AbortController();
    const r = await post("/v1/messages", ask({ max_tokens: 400, stream: true }), { key: a.key, signal: ac.signal });
    const reader = r.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.cancel().catch(() => {});
    let rows: { status: string; completion_tokens: number; cost: { nanoton: number } }[] = [];
    for (let i = 0; i < 100 && rows.length === 0; i++) {
      await Bun.sleep(50);
      rows = ((await (await app.request("/v1/usage", { headers: { authorization: `Bearer ${a.key}` } })).json()) as { data: typeof rows }).data;
    }
    expect(rows.length).toBe(1);
    expect(rows[0]!.status).toBe("cancelled");
    expect(rows[0]!.completion_tokens).toBeLessThan(400);
    const b = billed.platform.balance(a.id)!;
    expect(b.reserved).toBe(0n);
    expect(b.balance).toBe(1_000_000_000n - BigInt(rows[0]!.cost.nanoton));
    expect(checkInvariants(billed.db)).toEqual([]);
  });
});

describe("a failure after the stream began", () => {
  // Last in the file: it crashes the engine's worker (which restarts).
  test("becomes an Anthropic error event, and the request charges no more than it processed", async () => {
    const a = billed.account("1");
    const r = await post("/v1/messages", ask({ max_tokens: 600, stream: true }), { key: a.key });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("content_block_delta")) text += decoder.decode((await reader.read()).value);
    app.engine.crashWorkerForTest();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const events = parseSse(text);
    const last = events.at(-1)!;
    expect(last.event).toBe("error");
    expect(last.data).toEqual({ type: "error", error: { type: "api_error", message: expect.any(String) } });
    expect(events.some((e) => e.event === "message_stop")).toBe(false);
    await Bun.sleep(100);
    const b = billed.platform.balance(a.id)!;
    expect(b.reserved).toBe(0n);
    expect(checkInvariants(billed.db)).toEqual([]);
    // The restarted worker serves the next request.
    expect((await post("/v1/messages", ask({ max_tokens: 2 }))).status).toBe(200);
  });
});

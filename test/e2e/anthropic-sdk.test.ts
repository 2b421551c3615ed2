// The official `@anthropic-ai/sdk` against the real server with billing: messages.create, messages.stream,
// a forced tool call round trip with tool_result, countTokens, and the SDK's error classes; and the
// Vercel AI SDK's Anthropic provider (generateText, streamText) on the same server.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { createAnthropic } from "@ai-sdk/anthropic";
import { generateText, streamText } from "ai";
import Anthropic, { AuthenticationError, NotFoundError, PaymentRequiredError, RateLimitError } from "@anthropic-ai/sdk";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey, setKeyLimits } from "../../src/platform/keys.ts";
import { credit } from "../../src/platform/ledger.ts";
import { parseTon } from "../../src/platform/pricing.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(60_000);

const MODEL = "tiny-qwen3";
const dir = mkdtempSync(join(tmpdir(), "cocoon-anthropic-"));
let server: TestServer;
const keys = { funded: "", poor: "", limited: "" };

function newKey(db: ReturnType<typeof openStore>, ton: string, rpm?: number): string {
  const a = createAccount(db);
  if (ton !== "0") credit(db, a.id, parseTon(ton), "adjustment", `test:${a.id}`);
  const k = createKey(db, a.id);
  if (rpm) setKeyLimits(db, null, k.id, { rpm });
  return k.key;
}

beforeAll(async () => {
  // Accounts and keys go straight into the database the server then opens.
  const db = openStore(join(dir, "cocoon.sqlite"));
  keys.funded = newKey(db, "10");
  keys.poor = newKey(db, "0");
  keys.limited = newKey(db, "1", 1);
  db.close();
  server = await startTestServer(["--data-dir", dir], { auth: true });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const client = (apiKey = keys.funded) => new Anthropic({ baseURL: server.url, apiKey, maxRetries: 0, timeout: 30_000 });

const tools: Anthropic.Tool[] = [{ name: "get_weather", description: "The weather in a city", input_schema: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false } }];
// This SDK's types have no `temperature`; the API (and this server) still take it, for repeatable output.
const greedy = { temperature: 0 };
const ask = { model: MODEL, max_tokens: 10, ...greedy, system: "Be terse.", messages: [{ role: "user" as const, content: "Name three rivers." }] };

describe("@anthropic-ai/sdk", () => {
  test("messages.create: a message with Anthropic's fields, and our cost in a header", async () => {
    const { data: m, response } = await client().messages.create(ask).withResponse();
    expect(m.id).toStartWith("msg_");
    expect(m.type).toBe("message");
    expect(m.role).toBe("assistant");
    expect(m.model).toBe(MODEL);
    expect(m.content[0]!.type).toBe("text");
    expect(["end_turn", "max_tokens"]).toContain(m.stop_reason!);
    expect(m.usage.output_tokens).toBeGreaterThan(0);
    expect(m.usage.output_tokens).toBeLessThanOrEqual(10);
    expect(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0)).toBeGreaterThan(5);
    expect(Number(response.headers.get("x-cocoon-cost-nanoton"))).toBeGreaterThan(0);
  });

  test("messages.stream: events in Anthropic's order, and the final message equals the streamed text", async () => {
    const whole = await client().messages.create(ask);
    const stream = client().messages.stream(ask);
    const types: string[] = [];
    let text = "";
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "content_block_delta" && e.delta.type === "text_delta") text += e.delta.text;
    }
    const final = await stream.finalMessage();
    expect(types[0]).toBe("message_start");
    expect(types[1]).toBe("content_block_start");
    expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(final.content as unknown[]).toEqual(whole.content);
    expect((final.content[0] as Anthropic.TextBlock).text).toBe(text);
    expect(final.stop_reason).toBe(whole.stop_reason);
    expect(final.usage.output_tokens).toBe(whole.usage.output_tokens);
    expect(final.usage.input_tokens + (final.usage.cache_read_input_tokens ?? 0)).toBe(whole.usage.input_tokens + (whole.usage.cache_read_input_tokens ?? 0));
  });

  test("a forced tool call round trip: tool_use, then tool_result, then an answer", async () => {
    const messages: Anthropic.MessageParam[] = [{ role: "user", content: "What is the weather in Paris?" }];
    const first = await client().messages.create({ model: MODEL, max_tokens: 200, ...greedy, tools, tool_choice: { type: "tool", name: "get_weather" }, messages });
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use")!;
    expect(use.id).toStartWith("toolu_");
    expect(use.name).toBe("get_weather");
    expect(typeof (use.input as { city: unknown }).city).toBe("string");
    // The streamed tool call parses into the same input.
    const streamed = await client().messages.stream({ model: MODEL, max_tokens: 200, ...greedy, tools, tool_choice: { type: "tool", name: "get_weather" }, messages }).finalMessage();
    expect(streamed.content.find((b) => b.type === "tool_use")).toMatchObject({ name: "get_weather", input: use.input });
    const second = await client().messages.create({
      model: MODEL,
      max_tokens: 8,
      ...greedy,
      tools,
      messages: [...messages, { role: "assistant", content: first.content }, { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "Sunny, 21 C" }] }],
    });
    expect(second.type).toBe("message");
    expect(second.usage.input_tokens + (second.usage.cache_read_input_tokens ?? 0)).toBeGreaterThan(first.usage.input_tokens + (first.usage.cache_read_input_tokens ?? 0));
  });

  test("countTokens: the prompt's tokens, as a message then reports them", async () => {
    const { input_tokens } = await client().messages.countTokens({ model: MODEL, system: ask.system, messages: ask.messages });
    const m = await client().messages.create(ask);
    expect(input_tokens).toBe(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0));
  });

  test("error classes: 401 AuthenticationError, 404 NotFoundError, 429 RateLimitError, 402 PaymentRequiredError", async () => {
    // What a request failed with (null if it succeeded).
    const failure = (p: PromiseLike<unknown>) => Promise.resolve(p).then(() => null, (e: unknown) => e);
    const unauthorized = await failure(client("ck_wrong").messages.create(ask));
    expect(unauthorized).toBeInstanceOf(AuthenticationError);
    expect(unauthorized).toMatchObject({ status: 401, error: { type: "error", error: { type: "authentication_error" } } });
    const missing = await failure(client().messages.create({ ...ask, model: "claude-opus-4-1" }));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ error: { error: { type: "not_found_error" } } });
    const poor = await failure(client(keys.poor).messages.create(ask));
    expect(poor).toBeInstanceOf(PaymentRequiredError);
    expect(poor).toMatchObject({ status: 402, error: { error: { type: "billing_error" } }, message: expect.stringContaining("Insufficient balance") });
    // rpm 1 in fixed UTC-minute windows: of three requests a few seconds apart at most one crosses a
    // window boundary, so the second or the third is refused.
    await client(keys.limited).messages.create(ask);
    const limited = (await failure(client(keys.limited).messages.create(ask))) ?? (await failure(client(keys.limited).messages.create(ask)));
    expect(limited).toBeInstanceOf(RateLimitError);
    expect(limited).toMatchObject({ status: 429, error: { error: { type: "rate_limit_error" } } });
  });
});

describe("@ai-sdk/anthropic", () => {
  const provider = () => createAnthropic({ baseURL: `${server.url}/v1`, apiKey: keys.funded });

  test("generateText: text, usage and a finish reason", async () => {
    const r = await generateText({ model: provider()(MODEL), system: "Be terse.", prompt: "Name three rivers.", maxOutputTokens: 8, temperature: 0, maxRetries: 0 });
    expect(r.text.length).toBeGreaterThan(0);
    expect(["stop", "length"]).toContain(r.finishReason);
    expect(r.usage.outputTokens).toBeGreaterThan(0);
    expect(r.usage.outputTokens).toBeLessThanOrEqual(8);
    expect(r.usage.inputTokens).toBeGreaterThan(5);
  });

  test("streamText: the streamed pieces make the same text as generateText", async () => {
    const args = { model: provider()(MODEL), prompt: "Name three rivers.", maxOutputTokens: 8, temperature: 0, maxRetries: 0 };
    const whole = await generateText(args);
    const r = streamText(args);
    let text = "";
    for await (const piece of r.textStream) text += piece;
    expect(text).toBe(whole.text);
    expect(await r.text).toBe(whole.text);
    expect((await r.usage).outputTokens).toBe(whole.usage.outputTokens);
  });
});

// The official `openai` SDK's Responses API against the real server with a funded key: create (text,
// json_schema, a function call round trip, previous_response_id with cached tokens), stream (every
// event type in order), retrieve, delete, input_items, encrypted reasoning and the SDK's errors.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { ROOT, TINY_MODEL } from "../support/model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { thinkingModel } from "../support/thinking-model.ts";
import { rejection } from "../support/rejection.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(90_000);

const MODEL = "tiny-qwen3";
const THINKING = "tiny-thinking";
const dir = mkdtempSync(join(tmpdir(), "cocoon-responses-sdk-"));
let server: TestServer;
let client: OpenAI;
let key: string;

function createKey(credit: string): string {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", credit, "--data-dir", dir], { stdout: "pipe", stderr: "pipe" });
  const found = /ck_[A-Za-z0-9_-]+/.exec(r.stdout.toString())?.[0];
  if (!found) throw new Error(`create-key failed: ${r.stderr.toString()}`);
  return found;
}

beforeAll(async () => {
  key = createKey("5");
  server = await startTestServer(["--data-dir", dir, "--model", `${MODEL}=${TINY_MODEL}`, "--model", `${THINKING}=${thinkingModel()}`], { auth: true });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0, timeout: 60_000 });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false },
  strict: true,
};

describe("openai SDK: responses.create", () => {
  test("a text response has OpenAI's shape, usage with the cost, and output_text", async () => {
    const r = await client.responses.create({ model: MODEL, instructions: "You are terse.", input: "Name three rivers.", max_output_tokens: 8, temperature: 0 });
    expect(r.object).toBe("response");
    expect(r.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(r.model).toBe(MODEL);
    expect(r.instructions).toBe("You are terse.");
    expect(["completed", "incomplete"]).toContain(r.status!);
    const message = r.output.find((o) => o.type === "message");
    if (message?.type !== "message") throw new Error("no message item");
    expect(message.id).toStartWith("msg_");
    expect(message.role).toBe("assistant");
    const part = message.content[0]!;
    if (part.type !== "output_text") throw new Error("not output_text");
    expect(part.annotations).toEqual([]);
    expect(r.output_text).toBe(part.text);
    const u = r.usage!;
    expect(u.input_tokens).toBeGreaterThan(0);
    expect(u.output_tokens).toBeGreaterThan(0);
    expect(u.output_tokens).toBeLessThanOrEqual(8);
    expect(u.total_tokens).toBe(u.input_tokens + u.output_tokens);
    expect(u.output_tokens_details.reasoning_tokens).toBe(0);
    expect((u as unknown as { cost: { nanoton: number } }).cost.nanoton).toBeGreaterThan(0);
    if (r.status === "incomplete") expect(r.incomplete_details?.reason).toBe("max_output_tokens");
  });

  test("text.format json_schema gives JSON that matches the schema", async () => {
    const r = await client.responses.create({
      model: MODEL,
      input: "Describe a cat as JSON.",
      max_output_tokens: 200,
      temperature: 0,
      text: {
        format: {
          type: "json_schema",
          name: "cat",
          strict: true,
          schema: { type: "object", properties: { name: { type: "string", maxLength: 8 }, legs: { type: "integer", minimum: 0, maximum: 4 } }, required: ["name", "legs"], additionalProperties: false },
        },
      },
    });
    expect(r.status).toBe("completed");
    expect(r.text?.format?.type).toBe("json_schema");
    const parsed = JSON.parse(r.output_text) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual(["legs", "name"]);
    expect(typeof parsed.name).toBe("string");
    expect(Number.isInteger(parsed.legs)).toBe(true);
  });

  test("a function call round trip: function_call out, function_call_output back in", async () => {
    const first = await client.responses.create({ model: MODEL, input: "What is the weather in Paris?", tools: [weather], tool_choice: "required", max_output_tokens: 200, temperature: 0 });
    expect(first.status).toBe("completed");
    const call = first.output.find((o) => o.type === "function_call");
    if (call?.type !== "function_call") throw new Error("no function_call item");
    expect(call.id).toStartWith("fc_");
    expect(call.call_id).toStartWith("call_");
    expect(call.name).toBe("get_weather");
    expect(call.status).toBe("completed");
    expect(typeof (JSON.parse(call.arguments) as { city: unknown }).city).toBe("string");
    expect(first.tools).toEqual([{ type: "function", name: "get_weather", description: "Weather for a city", parameters: weather.parameters, strict: true }]);
    // The caller runs the function and sends its result back with the conversation so far.
    const second = await client.responses.create({
      model: MODEL,
      input: [{ role: "user", content: "What is the weather in Paris?" }, call, { type: "function_call_output", call_id: call.call_id, output: '{"temperature": 21}' }],
      tools: [weather],
      max_output_tokens: 6,
      temperature: 0,
    });
    expect(["completed", "incomplete"]).toContain(second.status!);
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
    // The same through previous_response_id: only the output goes in.
    const chained = await client.responses.create({
      model: MODEL,
      previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: '{"temperature": 21}' }],
      tools: [weather],
      max_output_tokens: 6,
      temperature: 0,
    });
    expect(chained.previous_response_id).toBe(first.id);
    expect(chained.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
  });

  test("previous_response_id continues the conversation on its KV cache: cached tokens > 0", async () => {
    const first = await client.responses.create({ model: MODEL, instructions: "Be brief.", input: "Tell me a story about a dragon and a knight.", max_output_tokens: 8, temperature: 0 });
    const second = await client.responses.create({ model: MODEL, instructions: "Be brief.", previous_response_id: first.id, input: "And then?", max_output_tokens: 4, temperature: 0 });
    expect(second.previous_response_id).toBe(first.id);
    // The model saw the first turn: its input, the reply and the new message.
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens + 2);
    expect(second.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(first.usage!.input_tokens - 1);
    const err = (await rejection(client.responses.create({ model: MODEL, previous_response_id: "resp_missing", input: "hi", max_output_tokens: 2 }))) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe("previous_response_not_found");
    expect(err.param).toBe("previous_response_id");
  });
});

describe("openai SDK: responses.stream", () => {
  test("events arrive in OpenAI's order with increasing sequence numbers, and finalResponse is the stored response", async () => {
    const stream = client.responses.stream({ model: MODEL, input: "Count to three.", max_output_tokens: 6, temperature: 0 });
    const types: string[] = [];
    const seqs: number[] = [];
    let deltas = "";
    for await (const e of stream) {
      types.push(e.type);
      seqs.push(e.sequence_number);
      if (e.type === "response.output_text.delta") deltas += e.delta;
    }
    const final = await stream.finalResponse();
    expect(seqs).toEqual(seqs.map((_, i) => i));
    const collapsed = types.filter((t, i) => t !== types[i - 1]);
    const last = final.status === "completed" ? "response.completed" : "response.incomplete";
    expect(collapsed).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      last,
    ]);
    expect(final.output_text).toBe(deltas);
    const stored = await client.responses.retrieve(final.id);
    expect(stored.output.map((o) => o.id)).toEqual(final.output.map((o) => o.id));
    expect(stored.output_text).toBe(final.output_text);
  });

  test("reasoning and function call arguments stream as their own events", async () => {
    // Sampled at temperature 1, random weights now and then close the block (or start a call) within
    // 6 tokens; such a sample is drawn again, so that the one asserted on is all reasoning.
    let types = new Set<string>();
    let final!: OpenAI.Responses.Response;
    for (let attempt = 0; attempt < 8; attempt++) {
      const stream = client.responses.stream({ model: THINKING, input: "Weather in Paris?", reasoning: { effort: "medium" }, tools: [weather], max_output_tokens: 6, temperature: 1, top_p: 1 });
      types = new Set<string>();
      for await (const e of stream) types.add(e.type);
      final = await stream.finalResponse();
      if (final.output.every((o) => o.type === "reasoning")) break;
    }
    expect(final.status).toBe("incomplete");
    for (const t of ["response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"]) expect(types).toContain(t);
    const reasoning = final.output[0]!;
    if (reasoning.type !== "reasoning") throw new Error("no reasoning item");
    expect(reasoning.id).toStartWith("rs_");
    expect(reasoning.summary).toEqual([]);
    expect(reasoning.content![0]!.type).toBe("reasoning_text");
    expect(final.usage!.output_tokens_details.reasoning_tokens).toBe(6);

    const calls = client.responses.stream({ model: MODEL, input: "Weather in Paris?", tools: [weather], tool_choice: { type: "function", name: "get_weather" }, max_output_tokens: 200, temperature: 0 });
    const seen: string[] = [];
    for await (const e of calls) seen.push(e.type);
    const done = await calls.finalResponse();
    expect(seen).toContain("response.function_call_arguments.delta");
    expect(seen.indexOf("response.function_call_arguments.done")).toBeGreaterThan(seen.lastIndexOf("response.function_call_arguments.delta"));
    expect(done.output.at(-1)!.type).toBe("function_call");
  });
});

describe("openai SDK: stored responses", () => {
  test("retrieve, input_items and delete; a deleted response is a 404", async () => {
    const r = await client.responses.create({ model: MODEL, input: [{ role: "user", content: [{ type: "input_text", text: "One" }] }, { role: "assistant", content: "Two" }, { role: "user", content: "Three" }], max_output_tokens: 3, metadata: { topic: "numbers" } });
    const got = await client.responses.retrieve(r.id);
    expect(got.id).toBe(r.id);
    expect(got.metadata).toEqual({ topic: "numbers" });
    const items = await client.responses.inputItems.list(r.id);
    expect(items.data.map((i) => (i.type === "message" ? i.role : i.type))).toEqual(["user", "assistant", "user"]);
    const asc = await client.responses.inputItems.list(r.id, { order: "asc", limit: 2 });
    expect(asc.data.map((i) => (i.type === "message" ? i.role : i.type))).toEqual(["user", "assistant"]);
    expect(asc.has_more).toBe(true);
    const all: string[] = [];
    for await (const item of client.responses.inputItems.list(r.id, { order: "asc", limit: 1 })) all.push(item.id!);
    expect(all).toHaveLength(3);
    await client.responses.delete(r.id);
    expect(await rejection(client.responses.retrieve(r.id))).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await rejection(client.responses.delete(r.id))).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test("store: false keeps nothing; encrypted reasoning goes back in the next input and is read there", async () => {
    const first = await client.responses.create({ model: THINKING, input: "Think.", store: false, include: ["reasoning.encrypted_content"], reasoning: { effort: "high" }, max_output_tokens: 8, temperature: 1, top_p: 1 });
    expect(await rejection(client.responses.retrieve(first.id))).toBeInstanceOf(OpenAI.NotFoundError);
    const reasoning = first.output[0]!;
    if (reasoning.type !== "reasoning") throw new Error("no reasoning item");
    expect(typeof reasoning.encrypted_content).toBe("string");
    const text = reasoning.content![0]!.text;
    if (text) expect(reasoning.encrypted_content).not.toContain(text);
    const sealed = { type: "reasoning" as const, id: reasoning.id, summary: [], encrypted_content: reasoning.encrypted_content };
    const turn = (extra: OpenAI.Responses.ResponseInputItem[]) =>
      client.responses.create({ model: THINKING, store: false, reasoning: { effort: "high" }, input: [{ role: "user", content: "Think." }, ...extra, { role: "assistant", content: "Done." }], max_output_tokens: 2 });
    const without = await turn([]);
    const withIt = await turn([sealed]);
    // The reasoning, read back from the sealed item, is in the prompt (Qwen3 keeps it after the last user message).
    if (text.trim()) expect(withIt.usage!.input_tokens).toBeGreaterThan(without.usage!.input_tokens);
    const forged = await rejection(turn([{ ...sealed, encrypted_content: `${reasoning.encrypted_content!.slice(0, -4)}AAAA` }]));
    expect(forged).toBeInstanceOf(OpenAI.BadRequestError);
    expect((forged as InstanceType<typeof OpenAI.APIError>).param).toBe("input[1].encrypted_content");
  });

  test("hosted tools get a 400 naming the tool; a missing key is a 401", async () => {
    const err = (await rejection(client.responses.create({ model: MODEL, input: "hi", tools: [{ type: "web_search" }] }))) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toContain("web_search");
    expect(err.param).toBe("tools[0].type");
    const anonymous = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "ck_wrong", maxRetries: 0 });
    expect(await rejection(anonymous.responses.create({ model: MODEL, input: "hi" }))).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

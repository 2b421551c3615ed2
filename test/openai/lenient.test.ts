// The fields real clients send: every OpenAI chat field and llama-server's are accepted (with their
// effects where they have one), unknown ones ignored and named in a header, strict mode rejects them,
// and a known field of the wrong type is still a 400. Driven by the official `openai` SDK in-process.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import OpenAI from "openai";
import { reasoningEffort } from "../../src/openai/service.ts";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";

setDefaultTimeout(60_000);

type ChatParams = OpenAI.ChatCompletionCreateParamsNonStreaming;
type Extra = Record<string, unknown>;

let lenient: InProcessApp;
let strict: InProcessApp;
let client: OpenAI;
let strictClient: OpenAI;

const sdk = (h: InProcessApp) =>
  new OpenAI({ baseURL: "http://localhost/v1", apiKey: "unused", maxRetries: 0, fetch: (url, init) => h.app.handle(new Request(String(url), init as RequestInit)) });

beforeAll(async () => {
  lenient = await startInProcessApp({ slots: 2 });
  strict = await startInProcessApp({ slots: 1, strictFields: true });
  client = sdk(lenient);
  strictClient = sdk(strict);
});
afterAll(() => {
  lenient?.close();
  strict?.close();
});

const base = { model: TINY_ID, messages: [{ role: "user" as const, content: "Hello there" }], max_tokens: 4, temperature: 0, seed: 3 };

/** A chat call with fields the SDK's types may not know; the parsed body and the raw response. */
const chat = (extra: Extra, c = client) => c.chat.completions.create({ ...base, ...extra } as ChatParams).withResponse();

async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error("expected the request to fail, but it succeeded");
}

describe("OpenAI fields that change nothing here are accepted", () => {
  const fields: Extra = {
    store: true,
    metadata: { app: "test", run: "1" },
    service_tier: "auto",
    prompt_cache_key: "conversation-1",
    prompt_cache_retention: "24h",
    safety_identifier: "user-hash-1",
    verbosity: "low",
    user: "someone",
    modalities: ["text"],
    prediction: { type: "content", content: "Hello" },
    stream_options: null,
    parallel_tool_calls: true,
  };
  for (const [name, value] of Object.entries(fields)) {
    test(`${name}: 200 and not reported as ignored`, async () => {
      const { data, response } = await chat({ [name]: value });
      expect(response.status).toBe(200);
      expect(data.object).toBe("chat.completion");
      expect(data.choices[0]!.message.role).toBe("assistant");
      expect(response.headers.get("x-cocoon-ignored-fields")).toBeNull();
    });
  }

  test("all of them at once, and llama-server's accepted-and-ignored ones", async () => {
    const { data, response } = await chat({ ...fields, cache_prompt: true, id_slot: -1, samplers: ["top_k", "temperature"], reasoning_format: "deepseek", min_p: 0.1, typical_p: 0.9, repeat_last_n: -1 });
    expect(response.status).toBe(200);
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);
    expect(response.headers.get("x-cocoon-ignored-fields")).toBeNull();
  });
});

describe("fields with an effect", () => {
  const weather = { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false } };

  test("functions with a forced function_call answer with a tool call of that function", async () => {
    const { data } = await chat({ messages: [{ role: "user", content: "Weather in Paris?" }], max_tokens: 120, functions: [weather], function_call: { name: "get_weather" } });
    const c = data.choices[0]!;
    expect(c.finish_reason).toBe("tool_calls");
    const call = c.message.tool_calls![0]!;
    expect(call.type).toBe("function");
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.function.name).toBe("get_weather");
    const args = JSON.parse(call.function.arguments) as { city: unknown };
    expect(typeof args.city).toBe("string");
  });

  test("a legacy function_call / function message history is read as a tool call and its result", async () => {
    const history = [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: null, function_call: { name: "get_weather", arguments: '{"city":"Paris"}' } },
      { role: "function", name: "get_weather", content: "sunny, 21C" },
    ];
    const plain = await client.chat.completions.create({ ...base, messages: [{ role: "user", content: "Weather in Paris?" }] }).withResponse();
    const { data, response } = await chat({ messages: history, functions: [weather], function_call: "none" });
    expect(response.status).toBe(200);
    // The call and its result are in the prompt: more tokens than the question alone.
    expect(data.usage!.prompt_tokens).toBeGreaterThan(plain.data.usage!.prompt_tokens + 10);
  });

  test("functions and tools together, or a function_call naming no function, are a 400", async () => {
    const both = await rejection(chat({ functions: [weather], tools: [{ type: "function", function: weather }] }));
    expect(both.status).toBe(400);
    expect((both.error as { param: string }).param).toBe("functions");
    const unknownName = await rejection(chat({ functions: [weather], function_call: { name: "nope" } }));
    expect(unknownName.status).toBe(400);
    expect((unknownName.error as { param: string }).param).toBe("function_call");
    const twoGrammars = await rejection(chat({ functions: [weather], function_call: { name: "get_weather" }, grammar: 'root ::= "x"' }));
    expect(twoGrammars.status).toBe(400);
    expect((twoGrammars.error as { param: string }).param).toBe("grammar");
  });

  test("json_schema (llama-server) constrains the output to JSON of that schema", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" }, n: { type: "integer", minimum: 0, maximum: 9 } }, required: ["ok", "n"], additionalProperties: false };
    const { data } = await chat({ max_tokens: 60, reasoning_effort: "none", json_schema: schema });
    expect(data.choices[0]!.finish_reason).toBe("stop");
    const parsed = JSON.parse(data.choices[0]!.message.content!) as { ok: unknown; n: unknown };
    expect(Object.keys(parsed).sort()).toEqual(["n", "ok"]);
    expect(typeof parsed.ok).toBe("boolean");
    expect(Number.isInteger(parsed.n)).toBe(true);
  });

  test("grammar (GBNF) is applied; a broken one is a 400 naming grammar", async () => {
    const { data } = await chat({ max_tokens: 10, reasoning_effort: "none", grammar: 'root ::= "yes" | "no"' });
    expect(["yes", "no"]).toContain(data.choices[0]!.message.content!);
    const bad = await rejection(chat({ grammar: "root ::= (" }));
    expect(bad.status).toBe(400);
    expect((bad.error as { param: string }).param).toBe("grammar");
    const both = await rejection(chat({ grammar: 'root ::= "a"', response_format: { type: "json_object" } }));
    expect(both.status).toBe(400);
  });

  test("n_probs gives logprobs with that many alternatives", async () => {
    const { data } = await chat({ n_probs: 3 });
    const content = data.choices[0]!.logprobs!.content!;
    expect(content.length).toBe(data.usage!.completion_tokens);
    for (const lp of content) {
      expect(lp.logprob).toBeLessThanOrEqual(0);
      expect(lp.top_logprobs).toHaveLength(3);
    }
  });

  test("reasoning_effort none turns thinking off (Qwen3's closed think block), high leaves it on", async () => {
    const none = await chat({ reasoning_effort: "none", max_tokens: 8 });
    const high = await chat({ reasoning_effort: "high", max_tokens: 8 });
    expect(none.data.choices[0]!.message).not.toHaveProperty("reasoning_content");
    expect(none.data.usage!.completion_tokens_details?.reasoning_tokens ?? 0).toBe(0);
    // enable_thinking false renders an empty <think></think> into the prompt.
    expect(none.data.usage!.prompt_tokens).toBeGreaterThan(high.data.usage!.prompt_tokens);
    const minimal = await chat({ reasoning_effort: "minimal", max_tokens: 8 });
    expect(minimal.data.usage!.prompt_tokens).toBe(none.data.usage!.prompt_tokens);
  });

  test("llama-server's reasoning budget fields are accepted (-1: no limit) and a bad one is a 400 naming it", async () => {
    for (const extra of [{ reasoning_budget_tokens: -1 }, { reasoning_budget_tokens: 16 }, { thinking_budget_tokens: 0 }]) {
      const r = await chat({ ...extra, max_tokens: 4 });
      expect(r.data.choices[0]!.finish_reason).toBe("length");
    }
    for (const [field, value] of [["reasoning_budget_tokens", -2], ["thinking_budget_tokens", "many"]] as const) {
      const e = await rejection(chat({ [field]: value }));
      expect([e.status, (e.error as { param?: string }).param]).toEqual([400, field]);
    }
  });

  test("reasoning_effort's level is a template variable (gpt-oss reads reasoning_effort)", () => {
    expect(reasoningEffort("none")).toEqual({ enableThinking: false, templateVars: { reasoning_effort: "low" } });
    expect(reasoningEffort("medium")).toEqual({ enableThinking: true, templateVars: { reasoning_effort: "medium" } });
    expect(reasoningEffort("xhigh")).toEqual({ enableThinking: true, templateVars: { reasoning_effort: "high" } });
    expect(reasoningEffort(undefined)).toBeNull();
  });
});

describe("what this server cannot do is a 400 naming the field", () => {
  const cases: [string, Extra][] = [
    ["modalities", { modalities: ["text", "audio"] }],
    ["audio", { audio: { format: "wav", voice: "alloy" } }],
    ["web_search_options", { web_search_options: {} }],
    ["moderation", { moderation: { model: "omni-moderation-latest" } }],
  ];
  for (const [param, extra] of cases) {
    test(param, async () => {
      const err = await rejection(chat(extra));
      expect(err.status).toBe(400);
      expect((err.error as { param: string; type: string }).param).toBe(param);
      expect(err.message).toContain("not supported");
    });
  }
});

describe("unknown fields", () => {
  test("are ignored and named, sorted, in X-Cocoon-Ignored-Fields", async () => {
    const { data, response } = await chat({ zeta_option: 1, dry_multiplier: 0.8, alpha: { nested: true } });
    expect(response.status).toBe(200);
    expect(data.choices).toHaveLength(1);
    expect(response.headers.get("x-cocoon-ignored-fields")).toBe("alpha,dry_multiplier,zeta_option");
  });

  test("on completions and embeddings too", async () => {
    const c = await client.completions.create({ model: TINY_ID, prompt: "Once", max_tokens: 3, n_probs: 2, mirostat: 2 } as OpenAI.CompletionCreateParamsNonStreaming).withResponse();
    expect(c.response.headers.get("x-cocoon-ignored-fields")).toBe("mirostat");
    expect(c.data.choices[0]!.logprobs!.tokens!.length).toBeGreaterThan(0);
    expect(Object.keys(c.data.choices[0]!.logprobs!.top_logprobs![0]!)).toHaveLength(2);
    const e = await client.embeddings.create({ model: TINY_ID, input: "hi", user: "u", truncate: true } as OpenAI.EmbeddingCreateParams).withResponse();
    expect(e.response.headers.get("x-cocoon-ignored-fields")).toBe("truncate");
    expect(e.data.data[0]!.embedding.length).toBeGreaterThan(0);
  });

  test("streams carry the header as well", async () => {
    const { data: stream, response } = await client.chat.completions.create({ ...base, stream: true, some_flag: true } as OpenAI.ChatCompletionCreateParamsStreaming).withResponse();
    expect(response.headers.get("x-cocoon-ignored-fields")).toBe("some_flag");
    let chunks = 0;
    for await (const _ of stream) chunks++;
    expect(chunks).toBeGreaterThan(1);
  });

  test("strict mode (--strict-fields) rejects them as OpenAI does, and accepts the known ones", async () => {
    const err = await rejection(chat({ zeta_option: 1 }, strictClient));
    expect(err.status).toBe(400);
    expect(err.message).toContain("Unrecognized request argument supplied: zeta_option");
    const { response } = await chat({ store: false, n_probs: 1, reasoning_effort: "low" }, strictClient);
    expect(response.status).toBe(200);
  });
});

describe("a known field with a wrong type or range is still a 400 in OpenAI's shape", () => {
  const cases: [string, Extra][] = [
    ["n_probs", { n_probs: "three" }],
    ["n_probs", { n_probs: 99 }],
    ["reasoning_effort", { reasoning_effort: "extreme" }],
    ["store", { store: "yes" }],
    ["metadata", { metadata: { k: 1 } }],
    ["grammar", { grammar: 5 }],
    ["functions", { functions: "get_weather" }],
  ];
  for (const [param, extra] of cases) {
    test(`${param}: ${JSON.stringify(extra[param])}`, async () => {
      const err = await rejection(chat(extra));
      expect(err.status).toBe(400);
      const body = err.error as { type: string; param: string | null };
      expect(body.type).toBe("invalid_request_error");
      expect(body.param).toStartWith(param);
    });
  }
});

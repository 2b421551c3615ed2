// The official `openai` SDK against the real server: chat, streaming, n, json_schema, tools, completions, embeddings, models, errors.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import OpenAI from "openai";
import { startTestServer, type TestServer } from "../support/server.ts";
import { rejection } from "../support/rejection.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const MODEL = "tiny-qwen3";
const BODY_LIMIT = 65536;

let server: TestServer;
let client: OpenAI;

beforeAll(async () => {
  server = await startTestServer(["--max-body-bytes", String(BODY_LIMIT)]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
});
afterAll(async () => {
  await server?.stop();
});

const greedyChat = {
  model: MODEL,
  messages: [
    { role: "system" as const, content: "You are terse." },
    { role: "user" as const, content: "Name three rivers." },
  ],
  max_tokens: 12,
  temperature: 0,
  seed: 7,
};

describe("openai SDK: chat completions", () => {
  test("a plain chat completion has OpenAI's shape and consistent usage", async () => {
    const r = await client.chat.completions.create(greedyChat);
    expect(r.object).toBe("chat.completion");
    expect(r.id).toStartWith("chatcmpl-");
    expect(r.model).toBe(MODEL);
    expect(typeof r.created).toBe("number");
    expect(r.choices).toHaveLength(1);
    const c = r.choices[0]!;
    expect(c.index).toBe(0);
    expect(c.message.role).toBe("assistant");
    expect(typeof c.message.content).toBe("string");
    expect(c.message.content!.length).toBeGreaterThan(0);
    expect(["length", "stop"]).toContain(c.finish_reason);
    const u = r.usage!;
    expect(u.prompt_tokens).toBeGreaterThan(0);
    expect(u.completion_tokens).toBeGreaterThan(0);
    expect(u.completion_tokens).toBeLessThanOrEqual(12);
    expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
    expect(typeof u.prompt_tokens_details?.cached_tokens).toBe("number");
    expect(u.completion_tokens_details?.reasoning_tokens).toBe(0);
  });

  test("a streamed chat with include_usage ends with a usage chunk (choices: []) and its deltas equal the greedy text", async () => {
    const whole = await client.chat.completions.create(greedyChat);
    const stream = await client.chat.completions.create({ ...greedyChat, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(2);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toBeTruthy();
    expect(last.usage!.completion_tokens).toBe(whole.usage!.completion_tokens);
    expect(last.usage!.total_tokens).toBe(last.usage!.prompt_tokens + last.usage!.completion_tokens);
    const body = chunks.slice(0, -1);
    for (const c of body) {
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.id).toBe(last.id);
      // With include_usage every other chunk carries usage: null.
      expect(c.usage).toBeNull();
      expect(c.choices).toHaveLength(1);
    }
    expect(body[0]!.choices[0]!.delta.role).toBe("assistant");
    const text = body.map((c) => c.choices[0]!.delta.content ?? "").join("");
    expect(text).toBe(whole.choices[0]!.message.content!);
    const finishes = body.map((c) => c.choices[0]!.finish_reason).filter((f) => f !== null);
    expect(finishes).toEqual([whole.choices[0]!.finish_reason]);
    expect(body.at(-1)!.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
  });

  test("n=2 returns two choices with indices 0 and 1", async () => {
    const r = await client.chat.completions.create({ ...greedyChat, n: 2, temperature: 0.9, seed: 3, max_tokens: 6 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1]);
    for (const c of r.choices) {
      expect(c.message.role).toBe("assistant");
      expect(typeof c.message.content).toBe("string");
      expect(c.message.content!.length).toBeGreaterThan(0);
    }
    expect(r.usage!.completion_tokens).toBeGreaterThan(r.choices.length - 1);
  });

  test("response_format json_schema produces JSON that matches the schema", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Describe a cat as JSON." }],
      max_tokens: 200,
      temperature: 0,
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "cat",
          strict: true,
          schema: {
            type: "object",
            properties: { name: { type: "string", maxLength: 8 }, hungry: { type: "boolean" }, legs: { type: "integer", minimum: 0, maximum: 4 } },
            required: ["name", "hungry", "legs"],
            additionalProperties: false,
          },
        },
      },
    });
    expect(r.choices[0]!.finish_reason).toBe("stop");
    const parsed = JSON.parse(r.choices[0]!.message.content!) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual(["hungry", "legs", "name"]);
    expect(typeof parsed.name).toBe("string");
    expect((parsed.name as string).length).toBeLessThanOrEqual(8);
    expect(typeof parsed.hungry).toBe("boolean");
    expect(Number.isInteger(parsed.legs)).toBe(true);
    expect(parsed.legs as number).toBeGreaterThanOrEqual(0);
    expect(parsed.legs as number).toBeLessThanOrEqual(4);
  });

  test("tools with tool_choice required give finish_reason tool_calls and arguments that parse", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      max_tokens: 200,
      temperature: 0,
      tool_choice: "required",
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Weather for a city",
            parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false },
          },
        },
      ],
    });
    const c = r.choices[0]!;
    expect(c.finish_reason).toBe("tool_calls");
    expect(c.message.tool_calls?.length).toBeGreaterThanOrEqual(1);
    const call = c.message.tool_calls![0]!;
    expect(call.type).toBe("function");
    expect(typeof call.id).toBe("string");
    expect(call.id.length).toBeGreaterThan(0);
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.function.name).toBe("get_weather");
    const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
    expect(Object.keys(args)).toEqual(["city"]);
    expect(typeof args.city).toBe("string");
    expect((args.city as string).length).toBeLessThanOrEqual(12);
  });
});

describe("openai SDK: completions", () => {
  test("echo prepends the prompt and logprobs come in the legacy format with arrays of equal length", async () => {
    const prompt = "The quick brown fox";
    const r = await client.completions.create({ model: MODEL, prompt, max_tokens: 5, temperature: 0, echo: true, logprobs: 2 });
    expect(r.object).toBe("text_completion");
    expect(r.id).toStartWith("cmpl-");
    const c = r.choices[0]!;
    expect(c.text.startsWith(prompt)).toBe(true);
    expect(c.text.length).toBeGreaterThan(prompt.length);
    const lp = c.logprobs!;
    const n = lp.tokens!.length;
    expect(n).toBeGreaterThan(0);
    expect(lp.token_logprobs!).toHaveLength(n);
    expect(lp.top_logprobs!).toHaveLength(n);
    expect(lp.text_offset!).toHaveLength(n);
    for (const x of lp.token_logprobs!) if (x !== null) expect(x).toBeLessThanOrEqual(0);
    for (const top of lp.top_logprobs!) if (top) expect(Object.keys(top).length).toBeLessThanOrEqual(2);
    // Offsets are positions in the returned text and never go backwards.
    for (let i = 1; i < n; i++) expect(lp.text_offset![i]!).toBeGreaterThanOrEqual(lp.text_offset![i - 1]!);
    expect(lp.text_offset!.at(-1)!).toBeLessThan(c.text.length);
    expect(r.usage!.completion_tokens).toBe(5);
  });

  test("greedy completions are deterministic across calls", async () => {
    const a = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 6, temperature: 0 });
    const b = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 6, temperature: 0 });
    expect(a.choices[0]!.text.length).toBeGreaterThan(0);
    expect(b.choices[0]!.text).toBe(a.choices[0]!.text);
  });
});

describe("openai SDK: embeddings", () => {
  test("float and base64 encodings decode to the same 64-dimensional vectors", async () => {
    const input = ["hello world", "a second, longer input sentence"];
    const floats = await client.embeddings.create({ model: MODEL, input, encoding_format: "float" });
    expect(floats.object).toBe("list");
    expect(floats.model).toBe(MODEL);
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    for (const d of floats.data) {
      expect(d.object).toBe("embedding");
      expect(d.embedding).toHaveLength(64);
      expect(d.embedding.every((x) => typeof x === "number" && Number.isFinite(x))).toBe(true);
    }
    expect(floats.data[0]!.embedding).not.toEqual(floats.data[1]!.embedding);
    expect(floats.usage.prompt_tokens).toBeGreaterThan(0);

    const b64 = await client.embeddings.create({ model: MODEL, input, encoding_format: "base64" });
    for (const [i, d] of b64.data.entries()) {
      const raw = d.embedding as unknown;
      expect(typeof raw).toBe("string");
      const bytes = Buffer.from(raw as string, "base64");
      expect(bytes.byteLength).toBe(64 * 4);
      const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 64));
      expect(decoded).toEqual(floats.data[i]!.embedding);
    }

    // The SDK's default asks for base64 on the wire and decodes it itself.
    const byDefault = await client.embeddings.create({ model: MODEL, input });
    expect(byDefault.data.map((d) => Array.from(d.embedding))).toEqual(floats.data.map((d) => d.embedding));
  });
});

describe("openai SDK: models", () => {
  test("list and retrieve carry OpenAI's fields plus endpoint, type, context_window and workers", async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    expect(ids).toEqual([MODEL]);
    const m = await client.models.retrieve(MODEL);
    expect(m.id).toBe(MODEL);
    expect(m.object).toBe("model");
    expect(typeof m.created).toBe("number");
    expect(typeof m.owned_by).toBe("string");
    const extra = m as unknown as Record<string, unknown>;
    expect(extra.endpoint).toBe("/v1/chat/completions");
    expect(extra.type).toBe("chat");
    expect(extra.context_window).toBe(1024);
    expect(extra.workers).toEqual([{ running_requests: 0, max_running_requests: 4 }]);
    expect(list.data[0]).toMatchObject({ id: MODEL, endpoint: "/v1/chat/completions", type: "chat", context_window: 1024 });
  });
});

describe("openai SDK: error classes", () => {
  test("a wrongly typed field is a BadRequestError naming the param", async () => {
    const err = await rejection(client.post("/chat/completions", { body: { model: MODEL, messages: [{ role: "user", content: "hi" }], temperature: "hot" } }));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.type).toBe("invalid_request_error");
    expect(e.param).toBe("temperature");
    expect(typeof e.message).toBe("string");
  });

  test("an unknown role is a BadRequestError naming messages[0].role", async () => {
    const bad = { model: MODEL, messages: [{ role: "wizard", content: "hi" }] } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
    const err = await rejection(client.chat.completions.create(bad));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages[0].role");
  });

  test("an unknown model is a NotFoundError with code model_not_found", async () => {
    const err = await rejection(client.chat.completions.create({ ...greedyChat, model: "no-such-model" }));
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    const e = err as InstanceType<typeof OpenAI.NotFoundError>;
    expect(e.status).toBe(404);
    expect(e.code).toBe("model_not_found");
    expect(e.param).toBe("model");
    const retrieve = await rejection(client.models.retrieve("no-such-model"));
    expect(retrieve).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test("a body over --max-body-bytes is an APIError with status 413", async () => {
    const prompt = "word ".repeat(Math.ceil((BODY_LIMIT + 4096) / 5));
    const err = await rejection(client.completions.create({ model: MODEL, prompt, max_tokens: 1 }));
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const e = err as InstanceType<typeof OpenAI.APIError>;
    expect(e.status).toBe(413);
    expect(e.code).toBe("payload_too_large");
    expect(e.type).toBe("invalid_request_error");
    // The server is still fine afterwards.
    const ok = await client.completions.create({ model: MODEL, prompt: "still alive", max_tokens: 2 });
    expect(ok.choices[0]!.text.length).toBeGreaterThan(0);
  });

  test("a chunked body (no Content-Length) over the limit is a 413 OpenAI error too", async () => {
    const json = JSON.stringify({ model: MODEL, prompt: "word ".repeat(Math.ceil((BODY_LIMIT + 4096) / 5)), max_tokens: 1 });
    const bytes = new TextEncoder().encode(json);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.subarray(i, i + 8192));
        controller.close();
      },
    });
    const res = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    expect(res.status).toBe(413);
    const err = (await res.json()) as { error: { code: string; type: string } };
    expect(err.error.code).toBe("payload_too_large");
  });
});

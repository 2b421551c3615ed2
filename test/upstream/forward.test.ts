// A request on an upstream as an engine Generation, against a stand-in OpenAI-compatible server that
// streams like llama-server: the body sent (stream, usage forced on, llama.cpp fields), tool calls
// reassembled, the upstream's usage used, our own count where it sends none (the local model's
// tokenizer when the gateway has the model, else the estimate), cancel and a cut stream.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { Engine } from "../../src/inference/engine.ts";
import type { EngineEvent } from "../../src/inference/types.ts";
import { Cluster, estimateTokens } from "../../src/upstream/cluster.ts";
import { UpstreamPool } from "../../src/upstream/pool.ts";
import { parseUpstreamSpec } from "../../src/upstream/spec.ts";
import { TINY_ID } from "../support/app.ts";
import { TINY_MODEL } from "../support/model.ts";

type Mode = "usage" | "no-usage" | "cut" | "slow";
let mode: Mode = "usage";
let lastBody: Record<string, unknown> = {};
let aborted = 0;
let server: Server<undefined>;
let engine: Engine;
let cluster: Cluster;

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => `data: ${JSON.stringify({ object: "chat.completion.chunk", choices, ...extra })}\n\n`;

function stream(req: Request): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(c) {
      req.signal.addEventListener("abort", () => aborted++);
      c.enqueue(enc.encode(chunk([{ index: 0, delta: { role: "assistant", content: "Hello" } }])));
      c.enqueue(enc.encode(chunk([{ index: 0, delta: { content: " world" } }])));
      if (mode === "cut") {
        // The body ends without a finish_reason or [DONE]: the worker process went away.
        await Bun.sleep(50);
        c.close();
        return;
      }
      if (mode === "slow") {
        for (let i = 0; i < 200 && !req.signal.aborted; i++) {
          c.enqueue(enc.encode(chunk([{ index: 0, delta: { content: " more" } }])));
          await Bun.sleep(20);
        }
      }
      c.enqueue(enc.encode(chunk([{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_1", function: { name: "get_weather", arguments: '{"city":' } }] } }])));
      c.enqueue(enc.encode(chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, finish_reason: "tool_calls" }])));
      if (mode === "usage") c.enqueue(enc.encode(chunk([], { usage: { prompt_tokens: 11, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 3 } } })));
      c.enqueue(enc.encode("data: [DONE]\n\n"));
      c.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

beforeAll(async () => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/v1/models") return Response.json({ object: "list", data: [{ id: TINY_ID }, { id: "foreign" }] });
      lastBody = (await req.json()) as Record<string, unknown>;
      return stream(req);
    },
  });
  engine = await Engine.start({ models: [{ id: TINY_ID, path: TINY_MODEL }], slots: 1, ctxSize: 512 });
  const pool = new UpstreamPool([parseUpstreamSpec(`fake=http://127.0.0.1:${server.port}#ctx-size=2048`)], { pollMs: 60_000 });
  await pool.start();
  cluster = new Cluster({ pool, local: () => engine, firstByteTimeoutMs: 5000 });
});

afterAll(async () => {
  await cluster.pool.stop();
  engine.close();
  server.stop(true);
});

async function run(model: string, signal?: AbortSignal, stopAfter?: number) {
  const gen = cluster.submit({ model, messages: [{ role: "user", content: "What is the weather in Paris?" }], maxTokens: 50, sampling: { topK: 20, temperature: 0.5 } }, signal);
  const events: EngineEvent[] = [];
  for await (const e of gen) {
    events.push(e);
    if (stopAfter !== undefined && events.length >= stopAfter) break;
  }
  return { events, done: await gen.final };
}

describe("forwarding to an upstream", () => {
  test("the remote model is listed with its context, and the body is a streamed chat request with usage forced on", async () => {
    expect(cluster.model("foreign")).toMatchObject({ id: "foreign", backend: "upstream", contextWindow: 2048 });
    mode = "usage";
    const { events, done } = await run("foreign");
    expect(lastBody).toMatchObject({ model: "foreign", stream: true, stream_options: { include_usage: true }, max_tokens: 50, top_k: 20, temperature: 0.5 });
    const text = events.filter((e) => e.type === "delta").map((e) => (e.type === "delta" ? e.content : "")).join("");
    expect(text).toBe("Hello world");
    const finish = events.find((e) => e.type === "finish");
    expect(finish).toMatchObject({ reason: "tool_calls", toolCalls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] });
    expect(done!.usage).toEqual({ promptTokens: 11, cachedTokens: 3, completionTokens: 7, reasoningTokens: 0 });
    expect(events.at(-1)).toEqual(done!);
  });

  test("no usage from the worker: the local model's tokenizer counts when the gateway has the model", async () => {
    mode = "no-usage";
    const { done } = await run(TINY_ID);
    const rendered = await engine.render(TINY_ID, { messages: [{ role: "user", content: "What is the weather in Paris?" }], options: {} });
    const prompt = (await engine.tokenize(TINY_ID, rendered.prompt, { addSpecial: true, parseSpecial: true })).length;
    const produced = "Hello world" + 'get_weather{"city":"Paris"}';
    // At least one token per streamed chunk (4 here), else the tokenizer's count.
    const completion = Math.max(4, (await engine.tokenize(TINY_ID, produced, { parseSpecial: false })).length);
    expect(done!.usage).toEqual({ promptTokens: prompt, cachedTokens: 0, completionTokens: completion, reasoningTokens: 0 });
  });

  test("no usage and no local copy of the model: the documented estimate (4 bytes a token, at least a token a chunk)", async () => {
    mode = "no-usage";
    const { done } = await run("foreign");
    const prompt = estimateTokens(JSON.stringify([{ role: "user", content: "What is the weather in Paris?" }]));
    expect(done!.usage).toEqual({ promptTokens: prompt, cachedTokens: 0, completionTokens: estimateTokens('Hello worldget_weather{"city":"Paris"}', 4), reasoningTokens: 0 });
  });

  test("a consumer that stops reading cancels the upstream request and still gets a done event for billing", async () => {
    mode = "slow";
    const before = aborted;
    const { done } = await run("foreign", undefined, 3);
    expect(done!.reasons).toEqual(["cancelled"]);
    expect(done!.usage.completionTokens).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < 50 && aborted === before; i++) await Bun.sleep(20);
    expect(aborted).toBe(before + 1);
  });

  test("a client abort signal does the same", async () => {
    mode = "slow";
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    const { events, done } = await run("foreign", ac.signal);
    expect(events.find((e) => e.type === "finish")).toMatchObject({ reason: "cancelled" });
    expect(done!.reasons).toEqual(["cancelled"]);
  });

  test("a stream cut after output is a lost request (worker_crashed), billed nothing", async () => {
    mode = "cut";
    const gen = cluster.submit({ model: "foreign", messages: [{ role: "user", content: "hi" }] });
    let error: unknown = null;
    try {
      for await (const _ of gen) {
        // read until it fails
      }
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string }).code).toBe("upstream_failed");
    expect(await gen.final).toBeNull();
    // The worker that cut the stream is out of routing until it is probed again.
    expect(cluster.pool.upstreams[0]!.healthy).toBe(false);
  });
});

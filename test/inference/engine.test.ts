// The engine end to end on the tiny model: a real worker, continuous batching, prefix reuse,
// cancellation, overload, stop strings, n > 1, structured output, reasoning and crash recovery.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Engine } from "../../src/inference/engine.ts";
import { EngineError, type EngineEvent, type FinishReason, type GenerateRequest, type Usage } from "../../src/inference/types.ts";
import { TINY_MODEL } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

interface Result {
  texts: string[];
  reasoning: string[];
  reasons: FinishReason[];
  toolCalls: { name: string; arguments: string }[][];
  usage: Usage;
  events: EngineEvent[];
}

async function collect(stream: AsyncIterable<EngineEvent>): Promise<Result> {
  const r: Result = { texts: [], reasoning: [], reasons: [], toolCalls: [], usage: undefined as never, events: [] };
  for await (const e of stream) {
    r.events.push(e);
    if (e.type === "delta") {
      r.texts[e.index] = (r.texts[e.index] ?? "") + e.content;
      r.reasoning[e.index] = (r.reasoning[e.index] ?? "") + e.reasoning;
    } else if (e.type === "finish") {
      r.reasons[e.index] = e.reason;
      r.toolCalls[e.index] = e.toolCalls.map((c) => c.function);
    } else {
      r.usage = e.usage;
    }
  }
  return r;
}

/** Resolves once `cond` holds; fails after `ms`. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await Bun.sleep(5);
  }
}

const greedy = (prompt: string, maxTokens: number, extra: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt,
  maxTokens,
  sampling: { temperature: 0 },
  ...extra,
});

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 4, ctxSize: 1024, maxQueue: 4 });
});
afterAll(() => engine.close());

describe("engine", () => {
  test("greedy output is identical alone and beside three other running requests", async () => {
    const alone = await collect(engine.submit(greedy("The history of Rome", 40)));
    const [together] = await Promise.all([
      collect(engine.submit(greedy("The history of Rome", 40))),
      collect(engine.submit(greedy("A recipe for bread", 60))),
      collect(engine.submit(greedy("import numpy as np", 50))),
      collect(engine.submit(greedy("Dear diary, today", 45))),
    ]);
    expect(alone.texts[0]!.length).toBeGreaterThan(0);
    expect(together!.texts[0]).toBe(alone.texts[0]!);
    expect(together!.usage.completionTokens).toBe(40);
    expect(together!.reasons[0]).toBe("length");
  });

  test("prefix reuse reports cached tokens and gives the same greedy output as without reuse", async () => {
    const prompt = "You are a helpful assistant. Answer briefly and precisely. The question is:";
    const first = await collect(engine.submit(greedy(prompt, 24)));
    const second = await collect(engine.submit(greedy(prompt, 24)));
    expect(second.usage.cachedTokens).toBeGreaterThan(0);
    expect(second.usage.cachedTokens).toBe(second.usage.promptTokens - 1);
    expect(second.texts[0]).toBe(first.texts[0]!);
    // A different continuation of the same prefix reuses the shared part only.
    const third = await collect(engine.submit(greedy(`${prompt} why is the sky blue?`, 8)));
    expect(third.usage.cachedTokens).toBeGreaterThanOrEqual(first.usage.promptTokens - 1);
    expect(third.usage.cachedTokens).toBeLessThan(third.usage.promptTokens);
  });

  test("a stop string spanning token boundaries is cut exactly and never leaks", async () => {
    const full = (await collect(engine.submit(greedy("Once upon a time there was", 30)))).texts[0]!;
    // A stop that starts inside one token and ends inside a later one.
    const at = Math.floor(full.length / 2);
    const stop = full.slice(at, at + 5);
    expect(stop.length).toBe(5);
    const cut = await collect(engine.submit(greedy("Once upon a time there was", 30, { stop: [stop] })));
    expect(cut.texts[0] ?? "").toBe(full.slice(0, full.indexOf(stop)));
    expect(cut.reasons[0]).toBe("stop");
    const finish = cut.events.find((e) => e.type === "finish");
    expect(finish && finish.type === "finish" && finish.stop).toBe(stop);
  });

  test("n=3 with a seed returns three choices, the same for the same seed", async () => {
    const req = { prompt: "Pick a number:", maxTokens: 12, n: 3, sampling: { temperature: 1.2, seed: 99, topK: 0, topP: 1, minP: 0 } };
    const a = await collect(engine.submit(req));
    const b = await collect(engine.submit(req));
    expect(a.texts.length).toBe(3);
    expect(a.reasons).toEqual(["length", "length", "length"]);
    expect(b.texts).toEqual(a.texts);
    expect(new Set(a.texts).size).toBeGreaterThan(1);
    expect(a.usage.completionTokens).toBe(36);
  });

  test("aborting a streaming request frees its slot: a queued request starts within one step", async () => {
    const long = greedy("Write forever:", 900, { ignoreEos: true });
    const controllers = [0, 1, 2, 3].map(() => new AbortController());
    const streams = controllers.map((c) => engine.submit(long, c.signal));
    try {
      // Wait until all four slots are generating.
      await Promise.all(streams.map((s) => s.next()));
      let survivorTokens = 0;
      let queuedStarted = false;
      const survivor = (async () => {
        for await (const e of streams[1]!) if (e.type === "delta" && !queuedStarted) survivorTokens++;
      })();
      const queued = engine.submit(greedy("Next in line", 4));
      // The worker reports its queue with its step results: wait for that report, however busy the machine.
      await until(() => engine.stats()[0]!.queued === 1);
      survivorTokens = 0;
      controllers[0]!.abort();
      const first = await queued.next();
      queuedStarted = true;
      expect(first.done).toBe(false);
      // Cancel message, one step to free the slot, one step to start: a few of the survivor's tokens.
      expect(survivorTokens).toBeLessThanOrEqual(4);
      const rest = await collect(queued);
      expect(rest.reasons[0]).toBe("length");
      const aborted = await collect(streams[0]!);
      expect(aborted.reasons[0]).toBe("cancelled");
      for (const c of controllers) c.abort();
      await survivor;
      await Promise.all(streams.slice(2).map((s) => collect(s)));
      expect(engine.stats()[0]!.slotsBusy).toBe(0);
    } finally {
      // A failed expectation must not leave four 900-token generations running into the next tests.
      for (const c of controllers) c.abort();
    }
  });

  test("a full queue rejects at once with overloaded, and nothing hangs", async () => {
    const small = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 1, ctxSize: 512, maxQueue: 1 });
    try {
      const ac = new AbortController();
      const running = small.submit(greedy("Busy:", 400, { ignoreEos: true }), ac.signal);
      await running.next();
      const waiting = small.submit(greedy("Waiting:", 2));
      await Bun.sleep(20);
      const t0 = performance.now();
      let err: unknown;
      try {
        small.submit(greedy("One too many:", 2));
      } catch (e) {
        err = e;
      }
      expect(performance.now() - t0).toBeLessThan(5);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe("overloaded");
      ac.abort();
      expect((await collect(running)).reasons[0]).toBe("cancelled");
      expect((await collect(waiting)).reasons[0]).toBe("length");
    } finally {
      small.close();
    }
  });

  test("a request cancelled in the queue or mid-prompt reports only the prompt tokens it processed", async () => {
    const small = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 1, ctxSize: 1024, batchSize: 64, maxQueue: 4 });
    try {
      const ac = new AbortController();
      const running = small.submit(greedy("Busy:", 300, { ignoreEos: true }), ac.signal);
      await running.next();
      const queuedAc = new AbortController();
      const queued = small.submit(greedy("Never started", 4), queuedAc.signal);
      queuedAc.abort();
      expect((await queued.final)!.usage.promptTokens).toBe(0);
      ac.abort();
      await collect(running);
      // A long prompt processed in chunks of 64, cancelled after its first chunk.
      const longAc = new AbortController();
      const long = small.submit({ prompt: Array.from({ length: 900 }, (_, i) => 1000 + (i % 500)), maxTokens: 2 }, longAc.signal);
      setTimeout(() => longAc.abort(), 5);
      const done = await long.final;
      expect(done!.usage.promptTokens).toBeLessThan(900);
      expect(done!.usage.completionTokens).toBe(0);
      expect(done!.reasons).toEqual(["cancelled"]);
    } finally {
      small.close();
    }
  });

  test("the main event loop stays responsive while every slot generates", async () => {
    const lateness: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const t = performance.now();
      lateness.push(t - last - 5);
      last = t;
    }, 5);
    await Promise.all([0, 1, 2, 3].map((i) => collect(engine.submit(greedy(`Stream ${i}:`, 150, { ignoreEos: true })))));
    clearInterval(timer);
    expect(lateness.length).toBeGreaterThan(10);
    // Decoding on this thread would hold every tick for a whole step (tens to hundreds of ms here);
    // a rare late tick is the collector or another thread's start, not decoding.
    const sorted = [...lateness].sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length * 0.95)]!).toBeLessThan(20);
    expect(sorted.at(-1)!).toBeLessThan(250);
  });

  test("a request longer than the context window fails before any work with a clear error", async () => {
    const long = Array.from({ length: 1100 }, () => 9707);
    const stream = engine.submit({ prompt: long, maxTokens: 10 });
    const err = await stream.next().catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe("context_overflow");
    expect(err.message).toContain("1024");
    const unknown = await collect(engine.submit({ prompt: [1, 2, 999999], maxTokens: 1 })).catch((e) => e);
    expect(unknown.code).toBe("invalid_request");
    expect(() => engine.submit({ model: "nope", prompt: "x" })).toThrow(/does not exist/);
  });

  test("json_schema output parses and matches the schema", async () => {
    const schema = {
      type: "object",
      properties: { city: { type: "string", maxLength: 12 }, population: { type: "integer", minimum: 0, maximum: 99999 } },
      required: ["city", "population"],
      additionalProperties: false,
    };
    for (const seed of [1, 2]) {
      const r = await collect(
        engine.submit({
          messages: [{ role: "user", content: "A city as JSON" }],
          maxTokens: 200,
          responseFormat: { type: "json_schema", schema, strict: true },
          sampling: { temperature: 1, seed },
        }),
      );
      expect(r.reasons[0]).toBe("stop");
      const value = JSON.parse(r.texts[0]!);
      expect(Object.keys(value).sort()).toEqual(["city", "population"]);
      expect(typeof value.city).toBe("string");
      expect(Number.isInteger(value.population)).toBe(true);
    }
  });

  test("tool_choice required: llama.cpp's tool grammar makes the call, parsed into tool_calls with ids", async () => {
    const tools = [
      {
        type: "function" as const,
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string", maxLength: 10 } }, required: ["city"], additionalProperties: false },
        },
      },
    ];
    const r = await collect(
      engine.submit({
        messages: [{ role: "user", content: "Weather in Paris?" }],
        tools,
        toolChoice: "required",
        parallelToolCalls: false,
        maxTokens: 120,
        sampling: { temperature: 0.7, seed: 3, logitBias: { 151657: 30, 198: 30 } },
      }),
    );
    expect(r.toolCalls[0]!.length).toBe(1);
    expect(r.toolCalls[0]![0]!.name).toBe("get_weather");
    expect(r.texts[0] ?? "").not.toContain("<tool_call>\n");
    // Every token is grammar-checked over the whole vocabulary: slow on a busy machine.
  }, 300_000);

  test("tools offered with a response_format: each answer is either a call in the format or JSON of the schema", async () => {
    const tools = [
      {
        type: "function" as const,
        function: {
          name: "get_weather",
          parameters: { type: "object", properties: { city: { type: "string", maxLength: 8 } }, required: ["city"], additionalProperties: false },
        },
      },
    ];
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const r = await collect(
      engine.submit({
        messages: [{ role: "user", content: "Reply with ok." }],
        tools,
        toolChoice: "auto",
        responseFormat: { type: "json_schema", schema, strict: true },
        maxTokens: 80,
        n: 4,
        sampling: { temperature: 1, seed: 11 },
      }),
    );
    for (let i = 0; i < 4; i++) {
      const calls = r.toolCalls[i] ?? [];
      if (calls.length > 0) {
        expect(calls.every((c) => c.name === "get_weather")).toBe(true);
        expect(r.texts[i] ?? "").not.toContain("<tool_call>");
      } else {
        expect(r.reasons[i]).toBe("stop");
        expect(typeof JSON.parse(r.texts[i]!).ok).toBe("boolean");
      }
    }
  }, 300_000);

  test("reasoning text lands in the reasoning channel and is counted", async () => {
    const r = await collect(
      engine.submit({
        messages: [{ role: "user", content: "Think first." }],
        grammar: String.raw`root ::= "<think>" [a-z ]{4,12} "</think>" [a-z]{2,8}`,
        maxTokens: 60,
        sampling: { temperature: 0.8, seed: 4 },
      }),
    );
    expect(r.reasons[0]).toBe("stop");
    expect(r.reasoning[0]!.trim().length).toBeGreaterThanOrEqual(1);
    expect(r.texts[0]).toMatch(/^[a-z]{2,8}$/);
    expect(r.texts[0]).not.toContain("think");
    expect(r.usage.reasoningTokens).toBeGreaterThan(0);
    expect(r.usage.reasoningTokens).toBeLessThan(r.usage.completionTokens);
  });

  test("logprobs come with each token, top alternatives sorted", async () => {
    const r = await collect(engine.submit(greedy("Logprobs:", 5, { logprobs: 3 })));
    const lps = r.events.flatMap((e) => (e.type === "delta" ? e.logprobs : []));
    expect(lps.length).toBe(5);
    for (const lp of lps) {
      expect(lp.logprob).toBeLessThanOrEqual(0);
      expect(lp.top.length).toBe(3);
      expect(lp.top[0]!.logprob).toBeGreaterThanOrEqual(lp.top[1]!.logprob);
      // Greedy picks the most likely token.
      expect(lp.top[0]!.token).toBe(lp.token);
    }
  });

  test("embeddings have the model's dimension, unit length, and are deterministic", async () => {
    const a = await engine.embed(undefined, ["hello there", "general kenobi"]);
    const b = await engine.embed(undefined, ["hello there"]);
    expect(a.vectors.length).toBe(2);
    expect(a.vectors[0]!.length).toBe(64);
    const norm = Math.hypot(...a.vectors[0]!);
    expect(norm).toBeCloseTo(1, 5);
    expect(Array.from(b.vectors[0]!)).toEqual(Array.from(a.vectors[0]!));
    expect(a.promptTokens).toBeGreaterThan(2);
  });

  test("a session key brings the next turn back to its cached state after other traffic", async () => {
    const turnTwo = async (key: string | undefined) => {
      const turn1 = `<|im_start|>user\nTell me a story about ${key ?? "nobody"}.<|im_end|>\n<|im_start|>assistant\n`;
      const r1 = await collect(engine.submit(greedy(turn1, 16, { sessionKey: key })));
      // Other traffic takes every slot in between.
      await Promise.all([0, 1, 2, 3].map((i) => collect(engine.submit(greedy(`Unrelated ${i} `.repeat(20), 4)))));
      const turn2 = `${turn1}${r1.texts[0]}<|im_end|>\n<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n`;
      const r2 = await collect(engine.submit(greedy(turn2, 4, { sessionKey: key })));
      return { r1, r2 };
    };
    const pinned = await turnTwo("conv-1");
    // Everything up to the end of turn 1's prompt comes back (re-tokenizing may merge its last token).
    expect(pinned.r2.usage.cachedTokens).toBeGreaterThanOrEqual(pinned.r1.usage.promptTokens - 1);
    const unpinned = await turnTwo(undefined);
    // Unpinned, its history stays resident too while the cache has free cells (sequences outnumber slots).
    expect(unpinned.r2.usage.cachedTokens).toBeGreaterThanOrEqual(unpinned.r1.usage.promptTokens - 1);
  });

  test("forgetSession frees a pinned slot's KV cells and the session's parked state; other sessions keep theirs", async () => {
    const turn = (who: string) => `<|im_start|>user\nA story about ${who}, please.<|im_end|>\n<|im_start|>assistant\n`;
    const keep = await collect(engine.submit(greedy(turn("keep"), 8, { sessionKey: "keep" })));
    await collect(engine.submit(greedy(turn("drop"), 8, { sessionKey: "drop" })));
    const before = engine.stats()[0]!;
    expect(await engine.forgetSession("drop")).toEqual({ slots: 1, parked: 0 });
    const after = engine.stats()[0]!;
    expect(after.pinnedSlots).toBe(before.pinnedSlots - 1);
    expect(after.kvUsedCells).toBeLessThan(before.kvUsedCells);
    expect(await engine.forgetSession("drop")).toEqual({ slots: 0, parked: 0 });
    // The kept session still resumes from its cache.
    const again = await collect(engine.submit(greedy(`${turn("keep")}${keep.texts[0]}<|im_end|>\n<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n`, 2, { sessionKey: "keep" })));
    expect(again.usage.cachedTokens).toBeGreaterThanOrEqual(keep.usage.promptTokens - 1);
    // Other pinned traffic on every slot leaves it resident (cells are free); forgetting frees its cells.
    // (A session parked under memory pressure is forgotten in test/inference/scheduling.test.ts.)
    await collect(engine.submit(greedy(turn("resident"), 4, { sessionKey: "resident" })));
    await Promise.all([0, 1, 2, 3].map((i) => collect(engine.submit(greedy(turn(`filler ${i}`), 2, { sessionKey: `filler-${i}` })))));
    const residentBefore = engine.stats()[0]!;
    expect(await engine.forgetSession("resident")).toEqual({ slots: 1, parked: 0 });
    expect(engine.stats()[0]!.kvUsedCells).toBeLessThan(residentBefore.kvUsedCells);
    for (const k of ["keep", "filler-0", "filler-1", "filler-2", "filler-3"]) await engine.forgetSession(k);
  });

  test("a long prompt evicted from every slot is restored from memory, not recomputed", async () => {
    const long = (topic: string) => `${topic}: ${"the quick brown fox jumps over the lazy dog ".repeat(20)}`;
    const first = await collect(engine.submit(greedy(long("Alpha"), 4)));
    expect(first.usage.promptTokens).toBeGreaterThan(128);
    // Four other long prompts take all four slots, overwriting Alpha's cache.
    await Promise.all(["Beta", "Gamma", "Delta", "Epsilon"].map((t) => collect(engine.submit(greedy(long(t), 4)))));
    const again = await collect(engine.submit(greedy(long("Alpha"), 4)));
    expect(again.usage.cachedTokens).toBe(again.usage.promptTokens - 1);
    expect(again.texts[0]).toBe(first.texts[0]!);
  });

  test("several models run side by side, each with its own id, type and context window", async () => {
    const multi = await Engine.start({
      models: [
        { id: "chat", path: TINY_MODEL, ctxSize: 256, slots: 2 },
        { id: "plain", path: TINY_MODEL, type: "completion" },
      ],
      ctxSize: 512,
    });
    try {
      expect(multi.models().map((m) => [m.id, m.type, m.contextWindow, m.slots])).toEqual([
        ["chat", "chat", 256, 2],
        ["plain", "completion", 512, 4],
      ]);
      const [a, b] = await Promise.all([
        collect(multi.submit({ model: "chat", messages: [{ role: "user", content: "hi" }], maxTokens: 4, sampling: { temperature: 0 } })),
        collect(multi.submit({ model: "plain", prompt: "hi", maxTokens: 4, sampling: { temperature: 0 } })),
      ]);
      expect(a.usage.completionTokens + b.usage.completionTokens).toBeGreaterThan(0);
      const noTemplate = await collect(multi.submit({ model: "plain", messages: [{ role: "user", content: "hi" }] })).catch((e) => e);
      expect(noTemplate.code).toBe("invalid_request");
      expect(multi.stats().map((s) => s.slotsTotal)).toEqual([2, 4]);
    } finally {
      multi.close();
    }
  });

  test("a worker crash fails in-flight requests with an error, and the next request succeeds", async () => {
    const inflight = engine.submit(greedy("Crash test:", 800, { ignoreEos: true }));
    await inflight.next();
    engine.crashWorkerForTest();
    const err = await collect(inflight).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe("worker_crashed");
    const after = await collect(engine.submit(greedy("After the crash", 6)));
    expect(after.reasons[0]).toBe("length");
    expect(engine.stats()[0]!.restarts).toBe(1);
  });
});

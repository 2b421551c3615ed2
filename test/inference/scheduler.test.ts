// The scheduler driven step by step on the tiny model, without a worker: which prompts a step feeds
// while requests wait for a lane, two-pass mixed steps, and idle compaction keeping every sequence's
// KV cells as recorded. Counted in steps and tokens, never in milliseconds.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { LlamaContext, LlamaModel } from "../../src/native/llama.ts";
import { Scheduler, type PreparedRequest, type SchedulerEvent } from "../../src/inference/scheduler.ts";
import { loadTinyModel } from "../support/model.ts";

setDefaultTimeout(120_000);

let model: LlamaModel;
beforeAll(() => {
  model = loadTinyModel();
});
afterAll(() => model.dispose());

let nextId = 0;
const request = (tokens: number[], maxTokens: number): PreparedRequest => ({
  id: `q${++nextId}`,
  tokens: Int32Array.from(tokens),
  maxTokens,
  samplers: [{ temperature: 0 }],
  output: { stops: [], parser: null, specialTokens: new Set(), logprobs: false },
  timeoutMs: 0,
  sessionKey: null,
  cacheScope: null,
  receivedAt: performance.now(),
  promptParam: "prompt",
});
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** A scheduler over its own context with the given lanes, recording each request's events. */
function setup(lanes: number, opts: { splitMixedSteps?: boolean; compactBytes?: number } = {}) {
  const ctx: LlamaContext = model.createContext({ nCtx: 1024 * lanes, nSeqMax: lanes * 4, nBatch: 512, kvUnified: true });
  const events = new Map<string, SchedulerEvent[]>();
  const s = new Scheduler(model, ctx, (id, e) => events.set(id, [...(events.get(id) ?? []), e]), {
    ctxPerSlot: 1024,
    lanes,
    maxQueue: 16,
    promptBudget: 64,
    compactBytes: opts.compactBytes ?? 0,
    splitMixedSteps: opts.splitMixedSteps ?? false,
  });
  const done = (id: string) => (events.get(id) ?? []).some((e) => e.type === "done");
  // Tokens generated so far, counted by the scheduler (a token may print nothing yet).
  const tokens = (id: string) => s.progress().find((p) => p.id === id)?.usage.completionTokens ?? 0;
  const drain = () => {
    while (s.busy) s.step();
  };
  return { s, ctx, events, tokens, done, drain, dispose: () => ctx.dispose() };
}

describe("lane turnover", () => {
  test("with a request waiting for a lane and no stream running, only the oldest admitted prompt is fed in that step", () => {
    const t = setup(2);
    try {
      const [a, b, c] = [request(ids(1000, 40), 6), request(ids(2000, 40), 6), request(ids(3000, 40), 6)];
      for (const r of [a, b, c]) t.s.submit(r);
      t.s.step();
      // a alone: its first token; b holds the other lane but waits for the next step.
      expect([t.tokens(a.id), t.tokens(b.id), t.tokens(c.id)]).toEqual([1, 0, 0]);
      t.s.step();
      expect([t.tokens(a.id), t.tokens(b.id)]).toEqual([2, 1]);
      // a ends a step before b, and c takes its lane while b still runs.
      while (!t.done(a.id)) t.s.step();
      expect(t.done(b.id)).toBe(false);
      t.s.step();
      expect(t.tokens(c.id)).toBe(1);
      t.drain();
      expect(t.s.kvMismatches()).toEqual([]);
    } finally {
      t.dispose();
    }
  });

  test("with no request waiting, prompts admitted together are fed in one step", () => {
    const t = setup(2);
    try {
      const [a, b] = [request(ids(1000, 40), 4), request(ids(2000, 40), 4)];
      t.s.submit(a);
      t.s.submit(b);
      t.s.step();
      expect([t.tokens(a.id), t.tokens(b.id)]).toEqual([1, 1]);
      t.drain();
    } finally {
      t.dispose();
    }
  });
});

describe("two-pass mixed steps", () => {
  test("next tokens of a sequence 300 cells deep beside 64-token prompt chunks are decoded in two passes, with the same greedy tokens", () => {
    const run = (splitMixedSteps: boolean) => {
      const t = setup(2, { splitMixedSteps });
      try {
        const deep = request(ids(1000, 300), 20);
        t.s.submit(deep);
        t.s.step();
        const beside = request(ids(5000, 192), 6);
        t.s.submit(beside);
        t.drain();
        const text = (id: string) => (t.events.get(id) ?? []).map((e) => (e.type === "delta" ? e.content : "")).join("");
        expect(t.s.kvMismatches()).toEqual([]);
        return { deep: text(deep.id), beside: text(beside.id), split: t.s.stats.splitSteps };
      } finally {
        t.dispose();
      }
    };
    const two = run(true);
    const one = run(false);
    // 192 prompt tokens at 64 a step beside the deep stream: 3 steps, each in two passes.
    expect(two.split).toBe(3);
    expect(one.split).toBe(0);
    expect(two.deep).toBe(one.deep);
    expect(two.beside).toBe(one.beside);
  });

  test("a shallow stream beside a prompt chunk stays one pass", () => {
    const t = setup(2, { splitMixedSteps: true });
    try {
      t.s.submit(request(ids(1000, 20), 12));
      t.s.step();
      t.s.submit(request(ids(5000, 200), 4));
      t.drain();
      expect(t.s.stats.splitSteps).toBe(0);
    } finally {
      t.dispose();
    }
  });
});

describe("idle compaction", () => {
  test("after two deep sequences were decoded together, an idle step rewrites them; every sequence's cells stay as recorded and its prefix is reused", () => {
    const t = setup(2, { compactBytes: 64 * 2 ** 20 });
    try {
      const [x, y] = [request(ids(1000, 300), 10), request(ids(2000, 300), 10)];
      t.s.submit(x);
      t.s.submit(y);
      t.drain();
      expect(t.s.snapshot("tiny").kvCompactions).toBe(0);
      // Nothing to do: the idle step compacts, once.
      expect(t.s.step()).toBe(false);
      expect(t.s.step()).toBe(false);
      const snap = t.s.snapshot("tiny");
      expect(snap.kvCompactions).toBe(1);
      expect(snap.residentSequences).toBe(2);
      expect(t.s.kvMismatches()).toEqual([]);
      // x's next turn takes its 300-token prefix from the rewritten cells.
      const again = request([...ids(1000, 300), ...ids(7000, 10)], 4);
      t.s.submit(again);
      t.drain();
      const done = t.events.get(again.id)!.find((e) => e.type === "done");
      expect(done?.type === "done" && done.usage.cachedTokens).toBe(300);
      // One sequence ran alone since: nothing interleaved, no second compaction.
      t.s.step();
      expect(t.s.snapshot("tiny").kvCompactions).toBe(1);
    } finally {
      t.dispose();
    }
  });

  test("nothing is rewritten above the byte limit, or when fewer than two resident sequences are 256 cells deep", () => {
    for (const [bytes, length] of [[1, 300], [64 * 2 ** 20, 200]] as const) {
      const t = setup(2, { compactBytes: bytes });
      try {
        t.s.submit(request(ids(1000, length), 6));
        t.s.submit(request(ids(2000, length), 6));
        t.drain();
        t.s.step();
        expect(t.s.snapshot("tiny").kvCompactions).toBe(0);
      } finally {
        t.dispose();
      }
    }
  });
});

// The engine's step scheduling on the tiny model: chunked prefill (a prompt admitted beside running
// streams is fed within the per-step prompt budget), embeddings in bounded steps beside generation,
// resident conversations, idle compaction of their KV cells and two-pass mixed steps.
// Counted in steps and tokens, never in milliseconds.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Engine } from "../../src/inference/engine.ts";
import type { EngineEvent, GenerateRequest } from "../../src/inference/types.ts";
import { TINY_MODEL } from "../support/model.ts";

setDefaultTimeout(240_000);

const greedy = (prompt: string | number[], maxTokens: number, extra: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt,
  maxTokens,
  sampling: { temperature: 0 },
  ...extra,
});

async function text(stream: AsyncIterable<EngineEvent>): Promise<string> {
  let out = "";
  for await (const e of stream) if (e.type === "delta") out += e.content;
  return out;
}

/** A 400-token prompt of ids, the same every time. */
const LONG = Array.from({ length: 400 }, (_, i) => 1000 + ((i * 7) % 900));

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 1024, batchSize: 512, promptBudget: 16 });
});
afterAll(() => engine.close());

describe("chunked prefill", () => {
  test("a long prompt admitted beside a running stream is fed 16 tokens a step, and its greedy output is unchanged", async () => {
    // Another cache scope: the run beside must feed its whole prompt, not reuse this one's cells.
    const alone = await text(engine.submit(greedy(LONG, 8, { cacheScope: "alone" })));
    const ac = new AbortController();
    const runner = engine.submit(greedy("Keep talking:", 900, { ignoreEos: true }), ac.signal);
    await runner.next();
    let tokensMeanwhile = 0;
    let longStarted = false;
    const counting = (async () => {
      for await (const e of runner) if (e.type === "delta" && !longStarted) tokensMeanwhile++;
    })();
    try {
      const beside = engine.submit(greedy(LONG, 8));
      const first = await beside.next();
      longStarted = true;
      let out = first.value?.type === "delta" ? first.value.content : "";
      out += await text(beside);
      expect(out).toBe(alone);
      // 400 prompt tokens at 16 a step: the running stream got a token in each of those 25 steps.
      // Unchunked, the whole prompt would have gone in one step beside a single token of it.
      expect(tokensMeanwhile).toBeGreaterThanOrEqual(24);
    } finally {
      ac.abort();
      await counting;
    }
  });
});

describe("embeddings beside generation", () => {
  test("a 30-input embedding request runs in steps between decode steps: a running stream finishes first", async () => {
    const ac = new AbortController();
    const order: string[] = [];
    const runner = engine.submit(greedy("Count:", 8, { ignoreEos: true }), ac.signal);
    await runner.next();
    const streamDone = text(runner).then(() => order.push("stream"));
    const inputs = Array.from({ length: 30 }, (_, i) => `input number ${i} of a large embedding request`);
    const embedded = engine.embed(undefined, inputs).then((r) => {
      order.push("embed");
      return r;
    });
    const [, result] = await Promise.all([streamDone, embedded]);
    // Answered in one piece before, the embedding request held the worker until all 30 were done.
    expect(order).toEqual(["stream", "embed"]);
    expect(result.vectors.length).toBe(30);
    // The same vectors as embedding an input alone.
    const alone = await engine.embed(undefined, [inputs[23]!]);
    const a = alone.vectors[0]!;
    const b = result.vectors[23]!;
    expect(a.length).toBe(b.length);
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  test("a bad input deep in a request fails it with a clear error, and later requests still run", async () => {
    const inputs = [...Array.from({ length: 20 }, (_, i) => `fine ${i}`), ""];
    await expect(engine.embed(undefined, inputs)).rejects.toThrow("input[20] is empty");
    const ok = await engine.embed(undefined, ["still working"]);
    expect(ok.vectors.length).toBe(1);
  });
});

describe("warm conversations", () => {
  test("finished prompts stay resident beyond the slots while cells are free; under pressure the least recently used is parked, within --cache-ram", async () => {
    // 2 slots x 256 tokens = 512 cells; room for three 153-token sequences. Three parked states fit
    // the parking budget, four do not.
    const stateBytes = 41_076;
    const budget = Math.floor(3.5 * stateBytes);
    const small = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 256, cacheRamMiB: budget / 2 ** 20 });
    try {
      const prompt = (k: number) => Array.from({ length: 150 }, (_, i) => 1000 * k + i);
      const run = async (k: number) => {
        const r = await small.submit(greedy(prompt(k), 4)).final;
        const stats = small.stats()[0]!;
        expect(stats.kvUsedCells).toBeLessThanOrEqual(stats.kvTotalCells);
        expect(stats.parkedBytes).toBeLessThanOrEqual(budget);
        return { cached: r!.usage.cachedTokens, stats };
      };
      for (const k of [1, 2, 3]) await run(k);
      let s = small.stats()[0]!;
      // Three conversations resident on two slots, nothing evicted or parked.
      expect(s.residentSequences).toBe(3);
      expect(s.slotsTotal).toBe(2);
      expect(s.evictions).toBe(0);
      // The first comes back from its resident cells, not from RAM.
      const again = await run(1);
      expect(again.cached).toBe(149);
      expect(again.stats.parkedStates).toBe(0);
      expect(again.stats.evictions).toBe(0);
      // Each new prompt now evicts the least recently used resident one (2, 3, 1, then 4), parked.
      const parked: number[] = [];
      for (const k of [4, 5, 6, 7]) {
        const r = await run(k);
        parked.push(r.stats.parkedStates);
        expect(r.cached).toBe(0);
      }
      s = small.stats()[0]!;
      expect(s.evictions).toBe(4);
      expect(s.parkedStates).toBe(3);
      expect(parked).toEqual([1, 2, 3, 3]);
      // The parking budget dropped the oldest parked state, 2's; 3's comes back from RAM.
      expect((await run(3)).cached).toBe(149);
      expect((await run(2)).cached).toBe(0);
    } finally {
      small.close();
    }
  });
});

describe("compact KV cells and two-pass steps", () => {
  /** Two conversations decoded together (their cells interleave), then the first one's next turn. */
  async function turns(e: Engine) {
    const px = Array.from({ length: 300 }, (_, i) => 2000 + i);
    const py = Array.from({ length: 300 }, (_, i) => 5000 + i);
    const first = await Promise.all([px, py].map((p) => text(e.submit(greedy(p, 12, { ignoreEos: true })))));
    // The compaction runs at the worker's next idle step; a request posted before it would take
    // that step (and be compacted after instead, unseen by these stats). It takes a few ms here.
    await Bun.sleep(500);
    const next = e.submit(greedy([...px, ...Array.from({ length: 20 }, (_, i) => 8000 + i)], 12, { ignoreEos: true }));
    let out = "";
    for await (const ev of next) if (ev.type === "delta") out += ev.content;
    const r = await next.final;
    return { first, out, cached: r!.usage.cachedTokens, stats: e.stats()[0]! };
  }

  test("sequences decoded together are rewritten compactly once the engine is idle; the next turn reuses every cached token, and greedy outputs are unchanged", async () => {
    const start = (kvCompactMiB: number) => Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 512, kvCompactMiB });
    const [on, off] = await Promise.all([start(512), start(0)]);
    try {
      const a = await turns(on);
      const b = await turns(off);
      expect(a.stats.kvCompactions).toBe(1);
      expect(b.stats.kvCompactions).toBe(0);
      // The 300-token prefix comes from the rewritten cells as it does from the original ones.
      expect(a.cached).toBe(300);
      expect(b.cached).toBe(300);
      expect(a.stats.residentSequences).toBe(2);
      expect(a.first).toEqual(b.first);
      expect(a.out).toBe(b.out);
    } finally {
      on.close();
      off.close();
    }
  });

  test("a deep sequence's next tokens are decoded apart from a prompt chunk beside them, with the same greedy outputs as in one pass", async () => {
    const start = (splitMixedSteps: boolean) =>
      Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 1024, promptBudget: 64, splitMixedSteps, kvCompactMiB: 0 });
    const [split, one] = await Promise.all([start(true), start(false)]);
    const run = async (e: Engine) => {
      // A stream 300 tokens deep, and a 200-token prompt fed beside it 64 tokens a step.
      const deep = e.submit(greedy(Array.from({ length: 300 }, (_, i) => 1000 + ((i * 13) % 900)), 40, { ignoreEos: true }));
      const head = await deep.next();
      const rest = text(deep);
      const beside = await text(e.submit(greedy(Array.from({ length: 200 }, (_, i) => 3000 + i), 8, { ignoreEos: true })));
      return { deep: (head.value?.type === "delta" ? head.value.content : "") + (await rest), beside, stats: e.stats()[0]! };
    };
    try {
      const a = await run(split);
      const b = await run(one);
      // Every step of the 200-token prompt carried a token of the deep stream: 4 steps, each in two passes.
      expect(a.stats.splitSteps).toBeGreaterThanOrEqual(3);
      expect(b.stats.splitSteps).toBe(0);
      expect(a.deep).toBe(b.deep);
      expect(a.beside).toBe(b.beside);
    } finally {
      split.close();
      one.close();
    }
  });
});

describe("pinned conversations under memory pressure", () => {
  test("unpinned sequences are evicted before pinned ones; a pinned one evicted is parked, and forgetSession drops it", async () => {
    const small = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 256 });
    try {
      const prompt = (k: number) => Array.from({ length: 150 }, (_, i) => 1000 * k + i);
      const run = (k: number, sessionKey?: string) => small.submit(greedy(prompt(k), 4, { sessionKey })).final;
      await run(1, "p");
      for (const k of [2, 3, 4, 5]) await run(k);
      // Room for three: the pinned one, the oldest, stayed; unpinned ones came and went.
      let s = small.stats()[0]!;
      expect(s.evictions).toBe(2);
      expect(s.pinnedSlots).toBe(1);
      expect(s.parkedSessions).toBe(0);
      expect((await run(1, "p"))!.usage.cachedTokens).toBe(149);
      // Only pinned ones left to evict: the least recently used of them, "p", is parked.
      await run(6, "q");
      await run(7, "r");
      await run(8, "s");
      s = small.stats()[0]!;
      expect(s.parkedSessions).toBe(1);
      expect(await small.forgetSession("p")).toEqual({ slots: 0, parked: 1 });
      expect(small.stats()[0]!.parkedSessions).toBe(0);
    } finally {
      small.close();
    }
  });
});

describe("n-gram lookup speculation", () => {
  test("greedy and seeded outputs are identical with and without it; guesses and kept guesses are counted", async () => {
    const spec = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 1024, ngramDraft: 8 });
    try {
      const pattern = Array.from({ length: 12 }, (_, i) => 2000 + i * 37);
      const repetitive = Array.from({ length: 240 }, (_, i) => pattern[i % pattern.length]!);
      const requests: GenerateRequest[] = [
        greedy(repetitive, 32, { ignoreEos: true }),
        greedy("The same words again and again, the same words again and again,", 32, { ignoreEos: true }),
        { prompt: repetitive, maxTokens: 24, ignoreEos: true, sampling: { temperature: 0.9, seed: 7, repeatPenalty: 1.1 } },
      ];
      for (const r of requests) {
        const [a, b] = await Promise.all([text(engine.submit(r)), text(spec.submit(r))]);
        expect(b).toBe(a);
      }
      const s = spec.stats()[0]!;
      expect(s.speculative).toBe("ngram");
      expect(s.draftSteps).toBeGreaterThan(0);
      expect(s.draftedTokens).toBeGreaterThan(0);
      expect(s.acceptedTokens).toBeLessThanOrEqual(s.draftedTokens);
      expect(engine.stats()[0]!.draftedTokens).toBe(0);
    } finally {
      spec.close();
    }
  });
});

// Speculative decoding with a draft model on the tiny model: the output is the same as without a
// draft (greedy and seeded), the target as its own draft keeps every guess, a smaller random draft
// keeps few, counters move, a cancel mid-draft leaves the KV cells as the scheduler records them,
// and a draft that cannot draft (missing file, another vocabulary) fails at start with a clear error.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engineMetrics } from "../../src/app.ts";
import { Engine } from "../../src/inference/engine.ts";
import { Scheduler, type SchedulerEvent } from "../../src/inference/scheduler.ts";
import { DraftPace, ModelDrafter } from "../../src/inference/speculative.ts";
import type { EngineEvent, GenerateRequest } from "../../src/inference/types.ts";
import { loadLlama } from "../../src/native/llama.ts";
import { resolveModels } from "../../src/config/models.ts";
import { ConfigError } from "../../src/config/config.ts";
import { QWEN3_PRESETS, writeQwen3Model } from "../../src/gguf/qwen3.ts";
import { TINY_DRAFT_MODEL, TINY_MODEL, ensureTinyDraftModel } from "../support/model.ts";

setDefaultTimeout(240_000);
// One thread: on a shared 2-core machine two spinning decode threads per context slow everything down
// many times over, and the outputs compared here do not depend on it.

const greedy = (prompt: string | number[], maxTokens: number): GenerateRequest => ({ prompt, maxTokens, sampling: { temperature: 0 } });

/** Each choice's text, joined with "|" (choices stream at their own pace). */
async function text(stream: AsyncIterable<EngineEvent>): Promise<string> {
  const out: string[] = [];
  for await (const e of stream) if (e.type === "delta") out[e.index] = (out[e.index] ?? "") + e.content;
  return out.join("|");
}

const PROMPTS: (string | number[])[] = ["Hello world, this is", "Once upon a time", Array.from({ length: 40 }, (_, i) => 3000 + ((i * 13) % 200))];

let plain: Engine;
beforeAll(async () => {
  await ensureTinyDraftModel();
  plain = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 1024, threads: 1 });
});
afterAll(() => plain.close());

describe("draft pacing", () => {
  test("a kept draft doubles the length up to the max, a partly kept one drafts one more than it kept, misses in a row pause drafting longer and longer", () => {
    const pace = new DraftPace(8);
    expect(pace.next()).toBe(8);
    pace.record(8, 3);
    expect(pace.next()).toBe(4);
    pace.record(4, 4);
    expect(pace.next()).toBe(8);
    pace.record(8, 0);
    // One miss: a step without drafting, then a single token.
    expect([pace.next(), pace.next()]).toEqual([0, 1]);
    pace.record(1, 0);
    expect([pace.next(), pace.next(), pace.next(), pace.next()]).toEqual([0, 0, 0, 1]);
    for (let i = 0; i < 6; i++) {
      pace.record(1, 0);
      while (pace.next() === 0);
    }
    pace.record(1, 0);
    let waited = 0;
    while (pace.next() === 0) waited++;
    expect(waited).toBe(15);
    pace.record(1, 1);
    expect(pace.next()).toBe(2);
  });
});

describe("speculative decoding with a draft model", () => {
  test("with the target as its own draft, greedy output is identical and every drafted token is accepted", async () => {
    const self = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL, draft: { path: TINY_MODEL, max: 4 } }], slots: 2, ctxSize: 1024, threads: 1 });
    try {
      for (const p of PROMPTS) {
        const [a, b] = await Promise.all([text(plain.submit(greedy(p, 40))), text(self.submit(greedy(p, 40)))]);
        expect(b).toBe(a);
      }
      const s = self.stats()[0]!;
      expect(s.speculative).toBe("draft");
      expect(s.draftedTokens).toBeGreaterThan(60);
      expect(s.acceptedTokens).toBe(s.draftedTokens);
      // Each verifying step kept up to 4 guesses plus the sampled token: far fewer steps than tokens.
      expect(s.draftSteps).toBeLessThan(s.generatedTokens / 2);
      expect(s.draftKvCells).toBeGreaterThan(0);
      expect(plain.stats()[0]!.speculative).toBeNull();
      const metrics = engineMetrics(() => self).render();
      expect(metrics).toContain(`cocoon_speculative_drafted_tokens_total{model="tiny",method="draft"} ${s.draftedTokens}\n`);
      expect(metrics).toContain(`cocoon_speculative_accepted_tokens_total{model="tiny",method="draft"} ${s.acceptedTokens}\n`);
      expect(metrics).toContain(`cocoon_speculative_acceptance_ratio{model="tiny",method="draft"} 1\n`);
    } finally {
      self.close();
    }
  });

  test("a smaller draft gives the same greedy outputs (four requests at once, one with n = 2) and the same seeded one, and its guesses are counted", async () => {
    const small = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL, draft: { path: TINY_DRAFT_MODEL, max: 6 } }], slots: 2, ctxSize: 1024, threads: 1 });
    try {
      // Greedy requests at once; seeded ones alone: batched decoding is not bitwise batch-invariant,
      // so logits differ in the last digits with what shares a batch, which can flip a random draw
      // (the same distribution, not the same text); alone, the same seed gives the same text.
      const greedyRuns = [...PROMPTS.map((p) => greedy(p, 24)), { ...greedy("Two choices:", 16), n: 2 }];
      const [a, b] = [await Promise.all(greedyRuns.map((r) => text(plain.submit(r)))), await Promise.all(greedyRuns.map((r) => text(small.submit(r))))];
      expect(b).toEqual(a);
      const seeded: GenerateRequest[] = [
        { prompt: "A seeded story:", maxTokens: 24, sampling: { temperature: 0.9, seed: 11, topK: 20, repeatPenalty: 1.1 } },
      ];
      for (const r of seeded) {
        const want = await text(plain.submit(r));
        expect(await text(small.submit(r))).toBe(want);
        expect(await text(small.submit({ ...r, cacheScope: "again" }))).toBe(want);
      }
      const s = small.stats()[0]!;
      expect(s.speculative).toBe("draft");
      expect(s.draftedTokens).toBeGreaterThan(0);
      expect(s.acceptedTokens).toBeLessThanOrEqual(s.draftedTokens);
      expect(s.draftSteps).toBeGreaterThan(0);
    } finally {
      small.close();
    }
  });

  test("a cancel mid-draft leaves every sequence's KV cells as recorded, and the prompt is reused afterwards", () => {
    const llama = loadLlama();
    const model = llama.loadModel(TINY_MODEL);
    const draftModel = llama.loadModel(TINY_DRAFT_MODEL);
    try {
      const ctx = model.createContext({ nCtx: 1024, nSeqMax: 4, nBatch: 256, kvUnified: true, threads: 1 });
      const events: { id: string; event: SchedulerEvent }[] = [];
      let drafter: ModelDrafter | null = null;
      const scheduler = new Scheduler(model, ctx, (id, event) => events.push({ id, event }), {
        ctxPerSlot: 512,
        lanes: 2,
        maxQueue: 4,
        drafter: (sequences) => (drafter = new ModelDrafter(draftModel, draftModel.createContext({ nCtx: 1100, nSeqMax: 4, nBatch: 256, kvUnified: true, threads: 1 }), sequences, model.nVocab, { max: 5 })),
      });
      const tokens = model.tokenize("Tell me a long story about the sea and the ships on it");
      const request = (id: string) => ({
        id,
        tokens,
        maxTokens: 200,
        samplers: [{ temperature: 0 }],
        output: { stops: [], parser: null, specialTokens: new Set<number>(), logprobs: false },
        timeoutMs: 0,
        sessionKey: null,
        cacheScope: null,
        receivedAt: performance.now(),
        promptParam: "prompt" as const,
      });
      scheduler.submit(request("a"));
      for (let i = 0; i < 6; i++) scheduler.step();
      expect(scheduler.snapshot("t").draftedTokens).toBeGreaterThan(0);
      expect(scheduler.kvMismatches()).toEqual([]);
      scheduler.cancel("a");
      scheduler.step();
      const done = events.find((e) => e.id === "a" && e.event.type === "done");
      expect(done?.event.type === "done" && done.event.reasons).toEqual(["cancelled"]);
      expect(scheduler.busy).toBe(false);
      expect(scheduler.kvMismatches()).toEqual([]);
      // The draft holds no more than the target (its sequences follow the target's).
      const snap = scheduler.snapshot("t");
      expect(drafter!.stats.kvCells).toBeLessThanOrEqual(snap.kvUsedCells + 2 * 6);
      scheduler.submit(request("b"));
      while (scheduler.busy && !events.some((e) => e.id === "b" && e.event.type === "delta")) scheduler.step();
      scheduler.cancel("b");
      scheduler.step();
      const again = events.find((e) => e.id === "b" && e.event.type === "done");
      expect(again?.event.type === "done" && again.event.usage.cachedTokens).toBe(tokens.length - 1);
      expect(scheduler.kvMismatches()).toEqual([]);
      drafter!.dispose();
    } finally {
      draftModel.dispose();
      model.dispose();
    }
  });

  test("a draft with another vocabulary, or a missing draft file, fails at start with a clear error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cocoon-draft-"));
    try {
      const other = join(dir, "other-vocab.gguf");
      await writeQwen3Model(other, { hparams: { ...QWEN3_PRESETS["tiny-draft"], vocabSize: 151_680 } });
      const start = Engine.start({ models: [{ id: "tiny", path: TINY_MODEL, draft: { path: other } }], slots: 1, ctxSize: 256, threads: 1 });
      expect(start).rejects.toThrow(/draft model .*other-vocab\.gguf cannot draft for tiny: its vocabulary does not match \(the vocabulary sizes differ: 151936 and 151680 tokens\)/);
      await start.catch(() => {});
      const missing = join(dir, "nope.gguf");
      expect(() => resolveModels({ model: [`${TINY_MODEL}#draft=${missing}`], modelsDir: "" })).toThrow(ConfigError);
      expect(() => resolveModels({ model: [`${TINY_MODEL}#draft=${missing}`], modelsDir: "" })).toThrow(`draft model file not found: ${missing}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

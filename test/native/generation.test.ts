// Decoding through the binding on the tiny model: determinism, batching, sequence state, grammars.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { LlamaBatch, type LlamaContext, type LlamaSampler, type SamplerStep } from "../../src/native/llama.ts";
import { loadTinyModel } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const model = loadTinyModel();
afterAll(() => model.dispose());

/** Prompt then up to n tokens on one sequence; the sampler (or argmax) picks each token. */
function generate(ctx: LlamaContext, prompt: string, n: number, seq = 0, sampler?: LlamaSampler): number[] {
  const batch = new LlamaBatch(512);
  const tokens = model.tokenize(prompt);
  tokens.forEach((t, i) => batch.add(t, i, seq, i === tokens.length - 1));
  ctx.decode(batch);
  let row = tokens.length - 1;
  let pos = tokens.length;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = sampler ? sampler.sample(ctx, row) : ctx.argmax(row);
    out.push(t);
    if (model.isEog(t)) break;
    batch.clear();
    row = batch.add(t, pos++, seq, true);
    ctx.decode(batch);
  }
  return out;
}

function withContext<T>(fn: (ctx: LlamaContext) => T, nSeqMax = 1): T {
  const ctx = model.createContext({ nCtx: 2048, nSeqMax, nBatch: 512 });
  try {
    return fn(ctx);
  } finally {
    ctx.dispose();
  }
}

function sampled(prompt: string, steps: SamplerStep[], n = 24): number[] {
  return withContext((ctx) => {
    const sampler = model.createSampler(steps);
    try {
      return generate(ctx, prompt, n, 0, sampler);
    } finally {
      sampler.dispose();
    }
  });
}

describe("generation", () => {
  test("greedy generation is deterministic, and the greedy sampler agrees with argmax", () => {
    const a = withContext((ctx) => generate(ctx, "Once upon a time", 32));
    const b = withContext((ctx) => generate(ctx, "Once upon a time", 32));
    const c = sampled("Once upon a time", [{ type: "greedy" }], 32);
    expect(a.length).toBe(32);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  test("seeded sampling repeats per seed and differs across seeds", () => {
    const steps = (seed: number): SamplerStep[] => [{ type: "temp", temperature: 1.5 }, { type: "dist", seed }];
    const first = sampled("The weather today", steps(1));
    expect(sampled("The weather today", steps(1))).toEqual(first);
    const others = [2, 3, 4].map((seed) => sampled("The weather today", steps(seed)));
    for (const other of others) expect(other).not.toEqual(first);
  });

  test("four sequences decoded in one batch each produce exactly their solo greedy tokens", () => {
    const prompts = ["The capital of France", "def fibonacci(n):", "Mary had a little", "1, 2, 3, 4,"];
    const steps = 16;
    const solo = prompts.map((p) => withContext((ctx) => generate(ctx, p, steps)));

    const together = withContext((ctx) => {
      const batch = new LlamaBatch(512);
      const rows: number[] = [];
      const pos: number[] = [];
      prompts.forEach((p, seq) => {
        const tokens = model.tokenize(p);
        tokens.forEach((t, i) => {
          const row = batch.add(t, i, seq, i === tokens.length - 1);
          if (i === tokens.length - 1) rows[seq] = row;
        });
        pos[seq] = tokens.length;
      });
      ctx.decode(batch);
      const out: number[][] = prompts.map(() => []);
      for (let step = 0; step < steps; step++) {
        const next = prompts.map((_, seq) => ctx.argmax(rows[seq]!));
        batch.clear();
        next.forEach((t, seq) => {
          out[seq]!.push(t);
          rows[seq] = batch.add(t, pos[seq]!++, seq, true);
        });
        ctx.decode(batch);
      }
      return out;
    }, 4);
    expect(together).toEqual(solo);
  });

  test("a sequence's saved state restored into another sequence gives identical next-token logits", () => {
    withContext((ctx) => {
      const batch = new LlamaBatch(512);
      const tokens = model.tokenize("Saving and restoring state works");
      tokens.forEach((t, i) => batch.add(t, i, 0, false));
      ctx.decode(batch);
      const state = ctx.saveSequence(0);
      expect(state.length).toBeGreaterThan(0);
      ctx.restoreSequence(state, 2);
      expect(ctx.seqPosMax(2)).toBe(tokens.length - 1);

      const next = 9707;
      const logitsOf = (seq: number) => {
        batch.clear();
        batch.add(next, tokens.length, seq, true);
        ctx.decode(batch);
        return ctx.logits(0).slice();
      };
      const original = logitsOf(0);
      const restored = logitsOf(2);
      expect(restored.length).toBe(model.nVocab);
      expect(Buffer.from(restored.buffer).equals(Buffer.from(original.buffer))).toBe(true);
    }, 4);
  });

  test("a grammar-constrained generation yields text that parses as JSON", () => {
    const grammar = String.raw`
root   ::= "{" ws "\"name\":" ws string "," ws "\"age\":" ws number "," ws "\"tags\":" ws tags ws "}"
string ::= "\"" [a-zA-Z ]{1,12} "\""
number ::= [1-9] [0-9]{0,2}
tags   ::= "[" ws ( string ( "," ws string ){0,2} )? ws "]"
ws     ::= [ ]?
`;
    for (const seed of [1, 2, 3]) {
      const tokens = sampled(
        "Describe a person as JSON:",
        [{ type: "grammar", grammar }, { type: "temp", temperature: 1.0 }, { type: "dist", seed }],
        200,
      );
      expect(model.isEog(tokens.at(-1)!)).toBe(true);
      const text = model.detokenize(tokens.slice(0, -1));
      const value = JSON.parse(text);
      expect(typeof value.name).toBe("string");
      expect(Number.isInteger(value.age)).toBe(true);
      expect(Array.isArray(value.tags)).toBe(true);
    }
  });

  test("an invalid grammar is a clear error, not a crash", () => {
    expect(() => model.createSampler([{ type: "grammar", grammar: "root ::= (" }])).toThrow(/grammar/);
  });

  test("KV memory reports positions and frees a sequence", () => {
    withContext((ctx) => {
      generate(ctx, "Hello world", 4, 1);
      expect(ctx.seqPosMax(1)).toBeGreaterThan(0);
      expect(ctx.seqRemove(1)).toBe(true);
      expect(ctx.seqPosMax(1)).toBe(-1);
    }, 2);
  });
});

// Embeddings through the binding: the model's dimension, deterministic, distinct per text.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { LlamaBatch } from "../../src/native/llama.ts";
import { loadTinyModel } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const model = loadTinyModel();
afterAll(() => model.dispose());

/** Mean-pooled embedding of each text, one sequence per text, all in one batch. */
function embed(texts: string[]): Float32Array[] {
  const ctx = model.createContext({ nCtx: 1024, nSeqMax: texts.length, embeddings: true, pooling: 1 });
  try {
    const batch = new LlamaBatch(1024);
    texts.forEach((text, seq) => model.tokenize(text).forEach((t, i) => batch.add(t, i, seq, true)));
    ctx.decode(batch);
    return texts.map((_, seq) => ctx.embeddings(seq));
  } finally {
    ctx.dispose();
  }
}

describe("embeddings", () => {
  test("have the model's dimension, are finite and deterministic", () => {
    const [a] = embed(["The quick brown fox"]);
    const [b] = embed(["The quick brown fox"]);
    expect(a!.length).toBe(model.nEmbd);
    expect(model.nEmbd).toBe(64);
    expect(a!.every(Number.isFinite)).toBe(true);
    expect(Array.from(b!)).toEqual(Array.from(a!));
  });

  test("a text embedded alone equals the same text embedded beside others, and texts differ", () => {
    const [alone] = embed(["jumps over the lazy dog"]);
    const [other, together] = embed(["The quick brown fox", "jumps over the lazy dog"]);
    for (let i = 0; i < alone!.length; i++) expect(together![i]!).toBeCloseTo(alone![i]!, 4);
    expect(Array.from(other!)).not.toEqual(Array.from(together!));
  });
});

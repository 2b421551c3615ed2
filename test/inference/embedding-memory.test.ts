// Embeddings with bounded memory: a whole-context embedding input on a decoder-only model (the tiny
// Qwen3, a 151k vocabulary) leaves the process's RSS within a bound, where feeding it as one batch kept
// an n_vocab-wide logits row per token (n_vocab × n_ctx floats) for the context's life.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Engine } from "../../src/inference/engine.ts";
import { TINY_MODEL } from "../support/model.ts";

setDefaultTimeout(120_000);

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 1, ctxSize: 2048, cacheRamMiB: 0 });
});
afterAll(() => engine?.close());

const mib = () => process.memoryUsage().rss / 2 ** 20;

describe("embedding memory", () => {
  test("a 2,000-token embedding raises RSS by less than 300 MiB, and a second one by nothing more", async () => {
    const info = engine.model("tiny");
    // The buffer that grew was n_vocab × tokens floats: 2,000 tokens of this vocabulary are over 1 GiB.
    expect((info.vocabSize * 2000 * 4) / 2 ** 20).toBeGreaterThan(1000);
    await engine.embed("tiny", ["warm up"]);
    const before = mib();
    const tokens = Array.from({ length: 2000 }, (_, i) => 100 + (i % 5000));
    const first = await engine.embed("tiny", [tokens]);
    expect(first.promptTokens).toBe(2000);
    expect(first.vectors[0]!.length).toBe(info.embeddingDims);
    const afterFirst = mib();
    await engine.embed("tiny", [tokens]);
    const afterSecond = mib();
    if (process.env.MEM_DEBUG) console.log({ before, afterFirst, afterSecond });
    expect(afterFirst - before).toBeLessThan(300);
    expect(afterSecond - afterFirst).toBeLessThan(50);
  });

  test("chunked pooling gives one normalised vector per input, the same for the same input", async () => {
    const a = await engine.embed("tiny", ["the same words", "other words entirely", "the same words"]);
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    for (const v of a.vectors) expect(norm(v)).toBeCloseTo(1, 4);
    expect(Array.from(a.vectors[0]!)).toEqual(Array.from(a.vectors[2]!));
    expect(Array.from(a.vectors[0]!)).not.toEqual(Array.from(a.vectors[1]!));
  });
});

// A vocabulary-only load (what the tokenizer workers hold, no weights loaded) gives the very ids and
// pieces the full model's tokenizer gives, special tokens and odd text included.
import { afterAll, expect, test } from "bun:test";
import { loadLlama } from "../../src/native/llama.ts";
import { TINY_MODEL } from "../support/model.ts";

const llama = loadLlama();
const full = llama.loadModel(TINY_MODEL);
const vocab = llama.loadModel(TINY_MODEL, { vocabOnly: true, gpuLayers: 0 });
afterAll(() => {
  vocab.dispose();
  full.dispose();
});

test("a vocabulary-only model tokenizes and detokenizes exactly as the full model", () => {
  const texts = ["Hello world", "<|im_start|>user\nHi<|im_end|>", "  spaces\t\ttabs\n\n", "naïve café 東京 🙂", "x".repeat(5000), ""];
  for (const text of texts) {
    for (const opts of [{ addSpecial: true, parseSpecial: true }, { addSpecial: false, parseSpecial: false }]) {
      const a = full.tokenize(text, opts);
      expect(Array.from(vocab.tokenize(text, opts))).toEqual(Array.from(a));
      expect(vocab.detokenize(a)).toBe(full.detokenize(a));
    }
  }
  expect(vocab.nVocab).toBe(full.nVocab);
  expect(vocab.fimTokens).toEqual(full.fimTokens);
  expect(vocab.longestTokenBytes()).toBe(full.longestTokenBytes());
});

// The binding's tokenizer on the tiny model: Qwen3's real vocabulary, exact ids and lossless text.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Utf8Stream, completePrefixLength } from "../../src/native/llama.ts";
import { loadTinyModel } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const model = loadTinyModel();
afterAll(() => model.dispose());

const SAMPLES = [
  "Hello world",
  "  leading spaces, tabs\tand\nnewlines\n\n",
  "Grüße aus Köln: ½ € ≠ $",
  "日本語のテキストと中文混合",
  "emoji 🦙🚀 and a family 👨‍👩‍👧 with ZWJ",
  "<|im_start|>user\nhi<|im_end|>",
  "",
];

describe("tokenizer", () => {
  test('"Hello world" tokenizes to Qwen3\'s ids [9707, 1879]', () => {
    expect(Array.from(model.tokenize("Hello world"))).toEqual([9707, 1879]);
  });

  test("special-token text becomes one control token only when parsing specials", () => {
    const parsed = Array.from(model.tokenize("<|im_start|>"));
    expect(parsed).toEqual([151644]);
    expect(model.isControl(151644)).toBe(true);
    expect(Array.from(model.tokenize("<|im_start|>", { parseSpecial: false })).length).toBeGreaterThan(1);
  });

  test("detokenize(tokenize(text)) round-trips every sample, multi-byte text included", () => {
    for (const text of SAMPLES) {
      expect(model.detokenize(model.tokenize(text))).toBe(text);
    }
  });

  test("streaming token bytes never emits half a character and reassembles the exact text", () => {
    let sawSplitCharacter = false;
    for (const text of SAMPLES) {
      const stream = new Utf8Stream();
      let out = "";
      for (const token of model.tokenize(text)) {
        const bytes = model.tokenBytes(token);
        if (completePrefixLength(bytes) !== bytes.length || (bytes.length > 0 && (bytes[0]! & 0xc0) === 0x80)) {
          sawSplitCharacter = true;
        }
        const chunk = stream.push(bytes);
        expect(chunk).not.toContain("\uFFFD");
        out += chunk;
      }
      out += stream.flush();
      expect(out).toBe(text);
    }
    // The samples must actually exercise tokens that end inside a UTF-8 character.
    expect(sawSplitCharacter).toBe(true);
  });

  test("completePrefixLength stops before an unfinished UTF-8 sequence", () => {
    const euro = new TextEncoder().encode("a€"); // 61 e2 82 ac
    expect(completePrefixLength(euro)).toBe(4);
    expect(completePrefixLength(euro.subarray(0, 3))).toBe(1);
    expect(completePrefixLength(euro.subarray(0, 2))).toBe(1);
    expect(completePrefixLength(new Uint8Array([0xf0, 0x9f, 0xa6]))).toBe(0);
  });

  test("vocabulary facts match Qwen3: 151,936 tokens, eos <|im_end|> is end-of-generation", () => {
    expect(model.nVocab).toBe(151936);
    expect(model.eos).toBe(151645);
    expect(model.isEog(151645)).toBe(true);
    expect(model.isEog(9707)).toBe(false);
  });
});

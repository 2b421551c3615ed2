// Pooled embeddings of one input with bounded memory. llama.cpp outputs every token of an
// embeddings batch and keeps an n_vocab-wide logits row per output token for the context's life, so a
// whole-context batch costs n_vocab × n_ctx floats for good (1.2 GB for a 2k-token input on a 150k
// vocabulary). A causal model is fed in chunks of EMBED_CHUNK tokens instead, its per-token states
// mean-pooled here; encoder and non-causal embedding models need the whole input in one batch.
import { LlamaBatch, type ContextOptions, type LlamaContext, type LlamaModel } from "../native/llama.ts";

/** Tokens per decode of a chunked embedding: its logits buffer is EMBED_CHUNK × n_vocab floats. */
export const EMBED_CHUNK = 128;

/** Whether inputs are fed in chunks (a decoder-only model used for embeddings) or whole. */
export function chunkedEmbedding(model: LlamaModel, type: "chat" | "completion" | "embedding"): boolean {
  return type !== "embedding" && !model.hasEncoder;
}

/** The embeddings context: sized for one chunk when chunked, for the whole window otherwise. */
export function embeddingContextOptions(model: LlamaModel, type: "chat" | "completion" | "embedding", window: number, threads: number | undefined): ContextOptions {
  const chunked = chunkedEmbedding(model, type);
  const batch = chunked ? Math.min(EMBED_CHUNK, window) : window;
  // Pooling none (0) when chunked: the mean is taken here over the chunks' per-token states.
  return { nCtx: window, nBatch: batch, nUbatch: batch, nSeqMax: 1, embeddings: true, pooling: chunked ? 0 : type === "embedding" ? -1 : 1, threads };
}

/** The mean-pooled (chunked) or model-pooled (whole) embedding of `tokens`, not normalised. */
export function embedTokens(ctx: LlamaContext, model: LlamaModel, tokens: Int32Array, chunked: boolean): Float32Array {
  ctx.clearMemory();
  if (!chunked) {
    const batch = new LlamaBatch(tokens.length);
    tokens.forEach((t, p) => batch.add(t, p, 0, true));
    if (model.hasEncoder) ctx.encode(batch);
    else ctx.decode(batch);
    return ctx.embeddings(0);
  }
  const sum = new Float64Array(model.nEmbd);
  const batch = new LlamaBatch(Math.min(EMBED_CHUNK, tokens.length));
  for (let start = 0; start < tokens.length; start += EMBED_CHUNK) {
    const end = Math.min(tokens.length, start + EMBED_CHUNK);
    batch.clear();
    for (let p = start; p < end; p++) batch.add(tokens[p]!, p, 0, true);
    ctx.decode(batch);
    for (let i = 0; i < end - start; i++) {
      const row = ctx.embeddingsRow(i);
      for (let j = 0; j < row.length; j++) sum[j]! += row[j]!;
    }
  }
  const v = new Float32Array(model.nEmbd);
  for (let j = 0; j < v.length; j++) v[j] = sum[j]! / tokens.length;
  return v;
}

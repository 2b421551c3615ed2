// A llama context (LlamaContext): decode and encode of batches, logits and embeddings, the KV memory
// per sequence, and saving and restoring one sequence's state.
import { toArrayBuffer, type Pointer } from "bun:ffi";
import type { NativeSymbols } from "./symbols.ts";
import { asPointer, lastLines, Handle, type NativeLibrary } from "./handle.ts";
import { LlamaError } from "./llama-error.ts";
import type { LlamaBatch } from "./batch.ts";

export interface ContextOptions {
  /** Context size in tokens shared by all sequences; 0 = the model's training context. Defaults to 4096. */
  nCtx?: number;
  /** Most tokens per decode call. Defaults to 512. */
  nBatch?: number;
  /** Physical micro-batch. Defaults to nBatch. */
  nUbatch?: number;
  /** Parallel sequences (slots). Defaults to 1. */
  nSeqMax?: number;
  /** Threads for single-token decode. Defaults to the core count. */
  threads?: number;
  /** Threads for prompt batches. Defaults to threads. */
  threadsBatch?: number;
  /** Compute embeddings instead of (as well as) logits. Defaults to false. */
  embeddings?: boolean;
  /** -1 model default, 0 none, 1 mean, 2 cls, 3 last. Defaults to -1. */
  pooling?: number;
  /** -1 auto, 0 off, 1 on. Defaults to -1. */
  flashAttn?: number;
  /** One KV buffer shared by all sequences (lets a sequence use more than n_ctx/n_seq). Defaults to true. */
  kvUnified?: boolean;
  /** Keep the KV cache on the GPU. Defaults to true. */
  offloadKqv?: boolean;
}

/**
 * What a context uses of the model it was made from. An interface, so that this module need not
 * import model.ts (which imports it); LlamaModel satisfies it.
 */
export interface ContextOwner {
  readonly llama: NativeLibrary;
  readonly nVocab: number;
  readonly nEmbd: number;
  readonly contexts: Set<LlamaContext>;
}

export interface PerfData {
  loadMs: number;
  promptMs: number;
  evalMs: number;
  promptTokens: number;
  evalTokens: number;
  graphReuses: number;
}

export class LlamaContext extends Handle {
  readonly nCtx: number;
  readonly nSeqMax: number;
  readonly nBatch: number;
  private readonly fn: NativeSymbols;
  private readonly memory: Pointer;

  constructor(
    readonly model: ContextOwner,
    handle: Pointer,
  ) {
    super(handle);
    this.fn = model.llama.fn;
    this.nCtx = this.fn.llama_n_ctx(handle);
    this.nSeqMax = this.fn.llama_n_seq_max(handle);
    this.nBatch = this.fn.llama_n_batch(handle);
    this.memory = asPointer(this.fn.llama_get_memory(handle))!;
  }

  /** @internal raw handle for sibling wrappers in this folder. */
  get handle(): Pointer {
    return this.h;
  }

  /**
   * Runs the model over a batch. Throws LlamaError "no_kv_slot" when the KV cache is full (the caller
   * may free sequences and retry) and "decode" on any other failure.
   */
  decode(batch: LlamaBatch): void {
    if (batch.size === 0) return;
    const rc = this.fn.cs_decode(this.h, batch.size, batch.tokens, batch.pos, batch.seqIds, batch.logits);
    if (rc === 0) return;
    if (rc === 1) throw new LlamaError("no KV cache slot for the batch", "no_kv_slot");
    throw new LlamaError(`llama_decode failed with status ${rc}`, "decode", lastLines(this.model.llama.takeLog()));
  }

  /** Encoder models (and embedding models without causal attention). */
  encode(batch: LlamaBatch): void {
    if (batch.size === 0) return;
    const rc = this.fn.cs_encode(this.h, batch.size, batch.tokens, batch.pos, batch.seqIds, batch.logits);
    if (rc !== 0) throw new LlamaError(`llama_encode failed with status ${rc}`, "decode", lastLines(this.model.llama.takeLog()));
  }

  /** Logits of batch row i, as a view valid until the next decode (copy it to keep it). */
  logits(i: number): Float32Array {
    const p = asPointer(this.fn.llama_get_logits_ith(this.h, i));
    if (!p) throw new LlamaError(`no logits for batch row ${i}`, "decode");
    return new Float32Array(toArrayBuffer(p, 0, this.model.nVocab * 4));
  }

  /** Greedy choice for batch row i, computed in C. */
  argmax(i: number): number {
    const t = this.fn.cs_argmax(this.h, i);
    if (t < 0) throw new LlamaError(`no logits for batch row ${i}`, "decode");
    return t;
  }

  /** Pooled embedding of a sequence (a copy), or of batch row i when pooling is none. */
  embeddings(seq: number): Float32Array {
    const p = asPointer(this.fn.llama_get_embeddings_seq(this.h, seq));
    if (!p) throw new LlamaError(`no embeddings for sequence ${seq}`, "decode");
    return new Float32Array(toArrayBuffer(p, 0, this.model.nEmbd * 4)).slice();
  }

  embeddingsRow(i: number): Float32Array {
    const p = asPointer(this.fn.llama_get_embeddings_ith(this.h, i));
    if (!p) throw new LlamaError(`no embeddings for batch row ${i}`, "decode");
    return new Float32Array(toArrayBuffer(p, 0, this.model.nEmbd * 4)).slice();
  }

  setThreads(threads: number, threadsBatch = threads): void {
    this.fn.llama_set_n_threads(this.h, threads, threadsBatch);
  }

  setEmbeddings(on: boolean): void {
    this.fn.llama_set_embeddings(this.h, on);
  }

  // ---- KV memory: positions are [p0, p1); -1 means open-ended -----------------------------------

  clearMemory(): void {
    this.h;
    this.fn.llama_memory_clear(this.memory, true);
  }

  /** Removes a sequence's tokens in [p0, p1); false if a partial removal is impossible. */
  seqRemove(seq: number, p0 = -1, p1 = -1): boolean {
    this.h;
    return this.fn.llama_memory_seq_rm(this.memory, seq, p0, p1);
  }

  seqCopy(src: number, dst: number, p0 = -1, p1 = -1): void {
    this.h;
    this.fn.llama_memory_seq_cp(this.memory, src, dst, p0, p1);
  }

  seqKeep(seq: number): void {
    this.h;
    this.fn.llama_memory_seq_keep(this.memory, seq);
  }

  seqShift(seq: number, p0: number, p1: number, delta: number): void {
    this.h;
    this.fn.llama_memory_seq_add(this.memory, seq, p0, p1, delta);
  }

  /** Highest position held for the sequence, or -1 when it is empty. */
  seqPosMax(seq: number): number {
    this.h;
    return this.fn.llama_memory_seq_pos_max(this.memory, seq);
  }

  seqPosMin(seq: number): number {
    this.h;
    return this.fn.llama_memory_seq_pos_min(this.memory, seq);
  }

  // ---- per-sequence state ----------------------------------------------------------------------

  /** Serialises one sequence's KV state, e.g. to park a conversation outside the context. */
  /** Bytes saveSequence would return for `seq`, without copying them. */
  sequenceStateBytes(seq: number): number {
    return Number(this.fn.llama_state_seq_get_size(this.h, seq));
  }

  saveSequence(seq: number): Uint8Array {
    const size = Number(this.fn.llama_state_seq_get_size(this.h, seq));
    const out = new Uint8Array(size);
    const written = Number(this.fn.llama_state_seq_get_data(this.h, out, size, seq));
    if (written !== size) throw new LlamaError(`saving sequence ${seq} wrote ${written} of ${size} bytes`, "state");
    return out;
  }

  /** Restores a saved state into (possibly another) sequence, replacing what it held. */
  restoreSequence(state: Uint8Array, seq: number): void {
    this.seqRemove(seq);
    const read = Number(this.fn.llama_state_seq_set_data(this.h, state, state.length, seq));
    if (read === 0) throw new LlamaError(`restoring ${state.length} bytes into sequence ${seq} failed`, "state", lastLines(this.model.llama.takeLog()));
  }

  perf(): PerfData {
    const out = new Float64Array(7);
    this.fn.cs_perf_context(this.h, out);
    return { loadMs: out[0]!, promptMs: out[1]!, evalMs: out[2]!, promptTokens: out[4]!, evalTokens: out[5]!, graphReuses: out[6]! };
  }

  dispose(): void {
    this.release((h) => this.fn.llama_free(h));
    this.model.contexts.delete(this);
  }
}

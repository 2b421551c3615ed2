// Typed wrapper over llama.cpp: Llama (the loaded library), LlamaModel, LlamaContext, LlamaBatch and
// LlamaSampler. Native handles stay private; every object is freed by an explicit dispose().
import { existsSync } from "node:fs";
import { CString, toArrayBuffer, type Pointer } from "bun:ffi";
import { openNative, type NativeSymbols } from "./symbols.ts";
import { locateNative, type NativeLocation } from "./paths.ts";
import { SHIM_ABI_VERSION, LLAMA_CPP_RELEASE, type NativeManifest } from "./release.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** bun:ffi types pointer returns as Pointer | bigint | null; addresses on our platforms fit a number. */
function asPointer(p: Pointer | bigint | null): Pointer | null {
  if (p === null || p === 0 || p === 0n) return null;
  return (typeof p === "bigint" ? Number(p) : p) as Pointer;
}

/** NUL-terminated UTF-8 for const char * parameters. */
function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

/** Thrown for every native failure, with llama.cpp's own explanation when it logged one. */
export class LlamaError extends Error {
  override name = "LlamaError";
  constructor(
    message: string,
    readonly code: "model_load" | "context_init" | "decode" | "no_kv_slot" | "tokenize" | "quantize" | "state" | "sampler" | "disposed" | "library",
    readonly detail?: string,
  ) {
    super(detail ? `${message}: ${detail}` : message);
  }
}

/** ggml log levels; messages below the chosen one are dropped in C. */
export const LogLevel = { debug: 1, info: 2, warn: 3, error: 4, none: 0 } as const;
export type LogLevelName = keyof typeof LogLevel;

export interface LlamaLoadOptions {
  /** Directory holding the libraries and manifest. Defaults to COCOON_LIB_DIR, embedded, or build/native/current. */
  libDir?: string;
  /** Where a compiled executable extracts its libraries. Defaults to $XDG_CACHE_HOME/cocoon-server/native. */
  extractDir?: string;
  /** llama.cpp messages at or above this level reach stderr (warnings and errors are captured for error messages either way). Defaults to "none". */
  logLevel?: LogLevelName;
}

export interface ModelLoadOptions {
  /** Layers to offload to the GPU; -1 = all. Defaults to -1 (ignored without a GPU backend). */
  gpuLayers?: number;
  /** llama_load_mode: -1 auto, 0 plain read, 1 mmap, 2 mlock, 3 mmap+mlock. Defaults to -1. */
  loadMode?: number;
  /** Load only the vocabulary (tokenizer work, no weights). Defaults to false. */
  vocabOnly?: boolean;
  /** Validate tensor data while loading. Defaults to false. */
  checkTensors?: boolean;
}

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

export type QuantType = "F16" | "Q8_0" | "Q4_K_M" | "Q4_0" | "Q5_K_M" | "Q6_K";
/** llama_ftype values from llama.h. */
const FTYPE: Record<QuantType, number> = { F16: 1, Q4_0: 2, Q8_0: 7, Q4_K_M: 15, Q5_K_M: 17, Q6_K: 18 };

let shared: Llama | null = null;

/** The process-wide library instance, created on first use (dlopen happens once per process/worker). */
export function loadLlama(opts: LlamaLoadOptions = {}): Llama {
  if (!shared) shared = new Llama(locateNative({ libDir: opts.libDir, extractDir: opts.extractDir }), opts.logLevel ?? "none");
  else if (opts.logLevel) shared.setLogLevel(opts.logLevel);
  return shared;
}

export class Llama {
  readonly dir: string;
  readonly manifest: NativeManifest;
  readonly devices: number;
  /** @internal */
  readonly fn: NativeSymbols;

  constructor(location: NativeLocation, logLevel: LogLevelName) {
    this.dir = location.dir;
    this.manifest = location.manifest;
    let lib;
    try {
      lib = openNative(`${location.dir}/${location.manifest.shim}`);
    } catch (err) {
      throw new LlamaError(`cannot load the llama.cpp libraries from ${location.dir}`, "library", String(err));
    }
    this.fn = lib.symbols;
    const abi = this.fn.cs_abi_version();
    if (abi !== SHIM_ABI_VERSION) {
      throw new LlamaError(`shim ABI ${abi} does not match ${SHIM_ABI_VERSION}`, "library", "run `bun run setup` again");
    }
    this.fn.cs_log_set(LogLevel[logLevel]);
    this.devices = this.fn.cs_backend_init(cstr(location.dir));
    if (this.devices < 1) throw new LlamaError("no ggml backend could be loaded", "library", this.takeLog() || location.dir);
  }

  get backend(): string {
    return this.manifest.backend;
  }

  get release(): string {
    return LLAMA_CPP_RELEASE;
  }

  setLogLevel(level: LogLevelName): void {
    this.fn.cs_log_set(LogLevel[level]);
  }

  /** Warnings and errors llama.cpp logged since the last call. */
  takeLog(): string {
    const buf = Buffer.alloc(4096);
    const n = this.fn.cs_log_take(buf, buf.length);
    return buf.subarray(0, n).toString("utf8").trim();
  }

  systemInfo(): string {
    return String(this.fn.llama_print_system_info()).trim();
  }

  supportsGpuOffload(): boolean {
    return this.fn.llama_supports_gpu_offload();
  }

  /** Loads a GGUF model; a missing, unreadable or corrupt file throws a LlamaError saying why. */
  loadModel(path: string, opts: ModelLoadOptions = {}): LlamaModel {
    if (!existsSync(path)) {
      throw new LlamaError(`model file not found: ${path}`, "model_load");
    }
    this.takeLog();
    const handle = asPointer(this.fn.cs_model_load(cstr(path), opts.gpuLayers ?? -1, opts.loadMode ?? -1, opts.vocabOnly ?? false, opts.checkTensors ?? false));
    if (!handle) {
      throw new LlamaError(`cannot load model ${path}`, "model_load", lastLines(this.takeLog()) || "not a valid GGUF model");
    }
    return new LlamaModel(this, handle, path);
  }

  /** Quantizes a GGUF model (e.g. F16 -> Q8_0). Blocks the calling thread. */
  quantize(input: string, output: string, type: QuantType, threads = navigator.hardwareConcurrency || 2): void {
    this.takeLog();
    const rc = this.fn.cs_model_quantize(cstr(input), cstr(output), FTYPE[type], threads);
    if (rc !== 0) throw new LlamaError(`quantizing ${input} to ${type} failed`, "quantize", lastLines(this.takeLog()));
  }
}

function lastLines(log: string, n = 3): string {
  return log.split("\n").filter(Boolean).slice(-n).join("; ");
}

/** Base for native handles: use after dispose() throws instead of crashing the process. */
abstract class Handle {
  #handle: Pointer | null;
  constructor(handle: Pointer) {
    this.#handle = handle;
  }
  protected get h(): Pointer {
    if (this.#handle === null) throw new LlamaError(`${this.constructor.name} used after dispose()`, "disposed");
    return this.#handle;
  }
  get disposed(): boolean {
    return this.#handle === null;
  }
  protected release(free: (h: Pointer) => void): void {
    if (this.#handle === null) return;
    const h = this.#handle;
    this.#handle = null;
    free(h);
  }
  abstract dispose(): void;
  [Symbol.dispose](): void {
    this.dispose();
  }
}

export interface TokenizeOptions {
  /** Add BOS/EOS as the model's tokenizer config says. Defaults to false. */
  addSpecial?: boolean;
  /** Turn special-token text like <|im_start|> into its token. Defaults to true. */
  parseSpecial?: boolean;
}

export class LlamaModel extends Handle {
  readonly #vocab: Pointer;
  readonly nVocab: number;
  readonly nEmbd: number;
  readonly nCtxTrain: number;
  readonly nLayer: number;
  readonly bos: number;
  readonly eos: number;
  readonly contexts = new Set<LlamaContext>();
  readonly samplers = new Set<LlamaSampler>();
  private readonly fn: NativeSymbols;
  /** Token id -> bytes, filled lazily: token_to_piece through FFI is the detokenizer's hot path. */
  private readonly pieceCache = new Map<number, Uint8Array>();

  constructor(
    readonly llama: Llama,
    handle: Pointer,
    readonly path: string,
  ) {
    super(handle);
    this.fn = llama.fn;
    this.#vocab = asPointer(this.fn.llama_model_get_vocab(handle))!;
    this.nVocab = this.fn.llama_vocab_n_tokens(this.#vocab);
    this.nEmbd = this.fn.llama_model_n_embd(handle);
    this.nCtxTrain = this.fn.llama_model_n_ctx_train(handle);
    this.nLayer = this.fn.llama_model_n_layer(handle);
    this.bos = this.fn.llama_vocab_bos(this.#vocab);
    this.eos = this.fn.llama_vocab_eos(this.#vocab);
  }

  /** @internal raw handle for sibling wrappers in this module. */
  get handle(): Pointer {
    return this.h;
  }

  /** @internal the vocabulary handle; checks the model is alive, as every vocab call must. */
  get vocab(): Pointer {
    this.h;
    return this.#vocab;
  }

  get description(): string {
    const buf = Buffer.alloc(256);
    const n = this.fn.llama_model_desc(this.h, buf, buf.length);
    return buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))).toString("utf8");
  }

  /** Bytes of weights. */
  get size(): number {
    return Number(this.fn.llama_model_size(this.h));
  }

  get nParams(): number {
    return Number(this.fn.llama_model_n_params(this.h));
  }

  get hasEncoder(): boolean {
    return this.fn.llama_model_has_encoder(this.h);
  }

  /** One GGUF metadata value as llama.cpp renders it to a string, or null when absent. */
  meta(key: string): string | null {
    let buf = Buffer.alloc(1024);
    const k = cstr(key);
    let n = this.fn.llama_model_meta_val_str(this.h, k, buf, buf.length);
    if (n < 0) return null;
    if (n >= buf.length) {
      buf = Buffer.alloc(n + 1);
      n = this.fn.llama_model_meta_val_str(this.h, k, buf, buf.length);
    }
    return buf.subarray(0, n).toString("utf8");
  }

  /** Every scalar metadata key with its value (arrays are summarised by llama.cpp). */
  metadata(): Record<string, string> {
    const out: Record<string, string> = {};
    const count = this.fn.llama_model_meta_count(this.h);
    const keyBuf = Buffer.alloc(256);
    for (let i = 0; i < count; i++) {
      const kn = this.fn.llama_model_meta_key_by_index(this.h, i, keyBuf, keyBuf.length);
      if (kn < 0) continue;
      const key = keyBuf.subarray(0, Math.min(kn, keyBuf.length - 1)).toString("utf8");
      let val = Buffer.alloc(1024);
      let vn = this.fn.llama_model_meta_val_str_by_index(this.h, i, val, val.length);
      if (vn >= val.length) {
        val = Buffer.alloc(vn + 1);
        vn = this.fn.llama_model_meta_val_str_by_index(this.h, i, val, val.length);
      }
      if (vn >= 0) out[key] = val.subarray(0, vn).toString("utf8");
    }
    return out;
  }

  /** The Jinja chat template from GGUF metadata (`tokenizer.chat_template`), or null. */
  chatTemplate(name?: string): string | null {
    const p = asPointer(this.fn.llama_model_chat_template(this.h, name ? cstr(name) : null));
    return p ? String(new CString(p)) : null;
  }

  /** Fill-in-the-middle tokens (prefix, suffix, middle), or null when the model has none. */
  get fimTokens(): { prefix: number; suffix: number; middle: number } | null {
    const v = this.vocab;
    const prefix = this.fn.llama_vocab_fim_pre(v);
    const suffix = this.fn.llama_vocab_fim_suf(v);
    const middle = this.fn.llama_vocab_fim_mid(v);
    return prefix >= 0 && suffix >= 0 && middle >= 0 ? { prefix, suffix, middle } : null;
  }

  isEog(token: number): boolean {
    return this.fn.llama_vocab_is_eog(this.vocab, token);
  }

  isControl(token: number): boolean {
    return this.fn.llama_vocab_is_control(this.vocab, token);
  }

  tokenize(text: string, opts: TokenizeOptions = {}): Int32Array {
    const bytes = encoder.encode(text);
    const add = opts.addSpecial ?? false;
    const special = opts.parseSpecial ?? true;
    // UTF-8 bytes bound the token count from above (each token covers at least one byte), plus specials.
    let out = new Int32Array(bytes.length + 8);
    let n = this.fn.llama_tokenize(this.vocab, bytes.length ? bytes : null, bytes.length, out, out.length, add, special);
    if (n < 0) {
      out = new Int32Array(-n);
      n = this.fn.llama_tokenize(this.vocab, bytes.length ? bytes : null, bytes.length, out, out.length, add, special);
    }
    if (n < 0) throw new LlamaError(`tokenizing ${bytes.length} bytes failed`, "tokenize");
    return out.slice(0, n);
  }

  /**
   * The raw bytes of one token. A piece can end in the middle of a UTF-8 character, so callers that
   * stream text must join pieces as bytes (see Utf8Stream) rather than decode each one.
   */
  tokenBytes(token: number, special = true): Uint8Array {
    const key = special ? token : -1 - token;
    const hit = this.pieceCache.get(key);
    if (hit) return hit;
    const vocab = this.vocab;
    let buf = new Uint8Array(64);
    let n = this.fn.llama_token_to_piece(vocab, token, buf, buf.length, 0, special);
    if (n < 0) {
      buf = new Uint8Array(-n);
      n = this.fn.llama_token_to_piece(vocab, token, buf, buf.length, 0, special);
    }
    const piece = buf.slice(0, Math.max(0, n));
    this.pieceCache.set(key, piece);
    return piece;
  }

  /** Text of a token sequence; lone bytes of a split character become U+FFFD. */
  detokenize(tokens: ArrayLike<number>, opts: { removeSpecial?: boolean; unparseSpecial?: boolean } = {}): string {
    const ids = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
    if (ids.length === 0) return "";
    let buf = new Uint8Array(ids.length * 16 + 16);
    const rm = opts.removeSpecial ?? false;
    const un = opts.unparseSpecial ?? true;
    let n = this.fn.llama_detokenize(this.vocab, ids, ids.length, buf, buf.length, rm, un);
    if (n < 0) {
      buf = new Uint8Array(-n);
      n = this.fn.llama_detokenize(this.vocab, ids, ids.length, buf, buf.length, rm, un);
    }
    if (n < 0) throw new LlamaError("detokenize failed", "tokenize");
    return decoder.decode(buf.subarray(0, n));
  }

  createContext(opts: ContextOptions = {}): LlamaContext {
    const threads = opts.threads ?? (navigator.hardwareConcurrency || 2);
    const nBatch = opts.nBatch ?? 512;
    this.llama.takeLog();
    const handle = asPointer(this.fn.cs_context_init(
      this.h,
      opts.nCtx ?? 4096,
      nBatch,
      opts.nUbatch ?? nBatch,
      opts.nSeqMax ?? 1,
      threads,
      opts.threadsBatch ?? threads,
      opts.embeddings ?? false,
      opts.pooling ?? -1,
      opts.flashAttn ?? -1,
      opts.kvUnified ?? true,
      opts.offloadKqv ?? true,
    ));
    if (!handle) throw new LlamaError("cannot create a llama context", "context_init", lastLines(this.llama.takeLog()));
    const ctx = new LlamaContext(this, handle);
    this.contexts.add(ctx);
    return ctx;
  }

  /** A sampler chain built from the steps in order (the last one must select a token: greedy or dist). */
  createSampler(steps: SamplerStep[]): LlamaSampler {
    const s = new LlamaSampler(this, steps);
    this.samplers.add(s);
    return s;
  }

  /** Frees the model and everything created from it. */
  dispose(): void {
    for (const s of this.samplers) s.dispose();
    for (const c of this.contexts) c.dispose();
    this.release((h) => this.fn.llama_model_free(h));
  }
}

/** A reusable batch: tokens with positions, one sequence each, and which rows produce logits. */
export class LlamaBatch {
  readonly tokens: Int32Array;
  readonly pos: Int32Array;
  readonly seqIds: Int32Array;
  readonly logits: Int8Array;
  size = 0;

  constructor(readonly capacity: number) {
    this.tokens = new Int32Array(capacity);
    this.pos = new Int32Array(capacity);
    this.seqIds = new Int32Array(capacity);
    this.logits = new Int8Array(capacity);
  }

  clear(): void {
    this.size = 0;
  }

  /** Appends a token; returns its row, which is the index to read logits from after decode. */
  add(token: number, pos: number, seq: number, wantLogits: boolean): number {
    if (this.size >= this.capacity) throw new RangeError(`batch is full (${this.capacity} tokens)`);
    const i = this.size++;
    this.tokens[i] = token;
    this.pos[i] = pos;
    this.seqIds[i] = seq;
    this.logits[i] = wantLogits ? 1 : 0;
    return i;
  }
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
    readonly model: LlamaModel,
    handle: Pointer,
  ) {
    super(handle);
    this.fn = model.llama.fn;
    this.nCtx = this.fn.llama_n_ctx(handle);
    this.nSeqMax = this.fn.llama_n_seq_max(handle);
    this.nBatch = this.fn.llama_n_batch(handle);
    this.memory = asPointer(this.fn.llama_get_memory(handle))!;
  }

  /** @internal raw handle for sibling wrappers in this module. */
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

/** One step of a sampler chain; applied in the order given. */
export type SamplerStep =
  | { type: "greedy" }
  | { type: "dist"; seed: number }
  | { type: "temp"; temperature: number }
  | { type: "top_k"; k: number }
  | { type: "top_p"; p: number; minKeep?: number }
  | { type: "min_p"; p: number; minKeep?: number }
  | { type: "typical"; p: number; minKeep?: number }
  | { type: "penalties"; lastN: number; repeat: number; frequency: number; presence: number }
  | { type: "logit_bias"; bias: ReadonlyArray<readonly [token: number, bias: number]> }
  | { type: "grammar"; grammar: string; root?: string };

export class LlamaSampler extends Handle {
  private readonly fn: NativeSymbols;

  constructor(
    readonly model: LlamaModel,
    readonly steps: SamplerStep[],
  ) {
    const fn = model.llama.fn;
    const chain = asPointer(fn.cs_sampler_chain_init(true));
    if (!chain) throw new LlamaError("cannot create a sampler chain", "sampler");
    super(chain);
    this.fn = fn;
    try {
      for (const step of steps) {
        const s = this.init(step);
        if (!s) throw new LlamaError(`cannot create sampler ${step.type}`, "sampler", lastLines(model.llama.takeLog()));
        fn.llama_sampler_chain_add(chain, s); // the chain owns it from here
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  private init(step: SamplerStep): Pointer | null {
    const fn = this.fn;
    switch (step.type) {
      case "greedy":
        return asPointer(fn.llama_sampler_init_greedy());
      case "dist":
        return asPointer(fn.llama_sampler_init_dist(step.seed >>> 0));
      case "temp":
        return asPointer(fn.llama_sampler_init_temp(step.temperature));
      case "top_k":
        return asPointer(fn.llama_sampler_init_top_k(step.k));
      case "top_p":
        return asPointer(fn.llama_sampler_init_top_p(step.p, step.minKeep ?? 1));
      case "min_p":
        return asPointer(fn.llama_sampler_init_min_p(step.p, step.minKeep ?? 1));
      case "typical":
        return asPointer(fn.llama_sampler_init_typical(step.p, step.minKeep ?? 1));
      case "penalties":
        return asPointer(fn.llama_sampler_init_penalties(this.model.nVocab, step.lastN, step.repeat, step.frequency, step.presence));
      case "logit_bias": {
        // llama_logit_bias is { int32 token; float bias } = 8 bytes.
        const buf = new ArrayBuffer(Math.max(8, step.bias.length * 8));
        const view = new DataView(buf);
        step.bias.forEach(([token, bias], i) => {
          view.setInt32(i * 8, token, true);
          view.setFloat32(i * 8 + 4, bias, true);
        });
        return asPointer(fn.llama_sampler_init_logit_bias(this.model.nVocab, step.bias.length, new Uint8Array(buf)));
      }
      case "grammar":
        this.model.llama.takeLog();
        return asPointer(fn.llama_sampler_init_grammar(this.model.vocab, cstr(step.grammar), cstr(step.root ?? "root")));
    }
  }

  /** @internal raw handle for sibling wrappers in this folder. */
  get handle(): Pointer {
    return this.h;
  }

  /** Samples from batch row idx of the context's last decode and accepts the token into the chain. */
  sample(ctx: LlamaContext, idx: number): number {
    return this.fn.llama_sampler_sample(this.h, ctx.handle, idx);
  }

  /** Feeds a token the chain did not sample (e.g. the prompt, for penalties and grammar). */
  accept(token: number): void {
    this.fn.llama_sampler_accept(this.h, token);
  }

  reset(): void {
    this.fn.llama_sampler_reset(this.h);
  }

  dispose(): void {
    this.release((h) => this.fn.llama_sampler_free(h));
    this.model.samplers.delete(this);
  }
}


/** Joins token bytes into text without ever emitting half a UTF-8 character. */
export class Utf8Stream {
  private pending = new Uint8Array(0);
  private readonly dec = new TextDecoder("utf-8", { fatal: false });

  /** Returns the complete characters now available. */
  push(bytes: Uint8Array): string {
    const all = this.pending.length ? concat(this.pending, bytes) : bytes;
    const cut = completePrefixLength(all);
    this.pending = all.slice(cut);
    return cut ? this.dec.decode(all.subarray(0, cut)) : "";
  }

  /** Whatever is left (invalid trailing bytes become U+FFFD). */
  flush(): string {
    const rest = this.pending.length ? this.dec.decode(this.pending) : "";
    this.pending = new Uint8Array(0);
    return rest;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Length of the longest prefix that does not end inside a UTF-8 sequence. */
export function completePrefixLength(bytes: Uint8Array): number {
  const n = bytes.length;
  // Look back at most 3 bytes for the lead byte of a trailing, possibly unfinished sequence.
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

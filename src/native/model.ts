// A loaded model (LlamaModel): metadata, vocabulary, tokenizer and detokenizer, and the factory of
// the contexts and samplers made from it, which it frees with itself.
import { CString, type Pointer } from "bun:ffi";
import type { NativeSymbols } from "./symbols.ts";
import { asPointer, cstr, lastLines, Handle, type NativeLibrary } from "./handle.ts";
import { LlamaError } from "./llama-error.ts";
import { LlamaContext, type ContextOptions } from "./context.ts";
import { LlamaSampler, type SamplerStep } from "./sampler.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

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
    readonly llama: NativeLibrary,
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

  /** @internal raw handle for sibling wrappers in this folder. */
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

  /**
   * The most bytes of text one token stands for (special tokens as their text): no text of B bytes
   * can tokenize to fewer than B / this tokens. Walks the vocabulary once, without caching pieces.
   */
  longestTokenBytes(): number {
    const buf = new Uint8Array(256);
    let most = 1;
    for (let t = 0; t < this.nVocab; t++) {
      const n = this.fn.llama_token_to_piece(this.vocab, t, buf, buf.length, 0, true);
      // A negative count is a piece longer than the buffer: its length is -n.
      most = Math.max(most, Math.abs(n));
    }
    return most;
  }

  /**
   * Why `other` cannot draft for this model (speculative decoding), or null when it can: llama.cpp's
   * rule (common_speculative_are_compatible): the same tokenizer type, BOS/EOS use, sizes within 128
   * tokens and the same piece for every id from 5 up to the smaller size.
   */
  vocabMismatch(other: LlamaModel): string | null {
    const a = this.vocab;
    const b = other.vocab;
    const fn = this.fn;
    if (fn.llama_vocab_type(a) !== fn.llama_vocab_type(b)) return "the tokenizer types differ";
    if (fn.llama_vocab_get_add_bos(a) !== fn.llama_vocab_get_add_bos(b) || (fn.llama_vocab_get_add_bos(a) && this.bos !== other.bos)) return "the BOS tokens differ";
    if (fn.llama_vocab_get_add_eos(a) !== fn.llama_vocab_get_add_eos(b) || (fn.llama_vocab_get_add_eos(a) && this.eos !== other.eos)) return "the EOS tokens differ";
    if (Math.abs(this.nVocab - other.nVocab) > 128) return `the vocabulary sizes differ: ${this.nVocab} and ${other.nVocab} tokens`;
    const x = new Uint8Array(512);
    const y = new Uint8Array(512);
    for (let t = 5; t < Math.min(this.nVocab, other.nVocab); t++) {
      const n = fn.llama_token_to_piece(a, t, x, x.length, 0, true);
      const m = fn.llama_token_to_piece(b, t, y, y.length, 0, true);
      let same = n === m;
      for (let i = 0; same && i < n; i++) same = x[i] === y[i];
      if (!same) return `token ${t} differs`;
    }
    return null;
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

// A llama.cpp sampler chain (LlamaSampler) built from typed steps; used for grammars and for the
// chains that tests and benchmarks build directly.
import { ptr, type Pointer } from "bun:ffi";
import type { NativeSymbols } from "./symbols.ts";
import { asPointer, cstr, lastLines, Handle, type NativeLibrary } from "./handle.ts";
import { LlamaError } from "./llama-error.ts";
import type { LlamaContext } from "./context.ts";

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
  | { type: "grammar"; grammar: string; root?: string; lazy?: { patterns: string[]; tokens: number[] } }
  /** A sampler made elsewhere (e.g. llama.cpp's reasoning budget); the chain takes ownership. */
  | { type: "native"; sampler: Pointer };

/**
 * What a sampler uses of the model it was made from. An interface, so that this module need not
 * import model.ts (which imports it); LlamaModel satisfies it.
 */
export interface SamplerOwner {
  readonly llama: NativeLibrary;
  readonly nVocab: number;
  readonly vocab: Pointer;
  readonly samplers: Set<LlamaSampler>;
}

export class LlamaSampler extends Handle {
  private readonly fn: NativeSymbols;

  constructor(
    readonly model: SamplerOwner,
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
      case "grammar": {
        this.model.llama.takeLog();
        if (!step.lazy) return asPointer(fn.llama_sampler_init_grammar(this.model.vocab, cstr(step.grammar), cstr(step.root ?? "root")));
        // const char ** of the trigger patterns: the buffers stay referenced until the call returns.
        const bufs = step.lazy.patterns.map(cstr);
        const ptrs = new BigUint64Array(Math.max(1, bufs.length));
        bufs.forEach((b, i) => (ptrs[i] = BigInt(ptr(b))));
        const tokens = Int32Array.from(step.lazy.tokens.length ? step.lazy.tokens : [0]);
        const s = fn.llama_sampler_init_grammar_lazy_patterns(
          this.model.vocab, cstr(step.grammar), cstr(step.root ?? "root"), ptrs, bufs.length, tokens, step.lazy.tokens.length,
        );
        void bufs;
        return asPointer(s);
      }
      case "native":
        return step.sampler;
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

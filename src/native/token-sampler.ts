// The fast per-token sampler (native/sample.c) with its per-request state: parameters, penalty
// window, logit bias, RNG and an optional grammar. One instance per generating sequence.
import type { LlamaContext } from "./context.ts";
import type { LlamaModel } from "./model.ts";
import type { LlamaSampler } from "./sampler.ts";
import { LlamaError } from "./llama-error.ts";
import { ReasoningBudget, type ReasoningBudgetOptions } from "./reasoning-budget.ts";

/** Sampling settings for one sequence. Neutral values disable a step. */
export interface TokenSamplerOptions {
  /** 0 = greedy. Defaults to 0.8. */
  temperature?: number;
  /** <= 0 disables. Defaults to 40. */
  topK?: number;
  /** 1 disables. Defaults to 0.95. */
  topP?: number;
  /** 0 disables. Defaults to 0.05. */
  minP?: number;
  /** 1 disables. Defaults to 1. */
  typicalP?: number;
  /** 1 disables. Defaults to 1. */
  repeatPenalty?: number;
  /** 0 disables. Defaults to 0. */
  frequencyPenalty?: number;
  /** 0 disables. Defaults to 0. */
  presencePenalty?: number;
  /** How many recent generated tokens penalties look at. Defaults to 64. */
  penaltyLastN?: number;
  /** RNG seed; the same seed gives the same tokens. Defaults to 0. */
  seed?: number;
  /** Token -> additive bias; -Infinity bans the token. */
  logitBias?: ReadonlyArray<readonly [token: number, bias: number]>;
  /** GBNF grammar the output must match (root rule "root"). */
  grammar?: string;
  /** Makes the grammar lazy: free text until one of these triggers, constrained from there. Defaults to a strict grammar. */
  grammarLazy?: LazyGrammar;
  /** Tokens the prompt already placed that the grammar starts with (a chat format's generation prompt). Defaults to none. */
  grammarPrefill?: number[];
  /** -1: no log-probabilities; 0: the chosen token's; n (<= 20): plus the n most likely. Defaults to -1. */
  logprobs?: number;
  /** A budget on the reasoning block's tokens, whose closing tag is forced when it is spent. Defaults to none. */
  reasoningBudget?: ReasoningBudgetOptions;
}

/**
 * What a sequence samples with for each option left unset: the one place these defaults live (the
 * engine passes a request's unset fields through unset).
 */
export const SAMPLING_DEFAULTS = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  typicalP: 1,
  repeatPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  penaltyLastN: 64,
  seed: 0,
  logprobs: -1,
} as const satisfies Required<Omit<TokenSamplerOptions, "logitBias" | "grammar" | "grammarLazy" | "grammarPrefill" | "reasoningBudget">>;

export interface TokenChoice {
  token: number;
  /** Log-probability of the token under the model (after bias and penalties); 0 when not requested. */
  logprob: number;
  /** The most likely tokens with their log-probabilities, when requested. */
  top: { token: number; logprob: number }[];
}

export const MAX_TOP_LOGPROBS = 20;

/** llama.cpp's lazy grammar triggers: regex patterns over the output, or token ids. */
export interface LazyGrammar {
  patterns: string[];
  tokens: number[];
}

// Index layout shared with native/shim.h (CS_F_* and CS_I_*).
const F = { temperature: 0, topP: 1, minP: 2, typicalP: 3, repeat: 4, frequency: 5, presence: 6, count: 7 } as const;
const I = { topK: 0, nProbs: 1, nHistory: 2, nBias: 3, count: 4 } as const;

export class TokenSampler {
  private readonly fp = new Float32Array(F.count);
  private readonly ip = new Int32Array(I.count);
  private readonly history: Int32Array;
  private historyNext = 0;
  private readonly biasTokens: Int32Array;
  private readonly biasValues: Float32Array;
  private readonly rng = new BigUint64Array(1);
  private readonly outTokens = new Int32Array(1 + MAX_TOP_LOGPROBS);
  private readonly outLogprobs = new Float32Array(1 + MAX_TOP_LOGPROBS);
  private readonly grammar: LlamaSampler | null;
  private readonly budget: ReasoningBudget | null;
  private disposed = false;

  constructor(
    private readonly model: LlamaModel,
    opts: TokenSamplerOptions = {},
  ) {
    const fn = model.llama.fn;
    const d = SAMPLING_DEFAULTS;
    this.fp[F.temperature] = opts.temperature ?? d.temperature;
    this.fp[F.topP] = opts.topP ?? d.topP;
    this.fp[F.minP] = opts.minP ?? d.minP;
    this.fp[F.typicalP] = opts.typicalP ?? d.typicalP;
    this.fp[F.repeat] = opts.repeatPenalty ?? d.repeatPenalty;
    this.fp[F.frequency] = opts.frequencyPenalty ?? d.frequencyPenalty;
    this.fp[F.presence] = opts.presencePenalty ?? d.presencePenalty;
    this.ip[I.topK] = opts.topK ?? d.topK;
    this.ip[I.nProbs] = Math.min(opts.logprobs ?? d.logprobs, MAX_TOP_LOGPROBS);
    this.history = new Int32Array(Math.max(0, opts.penaltyLastN ?? d.penaltyLastN));
    const bias = opts.logitBias ?? [];
    this.biasTokens = Int32Array.from(bias, ([t]) => t);
    this.biasValues = Float32Array.from(bias, ([, b]) => b);
    this.ip[I.nBias] = bias.length;
    this.rng[0] = BigInt.asUintN(64, BigInt(fn.cs_rng_seed(BigInt(Math.trunc(opts.seed ?? d.seed)))));
    this.grammar = opts.grammar ? model.createSampler([{ type: "grammar", grammar: opts.grammar, lazy: opts.grammarLazy }]) : null;
    for (const t of opts.grammarPrefill ?? []) this.grammar?.accept(t);
    this.budget = opts.reasoningBudget ? new ReasoningBudget(opts.reasoningBudget, (t) => model.tokenBytes(t, true)) : null;
  }

  /** Whether the thinking budget ran out (its closing tag forced). */
  get reasoningCut(): boolean {
    return this.budget?.exhausted ?? false;
  }

  /** Chooses the next token from batch row `row` of the context's last decode and records it. */
  sample(ctx: LlamaContext, row: number): TokenChoice {
    if (this.disposed) throw new LlamaError("TokenSampler used after dispose()", "disposed");
    const forced = this.budget?.forcedToken() ?? null;
    if (forced !== null) {
      // All else is -inf in llama.cpp's forcing: the token is certain.
      this.grammar?.accept(forced);
      this.budget!.accept(forced);
      this.record(forced);
      return { token: forced, logprob: 0, top: this.ip[I.nProbs]! > 0 ? [{ token: forced, logprob: 0 }] : [] };
    }
    const token = this.model.llama.fn.cs_sample(
      ctx.handle,
      row,
      this.fp,
      this.ip,
      this.history,
      this.biasTokens,
      this.biasValues,
      this.rng,
      this.grammar ? this.grammar.handle : null,
      this.outTokens,
      this.outLogprobs,
    );
    if (token === -2) throw new LlamaError("the grammar allows no further token", "sampler");
    if (token < 0) throw new LlamaError(`no logits for batch row ${row}`, "decode");
    this.budget?.accept(token);
    this.record(token);
    const top: TokenChoice["top"] = [];
    for (let i = 0; i < this.ip[I.nProbs]!; i++) top.push({ token: this.outTokens[1 + i]!, logprob: this.outLogprobs[1 + i]! });
    return { token, logprob: this.outLogprobs[0]!, top };
  }

  /** Adds a token to the penalty window without sampling it (e.g. a forced token). */
  record(token: number): void {
    if (this.history.length === 0) return;
    this.history[this.historyNext % this.history.length] = token;
    this.historyNext++;
    this.ip[I.nHistory] = Math.min(this.historyNext, this.history.length);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.grammar?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Every end-of-generation token of the model (for ignore_eos and stop handling). */
export function eogTokens(model: LlamaModel): number[] {
  const fn = model.llama.fn;
  const buf = new Int32Array(64);
  const n = fn.cs_vocab_eog_tokens(model.vocab, buf, buf.length);
  if (n <= buf.length) return Array.from(buf.subarray(0, n));
  const big = new Int32Array(n);
  fn.cs_vocab_eog_tokens(model.vocab, big, n);
  return Array.from(big);
}

// Per-token prices in integer nanoton: base price per model × multiplier per token type × markup,
// computed exactly and rounded up once per token type. /v1/pricing publishes exactly what billing uses.
import type { Usage } from "../inference/types.ts";

export const NANOTON_PER_TON = 1_000_000_000n;

/** Multipliers per token type, as decimal strings ("0.1") so they are exact. */
export interface TokenMultipliers {
  prompt: string;
  completion: string;
  reasoning: string;
  cachedPrompt: string;
}

/** Price of one model. */
export interface ModelPrice {
  /** Base price of one token in nanoton, before multiplier and markup. */
  baseNanoton: bigint;
  /** Overrides of the global multipliers for this model. Defaults to none. */
  multipliers?: Partial<TokenMultipliers>;
}

/** Everything billing and /v1/pricing need. Build one with {@link pricingConfig}. */
export interface PricingConfig {
  /** Base price per token of models without an entry in `models`. Defaults to 20 nanoton. */
  baseNanoton: bigint;
  /** Defaults to prompt 1, completion 4, reasoning 4, cached prompt 0.1. */
  multipliers: TokenMultipliers;
  /** Markup over the base price, a decimal string. Defaults to "1.5" (the seed's). */
  markup: string;
  /** Per-model prices by model id. Defaults to none (every model at `baseNanoton`). */
  models: Record<string, ModelPrice>;
  /** A request needs at least this balance to start. Defaults to 0.01 TON. */
  minimumBalance: bigint;
  /** How far below zero in-flight requests may take a balance. Defaults to 0.05 TON. */
  maxOverdraft: bigint;
  /** Text for `payment_method`. Defaults to a TON deposit with the account's deposit code as memo. */
  paymentMethod: string;
}

// Completion costs more than prompt because each generated token is a full sequential forward pass,
// while prompt tokens are processed in parallel batches; reasoning tokens are generated tokens too.
// A cached prompt token skips the forward pass (its KV is reused) and costs a tenth.
export const DEFAULT_MULTIPLIERS: Readonly<TokenMultipliers> = Object.freeze({ prompt: "1", completion: "4", reasoning: "4", cachedPrompt: "0.1" });
export const DEFAULT_MARKUP = "1.5";
export const DEFAULT_BASE_NANOTON = 20n;
export const DEFAULT_MINIMUM_BALANCE = 10_000_000n; // 0.01 TON
export const DEFAULT_MAX_OVERDRAFT = 50_000_000n; // 0.05 TON

export function pricingConfig(overrides: Partial<PricingConfig> = {}): PricingConfig {
  const c: PricingConfig = {
    baseNanoton: overrides.baseNanoton ?? DEFAULT_BASE_NANOTON,
    multipliers: { ...DEFAULT_MULTIPLIERS, ...overrides.multipliers },
    markup: overrides.markup ?? DEFAULT_MARKUP,
    models: { ...overrides.models },
    minimumBalance: overrides.minimumBalance ?? DEFAULT_MINIMUM_BALANCE,
    maxOverdraft: overrides.maxOverdraft ?? DEFAULT_MAX_OVERDRAFT,
    paymentMethod: overrides.paymentMethod ?? "TON transfer to the deposit wallet with your deposit code as the comment (memo)",
  };
  const checkBase = (what: string, b: bigint) => {
    if (b < 0n || b > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${what}: base price must be 0..2^53-1 nanoton, got ${b}`);
  };
  checkBase("default", c.baseNanoton);
  for (const [id, m] of Object.entries(c.models)) {
    checkBase(id, m.baseNanoton);
    for (const v of Object.values(m.multipliers ?? {})) parseDecimal(v);
  }
  for (const v of Object.values(c.multipliers)) parseDecimal(v);
  if (parseDecimal(c.markup).num === 0n) throw new RangeError("markup must be positive");
  if (c.minimumBalance < 0n || c.maxOverdraft < 0n) throw new RangeError("minimum balance and overdraft must not be negative");
  return c;
}

/** Exact value of a non-negative decimal string: num / den. */
export function parseDecimal(s: string): { num: bigint; den: bigint } {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) throw new RangeError(`not a non-negative decimal number: ${JSON.stringify(s)}`);
  const frac = m[2] ?? "";
  return { num: BigInt(m[1]! + frac), den: 10n ** BigInt(frac.length) };
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/**
 * base × multiplier × markup, computed exactly and rounded UP to a whole nanoton. Up, because a
 * published price must never be below base × multiplier × markup (we never sell under the configured
 * price), and because billing needs an integer per token: the rate is rounded once, here, and then
 * cost = Σ tokens × rate is exact, so anyone can recompute a bill from /v1/pricing and the usage.
 */
export function effectiveRate(base: bigint, multiplier: string, markup: string): bigint {
  if (base < 0n) throw new RangeError("base price must not be negative");
  const m = parseDecimal(multiplier);
  const k = parseDecimal(markup);
  return ceilDiv(base * m.num * k.num, m.den * k.den);
}

/** Effective nanoton per token, by token type. */
export interface Rates {
  prompt: bigint;
  completion: bigint;
  reasoning: bigint;
  cachedPrompt: bigint;
}

function modelPrice(config: PricingConfig, model: string | undefined): { base: bigint; multipliers: TokenMultipliers } {
  const m = model === undefined ? undefined : config.models[model];
  return { base: m?.baseNanoton ?? config.baseNanoton, multipliers: { ...config.multipliers, ...m?.multipliers } };
}

/** The rates billing uses for `model` (the default price when it has no entry or is omitted). */
export function ratesFor(config: PricingConfig, model?: string): Rates {
  const { base, multipliers: mu } = modelPrice(config, model);
  const rate = (x: string) => effectiveRate(base, x, config.markup);
  return { prompt: rate(mu.prompt), completion: rate(mu.completion), reasoning: rate(mu.reasoning), cachedPrompt: rate(mu.cachedPrompt) };
}

/** Token counts as reported in `usage` (the engine's Usage): cached ⊆ prompt, reasoning ⊆ completion. */
export type TokenCounts = Usage;

function count(name: string, n: number): bigint {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${n}`);
  return BigInt(n);
}

/** Cost in nanoton: uncached prompt, cached prompt, plain completion and reasoning tokens, each at its rate. */
export function costOf(rates: Rates, t: TokenCounts): bigint {
  const prompt = count("promptTokens", t.promptTokens);
  const cached = count("cachedTokens", t.cachedTokens);
  const completion = count("completionTokens", t.completionTokens);
  const reasoning = count("reasoningTokens", t.reasoningTokens);
  if (cached > prompt) throw new RangeError("cachedTokens exceeds promptTokens");
  if (reasoning > completion) throw new RangeError("reasoningTokens exceeds completionTokens");
  return (prompt - cached) * rates.prompt + cached * rates.cachedPrompt + (completion - reasoning) * rates.completion + reasoning * rates.reasoning;
}

const dearestOutput = (r: Rates) => (r.reasoning > r.completion ? r.reasoning : r.completion);

/** The most a request can cost: every prompt token uncached, every output token at the dearer output rate. */
export function maxCostOf(rates: Rates, promptTokens: number, maxCompletionTokens: number): bigint {
  return count("promptTokens", promptTokens) * rates.prompt + count("maxCompletionTokens", maxCompletionTokens) * dearestOutput(rates);
}

/**
 * How many output tokens a reservation of `reserved` nanoton still pays for after the prompt
 * (at the dearer output rate, so any mix of completion and reasoning tokens fits). Generation stops there.
 */
export function completionBudget(rates: Rates, reserved: bigint, promptTokens: number, cachedTokens = 0): number {
  const left = reserved - costOf(rates, { promptTokens, cachedTokens, completionTokens: 0, reasoningTokens: 0 });
  if (left <= 0n) return 0;
  const per = dearestOutput(rates);
  if (per === 0n) return Number.MAX_SAFE_INTEGER;
  const n = left / per;
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** nanoton as an exact TON decimal with all 9 places ("0.015000000", "-1.000000000"): stable for clients that compare strings. */
export function formatTon(nanoton: bigint): string {
  const neg = nanoton < 0n;
  const abs = neg ? -nanoton : nanoton;
  return `${neg ? "-" : ""}${abs / NANOTON_PER_TON}.${(abs % NANOTON_PER_TON).toString().padStart(9, "0")}`;
}

/** A TON amount ("0.01", "-2", "1.000000001") as exact nanoton; throws on anything else, or on more than 9 decimals. */
export function parseTon(s: string): bigint {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?$/.exec(s);
  if (!m) throw new RangeError(`not a TON amount with at most 9 decimals: ${JSON.stringify(s)}`);
  const v = BigInt(m[2]!) * NANOTON_PER_TON + BigInt((m[3] ?? "").padEnd(9, "0"));
  return m[1] ? -v : v;
}

interface TokenRateDoc {
  base_nanoton: number;
  multiplier: number;
  effective_nanoton: number;
}

interface RatesDoc {
  prompt_token: TokenRateDoc;
  completion_token: TokenRateDoc;
  reasoning_token: TokenRateDoc;
  cached_prompt_token: TokenRateDoc;
}

export interface PricingDocument {
  currency: "TON";
  unit: "nanoton";
  nanoton_per_ton: number;
  markup_multiplier: number;
  rates: RatesDoc;
  minimum_balance_ton: number;
  minimum_balance_nanoton: number;
  maximum_overdraft_ton: number;
  maximum_overdraft_nanoton: number;
  payment_method: string;
  models: { id: string; rates: RatesDoc }[];
}

function ratesDoc(config: PricingConfig, model: string | undefined): RatesDoc {
  const { base, multipliers: mu } = modelPrice(config, model);
  const r = ratesFor(config, model);
  // Multipliers are shown as JSON numbers (the seed's type); the integers are what billing uses.
  const one = (multiplier: string, effective: bigint): TokenRateDoc => ({ base_nanoton: Number(base), multiplier: Number(multiplier), effective_nanoton: Number(effective) });
  return {
    prompt_token: one(mu.prompt, r.prompt),
    completion_token: one(mu.completion, r.completion),
    reasoning_token: one(mu.reasoning, r.reasoning),
    cached_prompt_token: one(mu.cachedPrompt, r.cachedPrompt),
  };
}

/**
 * The body of GET /v1/pricing (seed 001's shape): `rates` are the default price; `models` lists the
 * rates of each model in `modelIds` and of each model with its own price. Plain JSON (no bigint).
 */
export function pricingDocument(config: PricingConfig, modelIds: readonly string[] = []): PricingDocument {
  const ids = [...new Set([...modelIds, ...Object.keys(config.models)])];
  return {
    currency: "TON",
    unit: "nanoton",
    nanoton_per_ton: Number(NANOTON_PER_TON),
    markup_multiplier: Number(config.markup),
    rates: ratesDoc(config, undefined),
    minimum_balance_ton: Number(formatTon(config.minimumBalance)),
    minimum_balance_nanoton: Number(config.minimumBalance),
    maximum_overdraft_ton: Number(formatTon(config.maxOverdraft)),
    maximum_overdraft_nanoton: Number(config.maxOverdraft),
    payment_method: config.paymentMethod,
    models: ids.map((id) => ({ id, rates: ratesDoc(config, id) })),
  };
}

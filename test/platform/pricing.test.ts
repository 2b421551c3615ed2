// Pricing: exact effective rates rounded up, cost as Σ tokens × published rates, TON formatting.
import { describe, expect, test } from "bun:test";
import {
  completionBudget,
  costOf,
  DEFAULT_MULTIPLIERS,
  effectiveRate,
  formatTon,
  maxCostOf,
  parseTon,
  pricingConfig,
  pricingDocument,
  ratesFor,
  type Rates,
} from "../../src/platform/pricing.ts";

describe("effectiveRate", () => {
  test("is base × multiplier × markup when that is a whole nanoton", () => {
    expect(effectiveRate(20n, "1", "1.5")).toBe(30n);
    expect(effectiveRate(20n, "4", "1.5")).toBe(120n);
    expect(effectiveRate(20n, "0.1", "1.5")).toBe(3n);
  });

  test("rounds a fraction of a nanoton up, never down", () => {
    expect(effectiveRate(1n, "0.1", "1.5")).toBe(1n); // 0.15
    expect(effectiveRate(7n, "0.1", "1.5")).toBe(2n); // 1.05
    expect(effectiveRate(1_000_000_001n, "1", "1.5")).toBe(1_500_000_002n); // …1.5
    expect(effectiveRate(0n, "4", "1.5")).toBe(0n);
  });

  test("is exact where floating point is not", () => {
    // 3 × 0.1 × 10 is 3.0000000000000004 in doubles, which would round up to 4.
    expect(Math.ceil(3 * 0.1 * 10)).toBe(4);
    expect(effectiveRate(3n, "0.1", "10")).toBe(3n);
  });

  test("accepts only non-negative decimal strings", () => {
    for (const bad of ["1e3", "-1", "", ".5", "1.", "0x10", " 1"]) expect(() => effectiveRate(1n, bad, "1.5")).toThrow(RangeError);
  });
});

describe("costOf", () => {
  const rates: Rates = { prompt: 30n, completion: 120n, reasoning: 150n, cachedPrompt: 3n };

  test("bills each token type at its own rate", () => {
    const t = { promptTokens: 0, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 };
    expect(costOf(rates, { ...t, promptTokens: 10 })).toBe(300n);
    expect(costOf(rates, { ...t, promptTokens: 10, cachedTokens: 10 })).toBe(30n);
    expect(costOf(rates, { ...t, completionTokens: 10 })).toBe(1200n);
    expect(costOf(rates, { ...t, completionTokens: 10, reasoningTokens: 10 })).toBe(1500n);
  });

  test("equals Σ tokens × published effective rate, per type, with cached ⊆ prompt and reasoning ⊆ completion", () => {
    const config = pricingConfig({ models: { big: { baseNanoton: 333n, multipliers: { reasoning: "5" } } } });
    const doc = pricingDocument(config, ["tiny"]);
    for (const id of ["tiny", "big"]) {
      const published = doc.models.find((m) => m.id === id)!.rates;
      const t = { promptTokens: 1234, cachedTokens: 234, completionTokens: 567, reasoningTokens: 67 };
      const expected =
        BigInt(1000 * published.prompt_token.effective_nanoton) +
        BigInt(234 * published.cached_prompt_token.effective_nanoton) +
        BigInt(500 * published.completion_token.effective_nanoton) +
        BigInt(67 * published.reasoning_token.effective_nanoton);
      expect(costOf(ratesFor(config, id), t)).toBe(expected);
    }
  });

  test("refuses impossible counts", () => {
    expect(() => costOf(rates, { promptTokens: 1, cachedTokens: 2, completionTokens: 0, reasoningTokens: 0 })).toThrow(RangeError);
    expect(() => costOf(rates, { promptTokens: 0, cachedTokens: 0, completionTokens: 1, reasoningTokens: 2 })).toThrow(RangeError);
    expect(() => costOf(rates, { promptTokens: -1, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 })).toThrow(RangeError);
    expect(() => costOf(rates, { promptTokens: 1.5, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 })).toThrow(RangeError);
  });

  test("maxCostOf bounds every outcome, and completionBudget is the most output a reservation pays for", () => {
    const worst = maxCostOf(rates, 100, 50);
    expect(worst).toBe(100n * 30n + 50n * 150n);
    expect(costOf(rates, { promptTokens: 100, cachedTokens: 0, completionTokens: 50, reasoningTokens: 50 })).toBe(worst);
    const reserved = 10_000n;
    const budget = completionBudget(rates, reserved, 100, 40);
    const spent = (n: number) => costOf(rates, { promptTokens: 100, cachedTokens: 40, completionTokens: n, reasoningTokens: n });
    expect(spent(budget)).toBeLessThanOrEqual(reserved);
    expect(spent(budget + 1)).toBeGreaterThan(reserved);
    expect(completionBudget(rates, 100n, 100)).toBe(0);
  });
});

describe("pricingDocument", () => {
  test("has seed 001's /v1/pricing shape with the default configuration", () => {
    const doc = pricingDocument(pricingConfig(), ["tiny"]);
    expect(doc).toEqual({
      currency: "TON",
      unit: "nanoton",
      nanoton_per_ton: 1_000_000_000,
      markup_multiplier: 1.5,
      rates: {
        prompt_token: { base_nanoton: 20, multiplier: 1, effective_nanoton: 30 },
        completion_token: { base_nanoton: 20, multiplier: 4, effective_nanoton: 120 },
        reasoning_token: { base_nanoton: 20, multiplier: 4, effective_nanoton: 120 },
        cached_prompt_token: { base_nanoton: 20, multiplier: 0.1, effective_nanoton: 3 },
      },
      minimum_balance_ton: 0.01,
      minimum_balance_nanoton: 10_000_000,
      maximum_overdraft_ton: 0.05,
      maximum_overdraft_nanoton: 50_000_000,
      payment_method: expect.stringContaining("deposit code"),
      models: [{ id: "tiny", rates: expect.any(Object) }],
    });
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc); // plain JSON: no bigint
    expect(DEFAULT_MULTIPLIERS).toEqual({ prompt: "1", completion: "4", reasoning: "4", cachedPrompt: "0.1" });
  });

  test("publishes exactly the integers billing uses, per model", () => {
    const config = pricingConfig({ markup: "1.25", models: { m: { baseNanoton: 7n } } });
    const r = ratesFor(config, "m");
    const doc = pricingDocument(config).models.find((x) => x.id === "m")!.rates;
    expect([doc.prompt_token, doc.completion_token, doc.reasoning_token, doc.cached_prompt_token].map((x) => BigInt(x.effective_nanoton))).toEqual([
      r.prompt,
      r.completion,
      r.reasoning,
      r.cachedPrompt,
    ]);
    expect(r).toEqual({ prompt: 9n, completion: 35n, reasoning: 35n, cachedPrompt: 1n }); // 8.75, 35, 35, 0.875
  });

  test("rejects a bad configuration", () => {
    expect(() => pricingConfig({ markup: "0" })).toThrow(RangeError);
    expect(() => pricingConfig({ multipliers: { ...DEFAULT_MULTIPLIERS, prompt: "1.5x" } })).toThrow(RangeError);
    expect(() => pricingConfig({ baseNanoton: -1n })).toThrow(RangeError);
  });
});

describe("TON amounts", () => {
  test("formatTon writes all nine decimals exactly", () => {
    expect(formatTon(15_000_000n)).toBe("0.015000000");
    expect(formatTon(1_500_000_000n)).toBe("1.500000000");
    expect(formatTon(0n)).toBe("0.000000000");
    expect(formatTon(-50_000_000n)).toBe("-0.050000000");
    expect(formatTon(123_456_789_012_345_678_901n)).toBe("123456789012.345678901");
  });

  test("parseTon reads exact nanoton and round-trips with formatTon", () => {
    expect(parseTon("0.01")).toBe(10_000_000n);
    expect(parseTon("1")).toBe(1_000_000_000n);
    expect(parseTon("0.000000001")).toBe(1n);
    expect(parseTon("-2.5")).toBe(-2_500_000_000n);
    for (const n of [0n, 1n, 999_999_999n, 10n ** 20n + 7n, -42n]) expect(parseTon(formatTon(n))).toBe(n);
  });

  test("parseTon rejects more than nine decimals and anything not a plain decimal", () => {
    for (const bad of ["0.0000000001", "1e-3", "", "1.", ".5", "1,5", "0x1", " 1", "+1", "NaN"]) expect(() => parseTon(bad)).toThrow(RangeError);
  });
});

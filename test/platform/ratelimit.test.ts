// Rate limits per key: exact admission under concurrency, headers counting down, fixed-window resets.
import { describe, expect, test } from "bun:test";
import { DEFAULT_RATE_LIMITS, limitsFor, RateLimiter } from "../../src/platform/ratelimit.ts";

const T0 = Date.UTC(2026, 2, 23, 10, 0, 0); // on a minute boundary
const limits = { rpm: 60, tpm: 150_000, rpd: 3_500 };

test("defaults are 60 requests/min, 150,000 tokens/min, 3,500 requests/day, overridable per key", () => {
  expect(DEFAULT_RATE_LIMITS).toEqual(limits);
  expect(limitsFor({ rpm: 5, tpm: null, rpd: null })).toEqual({ rpm: 5, tpm: 150_000, rpd: 3_500 });
  expect(limitsFor(null, { rpm: 1, tpm: 2, rpd: 3 })).toEqual({ rpm: 1, tpm: 2, rpd: 3 });
});

describe("RateLimiter", () => {
  test("100 simultaneous requests against a limit of 60 admit exactly 60", async () => {
    const rl = new RateLimiter();
    const results = await Promise.all(
      Array.from({ length: 100 }, async () => {
        await Promise.resolve();
        return rl.admit(1, limits, T0 + 5_000).ok;
      }),
    );
    expect(results.filter(Boolean)).toHaveLength(60);
  });

  test("headers name the limit, count down, and give the minute's reset in unix seconds", () => {
    const rl = new RateLimiter();
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const a = rl.admit(7, limits, T0 + 1_000 + i);
      expect(a.ok).toBe(true);
      expect(a.headers["X-RateLimit-Limit"]).toBe("60");
      expect(a.headers["X-RateLimit-Reset"]).toBe(String((T0 + 60_000) / 1000));
      remaining.push(a.headers["X-RateLimit-Remaining"]!);
    }
    expect(remaining).toEqual(["59", "58", "57"]);
  });

  test("a refusal carries Retry-After until the window ends, and the next minute admits again", () => {
    const rl = new RateLimiter();
    const small = { rpm: 2, tpm: 1_000, rpd: 100 };
    expect(rl.admit(1, small, T0 + 10_000).ok).toBe(true);
    expect(rl.admit(1, small, T0 + 10_000).ok).toBe(true);
    const refused = rl.admit(1, small, T0 + 45_500);
    expect(refused).toEqual({
      ok: false,
      retryAfterSeconds: 15,
      headers: { "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": String((T0 + 60_000) / 1000), "Retry-After": "15" },
      limit: "rpm",
      counter: 0,
    });
    expect(rl.admit(1, small, T0 + 59_999).ok).toBe(false);
    const next = rl.admit(1, small, T0 + 60_000);
    expect(next.ok).toBe(true);
    expect(next.headers["X-RateLimit-Remaining"]).toBe("1");
  });

  test("keys are limited independently", () => {
    const rl = new RateLimiter();
    const one = { rpm: 1, tpm: 1_000, rpd: 100 };
    expect(rl.admit(1, one, T0).ok).toBe(true);
    expect(rl.admit(1, one, T0).ok).toBe(false);
    expect(rl.admit(2, one, T0).ok).toBe(true);
  });

  test("tokens/minute refuses once the minute's tokens reached the limit, and becomes the binding header", () => {
    const rl = new RateLimiter();
    const l = { rpm: 60, tpm: 1_000, rpd: 3_500 };
    expect(rl.admit(3, l, T0).ok).toBe(true);
    rl.addTokens(3, 900, T0 + 1);
    const a = rl.admit(3, l, T0 + 2);
    expect(a.ok).toBe(true);
    expect(a.headers).toMatchObject({ "X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "100" });
    rl.addTokens(3, 100, T0 + 3);
    const refused = rl.admit(3, l, T0 + 30_000);
    expect(refused.ok).toBe(false);
    expect(refused.headers).toMatchObject({ "X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0", "Retry-After": "30" });
    expect(rl.admit(3, l, T0 + 60_000).ok).toBe(true);
  });

  test("requests/day holds across minutes and resets at UTC midnight", () => {
    const rl = new RateLimiter();
    const l = { rpm: 60, tpm: 150_000, rpd: 3 };
    for (let i = 0; i < 3; i++) expect(rl.admit(4, l, T0 + i * 60_000).ok).toBe(true);
    const refused = rl.admit(4, l, T0 + 10 * 60_000);
    const midnight = Date.UTC(2026, 2, 24);
    expect(refused).toMatchObject({ ok: false, retryAfterSeconds: (midnight - (T0 + 10 * 60_000)) / 1000 });
    expect(refused.headers).toMatchObject({ "X-RateLimit-Limit": "3", "X-RateLimit-Reset": String(midnight / 1000) });
    expect(rl.admit(4, l, midnight).ok).toBe(true);
  });

  test("headers() reports without counting a request", () => {
    const rl = new RateLimiter();
    rl.admit(5, limits, T0);
    expect(rl.headers(5, limits, T0)["X-RateLimit-Remaining"]).toBe("59");
    expect(rl.headers(5, limits, T0)["X-RateLimit-Remaining"]).toBe("59");
  });

  test("memory stays bounded: keys idle since a previous day are dropped, and a cap evicts the least recent", () => {
    const rl = new RateLimiter({ maxKeys: 100 });
    for (let k = 0; k < 250; k++) rl.admit(k, limits, T0);
    expect(rl.size).toBe(100);
    rl.admit(1_000, limits, T0 + 86_400_000); // the next day: the sweep drops yesterday's keys
    expect(rl.size).toBe(1);
  });
});

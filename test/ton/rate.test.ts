// The TON/USD rate source: the two accepted JSON shapes, the one-minute cache, null when unreachable.
import { afterAll, describe, expect, test } from "bun:test";
import { parseRate, TonUsdRate } from "../../src/ton/rate.ts";
import { freePort } from "../support/server.ts";

let body: unknown = { "the-open-network": { usd: 3.21 } };
let status = 200;
let hits = 0;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: async (req) => {
    if (new URL(req.url).pathname === "/hang") {
      await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
      return new Response("");
    }
    hits++;
    return Response.json(body, { status });
  },
});
afterAll(() => server.stop(true));
const url = `http://127.0.0.1:${server.port}/`;

describe("parseRate", () => {
  test("accepts CoinGecko's shape and a plain {usd}, nothing else", () => {
    expect(parseRate({ "the-open-network": { usd: 1.302 } })).toBe(1.302);
    expect(parseRate({ usd: 5 })).toBe(5);
    for (const bad of [null, 3, "3", {}, { usd: "1.3" }, { usd: -1 }, { usd: 0 }, { usd: Infinity }, { "the-open-network": { eur: 1 } }, { price: 1.3 }]) {
      expect(parseRate(bad)).toBeNull();
    }
  });
});

describe("TonUsdRate", () => {
  test("fetches once per minute and serves the cached value in between", async () => {
    let now = 1_000_000;
    const rate = new TonUsdRate({ url, now: () => now });
    hits = 0;
    body = { "the-open-network": { usd: 3.21 } };
    expect(await rate.get()).toBe(3.21);
    body = { usd: 4 };
    now += 59_000;
    expect(await rate.get()).toBe(3.21);
    expect(hits).toBe(1);
    now += 2_000;
    expect(await rate.get()).toBe(4);
    expect(hits).toBe(2);
  });

  test("a failing source keeps the last rate for a while, then null; it is retried later, not on every call", async () => {
    let now = 5_000_000;
    const rate = new TonUsdRate({ url, now: () => now, ttlMs: 60_000, retryMs: 30_000 });
    body = { usd: 2 };
    status = 200;
    expect(await rate.get()).toBe(2);
    status = 503;
    now += 61_000;
    hits = 0;
    expect(await rate.get()).toBe(2); // stale but within two minutes
    expect(rate.lastError).toContain("HTTP 503");
    expect(await rate.get()).toBe(2);
    expect(hits).toBe(1);
    now += 60_000;
    expect(await rate.get()).toBeNull();
    status = 200;
    body = { usd: 2.2 };
    now += 31_000;
    expect(await rate.get()).toBe(2.2);
  });

  test("get(waitMs) answers within waitMs while the source hangs; the fetch gives up on its own timeout", async () => {
    const slow = new TonUsdRate({ url: `${url}hang`, timeoutMs: 400 });
    const t0 = performance.now();
    expect(await slow.get(50)).toBeNull();
    expect(performance.now() - t0).toBeLessThan(300);
    expect(await slow.get()).toBeNull(); // waits for the same fetch to time out
    expect(slow.lastError).toMatch(/timed out|abort/i);
  });

  test("an unreachable URL or garbage is null, never a throw", async () => {
    const down = new TonUsdRate({ url: `http://127.0.0.1:${freePort()}/`, timeoutMs: 500 });
    expect(await down.get()).toBeNull();
    expect(down.peek()).toBeNull();
    body = "not a price";
    const garbage = new TonUsdRate({ url });
    expect(await garbage.get()).toBeNull();
    expect(garbage.lastError).toContain("no positive usd price");
  });
});

// Key budgets, expiry, concurrency caps and rate limits on the real inference path (the tiny model):
// hundreds of concurrent requests on one key never spend a nanoton over its limits, the ledger adds
// up, an expired key is a 401 key_expired, a key at its rpm limit still reads its balance and usage,
// and many keys of one account share the account's rate limit.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { Platform } from "../../src/platform/service.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey, keyInfoById, setKeyLimits } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { changeAccountLimits } from "../../src/platform/operations.ts";
import { parseTon, pricingConfig } from "../../src/platform/pricing.ts";
import type { KeyLimits } from "../../src/platform/limits.ts";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

setDefaultTimeout(180_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-key-limits-"));
const db = openStore(join(dir, "limits.sqlite"));
// A high price, so that a budget of a few requests is a round number of nanoton.
const pricing = pricingConfig({ baseNanoton: 1_000n });
const platform = new Platform(db, { auth: true, adminToken: "", pricing, rateLimits: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 }, signupCredit: 0n });
let app: InProcessApp;

beforeAll(async () => {
  app = await startInProcessApp({ platform, maxQueue: 1000 });
});
afterAll(() => {
  app.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function key(limits: Partial<KeyLimits> = {}, balanceTon = "10"): { accountId: number; key: string; keyId: number } {
  const a = createAccount(db);
  credit(db, a.id, parseTon(balanceTon), "adjustment", `test:${a.id}`);
  const k = createKey(db, a.id, null, Date.now(), limits);
  return { accountId: a.id, key: k.key, keyId: k.id };
}

const chat = (k: string, body: Record<string, unknown> = {}) =>
  app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${k}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "Hello there" }], temperature: 0, max_tokens: 8, ...body }),
  });

const get = (path: string, k: string) => app.request(path, { headers: { authorization: `Bearer ${k}` } });

const usageCost = (keyId: number) => db.query<{ c: bigint }, [number]>("SELECT coalesce(sum(cost_nanoton), 0) AS c FROM usage WHERE key_id = ?").get(keyId)!.c;

async function storm(k: string, n: number): Promise<{ statuses: Record<string, number>; codes: Record<string, number> }> {
  const results = await Promise.all(
    Array.from({ length: n }, async () => {
      const res = await chat(k);
      const body = (await res.json()) as { error?: { code: string } };
      return { status: res.status, code: body.error?.code ?? "ok" };
    }),
  );
  const statuses: Record<string, number> = {};
  const codes: Record<string, number> = {};
  for (const r of results) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    codes[r.code] = (codes[r.code] ?? 0) + 1;
  }
  return { statuses, codes };
}

/** Waits until the current UTC minute has at least `ms` left (rate-limit windows reset on it). */
async function clearOfMinute(ms: number): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < ms) await Bun.sleep(left + 50);
}

describe("key budgets under concurrency", () => {
  test("300 concurrent requests on a key with max_budget: never a nanoton over it, 402 budget_exceeded past it, the books add up", async () => {
    const budget = 1_000_000n;
    const k = key({ maxBudget: budget });
    const { statuses, codes } = await storm(k.key, 300);
    expect(Object.keys(statuses).sort()).toEqual(["200", "402"]);
    expect(codes.budget_exceeded).toBeGreaterThan(0);
    const spent = usageCost(k.keyId);
    expect(spent).toBeLessThanOrEqual(budget);
    expect(spent).toBeGreaterThan(0n);
    // The key's cached spend is its usage, nothing stays held, and every account's books balance.
    expect(keyInfoById(db, k.keyId)!.spend).toBe(spent);
    expect(db.query("SELECT count(*) AS n FROM reservations WHERE key_id = ? AND closed_at IS NULL").get(k.keyId)).toEqual({ n: 0n });
    expect(checkInvariants(db, pricing.maxOverdraft)).toEqual([]);
    // The account's balance paid exactly what the key spent.
    expect(db.query<{ b: bigint }, [number]>("SELECT balance_nanoton AS b FROM accounts WHERE id = ?").get(k.accountId)!.b).toBe(parseTon("10") - spent);
  });

  test("300 concurrent requests on a key with a daily budget and max_parallel_requests 3: within both, 429 max_parallel_requests_exceeded beyond", async () => {
    const budget = 800_000n;
    const k = key({ periodBudget: budget, budgetDuration: "day", maxParallelRequests: 3 });
    const { codes } = await storm(k.key, 300);
    expect(codes.max_parallel_requests_exceeded).toBeGreaterThan(0);
    expect(codes.ok).toBeGreaterThan(0);
    const spent = usageCost(k.keyId);
    expect(spent).toBeLessThanOrEqual(budget);
    const info = keyInfoById(db, k.keyId)!;
    expect([info.spend, info.periodSpend]).toEqual([spent, spent]);
    expect(checkInvariants(db, pricing.maxOverdraft)).toEqual([]);
    // Spent up: the next request is refused by the budget, and says when it resets.
    for (let i = 0; i < 20 && usageCost(k.keyId) + 350_000n < budget; i++) await chat(k.key);
    const refused = await chat(k.key, { max_tokens: 200 });
    if (refused.status === 402) {
      const e = ((await refused.json()) as { error: { code: string; message: string } }).error;
      expect(e.code).toBe("budget_exceeded");
      expect(e.message).toContain("resets at");
    } else {
      // Room for a little: the reply is capped by the key's budget, and says so.
      expect(refused.status).toBe(200);
      expect(refused.headers.get("x-cocoon-capped-by")).toBe("key_budget");
    }
  });
});

describe("expiry", () => {
  test("an expired key gets 401 key_expired on inference and account routes; a key expiring later works", async () => {
    const k = key({ expiresAt: Date.now() - 1 });
    const res = await chat(k.key);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string; type: string } }).error).toMatchObject({ code: "key_expired", type: "invalid_auth" });
    const bal = await get("/v1/balance", k.key);
    expect(bal.status).toBe(401);
    expect(((await bal.json()) as { error: { code: string } }).error.code).toBe("key_expired");
    // The operator extends it: it works again.
    setKeyLimits(db, null, k.keyId, { expiresAt: Date.now() + 60_000 });
    expect((await chat(k.key)).status).toBe(200);
  });
});

describe("rate-limit scope", () => {
  test("a key at its rpm limit gets 429 rpm_limit_exceeded on chat, yet 200 on /v1/balance and /v1/usage", async () => {
    await clearOfMinute(20_000);
    const k = key({ rpm: 2 });
    expect((await chat(k.key)).status).toBe(200);
    const second = await chat(k.key);
    expect(second.status).toBe(200);
    expect(second.headers.get("x-ratelimit-limit")).toBe("2");
    expect(second.headers.get("x-ratelimit-remaining")).toBe("0");
    const limited = await chat(k.key);
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "rpm_limit_exceeded", message: expect.stringContaining("this API key") });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    for (const path of ["/v1/balance", "/v1/usage", "/v1/keys"]) {
      const res = await get(path, k.key);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
    const usage = (await (await get("/v1/usage", k.key)).json()) as { data: unknown[] };
    expect(usage.data).toHaveLength(2);
  });

  test("limits bind per account: 10 keys of an account limited to 5 rpm get 5 requests in all, with 429s naming the account", async () => {
    await clearOfMinute(20_000);
    const first = key();
    changeAccountLimits(db, first.accountId, { rpm: 5 }, "test");
    const keys = [first.key, ...Array.from({ length: 9 }, () => createKey(db, first.accountId).key)];
    const results = await Promise.all(keys.flatMap((k) => [chat(k, { max_tokens: 1 }), chat(k, { max_tokens: 1 })]));
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    expect([ok, limited.length]).toEqual([5, 15]);
    const e = ((await limited[0]!.json()) as { error: { code: string; message: string } }).error;
    expect(e).toMatchObject({ code: "rpm_limit_exceeded", message: expect.stringContaining("this account") });
    // Another account is not affected.
    expect((await chat(key().key, { max_tokens: 1 })).status).toBe(200);
  });
});

describe("capped by the budget, said so", () => {
  // Room for the prompt's worst case and a few dozen tokens: max_tokens 200 is capped.
  const capped = () => key({ maxBudget: 300_000n }).key;
  // A prompt whose worst case leaves the budget a few tokens, like the chat ones.
  const long = "Once upon a time ".repeat(9);
  const post = (path: string, k: string, body: unknown, headers: Record<string, string> = {}) =>
    app.request(path, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${k}`, ...headers }, body: JSON.stringify(body) });
  type Capped = { capped_by?: string; capped_max_tokens?: number };

  test("chat, completions, Responses, Messages and seed 003 say the key's budget capped max_tokens: a header and usage fields", async () => {
    const chatRes = await chat(capped(), { max_tokens: 200 });
    expect(chatRes.status).toBe(200);
    expect(chatRes.headers.get("x-cocoon-capped-by")).toBe("key_budget");
    const chatUsage = ((await chatRes.json()) as { usage: Capped & { completion_tokens: number } }).usage;
    expect(chatUsage.capped_by).toBe("key_budget");
    expect(chatUsage.capped_max_tokens).toBe(Number(chatRes.headers.get("x-cocoon-capped-max-tokens")));
    expect(chatUsage.capped_max_tokens!).toBeLessThan(200);
    expect(chatUsage.completion_tokens).toBeLessThanOrEqual(chatUsage.capped_max_tokens!);

    const streamed = await (await chat(capped(), { max_tokens: 200, stream: true, stream_options: { include_usage: true } })).text();
    expect(streamed).toContain('"capped_by":"key_budget"');

    const comp = await post("/v1/completions", capped(), { prompt: long, max_tokens: 200 });
    expect(comp.headers.get("x-cocoon-capped-by")).toBe("key_budget");
    expect(((await comp.json()) as { usage: Capped }).usage.capped_by).toBe("key_budget");

    const resp = await post("/v1/responses", capped(), { input: "Hello there", max_output_tokens: 200 });
    expect(resp.status).toBe(200);
    expect(resp.headers.get("x-cocoon-capped-by")).toBe("key_budget");
    expect(((await resp.json()) as { usage: Capped }).usage.capped_by).toBe("key_budget");

    const msg = await post("/v1/messages", capped(), { model: "tiny-qwen3", max_tokens: 200, messages: [{ role: "user", content: "Hello there" }] }, { "anthropic-version": "2023-06-01" });
    expect(msg.status).toBe(200);
    expect(msg.headers.get("x-cocoon-capped-by")).toBe("key_budget");
    expect(((await msg.json()) as { usage: Capped }).usage.capped_by).toBe("key_budget");
    const msgStream = await (await post("/v1/messages", capped(), { model: "tiny-qwen3", max_tokens: 200, stream: true, messages: [{ role: "user", content: "Hello" }] }, { "anthropic-version": "2023-06-01" })).text();
    expect(msgStream).toContain('"capped_by":"key_budget"');
    expect(msgStream).toContain(": X-Cocoon-Capped-By: key_budget");

    const seed = await post("/completions", capped(), { model: "tiny-qwen3", prompt: long, max_tokens: 200 });
    expect(seed.status).toBe(200);
    expect(seed.headers.get("x-cocoon-capped-by")).toBe("key_budget");

    // Uncapped: no header, no field.
    const plain = await chat(key().key, { max_tokens: 4 });
    expect(plain.headers.get("x-cocoon-capped-by")).toBeNull();
    expect(((await plain.json()) as { usage: Capped }).usage.capped_by).toBeUndefined();
  });
});

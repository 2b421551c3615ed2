// Billing on the real inference path: reservations, exact charges by token type, 402, cancellation,
// concurrency, and the ledger invariant after a storm of billed requests.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { Platform } from "../../src/platform/service.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { parseTon, pricingConfig } from "../../src/platform/pricing.ts";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(120_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-billing-"));
const db = openStore(join(dir, "billing.sqlite"));
// A high base price makes the balances in these tests run out within a few hundred tokens.
const pricing = pricingConfig({ baseNanoton: 100_000n });
const platform = new Platform(db, { auth: true, adminToken: "", pricing, rateLimits: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 }, signupCredit: 0n });
let app: InProcessApp;

beforeAll(async () => {
  app = await startInProcessApp({ platform, maxQueue: 1000 });
});
afterAll(() => {
  app.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function account(balanceTon: string): { id: number; key: string; keyId: number } {
  const a = createAccount(db);
  const k = createKey(db, a.id);
  if (balanceTon !== "0") credit(db, a.id, parseTon(balanceTon), "adjustment", `test:${a.id}`);
  return { id: a.id, key: k.key, keyId: k.id };
}

const chat = (key: string, body: Record<string, unknown>, signal?: AbortSignal) =>
  app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "Hello there" }], temperature: 0, ...body }),
    signal,
  });

interface Rates {
  prompt_token: { effective_nanoton: number };
  completion_token: { effective_nanoton: number };
  reasoning_token: { effective_nanoton: number };
  cached_prompt_token: { effective_nanoton: number };
}

describe("billing", () => {
  test("a request costs exactly its tokens times the published effective rates, by type", async () => {
    const a = account("1");
    const doc = (await (await app.request("/v1/pricing")).json()) as { rates: Rates };
    for (const body of [{ max_tokens: 6 }, { max_tokens: 6 }]) {
      const r = await chat(a.key, body);
      expect(r.status).toBe(200);
      const j = (await r.json()) as {
        usage: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number }; completion_tokens_details: { reasoning_tokens: number }; cost: { nanoton: number; ton: string } };
      };
      const u = j.usage;
      const cached = u.prompt_tokens_details.cached_tokens;
      const reasoning = u.completion_tokens_details.reasoning_tokens;
      const expected =
        (u.prompt_tokens - cached) * doc.rates.prompt_token.effective_nanoton +
        cached * doc.rates.cached_prompt_token.effective_nanoton +
        (u.completion_tokens - reasoning) * doc.rates.completion_token.effective_nanoton +
        reasoning * doc.rates.reasoning_token.effective_nanoton;
      expect(u.cost.nanoton).toBe(expected);
      expect(r.headers.get("x-cocoon-cost-nanoton")).toBe(String(expected));
      expect(r.headers.get("x-ratelimit-limit")).not.toBeNull();
    }
    // The second identical request reused the prompt: cached tokens were billed at the cached rate.
    const usage = (await (await app.request("/v1/usage", { headers: { authorization: `Bearer ${a.key}` } })).json()) as { data: { cached_tokens: number }[] };
    expect(usage.data.length).toBe(2);
    expect(usage.data[0]!.cached_tokens).toBeGreaterThan(0);
  });

  test("below the minimum balance a request is refused with 402, and a missing key with 401", async () => {
    const poor = account("0");
    const r = await chat(poor.key, { max_tokens: 4 });
    expect(r.status).toBe(402);
    const body = (await r.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error.type).toBe("insufficient_balance");
    expect(body.error.code).toBe("insufficient_balance");
    expect(body.error.message).toContain("Insufficient balance: 0.0000 TON. Minimum: 0.01 TON");
    expect((await chat("ck_not_a_real_key", { max_tokens: 4 })).status).toBe(401);
    const none = await app.request("/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(none.status).toBe(401);
  });

  test("a stream carries its cost in the usage chunk", async () => {
    const a = account("1");
    const r = await chat(a.key, { max_tokens: 5, stream: true, stream_options: { include_usage: true } });
    const text = await r.text();
    const chunks = text.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)));
    const last = chunks.at(-1) as { choices: unknown[]; usage: { cost: { nanoton: number }; completion_tokens: number } };
    expect(last.choices).toEqual([]);
    expect(last.usage.completion_tokens).toBe(5);
    expect(last.usage.cost.nanoton).toBeGreaterThan(0);
  });

  test("a small balance caps generation: finish_reason length, and the balance never passes -overdraft", async () => {
    const a = account("0.0105"); // just above the 0.01 minimum; the overdraft adds 0.05
    const r = await chat(a.key, { max_tokens: 500, ignore_eos: true });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    expect(j.choices[0]!.finish_reason).toBe("length");
    // 0.0605 TON of spendable money buys far fewer than 500 tokens at 600,000 nanoton each.
    expect(j.usage.completion_tokens).toBeGreaterThan(0);
    expect(j.usage.completion_tokens).toBeLessThan(101);
    const b = platform.balance(a.id)!;
    expect(b.reserved).toBe(0n);
    expect(b.balance >= -pricing.maxOverdraft).toBe(true);
  });

  test("a completions request whose last prompt fails is refused whole and charges nothing", async () => {
    const a = account("1");
    const before = platform.balance(a.id)!.balance;
    const r = await app.request("/v1/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${a.key}` },
      body: JSON.stringify({ prompt: ["a b c", "d e f", "hello ".repeat(1100)], max_tokens: 20, temperature: 0 }),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("context_length_exceeded");
    await Bun.sleep(100);
    const after = platform.balance(a.id)!;
    expect(after.balance).toBe(before);
    expect(after.reserved).toBe(0n);
  });

  test("a prompt-only request (embeddings) needs its whole cost reserved: no free tokens beyond the hold", async () => {
    const a = account("0.0101");
    const principal = { accountId: a.id, keyId: a.keyId, limits: { rpm: 1000, tpm: 1_000_000, rpd: 1000 } };
    // A long generation holds nearly all the account may spend.
    const chat = await platform.begin(principal, { model: "tiny-qwen3", endpoint: "chat", promptTokensUpperBound: 10, maxTokens: 99, n: 1, requestGuid: null });
    await expect(platform.begin(principal, { model: "tiny-qwen3", endpoint: "embedding", promptTokensUpperBound: 100_000, maxTokens: 0, n: 1, requestGuid: null, generates: false })).rejects.toThrow(
      /Insufficient balance/,
    );
    await platform.finish(chat.ticket, null, "cancelled");
    expect(platform.balance(a.id)!.reserved).toBe(0n);
  });

  test("500 concurrent billed requests from 20 accounts, a third aborted mid-stream: the ledger adds up", async () => {
    const accounts = Array.from({ length: 20 }, (_, i) => account(i % 5 === 0 ? "0.0101" : "0.5"));
    const runs = Array.from({ length: 500 }, async (_, i) => {
      const a = accounts[i % accounts.length]!;
      const ac = new AbortController();
      const abort = i % 3 === 0;
      try {
        const r = await chat(a.key, { max_tokens: abort ? 60 : 6, stream: true, ignore_eos: abort }, ac.signal);
        if (!r.body) return r.status;
        const reader = r.body.getReader();
        if (abort) {
          await reader.read();
          ac.abort();
          await reader.cancel().catch(() => {});
        } else {
          while (!(await reader.read()).done);
        }
        return r.status;
      } catch {
        return -1;
      }
    });
    const statuses = await Promise.all(runs);
    // Most are served; the tiny balances run out and get 402 part-way.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(150);
    expect(statuses.filter((s) => s === 402).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 402 || s === -1)).toBe(true);
    // Settlement of aborted streams finishes as their generations wind down.
    for (let i = 0; i < 100 && app.engine.stats()[0]!.slotsBusy + app.engine.stats()[0]!.queued > 0; i++) await Bun.sleep(50);
    await Bun.sleep(200);
    expect(checkInvariants(db, pricing.maxOverdraft)).toEqual([]);
    const open = db.query("SELECT COUNT(*) AS n FROM reservations WHERE closed_at IS NULL").get() as { n: bigint };
    expect(Number(open.n)).toBe(0);
    for (const a of accounts) {
      const sums = db
        .query("SELECT COALESCE(SUM(amount_nanoton), 0) AS s FROM ledger WHERE account_id = ? AND kind IN ('deposit','adjustment','charge')")
        .get(a.id) as { s: bigint };
      const b = platform.balance(a.id)!;
      expect(b.balance).toBe(BigInt(sums.s));
      expect(b.balance >= -pricing.maxOverdraft).toBe(true);
    }
    const orphanCharges = db.query("SELECT COUNT(*) AS n FROM ledger l WHERE kind = 'charge' AND NOT EXISTS (SELECT 1 FROM usage u WHERE u.id = l.reference)").get() as { n: bigint };
    expect(Number(orphanCharges.n)).toBe(0);
    const cancelled = db.query("SELECT COUNT(*) AS n FROM usage WHERE status = 'cancelled'").get() as { n: bigint };
    expect(Number(cancelled.n)).toBeGreaterThan(0);
  });
});

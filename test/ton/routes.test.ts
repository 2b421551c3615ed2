// The deposit side of the HTTP API in-process: /v1/deposit with and without a wallet, /v1/balance's
// USD figures, /v1/deposits, the admin list and assignment of unmatched transfers, and the watcher's
// state in /jsonstats and /metrics.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Server } from "bun";
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { Platform } from "../../src/platform/service.ts";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { parseTon, pricingConfig } from "../../src/platform/pricing.ts";
import { openTon, type TonSetup } from "../../src/ton/open.ts";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";
import { ToncenterStandIn } from "../support/toncenter.ts";

setDefaultTimeout(60_000);

const ADMIN = "admin-token-for-tests";
const dir = mkdtempSync(join(tmpdir(), "cocoon-ton-routes-"));
let db: Database;
let api: ToncenterStandIn;
let ton: TonSetup;
let h: InProcessApp;
let rateServer: Server<undefined>;
let rateBody: unknown = { "the-open-network": { usd: 2.5 } };
let rateHits = 0;

const tonConfig = (over: Record<string, unknown> = {}) => ({
  tonWallet: api.wallet.toRawString(),
  tonNetwork: "mainnet",
  tonApi: api.url,
  tonApiKey: "",
  tonPollInterval: 0.05,
  tonApiTimeout: 2,
  tonPageSize: 10,
  tonMinDeposit: "0.05",
  tonUsdRateUrl: `http://127.0.0.1:${rateServer.port}/price`,
  ...over,
});

beforeAll(async () => {
  rateServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => {
      rateHits++;
      return Response.json(rateBody);
    },
  });
  api = new ToncenterStandIn().start();
  db = openStore(join(dir, "routes.sqlite"));
  const platform = new Platform(db, { auth: true, adminToken: ADMIN, pricing: pricingConfig(), rateLimits: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 }, signupCredit: 0n });
  ton = openTon(tonConfig(), db);
  h = await startInProcessApp({ platform, ton, slots: 1 });
});
afterAll(async () => {
  h?.close();
  await ton?.watcher?.stop();
  await api?.stop();
  await rateServer?.stop(true);
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, key?: string) => h.request(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
const post = (path: string, body: unknown, key?: string) =>
  h.request(path, { method: "POST", headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body) });

async function register(): Promise<{ key: string; code: string; id: number; wallet: string | null }> {
  const r = await post("/api/register", {});
  expect(r.status).toBe(200);
  const j = (await r.json()) as { api_key: string; deposit_code: string; account_id: number; deposit_wallet: string | null };
  return { key: j.api_key, code: j.deposit_code, id: j.account_id, wallet: j.deposit_wallet };
}

describe("/v1/deposit", () => {
  test("gives the non-bounceable wallet, the memo, the minimum and a ton://transfer link with the memo", async () => {
    const u = await register();
    const wallet = api.wallet.toString({ bounceable: false, urlSafe: true });
    expect(u.wallet).toBe(wallet);
    const r = await get("/v1/deposit", u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-ratelimit-limit")).not.toBeNull();
    const j = (await r.json()) as Record<string, unknown>;
    expect(j).toMatchObject({
      wallet,
      memo: u.code,
      link: `ton://transfer/${wallet}?text=${u.code}`,
      deposits_enabled: true,
      minimum_deposit_ton: "0.050000000",
      minimum_deposit_nanoton: 50_000_000,
    });
    expect(j.instructions).toContain(wallet);
    expect(j.instructions).toContain(u.code);
    expect(j.instructions).toContain("at least 0.05 TON");
  });

  test("without a wallet it answers 200 with deposits_enabled false, null wallet and link, and says so", async () => {
    const off = openTon(tonConfig({ tonWallet: "" }), db);
    expect(off.watcher).toBeNull();
    const app2 = await startInProcessApp({ platform: new Platform(db, { auth: true, adminToken: "", pricing: pricingConfig(), rateLimits: { rpm: 1000, tpm: 1_000_000, rpd: 100_000 }, signupCredit: 0n }), ton: off, slots: 1 });
    try {
      const reg = (await (await app2.request("/api/register", { method: "POST" })).json()) as { api_key: string; deposit_wallet: unknown; deposit_instructions: string };
      expect(reg.deposit_wallet).toBeNull();
      const j = (await (await app2.request("/v1/deposit", { headers: { authorization: `Bearer ${reg.api_key}` } })).json()) as Record<string, unknown>;
      expect(j).toMatchObject({ wallet: null, link: null, deposits_enabled: false, minimum_deposit_ton: null });
      expect(String(j.instructions)).toMatch(/Deposits are not enabled on this server/);
      const stats = (await (await app2.request("/jsonstats")).json()) as { ton_watcher: unknown };
      expect(stats.ton_watcher).toBeNull();
    } finally {
      app2.close();
    }
  });

  test("needs a key", async () => {
    const r = await get("/v1/deposit");
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
  });
});

describe("deposits through the API", () => {
  test("a deposit shows the same in balance, the deposit list, the ledger and the admin view; usage stays empty", async () => {
    const u = await register();
    const tx = api.add({ value: parseTon("1.25"), comment: u.code });
    await ton.watcher!.pollOnce();
    const bal = (await (await get("/v1/balance", u.key)).json()) as Record<string, number | null>;
    expect(bal).toMatchObject({ balance_nanoton: 1_250_000_000, balance_ton: 1.25, ton_usd_rate: 2.5, balance_usd: 3.13 });
    const deps = (await (await get("/v1/deposits", u.key)).json()) as { data: { tx_hash: string; amount_nanoton: number; amount_ton: string; sender: string }[] };
    expect(deps.data).toEqual([expect.objectContaining({ tx_hash: tx.hashHex, amount_nanoton: 1_250_000_000, amount_ton: "1.250000000", sender: tx.from.toRawString() })]);
    const ledger = db.query<{ s: bigint }, [number]>("SELECT sum(amount_nanoton) AS s FROM ledger WHERE account_id = ? AND kind IN ('deposit','adjustment','charge')").get(u.id)!.s;
    expect(ledger).toBe(1_250_000_000n);
    const usage = (await (await get("/v1/usage", u.key)).json()) as { data: unknown[] };
    expect(usage.data).toEqual([]);
    const accounts = (await (await get("/admin/accounts", ADMIN)).json()) as { data: { id: number; balance_nanoton: number }[] };
    expect(accounts.data.find((a) => a.id === u.id)!.balance_nanoton).toBe(1_250_000_000);
    const recent = (await (await get("/admin/deposits?limit=5", ADMIN)).json()) as { data: { tx_hash: string; status: string; account_id: number }[]; counts: { credited: number } };
    expect(recent.data[0]).toMatchObject({ tx_hash: tx.hashHex, status: "credited", account_id: u.id });
    expect(recent.counts.credited).toBeGreaterThanOrEqual(1);
    // `before` beyond SQLite's 64-bit range pages from the newest instead of failing.
    for (const path of ["/v1/deposits?before=99999999999999999999", "/admin/deposits?before=99999999999999999999"]) {
      const res = await get(path, path.startsWith("/admin") ? ADMIN : u.key);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { data: { tx_hash: string }[] }).data[0]!.tx_hash).toBe(tx.hashHex);
    }
  });

  test("an unmatched transfer is listed for the admin and assigned once, audited, with the hash as ledger reference", async () => {
    const u = await register();
    const other = await register();
    const tx = api.add({ value: parseTon("0.7"), comment: "my account please" });
    await ton.watcher!.pollOnce();
    const list = (await (await get("/admin/deposits?status=unmatched", ADMIN)).json()) as { data: { tx_hash: string; reason: string; amount_nanoton: number; comment: string; sender: string; time: string }[] };
    const row = list.data.find((d) => d.tx_hash === tx.hashHex)!;
    expect(row).toMatchObject({ reason: "unknown_code", amount_nanoton: 700_000_000, comment: "my account please", sender: tx.from.toRawString() });
    expect(Date.parse(row.time)).toBeGreaterThan(0);

    expect((await post(`/admin/deposits/${tx.hashHex}/assign`, { account_id: u.id, reason: "ticket 1", assigned_by: "alice" })).status).toBe(403);
    // Hashes are accepted as explorers show them too (base64url).
    const b64url = Buffer.from(tx.hashHex, "hex").toString("base64url");
    const r = await post(`/admin/deposits/${b64url}/assign`, { account_id: u.id, reason: "ticket 1", assigned_by: "alice" }, ADMIN);
    expect(r.status).toBe(201);
    const j = (await r.json()) as { booked: boolean; balance_nanoton: number; deposit: Record<string, unknown> };
    expect(j).toMatchObject({ booked: true, balance_nanoton: 700_000_000 });
    expect(j.deposit).toMatchObject({ status: "credited", reason: "unknown_code", account_id: u.id, assigned_by: "alice", assign_note: "ticket 1" });

    const again = await post(`/admin/deposits/${tx.hashHex}/assign`, { account_id: u.id, reason: "ticket 1", assigned_by: "alice" }, ADMIN);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { booked: boolean }).booked).toBe(false);
    const elsewhere = await post(`/admin/deposits/${tx.hashHex}/assign`, { account_id: other.id, reason: "oops", assigned_by: "bob" }, ADMIN);
    expect(elsewhere.status).toBe(400);
    expect(((await elsewhere.json()) as { error: { message: string } }).error.message).toContain(`already credited to account ${u.id}`);

    const ledger = db.query<{ account_id: bigint; amount_nanoton: bigint; note: string }, [string]>("SELECT account_id, amount_nanoton, note FROM ledger WHERE kind = 'deposit' AND reference = ?").all(tx.hashHex);
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ account_id: BigInt(u.id), amount_nanoton: 700_000_000n });
    expect(ledger[0]!.note).toContain("alice");
    // A replay of the transaction by the API changes nothing.
    await ton.watcher!.pollOnce();
    expect(((await (await get("/v1/balance", u.key)).json()) as { balance_nanoton: number }).balance_nanoton).toBe(700_000_000);
    expect(((await (await get("/v1/balance", other.key)).json()) as { balance_nanoton: number }).balance_nanoton).toBe(0);
    expect(checkInvariants(db)).toEqual([]);
  });

  test("assigning what cannot be assigned: clear errors in the OpenAI shape", async () => {
    const u = await register();
    const bounced = api.add({ value: parseTon("1"), comment: u.code, bounced: true });
    const matched = api.add({ value: parseTon("1"), comment: u.code });
    const unmatched = api.add({ value: parseTon("1"), comment: "" });
    await ton.watcher!.pollOnce();
    const assign = (hash: string, accountId = u.id) => post(`/admin/deposits/${hash}/assign`, { account_id: accountId, reason: "r", assigned_by: "a" }, ADMIN);
    const cases: [Response, number, RegExp][] = [
      [await assign(bounced.hashHex), 400, /not a deposit \(bounced\)/],
      [await assign(matched.hashHex), 400, /already credited/],
      [await assign("ab".repeat(32)), 404, /No recorded transfer/],
      [await assign("xyz"), 404, /No deposit/],
      [await assign(unmatched.hashHex, 999_999), 404, /No account 999999/],
    ];
    for (const [r, status, message] of cases) {
      expect(r.status).toBe(status);
      const e = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
      expect(Object.keys(e.error).sort()).toEqual(["code", "message", "param", "type"]);
      expect(e.error.message).toMatch(message);
    }
    const bad = await post(`/admin/deposits/${unmatched.hashHex}/assign`, { account_id: u.id }, ADMIN);
    expect(bad.status).toBe(400);
  });
});

describe("TON/USD rate", () => {
  test("cached: several balance calls fetch the rate once", async () => {
    const u = await register();
    const before = rateHits;
    for (let i = 0; i < 5; i++) expect(((await (await get("/v1/balance", u.key)).json()) as { ton_usd_rate: number }).ton_usd_rate).toBe(2.5);
    expect(rateHits - before).toBeLessThanOrEqual(1);
  });
});

describe("ops", () => {
  test("/jsonstats shows the watcher's cursor, last poll and counters", async () => {
    const s = (await (await get("/jsonstats")).json()) as { ton_watcher: Record<string, unknown> & { cursor: { lt: string; hash: string } } };
    const newest = api.txs.at(-1)!;
    expect(s.ton_watcher).toMatchObject({ wallet: api.wallet.toString({ bounceable: false }), network: "mainnet", cursor: { lt: newest.lt.toString(), hash: newest.hashHex }, consecutive_errors: 0 });
    expect(Date.parse(String(s.ton_watcher.last_poll_at))).toBeGreaterThan(0);
    expect(Number(s.ton_watcher.credited)).toBeGreaterThanOrEqual(2);
  });

  test("/metrics carries the watcher's state and still passes promtool", async () => {
    const text = await (await get("/metrics")).text();
    const newest = api.txs.at(-1)!;
    expect(text).toContain(`cocoon_ton_cursor_lt ${newest.lt}`);
    expect(text).toContain(`cocoon_ton_cursor_info{lt="${newest.lt}",hash="${newest.hashHex}"} 1`);
    expect(text).toMatch(/^cocoon_ton_transactions_total\{status="credited"\} [1-9]/m);
    expect(text).toMatch(/^cocoon_ton_last_poll_timestamp_seconds \d+/m);
    expect(text).toMatch(/^cocoon_ton_poll_errors_total\{kind="timeout"\} 0$/m);
    const promtool = Bun.which("promtool");
    if (!promtool) throw new Error("promtool is not installed (Debian: apt-get install -y prometheus)");
    const p = Bun.spawn([promtool, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
  });

  test("a backlog being paged through shows in /jsonstats and /metrics (staged count, anchor) until it is recorded", async () => {
    const u = await register();
    for (let i = 0; i < 25; i++) api.add({ value: parseTon("0.1"), comment: u.code });
    // Every page after the newest fails: the run stays staged at the newest page of 10.
    api.onRequest = (call) => {
      if (call.lt !== undefined) api.failures.push("500");
    };
    try {
      await expect(ton.watcher!.pollOnce()).rejects.toThrow(/HTTP 500/);
      const anchor = api.txs.at(-10)!;
      const s = (await (await get("/jsonstats")).json()) as { ton_watcher: { backfill: unknown } };
      expect(s.ton_watcher.backfill).toMatchObject({ staged: 10, anchor: { lt: anchor.lt.toString(), hash: anchor.hashHex }, top: { hash: api.txs.at(-1)!.hashHex }, complete: false });
      const text = await (await get("/metrics")).text();
      expect(text).toContain("cocoon_ton_backfill_in_progress 1");
      expect(text).toContain("cocoon_ton_backfill_staged_transactions 10");
      expect(text).toContain(`cocoon_ton_backfill_anchor_lt ${anchor.lt}`);
      const p = Bun.spawn([Bun.which("promtool")!, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
    } finally {
      api.onRequest = null;
    }
    expect(await ton.watcher!.pollOnce()).toMatchObject({ recorded: 25, credited: 25 });
    expect(((await (await get("/v1/balance", u.key)).json()) as { balance_nanoton: number }).balance_nanoton).toBe(Number(parseTon("2.5")));
    const after = (await (await get("/jsonstats")).json()) as { ton_watcher: { backfill: unknown } };
    expect(after.ton_watcher.backfill).toBeNull();
    expect(await (await get("/metrics")).text()).toContain("cocoon_ton_backfill_staged_transactions 0");
    expect(checkInvariants(db)).toEqual([]);
  });
});

// The account, key, usage, admin, audit, operator and deposit routes over HTTP on both stores: one
// body of assertions run on SQLite and on a real Postgres (started here; skipped with a banner
// without one), plus what only several gateways on one Postgres can race, and create-key on Postgres.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../src/app.ts";
import type { Engine } from "../../src/inference/engine.ts";
import { listAudit } from "../../src/platform/audit.ts";
import { verifyKey } from "../../src/platform/keys.ts";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { auditedCredit, auditedRevoke } from "../../src/platform/audited.ts";
import { createKeyWithLimits, openAccount } from "../../src/platform/operations.ts";
import { pricingConfig } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";
import type { PgStore } from "../../src/store/pg.ts";
import { all, exec, get, isPg, run, type Db } from "../../src/store/query.ts";
import { usePostgres } from "../support/postgres.ts";
import { ROOT } from "../support/model.ts";

setDefaultTimeout(60_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const pg = usePostgres("test/platform/routes-pg.test.ts (the Postgres half; the SQLite half runs)");
const available = pg.available;

const ADMIN = "admin-secret";
const dir = mkdtempSync(join(tmpdir(), "cocoon-routes-pg-"));
let dbs = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const openPg = (url?: string): Promise<PgStore> => pg.open(url);

/** A gateway on `store`: the whole app (no model loaded), listening on 127.0.0.1. */
function gateway(store: Db) {
  const platform = new Platform(store, {
    auth: true,
    adminToken: ADMIN,
    pricing: pricingConfig({ baseNanoton: 20n }),
    rateLimits: { rpm: 10_000, tpm: 100_000_000, rpd: 100_000 },
    signupCredit: 0n,
  });
  const app = createApp({ engine: null as unknown as Engine, loadedEngine: () => null, platform, version: "0.0.0-test" });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => app.handle(req) });
  const base = `http://127.0.0.1:${server.port}`;
  async function call(method: string, path: string, o: { key?: string; json?: unknown; actor?: string } = {}): Promise<{ status: number; body: Json; text: string; headers: Headers }> {
    const headers: Record<string, string> = { authorization: `Bearer ${o.key ?? ADMIN}` };
    if (o.actor) headers["x-cocoon-actor"] = o.actor;
    if (o.json !== undefined) headers["content-type"] = "application/json";
    const r = await fetch(base + path, { method, headers, body: o.json === undefined ? undefined : JSON.stringify(o.json) });
    const text = await r.text();
    let body: Json = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    return { status: r.status, body, text, headers: r.headers };
  }
  return { platform, call, stop: () => server.stop(true) };
}

/** A billed request of `key` settled at these token counts (what a chat completion writes). */
async function bill(platform: Platform, key: string, model: string, promptTokens: number, completionTokens: number): Promise<bigint> {
  const p = await platform.principalOf(key);
  const { ticket } = await platform.begin(p, { model, endpoint: "/v1/chat/completions", promptTokensUpperBound: 200, maxTokens: 100, n: 1, requestGuid: null });
  return (await platform.finish(ticket, { promptTokens, cachedTokens: 0, completionTokens, reasoningTokens: 0 }, "ok")).nanoton;
}

/** The ledger's charges of an account, summed in SQL, on either store. */
async function charged(store: Db, accountId: number): Promise<bigint> {
  const r = await exec(store, get<{ s: bigint }>("SELECT CAST(coalesce(sum(-amount_nanoton), 0) AS BIGINT) AS s FROM ledger WHERE account_id = ? AND kind = 'charge'", accountId));
  return BigInt(r!.s);
}

const STORES = [
  { name: "SQLite", open: async (): Promise<Db> => openStore(join(dir, `routes-${++dbs}.sqlite`)), skip: false },
  { name: "Postgres", open: (): Promise<Db> => openPg(), skip: !available },
] as const;

for (const kind of STORES) {
  describe.skipIf(kind.skip)(`platform routes on ${kind.name}`, () => {
    test("account, credit, keys with limits, paginated lists, usage, limits, revocation and the audit log", async () => {
      const store = await kind.open();
      const gw = gateway(store);
      try {
        const { call, platform } = gw;
        // An account by the operator, and self-service sign-up for another.
        const made = await call("POST", "/v1/keys", { json: { name: "Acme Corp" } });
        expect(made.status).toBe(201);
        const acct: number = made.body.account_id;
        const keyA: string = made.body.api_key;
        expect(keyA).toMatch(/^ck_/);
        const other = await call("POST", "/api/register", { key: "none", json: { name: "other" } });
        expect(other.status).toBe(200);
        expect(other.body.account_id).not.toBe(acct);

        // Credits: exact, idempotent by reference, a reused reference with another amount refused.
        const c1 = await call("POST", `/admin/accounts/${acct}/credit`, { actor: "alice", json: { amount_ton: "2.5", reason: "trial", reference: "inv-1" } });
        expect(c1.status).toBe(201);
        expect(c1.body).toMatchObject({ booked: true, amount_nanoton: 2_500_000_000, balance_nanoton: 2_500_000_000 });
        const again = await call("POST", `/admin/accounts/${acct}/credit`, { actor: "alice", json: { amount_ton: "2.5", reason: "trial", reference: "inv-1" } });
        expect(again.status).toBe(200);
        expect(again.body).toMatchObject({ booked: false, balance_nanoton: 2_500_000_000 });
        const clash = await call("POST", `/admin/accounts/${acct}/credit`, { json: { amount_ton: "3", reason: "trial", reference: "inv-1" } });
        expect(clash.status).toBe(400);
        expect(clash.body.error.param).toBe("reference");
        const debit = await call("POST", `/admin/accounts/${acct}/credit`, { actor: "bob", json: { amount_ton: "-0.5", reason: "refund", reference: "inv-2" } });
        expect(debit.body.balance_ton).toBe("2.000000000");
        expect((await call("POST", "/admin/accounts/999999/credit", { json: { amount_ton: "1", reason: "x" } })).status).toBe(404);

        const bal = await call("GET", "/v1/balance", { key: keyA });
        expect(bal.status).toBe(200);
        expect(bal.body.balance_nanoton).toBe(2_000_000_000);
        const login = await call("POST", "/api/login", { key: "none", json: { api_key: keyA } });
        expect(login.body.balance_nanoton).toBe(2_000_000_000);
        expect(login.body.deposit_code).toBe(made.body.deposit_code);

        // A key with limits by the operator, three more by the account itself.
        const limited = await call("POST", `/admin/accounts/${acct}/keys`, { actor: "alice", json: { name: "limited", rpm_limit: 30, max_budget_ton: "1", budget_duration: "day", period_budget_ton: "0.25" } });
        expect(limited.status).toBe(201);
        expect(limited.body).toMatchObject({ name: "limited", rpm_limit: 30, max_budget_nanoton: 1_000_000_000, period_budget_nanoton: 250_000_000, budget_duration: "day", account_id: acct });
        const keyB: string = limited.body.api_key;
        const own: number[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await call("POST", "/v1/account/keys", { key: keyA, json: { name: `own-${i}`, tpm_limit: 1000 + i } });
          expect(r.status).toBe(201);
          own.push(r.body.id);
        }
        // A key with limits of its own cannot make keys.
        expect((await call("POST", "/v1/account/keys", { key: keyB, json: { name: "x" } })).status).toBe(403);

        // The account's keys two at a time (after / has_more), and the operator's offset pages.
        const seen: number[] = [];
        let after: number | null = null;
        for (let pages = 0; pages < 10; pages++) {
          const page = await call("GET", `/v1/keys?limit=2${after === null ? "" : `&after=${after}`}`, { key: keyA });
          expect(page.status).toBe(200);
          seen.push(...page.body.data.map((k: Json) => k.id));
          if (!page.body.has_more) break;
          after = page.body.last_id;
        }
        expect(seen).toHaveLength(5);
        expect(seen).toEqual([...seen].sort((a, b) => a - b));
        const adminPage = await call("GET", `/admin/accounts/${acct}/keys?limit=2&offset=2`);
        expect(adminPage.body.total).toBe(5);
        expect(adminPage.body.data.map((k: Json) => k.id)).toEqual(seen.slice(2, 4));
        const detail = await call("GET", `/admin/accounts/${acct}`);
        expect(detail.body.keys).toHaveLength(5);
        expect(detail.body.label).toBe("Acme Corp");
        const search = await call("GET", "/admin/accounts?q=acme");
        expect(search.body.data.map((a: Json) => a.id)).toEqual([acct]);
        expect((await call("GET", `/admin/accounts?q=${encodeURIComponent(keyB.slice(0, 10))}`)).body.data.map((a: Json) => a.id)).toEqual([acct]);
        expect((await call("GET", `/admin/accounts?q=${made.body.deposit_code}`)).body.total).toBe(1);
        const accounts = await call("GET", "/admin/accounts?limit=1");
        expect(accounts.body).toMatchObject({ total: 2, limit: 1 });

        // Billed requests: usage newest first, paged, filtered by key, one by id, CSV summing to the ledger.
        const costs = [await bill(platform, keyA, "tiny", 100, 20), await bill(platform, keyA, "other", 50, 10), await bill(platform, keyB, "tiny", 10, 5)];
        const usage = await call("GET", "/v1/usage?limit=2", { key: keyA });
        expect(usage.status).toBe(200);
        expect(usage.body.data).toHaveLength(2);
        expect(usage.body.has_more).toBe(true);
        const rest = await call("GET", `/v1/usage?limit=2&before=${usage.body.next_before}`, { key: keyA });
        expect(rest.body.data).toHaveLength(1);
        expect(rest.body.has_more).toBe(false);
        const all3 = [...usage.body.data, ...rest.body.data];
        expect(all3.map((u: Json) => u.cost.nanoton).sort()).toEqual(costs.map(Number).sort());
        const byKey = await call("GET", `/v1/usage?key_id=${limited.body.id}`, { key: keyA });
        expect(byKey.body.data.map((u: Json) => u.total_tokens)).toEqual([15]);
        expect((await call("GET", `/v1/usage?model=other`, { key: keyA })).body.data).toHaveLength(1);
        expect((await call("GET", `/v1/usage?start_time=${Math.floor(Date.now() / 1000) + 3600}`, { key: keyA })).body.data).toHaveLength(0);
        const one = await call("GET", `/v1/usage/${all3[0].id}`, { key: keyA });
        expect(one.body.id).toBe(all3[0].id);
        expect((await call("GET", `/v1/usage/${all3[0].id}`, { key: other.body.api_key })).status).toBe(404);
        const csv = await call("GET", "/v1/usage?format=csv", { key: keyA });
        expect(csv.headers.get("content-type")).toContain("text/csv");
        const lines = csv.text.trim().split("\r\n");
        expect(lines).toHaveLength(4);
        const costCol = lines[0]!.split(",").indexOf("cost_nanoton");
        const csvSum = lines.slice(1).reduce((s, l) => s + BigInt(l.split(",")[costCol]!), 0n);
        expect(csvSum).toBe(await charged(store, acct));
        expect(csvSum).toBe(costs[0]! + costs[1]! + costs[2]!);

        // The operator's totals per day / account / model, and the same as CSV.
        const totals = await call("GET", "/admin/usage?group_by=model");
        expect(totals.status).toBe(200);
        expect(totals.body.data.map((t: Json) => [t.model, t.requests])).toEqual([["other", 1], ["tiny", 2]]);
        expect(totals.body.totals.cost.nanoton).toBe(Number(csvSum));
        const daily = await call("GET", `/admin/usage?group_by=day,account&account_id=${acct}`);
        expect(daily.body.data).toEqual([expect.objectContaining({ day: new Date().toISOString().slice(0, 10), account_id: acct, requests: 3, prompt_tokens: 160, completion_tokens: 35 })]);
        const totalsCsv = await call("GET", "/admin/usage?group_by=account&format=csv");
        expect(totalsCsv.text.split("\r\n")[1]).toStartWith(`,${acct},,3,160,0,35,0,195,${csvSum},`);

        // Limits: a key's by the operator and by the account, the account's own; all audited for the operator.
        const patched = await call("PATCH", `/admin/keys/${limited.body.id}`, { actor: "alice", json: { rpm_limit: 10, max_budget_ton: null } });
        expect(patched.status).toBe(200);
        expect(patched.body).toMatchObject({ rpm_limit: 10, max_budget_nanoton: null, period_budget_nanoton: 250_000_000 });
        const bad = await call("PATCH", `/admin/keys/${limited.body.id}`, { json: { budget_duration: null } });
        expect(bad.status).toBe(400);
        expect((await call("PATCH", "/admin/keys/999999", { json: { rpm_limit: 1 } })).status).toBe(404);
        const ownPatch = await call("PATCH", `/v1/account/keys/${own[0]}`, { key: keyA, json: { tpm_limit: 500 } });
        expect(ownPatch.body).toMatchObject({ id: own[0], tpm_limit: 500 });
        expect((await call("PATCH", `/v1/account/keys/${own[0]}`, { key: other.body.api_key, json: { tpm_limit: 1 } })).status).toBe(404);
        const acctLimits = await call("PATCH", `/admin/accounts/${acct}/limits`, { actor: "alice", json: { rpm_limit: 100 } });
        expect(acctLimits.body).toMatchObject({ account_id: acct, rpm_limit: 100, overrides: { rpm_limit: 100, tpm_limit: null } });
        expect((await call("GET", `/admin/accounts/${acct}/limits`)).body.rpm_limit).toBe(100);
        expect((await platform.principalOf(keyA)).accountLimits?.rpm).toBe(100);

        // Revocation: by the account (its own key), by the operator (any key); again answers the first.
        const revokedOwn = await call("DELETE", `/v1/account/keys/${own[1]}`, { key: keyA });
        expect(revokedOwn.status).toBe(200);
        expect(revokedOwn.body).toMatchObject({ id: own[1], account_id: acct });
        const revoked = await call("POST", `/admin/keys/${limited.body.id}/revoke`, { actor: "alice" });
        expect(revoked.status).toBe(200);
        const revokedAgain = await call("POST", `/admin/keys/${limited.body.id}/revoke`, { actor: "alice" });
        expect(revokedAgain.body.revoked_at).toBe(revoked.body.revoked_at);
        expect((await call("GET", "/v1/balance", { key: keyB })).status).toBe(401);
        expect((await call("POST", "/admin/keys/999999/revoke")).status).toBe(404);
        expect((await call("GET", "/v1/keys", { key: keyA })).body.data.filter((k: Json) => k.revoked_at !== null).map((k: Json) => k.id).sort()).toEqual([limited.body.id, own[1]].sort());

        // An unmatched transfer assigned by the operator: credited once, listed, audited.
        const hash = "ab".repeat(32);
        await exec(
          store,
          run(
            "INSERT INTO ton_deposits (tx_hash, tx_lt, wallet, sender, amount_nanoton, comment, status, reason, chain_time, seen_at) VALUES (?, ?, ?, ?, ?, ?, 'unmatched', 'no memo', ?, ?)",
            hash, 42n, "0:wallet", "0:sender", 300_000_000n, null, Date.now(), Date.now(),
          ),
        );
        const unmatched = await call("GET", "/admin/deposits?status=unmatched");
        expect(unmatched.body.data.map((d: Json) => d.tx_hash)).toEqual([hash]);
        expect(unmatched.body.counts).toEqual({ credited: 0, unmatched: 1, ignored: 0 });
        const assigned = await call("POST", `/admin/deposits/${hash}/assign`, { json: { account_id: acct, assigned_by: "carol", reason: "memo forgotten" } });
        expect(assigned.status).toBe(201);
        expect(assigned.body.balance_nanoton).toBe(2_300_000_000 - Number(csvSum));
        const assignedAgain = await call("POST", `/admin/deposits/${hash}/assign`, { json: { account_id: acct, assigned_by: "carol", reason: "memo forgotten" } });
        expect(assignedAgain.status).toBe(200);
        expect(assignedAgain.body.booked).toBe(false);
        expect((await call("POST", `/admin/deposits/${hash}/assign`, { json: { account_id: other.body.account_id, assigned_by: "carol", reason: "x" } })).status).toBe(400);
        expect((await call("GET", "/v1/deposits", { key: keyA })).body.data.map((d: Json) => d.amount_nanoton)).toEqual([300_000_000]);
        expect((await call("GET", "/v1/deposits", { key: other.body.api_key })).body.data).toEqual([]);

        // The audit log: newest first, who did what with before and after, paged and filtered.
        const audit = await call("GET", "/admin/audit?limit=100");
        expect(audit.status).toBe(200);
        expect(audit.body.data.map((e: Json) => `${e.action}:${e.actor}`)).toEqual([
          "deposit.assign:carol",
          "key.revoke:alice",
          "account.limits:alice",
          "key.limits:alice",
          "key.create:alice",
          "account.debit:bob",
          "account.credit:alice",
        ]);
        const credit = audit.body.data.at(-1);
        expect(credit).toMatchObject({ object_type: "account", object_id: String(acct), account_id: acct, reason: "trial", before: { balance_nanoton: "0" }, after: { balance_nanoton: "2500000000", amount_nanoton: "2500000000", reference: "inv-1" } });
        expect(audit.body.data[3]).toMatchObject({ before: { rpm: 30, maxBudget: "1000000000" }, after: { rpm: 10, maxBudget: null } });
        const firstPage = await call("GET", "/admin/audit?limit=3");
        expect(firstPage.body.has_more).toBe(true);
        const secondPage = await call("GET", `/admin/audit?limit=3&before=${firstPage.body.next_before}`);
        expect(secondPage.body.data.map((e: Json) => e.action)).toEqual(["key.limits", "key.create", "account.debit"]);
        expect((await call("GET", "/admin/audit?actor=bob")).body.data.map((e: Json) => e.action)).toEqual(["account.debit"]);
        expect((await call("GET", "/admin/audit?action=key.revoke")).body.data).toHaveLength(1);

        // Not the admin: 403 on every operator route.
        expect((await call("GET", "/admin/audit", { key: keyA })).status).toBe(403);
        expect((await call("GET", "/admin/usage", { key: keyA })).status).toBe(403);
        expect(await checkInvariants(store)).toEqual([]);
      } finally {
        gw.stop();
        if (!isPg(store)) store.close();
      }
    });
  });
}

describe.skipIf(!available)("several gateways on one Postgres", () => {
  test("the same credit from two gateways at once books once; a key revoked from both is audited once; limits change in turn", async () => {
    const url = pg.server.createDatabase("races");
    const [a, b] = [await openPg(url), await openPg(url)];
    const acc = await openAccount(a, { label: "race", signupCredit: 0n });
    for (let round = 0; round < 10; round++) {
      const rs = await Promise.all([a, b, a, b].map((s) => auditedCredit(s, "admin", acc.accountId, 1_000n, "race", `r-${round}`)));
      expect(rs.filter((r) => r.outcome === "booked")).toHaveLength(1);
      expect(rs.filter((r) => r.outcome === "repeated")).toHaveLength(3);
      // A reused reference with another amount is a conflict even when it races the first booking.
      const [x, y] = await Promise.all([auditedCredit(a, "admin", acc.accountId, 5n, "race", `c-${round}`), auditedCredit(b, "admin", acc.accountId, 7n, "race", `c-${round}`)]);
      expect([x.outcome, y.outcome].sort()).toEqual(["booked", "conflict"]);
    }
    const keys = await Promise.all(Array.from({ length: 5 }, (_, i) => createKeyWithLimits(a, { kind: "admin", name: "admin" }, acc.accountId, `k${i}`, {})));
    for (const k of keys) {
      const rs = await Promise.all([a, b, a, b].map((s) => auditedRevoke(s, "admin", k.info.id)));
      expect(new Set(rs.map((r) => r!.revokedAt)).size).toBe(1);
    }
    const audit = await listAudit(a, { limit: 1000 });
    expect(audit.data.filter((e) => e.action === "key.revoke")).toHaveLength(5);
    expect(audit.data.filter((e) => e.action === "account.credit")).toHaveLength(20);
    const balance = await exec(a, get<{ balance_nanoton: bigint }>("SELECT balance_nanoton FROM accounts WHERE id = ?", acc.accountId));
    const booked = audit.data.filter((e) => e.action === "account.credit").reduce((s, e) => s + BigInt((e.after as { amount_nanoton: string }).amount_nanoton), 0n);
    expect(balance!.balance_nanoton).toBe(booked);
    expect(await checkInvariants(a)).toEqual([]);
  });

  test("create-key --db postgres:// makes a credited account with a limited key, audited as cli; a missing account is one clear error", async () => {
    const url = pg.server.createDatabase("cli");
    const env = { ...process.env };
    const local = ["--data-dir", join(dir, "cli-data")];
    const made = Bun.spawnSync(["bun", join(ROOT, "src/main.ts"), "create-key", ...local, "--db", url, "--credit", "1.5", "--label", "trial", "--rpm", "20", "--max-budget", "0.5"], { env, stdout: "pipe", stderr: "pipe" });
    const out = made.stdout.toString();
    expect(made.exitCode, made.stderr.toString()).toBe(0);
    expect(out).toContain("balance_ton: 1.500000000");
    expect(out).toContain("limits: max_budget 0.500000000 TON, rpm 20");
    expect(out).toContain(`database: ${url}`);
    const key = /api_key: (ck_\S+)/.exec(out)![1]!;
    const store = await openPg(url);
    const v = await verifyKey(store, key);
    expect(v?.limits).toMatchObject({ rpm: 20, maxBudget: 500_000_000n });
    const rows = await exec(store, all<{ actor: string; action: string }>("SELECT actor, action FROM audit_log ORDER BY id"));
    expect(rows).toEqual([{ actor: "cli", action: "account.credit" }]);
    // A second key for that account, and a clear error for one that does not exist.
    const more = Bun.spawnSync(["bun", join(ROOT, "src/main.ts"), "create-key", ...local, "--db", url, "--account", String(v!.accountId), "--tpm", "1000"], { env, stdout: "pipe", stderr: "pipe" });
    expect(more.exitCode).toBe(0);
    expect((await exec(store, all<{ action: string }>("SELECT action FROM audit_log WHERE actor = 'cli' ORDER BY id"))).map((r) => r.action)).toEqual(["account.credit", "key.create"]);
    const none = Bun.spawnSync(["bun", join(ROOT, "src/main.ts"), "create-key", ...local, "--db", url, "--account", "999999"], { env, stdout: "pipe", stderr: "pipe" });
    expect(none.exitCode).toBe(2);
    expect(none.stderr.toString().trim()).toBe("cocoon-server: --account 999999: no such account");
    expect(await checkInvariants(store)).toEqual([]);
  });
});

// The admin audit log: every admin credit, debit, key revocation and deposit assignment leaves one
// append-only row with actor, time and values before and after; repeats that change nothing leave
// none; /admin/audit pages and filters it, and only the admin token reads it.
import { describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { ApiError } from "../../src/http/errors.ts";
import { platformRoutes } from "../../src/platform/index.ts";
import { actorOf, listAudit, recordAudit } from "../../src/platform/audit.ts";
import { pricingConfig } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";
import { tonRoutes } from "../../src/ton/index.ts";

const ADMIN = "audit-admin-token";
type Json = Record<string, any>;

function harness() {
  const db = openStore(":memory:");
  const platform = new Platform(db, { auth: true, adminToken: ADMIN, pricing: pricingConfig(), rateLimits: { rpm: 10_000, tpm: 10_000_000, rpd: 100_000 }, signupCredit: 0n });
  const app = new Elysia()
    .onError(({ code, error }) => {
      if (error instanceof ApiError) return error.response();
      if (code === "VALIDATION") return new ApiError("invalid_request", "invalid").response();
      return new Response(String(error), { status: 500 });
    })
    .use(platformRoutes({ platform, modelIds: () => ["tiny"], stats: () => [], depositWallet: () => null, tonUsdRate: () => null }))
    .use(tonRoutes({ platform }));
  const request = (path: string, o: { token?: string; json?: unknown; actor?: string; method?: string } = {}) => {
    const headers = new Headers();
    if (o.token) headers.set("authorization", `Bearer ${o.token}`);
    if (o.actor) headers.set("x-cocoon-actor", o.actor);
    if (o.json !== undefined) headers.set("content-type", "application/json");
    return app.handle(new Request(`http://localhost${path}`, { method: o.method ?? (o.json !== undefined ? "POST" : "GET"), headers, body: o.json === undefined ? undefined : JSON.stringify(o.json) }));
  };
  const register = async () => (await (await request("/api/register", { method: "POST" })).json()) as Json;
  const audit = async (query = "") => {
    const res = await request(`/admin/audit${query}`, { token: ADMIN });
    expect(res.status).toBe(200);
    return (await res.json()) as Json;
  };
  return { db, request, register, audit };
}

describe("the audit log", () => {
  test("a credit and a debit are recorded with the actor, the reason and the balance before and after; a repeat records nothing", async () => {
    const h = harness();
    const acc = await h.register();
    const credit = await h.request(`/admin/accounts/${acc.account_id}/credit`, { token: ADMIN, actor: "alice", json: { amount_ton: "1.5", reason: "welcome", reference: "w-1" } });
    expect(credit.status).toBe(201);
    const again = await h.request(`/admin/accounts/${acc.account_id}/credit`, { token: ADMIN, actor: "alice", json: { amount_ton: "1.5", reason: "welcome", reference: "w-1" } });
    expect(again.status).toBe(200);
    const debit = await h.request(`/admin/accounts/${acc.account_id}/credit`, { token: ADMIN, json: { amount_ton: "-0.25", reason: "refund reversed" } });
    expect(debit.status).toBe(201);

    const log = await h.audit();
    expect(log.data.length).toBe(2);
    const [d, c] = log.data;
    expect(c).toMatchObject({
      actor: "alice",
      action: "account.credit",
      object_type: "account",
      object_id: String(acc.account_id),
      account_id: acc.account_id,
      reason: "welcome",
      before: { balance_nanoton: "0" },
      after: { balance_nanoton: "1500000000", amount_nanoton: "1500000000", reference: "w-1" },
    });
    // No X-Cocoon-Actor: the actor is "admin".
    expect(d).toMatchObject({ actor: "admin", action: "account.debit", reason: "refund reversed", before: { balance_nanoton: "1500000000" }, after: { balance_nanoton: "1250000000" } });
    expect(Math.abs(Date.parse(d.created_at) - Date.now())).toBeLessThan(60_000);
    expect(d.id).toBeGreaterThan(c.id);
  });

  test("revoking a key is recorded once; a failed action (no such account) records nothing", async () => {
    const h = harness();
    const acc = await h.register();
    expect((await h.request(`/admin/keys/${acc.key_id}/revoke`, { token: ADMIN, actor: "bob", method: "POST" })).status).toBe(200);
    expect((await h.request(`/admin/keys/${acc.key_id}/revoke`, { token: ADMIN, actor: "bob", method: "POST" })).status).toBe(200);
    expect((await h.request("/admin/accounts/999/credit", { token: ADMIN, json: { amount_ton: "1", reason: "x" } })).status).toBe(404);
    const log = await h.audit();
    expect(log.data.map((e: Json) => [e.action, e.actor, e.object_type, e.object_id, e.account_id])).toEqual([["key.revoke", "bob", "key", String(acc.key_id), acc.account_id]]);
    expect(log.data[0].before).toEqual({ revoked_at: null });
    expect(typeof log.data[0].after.revoked_at).toBe("number");
  });

  test("assigning an unmatched deposit is recorded with assigned_by as the actor", async () => {
    const h = harness();
    const acc = await h.register();
    const hash = "ab".repeat(32);
    h.db
      .query("INSERT INTO ton_deposits (tx_hash, tx_lt, wallet, sender, amount_nanoton, comment, status, reason, chain_time, seen_at) VALUES (?, 1, '0:00', NULL, 2000000000, '', 'unmatched', 'no memo', ?, ?)")
      .run(hash, Date.now(), Date.now());
    const res = await h.request(`/admin/deposits/${hash}/assign`, { token: ADMIN, json: { account_id: acc.account_id, reason: "ticket #7", assigned_by: "carol" } });
    expect(res.status).toBe(201);
    const log = await h.audit("?action=deposit.assign");
    expect(log.data.length).toBe(1);
    expect(log.data[0]).toMatchObject({ actor: "carol", object_type: "deposit", object_id: hash, account_id: acc.account_id, reason: "ticket #7", after: { status: "credited", amount_nanoton: "2000000000" } });
  });

  test("pages newest first with next_before, filters by account and actor", async () => {
    const h = harness();
    const one = await h.register();
    const two = await h.register();
    for (let i = 0; i < 5; i++) {
      const acc = i % 2 ? two : one;
      expect((await h.request(`/admin/accounts/${acc.account_id}/credit`, { token: ADMIN, actor: i < 3 ? "dave" : "erin", json: { amount_ton: `0.00${i + 1}`, reason: `r${i}` } })).status).toBe(201);
    }
    const first = await h.audit("?limit=2");
    expect(first.data.map((e: Json) => e.reason)).toEqual(["r4", "r3"]);
    expect(first.has_more).toBe(true);
    const second = await h.audit(`?limit=2&before=${first.next_before}`);
    expect(second.data.map((e: Json) => e.reason)).toEqual(["r2", "r1"]);
    const last = await h.audit(`?limit=2&before=${second.next_before}`);
    expect(last.data.map((e: Json) => e.reason)).toEqual(["r0"]);
    expect(last).toMatchObject({ has_more: false, next_before: null });
    expect((await h.audit(`?account_id=${two.account_id}`)).data.map((e: Json) => e.reason)).toEqual(["r3", "r1"]);
    expect((await h.audit("?actor=erin")).data.map((e: Json) => e.reason)).toEqual(["r4", "r3"]);
  });

  test("rows cannot be changed or deleted, and recordAudit serialises money exactly", () => {
    const db = openStore(":memory:");
    const id = recordAudit(db, { actor: "cli", action: "key.limits", objectType: "key", objectId: 5, accountId: 1, before: { rpm: null }, after: { rpm: 60, budget_nanoton: 2n ** 62n } });
    expect(listAudit(db, { limit: 10 }).data[0]).toMatchObject({ id, actor: "cli", after: { rpm: 60, budget_nanoton: "4611686018427387904" } });
    expect(() => db.exec("UPDATE audit_log SET actor = 'mallory'")).toThrow(/append-only/);
    expect(() => db.exec("DELETE FROM audit_log")).toThrow(/append-only/);
  });

  test("only the admin token reads it: a customer's key and no token get 403", async () => {
    const h = harness();
    const acc = await h.register();
    for (const token of [acc.api_key, undefined, "wrong"]) {
      const res = await h.request("/admin/audit", { token });
      expect(res.status).toBe(403);
    }
  });

  test("the actor header: percent-encoded UTF-8 decoded, control characters dropped, 100 characters at most, \"admin\" when empty", () => {
    const actor = (v?: string) => actorOf(new Request("http://localhost/", { headers: v === undefined ? {} : { "x-cocoon-actor": v } }));
    expect(actor()).toBe("admin");
    expect(actor("  ")).toBe("admin");
    expect(actor(encodeURIComponent("Zoë Ålund"))).toBe("Zoë Ålund");
    expect(actor("100% sure")).toBe("100% sure");
    expect(actor("a%0Ab")).toBe("ab");
    expect(actor("x".repeat(300)).length).toBe(100);
  });
});

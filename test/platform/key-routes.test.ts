// Setting key limits: by the account for its own keys (never above the account's limits; a key with
// limits of its own manages no keys), by the operator on any key and account, and with create-key.
import { describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKeyCommand } from "../../src/cli/create-key.ts";
import { loadConfig } from "../../src/config/config.ts";
import { ApiError } from "../../src/http/errors.ts";
import { platformRoutes } from "../../src/platform/index.ts";
import { keyInfoById, verifyKey } from "../../src/platform/keys.ts";
import { periodEnd, periodStart } from "../../src/platform/limits.ts";
import { pricingConfig } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const ADMIN = "admin-secret";

function harness() {
  const db = openStore(":memory:");
  const platform = new Platform(db, { auth: true, adminToken: ADMIN, pricing: pricingConfig(), rateLimits: { rpm: 100, tpm: 100_000, rpd: 1_000 }, signupCredit: 0n });
  const app = new Elysia()
    .onError(({ code, error }) => {
      if (error instanceof ApiError) return error.response();
      if (code === "VALIDATION") return new ApiError("invalid_request", "invalid").response();
      return new Response("x", { status: 500 });
    })
    .use(platformRoutes({ platform, modelIds: () => [], stats: () => [], depositWallet: () => null, tonUsdRate: () => null }));
  const call = async (method: string, path: string, token: string | null, json?: unknown) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (json !== undefined) headers["content-type"] = "application/json";
    const res = await app.handle(new Request(`http://localhost${path}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) }));
    return { status: res.status, body: (await res.json()) as Json };
  };
  return { db, platform, call };
}

describe("own keys with limits", () => {
  test("an account creates and changes its keys' limits (LiteLLM names), never above its own rate limits", async () => {
    const h = harness();
    const reg = (await h.call("POST", "/api/register", null)).body;
    const made = await h.call("POST", "/v1/account/keys", reg.api_key, {
      name: "ci",
      max_budget_ton: "1.5",
      period_budget_ton: "0.25",
      budget_duration: "daily",
      rpm_limit: 10,
      max_parallel_requests: 2,
      duration: "30d",
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      name: "ci",
      max_budget_nanoton: 1_500_000_000,
      max_budget_ton: "1.500000000",
      period_budget_ton: "0.250000000",
      budget_duration: "day",
      budget_reset_at: new Date(periodEnd("day", Date.now())).toISOString(),
      rpm_limit: 10,
      tpm_limit: null,
      max_parallel_requests: 2,
      spend_nanoton: 0,
    });
    expect(Date.parse(made.body.expires_at) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    // Changed later: only the fields given; null clears.
    const changed = await h.call("PATCH", `/v1/account/keys/${made.body.id}`, reg.api_key, { rpm_limit: 5, max_budget_ton: null });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ rpm_limit: 5, max_budget_nanoton: null, period_budget_ton: "0.250000000", max_parallel_requests: 2 });
    // Above the account's limit (rpm 100): a 400 naming the field.
    const above = await h.call("PATCH", `/v1/account/keys/${made.body.id}`, reg.api_key, { rpm_limit: 101 });
    expect(above.status).toBe(400);
    expect(above.body.error.param).toBe("rpm_limit");
    // A period budget without its duration, bad amounts and durations: 400s naming the field.
    for (const [body, param] of [
      [{ budget_duration: null }, "budget_duration"],
      [{ max_budget_ton: "-1" }, "max_budget_ton"],
      [{ max_budget_ton: "1.0000000001" }, "max_budget_ton"],
      [{ budget_duration: "fortnight" }, "budget_duration"],
      [{ expires_at: "tomorrow" }, "expires_at"],
      [{ duration: "5y" }, "duration"],
    ] as const) {
      const r = await h.call("PATCH", `/v1/account/keys/${made.body.id}`, reg.api_key, body);
      expect({ body, status: r.status, param: r.body.error?.param }).toEqual({ body, status: 400, param });
    }
    // The limited key may not create keys (it could make one without limits), nor change its own.
    const escalate = await h.call("POST", "/v1/account/keys", made.body.api_key, {});
    expect(escalate.status).toBe(403);
    expect((await h.call("PATCH", `/v1/account/keys/${made.body.id}`, made.body.api_key, { rpm_limit: null })).status).toBe(403);
    // Another account's key is a 404.
    const other = (await h.call("POST", "/api/register", null)).body;
    expect((await h.call("PATCH", `/v1/account/keys/${made.body.id}`, other.api_key, { rpm_limit: 1 })).status).toBe(404);
    // The list shows limits and spend.
    const list = (await h.call("GET", "/v1/keys", reg.api_key)).body.data as Json[];
    expect(list.map((k) => [k.id, k.rpm_limit, k.current])).toEqual([
      [reg.key_id, null, true],
      [made.body.id, 5, false],
    ]);
  });
});

describe("admin limit routes", () => {
  test("the operator lists an account's keys, creates one with limits, changes any key's limits and the account's rate limits", async () => {
    const h = harness();
    const reg = (await h.call("POST", "/api/register", null)).body;
    expect((await h.call("GET", `/admin/accounts/${reg.account_id}/keys`, reg.api_key)).status).toBe(403);
    const made = await h.call("POST", `/admin/accounts/${reg.account_id}/keys`, ADMIN, { name: "trial", max_budget_ton: "0.5", expires_at: "2099-01-01T00:00:00Z", rpm_limit: 500 });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ account_id: reg.account_id, max_budget_ton: "0.500000000", expires_at: "2099-01-01T00:00:00.000Z", rpm_limit: 500 });
    const patched = await h.call("PATCH", `/admin/keys/${made.body.id}`, ADMIN, { expires_at: null, tpm_limit: 1_000 });
    expect(patched.body).toMatchObject({ expires_at: null, tpm_limit: 1_000, rpm_limit: 500, account_id: reg.account_id });
    expect((await h.call("PATCH", "/admin/keys/999", ADMIN, { rpm_limit: 1 })).status).toBe(404);
    const keys = (await h.call("GET", `/admin/accounts/${reg.account_id}/keys`, ADMIN)).body.data as Json[];
    expect(keys.map((k) => k.id)).toEqual([reg.key_id, made.body.id]);

    const before = (await h.call("GET", `/admin/accounts/${reg.account_id}/limits`, ADMIN)).body;
    expect(before).toEqual({ account_id: reg.account_id, rpm_limit: 100, tpm_limit: 100_000, rpd_limit: 1_000, overrides: { rpm_limit: null, tpm_limit: null, rpd_limit: null } });
    const after = (await h.call("PATCH", `/admin/accounts/${reg.account_id}/limits`, ADMIN, { rpm_limit: 7 })).body;
    expect(after).toMatchObject({ rpm_limit: 7, overrides: { rpm_limit: 7, tpm_limit: null } });
    // The keys now verify with the account's limit binding them.
    expect(verifyKey(h.db, made.body.api_key)?.accountLimits.rpm).toBe(7);
    expect((await h.call("GET", "/admin/accounts/999/limits", ADMIN)).status).toBe(404);
    // Each change is in the audit log, newest first, with the values before and after.
    const audit = (await h.call("GET", `/admin/audit?account_id=${reg.account_id}`, ADMIN)).body.data as Json[];
    expect(audit.map((e) => e.action)).toEqual(["account.limits", "key.limits", "key.create"]);
    expect(audit[0]).toMatchObject({ actor: "admin", before: { rpm: null }, after: { rpm: 7 } });
    expect(audit[1].before).not.toEqual(audit[1].after);
  });

  test("a change to the values a key or account already has records nothing in the audit log", async () => {
    const h = harness();
    const reg = (await h.call("POST", "/api/register", null)).body;
    const actions = async () => ((await h.call("GET", `/admin/audit?account_id=${reg.account_id}`, ADMIN)).body.data as Json[]).map((e) => e.action);
    for (let i = 0; i < 2; i++) {
      expect((await h.call("PATCH", `/admin/keys/${reg.key_id}`, ADMIN, { rpm_limit: 30, max_budget_ton: "2" })).status).toBe(200);
      expect((await h.call("PATCH", `/admin/accounts/${reg.account_id}/limits`, ADMIN, { tpm_limit: 5_000 })).status).toBe(200);
    }
    expect(await actions()).toEqual(["account.limits", "key.limits"]);
    // An empty change too.
    expect((await h.call("PATCH", `/admin/keys/${reg.key_id}`, ADMIN, {})).status).toBe(200);
    expect(await actions()).toHaveLength(2);
  });
});

describe("create-key", () => {
  test("limit flags go on the new key; --account adds a key to an existing account; bad values are one clear error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cocoon-create-key-limits-"));
    try {
      const db = join(dir, "c.sqlite");
      const { config } = loadConfig(["--db", db]);
      const out: string[] = [];
      await createKeyCommand(config, { credit: "1", "max-budget": "0.5", "period-budget": "0.1", "budget-duration": "week", rpm: "20", "max-parallel": "3", expires: "7d" }, (s) => out.push(s));
      const keyId = Number(out.find((l) => l.startsWith("key_id: "))!.slice(8));
      expect(out.find((l) => l.startsWith("limits: "))).toContain("max_budget 0.500000000 TON");
      const store = openStore(db);
      const k = keyInfoById(store, keyId)!;
      expect(k.limits).toMatchObject({ maxBudget: 500_000_000n, periodBudget: 100_000_000n, budgetDuration: "week", rpm: 20, maxParallelRequests: 3 });
      expect(k.limits.expiresAt! - Date.now()).toBeGreaterThan(6 * 86_400_000);
      const more: string[] = [];
      await createKeyCommand(config, { account: String(k.accountId), tpm: "1000" }, (s) => more.push(s));
      expect(more).toContain(`account: ${k.accountId}`);
      await expect(createKeyCommand(config, { "budget-duration": "week" }, () => {})).rejects.toThrow(/period_budget_ton and budget_duration go together/);
      await expect(createKeyCommand(config, { rpm: "x" }, () => {})).rejects.toThrow(/--rpm must be a non-negative integer/);
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("budget periods", () => {
  test("days, ISO weeks (from Monday) and months in UTC", () => {
    const t = Date.UTC(2026, 11, 3, 15, 30); // a Thursday
    expect(periodStart("day", t)).toBe(Date.UTC(2026, 11, 3));
    expect(periodStart("week", t)).toBe(Date.UTC(2026, 10, 30));
    expect(periodEnd("week", t)).toBe(Date.UTC(2026, 11, 7));
    expect(periodStart("month", t)).toBe(Date.UTC(2026, 11, 1));
    expect(periodEnd("month", t)).toBe(Date.UTC(2027, 0, 1));
    // Sunday belongs to the week that began the Monday before.
    expect(periodStart("week", Date.UTC(2026, 11, 6, 23))).toBe(Date.UTC(2026, 10, 30));
  });
});

// The platform routes in-process (the plugin alone, on its own Elysia): seed 001's shapes, keys shown
// once and stored hashed, 401/403/404/429 as specified, exact admin credits, and account isolation.
import { afterAll, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { Elysia } from "elysia";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiError } from "../../src/http/errors.ts";
import { isValidDepositCode } from "../../src/platform/accounts.ts";
import { platformRoutes, type PlatformRouteDeps } from "../../src/platform/index.ts";
import { checkInvariants, credit, reserve, settle } from "../../src/platform/ledger.ts";
import { formatTon, pricingConfig, pricingDocument } from "../../src/platform/pricing.ts";
import { DEFAULT_RATE_LIMITS, type RateLimits } from "../../src/platform/ratelimit.ts";
import { Platform, type PlatformOptions } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";

const dir = mkdtempSync(join(tmpdir(), "cocoon-routes-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Json = Record<string, any>;

interface Harness {
  db: Database;
  platform: Platform;
  request(path: string, init?: RequestInit & { key?: string; json?: unknown }): Promise<Response>;
  /** POST /api/register: the new account's key, ids and deposit code. */
  register(): Promise<{ key: string; accountId: number; keyId: number; depositCode: string }>;
}

function harness(o: { path?: string; platform?: Partial<PlatformOptions>; rateLimits?: RateLimits; deps?: Partial<Omit<PlatformRouteDeps, "platform">> } = {}): Harness {
  const db = openStore(o.path ?? ":memory:");
  const platform = new Platform(db, {
    auth: true,
    adminToken: "",
    pricing: pricingConfig(),
    rateLimits: o.rateLimits ?? { ...DEFAULT_RATE_LIMITS, rpm: 10_000, rpd: 100_000 },
    signupCredit: 0n,
    ...o.platform,
  });
  const app = new Elysia()
    .onError(({ code, error }) => {
      if (error instanceof ApiError) return error.response();
      if (code === "VALIDATION") return new ApiError("invalid_request", "invalid").response();
      return new Response("x", { status: 500 });
    })
    .use(
      platformRoutes({
        platform,
        modelIds: () => ["tiny"],
        stats: () => [],
        depositWallet: () => null,
        tonUsdRate: () => null,
        ...o.deps,
      }),
    );
  const request: Harness["request"] = (path, init = {}) => {
    const headers = new Headers(init.headers);
    if (init.key !== undefined) headers.set("authorization", `Bearer ${init.key}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(init.json);
    }
    return app.handle(new Request(`http://localhost${path}`, { ...init, headers, body }));
  };
  return {
    db,
    platform,
    request,
    async register() {
      const res = await request("/api/register", { method: "POST" });
      expect(res.status).toBe(200);
      const b = (await res.json()) as Json;
      return { key: b.api_key, accountId: b.account_id, keyId: b.key_id, depositCode: b.deposit_code };
    },
  };
}

const INVALID_KEY = { error: { message: "Invalid API key", type: "invalid_auth", param: null, code: "invalid_api_key" } };

/** A settled request of `accountId` (as the inference routes leave one). */
function bill(db: Database, accountId: number, keyId: number, id: string, startedAt: number, promptTokens = 10, completionTokens = 5): void {
  const r = reserve(db, { requestId: id, accountId, want: 1_000_000n, minimumBalance: 0n, maxOverdraft: 0n });
  expect(r.ok).toBe(true);
  settle(db, {
    requestId: id,
    cost: BigInt(promptTokens * 30 + completionTokens * 120),
    usage: { keyId, model: "tiny", endpoint: "/v1/chat/completions", promptTokens, cachedTokens: 0, completionTokens, reasoningTokens: 0, status: "ok", startedAt, durationMs: 42 },
  });
}

describe("POST /api/register", () => {
  test("sign-ups per client address are limited (429 signup_limit_exceeded past it), and a sign-up credit is granted only within the limit", async () => {
    const h = harness({ platform: { registerLimit: 2, trustProxy: true, signupCredit: 1_000n } });
    const from = (ip: string) => h.request("/api/register", { method: "POST", headers: { "x-forwarded-for": `203.0.113.9, ${ip}` } });
    expect((await from("198.51.100.1")).status).toBe(200);
    expect((await from("198.51.100.1")).status).toBe(200);
    const third = await from("198.51.100.1");
    expect(third.status).toBe(429);
    expect(((await third.json()) as Json).error).toMatchObject({ code: "signup_limit_exceeded", type: "rate_limit_error" });
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another address may; the forged first X-Forwarded-For entry changes nothing.
    expect((await from("198.51.100.2")).status).toBe(200);
    const credited = h.db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM ledger WHERE kind = 'adjustment' AND reference LIKE 'signup:%'").get()!.n;
    expect(credited).toBe(3n);
  });

  test("--register admin needs the admin token; --register off refuses everyone", async () => {
    const admin = harness({ platform: { register: "admin", adminToken: "s3cret" } });
    expect((await admin.request("/api/register", { method: "POST" })).status).toBe(403);
    expect((await admin.request("/api/register", { method: "POST", headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
    const off = harness({ platform: { register: "off", adminToken: "s3cret" } });
    const closed = await off.request("/api/register", { method: "POST", headers: { authorization: "Bearer s3cret" } });
    expect(closed.status).toBe(403);
    expect(((await closed.json()) as Json).error.message).toContain("closed");
  });

  test("returns a key shown once, a valid deposit code and the wallet; the key works on /v1/balance", async () => {
    const h = harness();
    const res = await h.request("/api/register", { method: "POST" });
    expect(res.status).toBe(200);
    const b = (await res.json()) as Json;
    expect(b.api_key).toMatch(/^ck_[0-9A-Za-z]{43}$/);
    expect(isValidDepositCode(b.deposit_code)).toBe(true);
    expect(b.balance_ton).toBe(0);
    expect(b.balance_nanoton).toBe(0);
    expect(new Date(b.created_at).toISOString()).toBe(b.created_at);
    // No wallet configured: null, and the instructions say deposits are off.
    expect(b.deposit_wallet).toBeNull();
    expect(b.deposit_instructions).toContain("not enabled");

    const bal = await h.request("/v1/balance", { key: b.api_key });
    expect(bal.status).toBe(200);
    expect(await bal.json()).toEqual({ balance_ton: 0, balance_nanoton: 0, balance_usd: null, ton_usd_rate: null, reserved_nanoton: 0 });
  });

  test("with a wallet configured, register, login and /v1/deposit all name it with the account's memo", async () => {
    const wallet = "EQAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeR9Sp";
    const h = harness({ deps: { depositWallet: () => wallet } });
    const res = await h.request("/api/register", { method: "POST", json: { name: "laptop" } });
    const b = (await res.json()) as Json;
    expect(b.deposit_wallet).toBe(wallet);
    expect(b.deposit_instructions).toContain(wallet);
    expect(b.deposit_instructions).toContain(b.deposit_code);

    const dep = await h.request("/v1/deposit", { key: b.api_key });
    expect(dep.status).toBe(200);
    const d = (await dep.json()) as Json;
    expect(d).toEqual({
      wallet,
      memo: b.deposit_code,
      instructions: expect.stringContaining(b.deposit_code),
      link: `ton://transfer/${wallet}?text=${b.deposit_code}`,
      deposits_enabled: true,
      minimum_deposit_ton: "0.000000000",
      minimum_deposit_nanoton: 0,
    });

    const login = await h.request("/api/login", { method: "POST", json: { api_key: b.api_key } });
    expect(login.status).toBe(200);
    expect(await login.json()).toEqual({ balance_ton: 0, balance_nanoton: 0, deposit_code: b.deposit_code, deposit_wallet: wallet, deposit_instructions: expect.any(String) });
  });

  test("/v1/deposit without a wallet: 200, wallet null, instructions say deposits are not enabled", async () => {
    const h = harness();
    const a = await h.register();
    const d = (await (await h.request("/v1/deposit", { key: a.key })).json()) as Json;
    expect(d.wallet).toBeNull();
    expect(d.memo).toBe(a.depositCode);
    expect(d.instructions).toContain("not enabled");
  });

  test("signup credit: none by default; when configured, booked once as an adjustment `signup:<id>` (also for /v1/keys)", async () => {
    const none = harness();
    const a = await none.register();
    expect(none.db.query("SELECT count(*) AS n FROM ledger").get()).toEqual({ n: 0n });
    expect(((await (await none.request("/v1/balance", { key: a.key })).json()) as Json).balance_nanoton).toBe(0);

    const h = harness({ platform: { signupCredit: 250_000_000n } });
    const res = await h.request("/api/register", { method: "POST" });
    const b = (await res.json()) as Json;
    expect(b.balance_ton).toBe(0.25);
    expect(b.balance_nanoton).toBe(250_000_000);
    const rows = h.db.query("SELECT account_id, kind, amount_nanoton, reference FROM ledger").all();
    expect(rows).toEqual([{ account_id: BigInt(b.account_id), kind: "adjustment", amount_nanoton: 250_000_000n, reference: `signup:${b.account_id}` }]);
    const bal = (await (await h.request("/v1/balance", { key: b.api_key })).json()) as Json;
    expect(bal.balance_nanoton).toBe(250_000_000);

    const k = (await (await h.request("/v1/keys", { method: "POST" })).json()) as Json;
    expect(k.balance_nanoton).toBe(250_000_000);
    expect(checkInvariants(h.db)).toEqual([]);
  });
});

describe("keys at rest", () => {
  test("no key appears in the database file or its WAL, only its SHA-256", async () => {
    const path = join(dir, "keys-at-rest.db");
    const h = harness({ path });
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) keys.push((await h.register()).key);
    const extra = (await (await h.request("/v1/account/keys", { method: "POST", key: keys[0], json: { name: "second" } })).json()) as Json;
    keys.push(extra.api_key);
    keys.push(((await (await h.request("/v1/keys", { method: "POST" })).json()) as Json).api_key);

    const files = [path, `${path}-wal`].filter(existsSync).map((f) => readFileSync(f));
    expect(files.length).toBeGreaterThan(0);
    const contains = (needle: Buffer) => files.some((bytes) => bytes.includes(needle));
    for (const key of keys) {
      // The search would find the hash: the data is in these files.
      expect(contains(createHash("sha256").update(key).digest())).toBe(true);
      expect(contains(Buffer.from(key))).toBe(false);
      // Nor the secret part past the stored display prefix, in any encoding SQLite might use.
      expect(contains(Buffer.from(key.slice(10)))).toBe(false);
      expect(contains(Buffer.from(key.slice(10), "utf16le"))).toBe(false);
    }
    h.db.close();
  });
});

describe("authentication", () => {
  test("401 for a missing, malformed, unknown or revoked key, in seed 001's shape", async () => {
    const h = harness();
    const a = await h.register();

    const missing = await h.request("/v1/balance");
    expect(missing.status).toBe(401);
    const m = (await missing.json()) as Json;
    expect(m.error).toMatchObject({ type: "invalid_auth", param: null, code: "invalid_api_key" });
    expect(typeof m.error.message).toBe("string");

    for (const bad of ["nope", "ck_short", `${a.key}x`, `ck_${"A".repeat(43)}`]) {
      const res = await h.request("/v1/balance", { key: bad });
      expect({ bad, status: res.status }).toEqual({ bad, status: 401 });
      expect(await res.json()).toEqual(INVALID_KEY);
      expect(res.headers.get("x-ratelimit-limit")).toBeNull();
    }

    // Revoked with a second key of the same account, then refused everywhere.
    const second = (await (await h.request("/v1/account/keys", { method: "POST", key: a.key })).json()) as Json;
    const del = await h.request(`/v1/account/keys/${a.keyId}`, { method: "DELETE", key: second.api_key });
    expect(del.status).toBe(200);
    for (const [path, init] of [
      ["/v1/balance", {}],
      ["/v1/usage", {}],
      ["/v1/keys", {}],
      ["/v1/deposit", {}],
      ["/api/login", { method: "POST" }],
    ] as const) {
      const res = await h.request(path, { ...init, key: a.key });
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      expect(await res.json()).toEqual(INVALID_KEY);
    }
    expect((await h.request("/v1/balance", { key: second.api_key })).status).toBe(200);
  });

  test("/api/login verifies the body's api_key, else the Authorization key; 401 otherwise", async () => {
    const h = harness();
    const a = await h.register();
    const viaBody = await h.request("/api/login", { method: "POST", json: { api_key: a.key } });
    expect(viaBody.status).toBe(200);
    expect(((await viaBody.json()) as Json).deposit_code).toBe(a.depositCode);
    expect(viaBody.headers.get("x-ratelimit-remaining")).not.toBeNull();
    const viaHeader = await h.request("/api/login", { method: "POST", key: a.key });
    expect(viaHeader.status).toBe(200);
    // The body's key wins over the header's.
    const wrong = await h.request("/api/login", { method: "POST", key: a.key, json: { api_key: "ck_nope" } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual(INVALID_KEY);
    expect((await h.request("/api/login", { method: "POST" })).status).toBe(401);
  });

  test("POST /v1/keys: 403 without the right admin token when one is configured; open when none is", async () => {
    const h = harness({ platform: { adminToken: "s3cret-admin-token" } });
    for (const token of [undefined, "wrong", "s3cret-admin-token-but-longer"]) {
      const res = await h.request("/v1/keys", { method: "POST", key: token });
      expect({ token, status: res.status }).toEqual({ token, status: 403 });
      expect(((await res.json()) as Json).error).toMatchObject({ type: "auth_error", code: "forbidden" });
    }
    // A customer key is not the admin token.
    const a = await h.register();
    expect((await h.request("/v1/keys", { method: "POST", key: a.key })).status).toBe(403);
    const ok = await h.request("/v1/keys", { method: "POST", key: "s3cret-admin-token" });
    expect(ok.status).toBe(201);
    const b = (await ok.json()) as Json;
    expect(Object.keys(b).sort()).toEqual(["account_id", "api_key", "balance_nanoton", "balance_ton", "created_at", "deposit_code", "key_id"]);
    expect(b.account_id).not.toBe(a.accountId);
    expect((await h.request("/v1/balance", { key: b.api_key })).status).toBe(200);

    const open = harness();
    const res = await open.request("/v1/keys", { method: "POST" });
    expect(res.status).toBe(201);
    // Without an admin token the admin routes stay closed.
    expect((await open.request("/admin/accounts", { key: "anything" })).status).toBe(403);
  });
});

describe("admin", () => {
  const TOKEN = "admin-token-0123456789";
  const asAdmin = { key: TOKEN };

  test("credit changes the balance exactly, is idempotent per reference, and keeps the books", async () => {
    const h = harness({ platform: { adminToken: TOKEN } });
    const a = await h.register();
    const credit = (amount_ton: string, reference?: string) =>
      h.request(`/admin/accounts/${a.accountId}/credit`, { method: "POST", ...asAdmin, json: { amount_ton, reason: "test", ...(reference ? { reference } : {}) } });

    const r1 = await credit("1.000000001", "welcome");
    expect(r1.status).toBe(201);
    expect(await r1.json()).toEqual({
      account_id: a.accountId,
      booked: true,
      reference: "welcome",
      amount_nanoton: 1_000_000_001,
      amount_ton: "1.000000001",
      balance_nanoton: 1_000_000_001,
      balance_ton: "1.000000001",
    });
    const again = await credit("1.000000001", "welcome");
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ booked: false, balance_nanoton: 1_000_000_001 });

    // A debit, and a credit with a generated reference each time.
    expect((await credit("-0.3")).status).toBe(201);
    const r3 = await credit("0.1");
    const r4 = await credit("0.1");
    expect((await r3.json()) as Json).toMatchObject({ booked: true, reference: expect.any(String) });
    expect(((await r4.json()) as Json).balance_ton).toBe("0.900000001");

    const bal = (await (await h.request("/v1/balance", { key: a.key })).json()) as Json;
    expect(bal.balance_nanoton).toBe(900_000_001);
    expect(bal.balance_ton).toBe(0.900000001);

    // The same reference for another amount or account is refused, not silently ignored.
    const b = await h.register();
    expect((await credit("2", "welcome")).status).toBe(400);
    const other = await h.request(`/admin/accounts/${b.accountId}/credit`, { method: "POST", ...asAdmin, json: { amount_ton: "1.000000001", reason: "x", reference: "welcome" } });
    expect(other.status).toBe(400);
    expect(((await other.json()) as Json).error.param).toBe("reference");

    for (const bad of ["0", "0.000000000", "1.0000000001", "1e3", "abc", "", "0x10", "99999999999"]) {
      const res = await credit(bad);
      expect({ bad, status: res.status }).toEqual({ bad, status: 400 });
    }
    expect((await h.request(`/admin/accounts/999/credit`, { method: "POST", ...asAdmin, json: { amount_ton: "1", reason: "x" } })).status).toBe(404);
    expect((await h.request(`/admin/accounts/${a.accountId}/credit`, { method: "POST", key: a.key, json: { amount_ton: "1", reason: "x" } })).status).toBe(403);

    expect(h.db.query("SELECT count(*) AS n FROM ledger WHERE kind = 'adjustment'").get()).toEqual({ n: 4n });
    expect(checkInvariants(h.db)).toEqual([]);
  });

  test("accounts list with exact balances and paging; key revocation", async () => {
    const h = harness({ platform: { adminToken: TOKEN } });
    const a = await h.register();
    const b = await h.register();
    credit(h.db, b.accountId, 1_234_567_890n, "deposit", "tx1");

    const page = (await (await h.request("/admin/accounts?limit=1&offset=1", asAdmin)).json()) as Json;
    expect(page.total).toBe(2);
    expect(page.data).toEqual([
      { id: b.accountId, label: null, deposit_code: b.depositCode, balance_nanoton: 1_234_567_890, balance_ton: "1.234567890", reserved_nanoton: 0, created_at: expect.any(String), disabled: false },
    ]);
    expect((await h.request("/admin/accounts?limit=0", asAdmin)).status).toBe(400);
    expect((await h.request("/admin/accounts", { key: a.key })).status).toBe(403);

    expect((await h.request(`/admin/keys/${a.keyId}/revoke`, { method: "POST", key: a.key })).status).toBe(403);
    const rev = await h.request(`/admin/keys/${a.keyId}/revoke`, { method: "POST", ...asAdmin });
    expect(rev.status).toBe(200);
    const r = (await rev.json()) as Json;
    expect(r).toEqual({ id: a.keyId, account_id: a.accountId, revoked_at: expect.any(String) });
    expect((await h.request("/v1/balance", { key: a.key })).status).toBe(401);
    const again = (await (await h.request(`/admin/keys/${a.keyId}/revoke`, { method: "POST", ...asAdmin })).json()) as Json;
    expect(again.revoked_at).toBe(r.revoked_at);
    expect((await h.request(`/admin/keys/999/revoke`, { method: "POST", ...asAdmin })).status).toBe(404);
    expect((await h.request(`/admin/keys/abc/revoke`, { method: "POST", ...asAdmin })).status).toBe(404);
  });
});

describe("isolation between accounts", () => {
  test("one account never sees another's usage", async () => {
    const h = harness();
    const a = await h.register();
    const b = await h.register();
    credit(h.db, a.accountId, 1_000_000_000n, "deposit", "tx-a");
    bill(h.db, a.accountId, a.keyId, "req_a1", Date.now());

    const mine = (await (await h.request("/v1/usage", { key: a.key })).json()) as Json;
    expect(mine.data).toHaveLength(1);
    expect(mine.data[0]).toMatchObject({
      id: "req_a1",
      key_id: a.keyId,
      model: "tiny",
      status: "ok",
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      cost: { nanoton: 900, ton: "0.000000900" },
    });
    expect((await h.request("/v1/usage/req_a1", { key: a.key })).status).toBe(200);

    expect(await (await h.request("/v1/usage", { key: b.key })).json()).toEqual({ object: "list", data: [], has_more: false, next_before: null });
    const other = await h.request("/v1/usage/req_a1", { key: b.key });
    expect(other.status).toBe(404);
    expect(((await other.json()) as Json).error.code).toBe("not_found");
    // A's request id as B's cursor reveals nothing either.
    expect(((await (await h.request("/v1/usage?before=req_a1", { key: b.key })).json()) as Json).data).toEqual([]);
  });

  test("one account never lists or revokes another's keys", async () => {
    const h = harness();
    const a = await h.register();
    const b = await h.register();
    const del = await h.request(`/v1/account/keys/${a.keyId}`, { method: "DELETE", key: b.key });
    expect(del.status).toBe(404);
    expect((await h.request("/v1/balance", { key: a.key })).status).toBe(200);

    const listB = (await (await h.request("/v1/keys", { key: b.key })).json()) as Json;
    expect(listB.data.map((k: Json) => k.id)).toEqual([b.keyId]);
    expect((await h.request(`/v1/account/keys/999`, { method: "DELETE", key: b.key })).status).toBe(404);
    expect((await h.request(`/v1/account/keys/x`, { method: "DELETE", key: b.key })).status).toBe(404);
  });
});

describe("own keys", () => {
  test("a key lists, creates and revokes keys of its own account; keys are never listed in full", async () => {
    const h = harness();
    const a = await h.register();
    const created = await h.request("/v1/account/keys", { method: "POST", key: a.key, json: { name: "ci" } });
    expect(created.status).toBe(201);
    const c = (await created.json()) as Json;
    // toMatchObject writes its matchers into the object it checks: check a copy.
    expect({ ...c }).toMatchObject({ id: expect.any(Number), api_key: expect.stringMatching(/^ck_[0-9A-Za-z]{43}$/), prefix: c.api_key.slice(0, 10), name: "ci", created_at: expect.any(String) });
    expect(c).toMatchObject({ account_id: a.accountId, max_budget_nanoton: null, expires_at: null, rpm_limit: null, spend_nanoton: 0 });
    // Same account: same balance and deposit code.
    credit(h.db, a.accountId, 5n, "deposit", "tx");
    const bal = (await (await h.request("/v1/balance", { key: c.api_key })).json()) as Json;
    expect(bal).toMatchObject({ balance_nanoton: 5 });

    const list = await h.request("/v1/keys", { key: c.api_key });
    const text = await list.text();
    expect(text).not.toContain(a.key);
    expect(text).not.toContain(c.api_key);
    const keys = JSON.parse(text).data as Json[];
    expect(keys.map((k) => [k.id, k.name, k.current, k.revoked_at])).toEqual([
      [a.keyId, null, false, null],
      [c.id, "ci", true, null],
    ]);
    expect(keys[1]!.last_used_at).toEqual(expect.any(String));

    const del = await h.request(`/v1/account/keys/${c.id}`, { method: "DELETE", key: a.key });
    expect(del.status).toBe(200);
    const d = (await del.json()) as Json;
    expect(d).toEqual({ id: c.id, account_id: a.accountId, revoked_at: expect.any(String) });
    // Revoking again answers the first revocation.
    expect(((await (await h.request(`/v1/account/keys/${c.id}`, { method: "DELETE", key: a.key })).json()) as Json).revoked_at).toBe(d.revoked_at);
    expect((await h.request("/v1/balance", { key: c.api_key })).status).toBe(401);
    const after = ((await (await h.request("/v1/keys", { key: a.key })).json()) as Json).data as Json[];
    expect(after[1]!.revoked_at).toBe(d.revoked_at);
  });
});

describe("usage", () => {
  test("newest first, paged with next_before, each entry with its exact cost", async () => {
    const h = harness();
    const a = await h.register();
    credit(h.db, a.accountId, 1_000_000_000n, "deposit", "tx");
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 5; i++) bill(h.db, a.accountId, a.keyId, `req_${i}`, t0 + i * 1000, 10 + i, i);

    const ids: string[] = [];
    let before: string | null = null;
    for (let page = 0; page < 3; page++) {
      const res = await h.request(`/v1/usage?limit=2${before ? `&before=${before}` : ""}`, { key: a.key });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Json;
      ids.push(...body.data.map((u: Json) => u.id));
      expect(body.has_more).toBe(page < 2);
      before = body.next_before;
      expect(before === null).toBe(page === 2);
    }
    expect(ids).toEqual(["req_4", "req_3", "req_2", "req_1", "req_0"]);

    const one = (await (await h.request("/v1/usage/req_3", { key: a.key })).json()) as Json;
    const cost = 13 * 30 + 3 * 120;
    expect(one).toEqual({
      id: "req_3",
      created_at: new Date(t0 + 3000).toISOString(),
      model: "tiny",
      endpoint: "/v1/chat/completions",
      request_guid: null,
      key_id: a.keyId,
      status: "ok",
      prompt_tokens: 13,
      cached_tokens: 0,
      completion_tokens: 3,
      reasoning_tokens: 0,
      total_tokens: 16,
      cost: { nanoton: cost, ton: formatTon(BigInt(cost)) },
      duration_ms: 42,
    });
    for (const q of ["limit=0", "limit=1001", "limit=abc"]) expect((await h.request(`/v1/usage?${q}`, { key: a.key })).status).toBe(400);
  });
});

describe("rate limits", () => {
  test("every account route sends X-RateLimit-* headers of the account routes' limit counting down, then 429 with Retry-After", async () => {
    // Counters reset at each UTC minute: start well clear of the next boundary.
    const toBoundary = 60_000 - (Date.now() % 60_000);
    if (toBoundary < 3000) await Bun.sleep(toBoundary + 50);
    const h = harness({ rateLimits: { rpm: 2, tpm: 1_000_000, rpd: 1_000 }, platform: { accountRouteRpm: 8 } });
    const a = await h.register();
    const calls: [string, RequestInit & { json?: unknown }][] = [
      ["/v1/balance", {}],
      ["/v1/deposit", {}],
      ["/v1/usage", {}],
      ["/v1/usage/nope", {}],
      ["/v1/keys", {}],
      ["/api/login", { method: "POST" }],
      ["/v1/account/keys", { method: "POST" }],
      ["/v1/account/keys/999", { method: "DELETE" }],
    ];
    const remaining: number[] = [];
    for (const [path, init] of calls) {
      const res = await h.request(path, { ...init, key: a.key });
      expect({ path, ok: res.status < 500 && res.status !== 401 && res.status !== 429 }).toEqual({ path, ok: true });
      expect(res.headers.get("x-ratelimit-limit")).toBe("8");
      const reset = Number(res.headers.get("x-ratelimit-reset"));
      expect(reset * 1000).toBeGreaterThan(Date.now() - 1000);
      expect(reset * 1000).toBeLessThanOrEqual(Date.now() + 61_000);
      remaining.push(Number(res.headers.get("x-ratelimit-remaining")));
    }
    // The 404s (usage and key of nobody) carry the headers too and count like the rest.
    expect(remaining).toEqual([7, 6, 5, 4, 3, 2, 1, 0]);

    const limited = await h.request("/v1/balance", { key: a.key });
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as Json).error).toMatchObject({ type: "rate_limit_error", code: "rpm_limit_exceeded" });
    const retry = Number(limited.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");

    // Limits are per key: another account is unaffected; unauthenticated routes are not limited.
    const b = await h.register();
    expect((await h.request("/v1/balance", { key: b.key })).headers.get("x-ratelimit-remaining")).toBe("7");
    const pricing = await h.request("/v1/pricing");
    expect(pricing.status).toBe(200);
    expect(pricing.headers.get("x-ratelimit-limit")).toBeNull();
  });
});

describe("public routes", () => {
  test("/v1/pricing is exactly pricingDocument(config, modelIds)", async () => {
    const pricing = pricingConfig({ baseNanoton: 7n, markup: "1.25", models: { big: { baseNanoton: 333n, multipliers: { completion: "3.3" } } } });
    const h = harness({ platform: { pricing }, deps: { modelIds: () => ["tiny", "small"] } });
    const res = await h.request("/v1/pricing");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(pricingDocument(pricing, ["tiny", "small"]))));
  });

  test("/api/stats: per-model load, online with a time; offline with no models", async () => {
    let stats: ReturnType<PlatformRouteDeps["stats"]> = [];
    const h = harness({ deps: { stats: () => stats } });
    expect(await (await h.request("/api/stats")).json()).toEqual({ models: [], status: "offline", cached_at: null });
    stats = [{ id: "tiny", slotsBusy: 1, slotsTotal: 3, queued: 2 }];
    const s = (await (await h.request("/api/stats")).json()) as Json;
    expect(s.models).toEqual([{ id: "tiny", workers: 1, running: 1, capacity: 3, load_pct: 33.3, queued: 2 }]);
    expect(s.status).toBe("online");
    expect(Math.abs(Date.parse(s.cached_at) - Date.now())).toBeLessThan(5000);
  });

  test("/v1/balance in USD at the known rate, rounded to cents; a negative balance stays negative", async () => {
    const h = harness({ deps: { tonUsdRate: () => 1.302 } });
    const a = await h.register();
    credit(h.db, a.accountId, 1_500_000_000n, "adjustment", "c1");
    expect(await (await h.request("/v1/balance", { key: a.key })).json()).toEqual({
      balance_ton: 1.5,
      balance_nanoton: 1_500_000_000,
      balance_usd: 1.95,
      ton_usd_rate: 1.302,
      reserved_nanoton: 0,
    });
    credit(h.db, a.accountId, -1_510_000_000n, "adjustment", "c2");
    const neg = (await (await h.request("/v1/balance", { key: a.key })).json()) as Json;
    expect(neg.balance_nanoton).toBe(-10_000_000);
    expect(neg.balance_ton).toBe(-0.01);
    expect(neg.balance_usd).toBe(-0.01);
  });
});

// Usage reporting on the real billing path: /v1/usage filtered by key, model and time range, its CSV
// export (parsed, and summing to the ledger's charges), and the admin-wide totals per day / account /
// model, which add up to the same charges.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { Platform } from "../../src/platform/service.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit, reserve, settle } from "../../src/platform/ledger.ts";
import { parseTon, pricingConfig } from "../../src/platform/pricing.ts";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";
import { csvRecords } from "../support/csv.ts";

setDefaultTimeout(120_000);

const ADMIN = "admin-token-for-usage-tests";
const dir = mkdtempSync(join(tmpdir(), "cocoon-usage-report-"));
const db = openStore(join(dir, "usage.sqlite"));
const platform = new Platform(db, { auth: true, adminToken: ADMIN, pricing: pricingConfig({ baseNanoton: 1000n }), rateLimits: { rpm: 10_000, tpm: 100_000_000, rpd: 100_000 }, signupCredit: 0n });
let app: InProcessApp;

type Json = Record<string, any>;
const DAY = 86_400_000;

function account(): { id: number; keys: { key: string; id: number }[] } {
  const a = createAccount(db);
  credit(db, a.id, parseTon("10"), "adjustment", `test:${a.id}`);
  const keys = [createKey(db, a.id), createKey(db, a.id)];
  return { id: a.id, keys };
}

/** A settled request as the ledger records one, at a chosen time and model (the past cannot be chatted into). */
function billed(accountId: number, keyId: number, id: string, o: { model: string; startedAt: number; cost: bigint; guid?: string }) {
  expect(reserve(db, { requestId: id, accountId, want: 1_000_000_000n, minimumBalance: 0n, maxOverdraft: 0n }).ok).toBe(true);
  settle(db, {
    requestId: id,
    cost: o.cost,
    usage: { keyId, model: o.model, endpoint: "/v1/chat/completions", requestGuid: o.guid ?? null, promptTokens: 7, cachedTokens: 2, completionTokens: 3, reasoningTokens: 1, status: "ok", startedAt: o.startedAt, durationMs: 5 },
  });
}

async function chat(key: string, content: string): Promise<Json> {
  const res = await app.request("/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: TINY_ID, messages: [{ role: "user", content }], max_tokens: 4, temperature: 0 }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Json;
}

const get = (path: string, token: string) => app.request(path, { headers: { authorization: `Bearer ${token}` } });

/** −Σ charge rows of an account in the ledger: what it was billed. */
const charged = (accountId: number | null) =>
  -(db.query<{ s: bigint | null }, [number | null]>("SELECT sum(amount_nanoton) AS s FROM ledger WHERE kind = 'charge' AND (?1 IS NULL OR account_id = ?1)").get(accountId)?.s ?? 0n);

let a: ReturnType<typeof account>;
let b: ReturnType<typeof account>;
const now = Date.now();

beforeAll(async () => {
  app = await startInProcessApp({ platform });
  a = account();
  b = account();
  // Real billed requests: three with A's first key, two with its second, one of B's.
  for (const [i, key] of [a.keys[0]!, a.keys[0]!, a.keys[0]!, a.keys[1]!, a.keys[1]!, b.keys[0]!].entries()) await chat(key.key, `hello ${i}`);
  // And ledger rows on other days and another model, with a client guid a spreadsheet would run.
  billed(a.id, a.keys[0]!.id, "req_old_1", { model: "other-model", startedAt: now - 3 * DAY, cost: 12_345n, guid: "=HYPERLINK(\"x\")" });
  billed(a.id, a.keys[1]!.id, "req_old_2", { model: TINY_ID, startedAt: now - 2 * DAY, cost: 678n });
  billed(b.id, b.keys[0]!.id, "req_old_3", { model: "other-model", startedAt: now - 2 * DAY, cost: 9n });
});

afterAll(() => {
  app.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("GET /v1/usage?format=csv", () => {
  test("parses as CSV, one row per billed request, and its cost_nanoton sums to the ledger's charges", async () => {
    const res = await get("/v1/usage?format=csv", a.keys[0]!.key);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toContain("usage.csv");
    const rows = csvRecords(await res.text());
    expect(rows.length).toBe(7);
    expect(Object.keys(rows[0]!)).toEqual(["id", "created_at", "model", "endpoint", "key_id", "status", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "total_tokens", "cost_nanoton", "cost_ton", "duration_ms", "request_guid"]);
    const sum = rows.reduce((s, r) => s + BigInt(r.cost_nanoton!), 0n);
    expect(sum).toBe(charged(a.id));
    expect(sum).toBeGreaterThan(0n);
    // Newest first; cost_ton is the same amount in TON; total = prompt + completion.
    for (const r of rows) {
      expect(parseTon(r.cost_ton!)).toBe(BigInt(r.cost_nanoton!));
      expect(Number(r.total_tokens)).toBe(Number(r.prompt_tokens) + Number(r.completion_tokens));
    }
    expect(Date.parse(rows[0]!.created_at!)).toBeGreaterThanOrEqual(Date.parse(rows.at(-1)!.created_at!));
    // A client's text is never a formula in the spreadsheet.
    expect(rows.find((r) => r.id === "req_old_1")!.request_guid).toBe("'=HYPERLINK(\"x\")");
    // Only this account's requests: B's never appear.
    expect(rows.some((r) => r.id === "req_old_3")).toBe(false);
  });

  test("the filters apply to the CSV as to the JSON pages, and each filtered sum matches the ledger", async () => {
    const byKey = csvRecords(await (await get(`/v1/usage?format=csv&key_id=${a.keys[1]!.id}`, a.keys[0]!.key)).text());
    expect(byKey.length).toBe(3);
    expect(byKey.every((r) => r.key_id === String(a.keys[1]!.id))).toBe(true);
    const byModel = csvRecords(await (await get("/v1/usage?format=csv&model=other-model", a.keys[0]!.key)).text());
    expect(byModel.map((r) => r.id)).toEqual(["req_old_1"]);
    // Before today: the two old rows; ISO and unix seconds say the same.
    const cut = new Date(now - DAY).toISOString();
    const old = csvRecords(await (await get(`/v1/usage?format=csv&end_time=${encodeURIComponent(cut)}`, a.keys[0]!.key)).text());
    expect(old.map((r) => r.id).sort()).toEqual(["req_old_1", "req_old_2"]);
    const recent = (await (await get(`/v1/usage?start_time=${Math.floor((now - DAY) / 1000)}&limit=2`, a.keys[0]!.key)).json()) as Json;
    expect(recent.data.length).toBe(2);
    expect(recent.has_more).toBe(true);
    const rest = (await (await get(`/v1/usage?start_time=${Math.floor((now - DAY) / 1000)}&limit=10&before=${recent.next_before}`, a.keys[0]!.key)).json()) as Json;
    expect(rest.data.length).toBe(3);
    expect(rest.has_more).toBe(false);
    const all = [...recent.data, ...rest.data];
    expect(new Set(all.map((r: Json) => r.id)).size).toBe(5);
    expect(all.every((r: Json) => r.model === TINY_ID && Date.parse(r.created_at) >= now - DAY)).toBe(true);
  });

  test("a bad time or an end before the start is a 400 naming the parameter", async () => {
    const bad = await get("/v1/usage?start_time=yesterday", a.keys[0]!.key);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).error.param).toBe("start_time");
    const backwards = await get("/v1/usage?start_time=2026-12-02&end_time=2026-12-01", a.keys[0]!.key);
    expect(backwards.status).toBe(400);
    expect(((await backwards.json()) as Json).error.param).toBe("end_time");
    const format = await get("/v1/usage?format=xml", a.keys[0]!.key);
    expect(format.status).toBe(400);
  });
});

describe("GET /admin/usage", () => {
  test("totals per day, account and model add up to every charge in the ledger", async () => {
    const res = await get("/admin/usage", ADMIN);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.group_by).toEqual(["day", "account", "model"]);
    const sum = body.data.reduce((s: bigint, r: Json) => s + BigInt(r.cost.nanoton), 0n);
    expect(sum).toBe(charged(null));
    expect(BigInt(body.totals.cost.nanoton)).toBe(charged(null));
    expect(body.totals.requests).toBe(9);
    // Five rows: today A/tiny, today B/tiny, 3 days ago A/other, 2 days ago A/tiny and B/other.
    expect(body.data.length).toBe(5);
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    expect(body.data[0]).toMatchObject({ day: day(now - 3 * DAY), account_id: a.id, model: "other-model", requests: 1, cost: { nanoton: 12_345 } });
    const todayA = body.data.find((r: Json) => r.day === day(now) && r.account_id === a.id)!;
    expect(todayA.requests).toBe(5);
    expect(todayA.total_tokens).toBe(todayA.prompt_tokens + todayA.completion_tokens);
    expect(checkInvariants(db)).toEqual([]);
  });

  test("group_by model alone, filtered to one account; and as CSV", async () => {
    const body = (await (await get(`/admin/usage?group_by=model&account_id=${b.id}`, ADMIN)).json()) as Json;
    expect(body.data.map((r: Json) => [r.model, r.requests, r.day, r.account_id])).toEqual([
      ["other-model", 1, null, null],
      [TINY_ID, 1, null, null],
    ]);
    expect(BigInt(body.totals.cost.nanoton)).toBe(charged(b.id));
    const csv = csvRecords(await (await get("/admin/usage?group_by=day&format=csv", ADMIN)).text());
    expect(csv.length).toBe(3);
    expect(csv.reduce((s, r) => s + BigInt(r.cost_nanoton!), 0n)).toBe(charged(null));
    const bad = await get("/admin/usage?group_by=week", ADMIN);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).error.param).toBe("group_by");
  });

  test("rows page with limit and offset (total counts them all; the grand totals stay whole); bad values 400", async () => {
    const all = (await (await get("/admin/usage", ADMIN)).json()) as Json;
    expect(all).toMatchObject({ total: 5, limit: 1000, offset: 0 });
    const pages: Json[] = [];
    for (let offset = 0; offset < 5; offset += 2) {
      const page = (await (await get(`/admin/usage?limit=2&offset=${offset}`, ADMIN)).json()) as Json;
      expect(page).toMatchObject({ total: 5, limit: 2, offset });
      expect(page.totals).toEqual(all.totals);
      pages.push(...page.data);
    }
    expect(pages).toEqual(all.data);
    for (const q of ["offset=9223372036854775808", "limit=0", "limit=10001", "offset=-1"]) {
      const r = await get(`/admin/usage?${q}`, ADMIN);
      expect(`${q}: ${r.status}`).toBe(`${q}: 400`);
      expect(((await r.json()) as Json).error.type).toBe("invalid_request_error");
    }
  });

  test("a customer's key gets 403, not the totals", async () => {
    const res = await get("/admin/usage", a.keys[0]!.key);
    expect(res.status).toBe(403);
    expect(JSON.stringify(await res.json())).not.toContain("cost");
  });
});

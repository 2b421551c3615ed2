// Key listings a page at a time: the account's GET /v1/keys in OpenAI's list shape (limit, after,
// first_id, last_id, has_more, as /v1/sessions), the operator's GET /admin/accounts/{id}/keys with
// limit/offset/total (as /admin/accounts); every key exactly once, in creation order.
import { afterAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/app.ts";
import type { Engine } from "../../src/inference/engine.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { pricingConfig } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const db = openStore(":memory:");
const platform = new Platform(db, { auth: true, adminToken: "admin-secret", pricing: pricingConfig(), rateLimits: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 }, signupCredit: 0n });
const app = createApp({ engine: null as unknown as Engine, loadedEngine: () => null, platform, version: "0.0.0-test" });
const account = createAccount(db).id;
const first = createKey(db, account).key;
for (let i = 0; i < 249; i++) createKey(db, account, `k${i}`);
// Another account's keys never show up.
const other = createAccount(db).id;
createKey(db, other);
afterAll(() => db.close());

const get = async (path: string, token: string) => {
  const r = await app.handle(new Request(`http://localhost${path}`, { headers: { authorization: `Bearer ${token}` } }));
  return { status: r.status, body: (await r.json()) as Json };
};

describe("key listings are paginated", () => {
  test("GET /v1/keys: 100 a page by default, after=last_id for the next, has_more false on the last", async () => {
    const seen: number[] = [];
    let after: number | null = null;
    const sizes: number[] = [];
    for (;;) {
      const r = await get(`/v1/keys${after === null ? "" : `?after=${after}`}`, first);
      expect(r.status).toBe(200);
      expect(r.body.object).toBe("list");
      const ids = r.body.data.map((k: Json) => k.id);
      sizes.push(ids.length);
      expect(r.body.first_id).toBe(ids[0]);
      expect(r.body.last_id).toBe(ids.at(-1));
      seen.push(...ids);
      if (!r.body.has_more) break;
      after = r.body.last_id;
    }
    expect(sizes).toEqual([100, 100, 50]);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(250);
    const small = await get("/v1/keys?limit=7", first);
    expect(small.body.data).toHaveLength(7);
    expect(small.body.has_more).toBe(true);
    expect(small.body.data.filter((k: Json) => k.current)).toHaveLength(1);
    // Past the end: an empty page in the same shape.
    const end = await get(`/v1/keys?after=${seen.at(-1)}`, first);
    expect(end.body).toEqual({ object: "list", data: [], first_id: null, last_id: null, has_more: false });
  });

  test("GET /v1/keys: a limit past 100 or a bad cursor is a 400 in OpenAI's shape", async () => {
    for (const q of ["limit=101", "limit=0", "after=9223372036854775808", "after=-1", "after=abc"]) {
      const r = await get(`/v1/keys?${q}`, first);
      expect(`${q}: ${r.status}`).toBe(`${q}: 400`);
      expect(r.body.error.type).toBe("invalid_request_error");
    }
  });

  test("GET /admin/accounts/{id}/keys: limit and offset with the account's total", async () => {
    const seen: number[] = [];
    for (let offset = 0; ; offset += 100) {
      const r = await get(`/admin/accounts/${account}/keys?offset=${offset}`, "admin-secret");
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ object: "list", total: 250, limit: 100, offset });
      if (r.body.data.length === 0) break;
      expect(r.body.data.every((k: Json) => k.account_id === account)).toBe(true);
      seen.push(...r.body.data.map((k: Json) => k.id));
    }
    expect(new Set(seen).size).toBe(250);
    expect((await get(`/admin/accounts/${account}/keys?limit=3&offset=248`, "admin-secret")).body.data).toHaveLength(2);
    for (const q of ["offset=9223372036854775808", "limit=1001", "offset=-1"]) {
      const r = await get(`/admin/accounts/${account}/keys?${q}`, "admin-secret");
      expect(`${q}: ${r.status}`).toBe(`${q}: 400`);
      expect(r.body.error.type).toBe("invalid_request_error");
    }
  });
});

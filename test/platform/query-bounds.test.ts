// Integer query and path parameters of the platform and deposit routes, on the whole app: a value
// past what the database can bind (2^63, 1e308, huge digit strings) is a 400 (or a 404 for an id
// that cannot exist), never a 500.
import { afterAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/app.ts";
import type { Engine } from "../../src/inference/engine.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { pricingConfig } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";

const db = openStore(":memory:");
const platform = new Platform(db, { auth: true, adminToken: "admin-secret", pricing: pricingConfig(), rateLimits: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 }, signupCredit: 0n });
const logged: string[] = [];
// These routes never touch the engine.
const app = createApp({ engine: null as unknown as Engine, loadedEngine: () => null, platform, version: "0.0.0-test", log: (l) => logged.push(l) });
const key = createKey(db, createAccount(db).id).key;
afterAll(() => db.close());

const get = (path: string, token: string, method = "GET") => app.handle(new Request(`http://localhost${path}`, { method, headers: { authorization: `Bearer ${token}` } }));

const HUGE = ["9223372036854775808", "9223372036854775807", "18446744073709551616", "1e308", "9007199254740993", "99999999999999999999999", "-1", "1.5", "abc"];

describe("integer query parameters", () => {
  const cases: [string, string, string][] = [
    ["/admin/accounts", "offset", "admin-secret"],
    ["/admin/accounts", "limit", "admin-secret"],
    ["/v1/usage", "limit", key],
    ["/admin/deposits", "limit", "admin-secret"],
    ["/v1/deposits", "limit", key],
    ["/v1/keys", "limit", key],
    ["/v1/keys", "after", key],
    ["/admin/accounts/1/keys", "offset", "admin-secret"],
    ["/admin/accounts/1/keys", "limit", "admin-secret"],
  ];
  for (const [path, name, token] of cases) {
    test(`${path}?${name}= out of range or not an integer: 400`, async () => {
      for (const v of HUGE) {
        const r = await get(`${path}?${name}=${encodeURIComponent(v)}`, token);
        expect(`${v}: ${r.status}`).toBe(`${v}: 400`);
        const j = (await r.json()) as { error: { type: string; param: string | null; message: string } };
        expect(j.error.type).toBe("invalid_request_error");
        // A value that parses as a number but is out of range reaches us from Elysia without its name.
        if (j.error.param !== null) expect(j.error.param).toBe(name);
        else expect(j.error.message).toStartWith("Invalid query parameter:");
      }
    });
  }

  test("the largest accepted offset answers an empty page", async () => {
    const r = await get("/admin/accounts?offset=2147483647", "admin-secret");
    expect(r.status).toBe(200);
    expect(((await r.json()) as { data: unknown[] }).data).toEqual([]);
  });

  test("before cursors of any size: an empty page or a 400, never a 500", async () => {
    for (const [path, token] of [["/v1/usage", key], ["/v1/deposits", key], ["/admin/deposits", "admin-secret"]] as const) {
      for (const v of HUGE) {
        const r = await get(`${path}?before=${encodeURIComponent(v)}`, token);
        expect(r.status === 200 || r.status === 400).toBe(true);
        if (r.status === 200) expect(((await r.json()) as { data: unknown[] }).data).toEqual([]);
      }
    }
  });

  test("ids in paths past any row: 404, never a 500", async () => {
    for (const v of HUGE) {
      const id = encodeURIComponent(v);
      for (const [path, method, token] of [
        [`/admin/keys/${id}/revoke`, "POST", "admin-secret"],
        [`/v1/account/keys/${id}`, "DELETE", key],
        [`/v1/usage/${id}`, "GET", key],
      ] as const) {
        const r = await get(path, token, method);
        expect(`${path}: ${r.status}`).toBe(`${path}: 404`);
      }
    }
    expect(logged).toEqual([]);
  });
});

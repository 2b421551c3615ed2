// API keys: shape and randomness, hashed storage (never plaintext), verification, scoping of revocation.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount, setAccountDisabled } from "../../src/platform/accounts.ts";
import { NO_KEY_LIMITS } from "../../src/platform/limits.ts";
import { createKey, generateApiKey, hashApiKey, KEY_LENGTH, listKeys, revokeKey, setKeyLimits, verifyKey } from "../../src/platform/keys.ts";
import { openStore } from "../../src/store/db.ts";

const dir = mkdtempSync(join(tmpdir(), "cocoon-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("generateApiKey", () => {
  test("is ck_ followed by 43 base62 characters, never repeating", () => {
    const keys = Array.from({ length: 2000 }, generateApiKey);
    for (const k of keys) expect(k).toMatch(/^ck_[0-9A-Za-z]{43}$/);
    expect(KEY_LENGTH).toBe(46);
    expect(new Set(keys).size).toBe(keys.length);
  });

  test("spreads characters evenly over the alphabet (no modulo bias)", () => {
    const counts = new Map<string, number>();
    // Skip the leading digit: 2^256 < 62^43, so it cannot be uniform by construction.
    for (let i = 0; i < 2000; i++) for (const ch of generateApiKey().slice(4)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    const expected = (2000 * 42) / 62;
    for (const c of counts.values()) expect(Math.abs(c - expected) / expected).toBeLessThan(0.2);
  });
});

test("hashApiKey is SHA-256 of the key text", () => {
  expect(Buffer.from(hashApiKey("abc")).toString("hex")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

describe("createKey and verifyKey", () => {
  const db = openStore(":memory:");
  const a = createAccount(db, "alice");
  const b = createAccount(db, "bob");

  test("a created key verifies to its account, with server-default limits", () => {
    const k = createKey(db, a.id, "laptop");
    expect(k.prefix).toBe(k.key.slice(0, 10));
    expect(verifyKey(db, k.key)).toEqual({ keyId: k.id, accountId: a.id, limits: NO_KEY_LIMITS, accountLimits: { rpm: null, tpm: null, rpd: null }, expired: false });
  });

  test("malformed keys are refused without touching the database", () => {
    const closed = openStore(":memory:");
    closed.close(); // any query on it would throw
    const good = generateApiKey();
    const malformed = ["", "ck_", good.slice(0, -1), `${good}x`, `sk_${good.slice(3)}`, `CK_${good.slice(3)}`, `${good.slice(0, -1)}-`, `${good.slice(0, -1)}é`, ` ${good.slice(1)}`];
    for (const m of malformed) expect(verifyKey(closed, m)).toBeNull();
    expect(() => verifyKey(closed, good)).toThrow(); // a well-formed key does reach the database
  });

  test("an unknown well-formed key is refused", () => {
    expect(verifyKey(db, generateApiKey())).toBeNull();
  });

  test("a revoked key is refused", () => {
    const k = createKey(db, a.id);
    expect(revokeKey(db, a.id, k.id)).toBe(true);
    expect(verifyKey(db, k.key)).toBeNull();
  });

  test("a key of a disabled account is refused until it is enabled again", () => {
    const c = createAccount(db);
    const k = createKey(db, c.id);
    setAccountDisabled(db, c.id, true);
    expect(verifyKey(db, k.key)).toBeNull();
    setAccountDisabled(db, c.id, false);
    expect(verifyKey(db, k.key)?.accountId).toBe(c.id);
  });

  test("last_used_at is written at most once a minute", () => {
    const k = createKey(db, a.id);
    const t0 = 1_700_000_000_000;
    const lastUsed = () => listKeys(db, a.id).find((x) => x.id === k.id)!.lastUsedAt;
    expect(lastUsed()).toBeNull();
    verifyKey(db, k.key, t0);
    expect(lastUsed()).toBe(t0);
    verifyKey(db, k.key, t0 + 59_999);
    expect(lastUsed()).toBe(t0);
    verifyKey(db, k.key, t0 + 60_000);
    expect(lastUsed()).toBe(t0 + 60_000);
  });

  test("per-key limits set on the key come back from verifyKey", () => {
    const k = createKey(db, a.id);
    expect(setKeyLimits(db, a.id, k.id, { rpm: 5, rpd: 100 })).toBe(true);
    expect(verifyKey(db, k.key)?.limits).toEqual({ ...NO_KEY_LIMITS, rpm: 5, rpd: 100 });
    expect(setKeyLimits(db, b.id, k.id, { rpm: 1000 })).toBe(false);
    expect(verifyKey(db, k.key)?.limits.rpm).toBe(5);
  });

  test("an account lists and revokes only its own keys; the admin revokes any", () => {
    const ka = createKey(db, a.id, "a-key");
    const kb = createKey(db, b.id, "b-key");
    expect(listKeys(db, b.id).map((k) => k.id)).toEqual([kb.id]);
    expect(listKeys(db, a.id).map((k) => k.id)).not.toContain(kb.id);
    expect(revokeKey(db, b.id, ka.id)).toBe(false);
    expect(verifyKey(db, ka.key)?.accountId).toBe(a.id);
    expect(revokeKey(db, null, ka.id)).toBe(true);
    expect(revokeKey(db, null, ka.id)).toBe(false); // already revoked
    expect(verifyKey(db, ka.key)).toBeNull();
    expect(listKeys(db, a.id).find((k) => k.id === ka.id)?.revokedAt).toBeNumber();
  });
});

test("keys are never stored in plain text: the database files do not contain them", () => {
  const path = join(dir, "keys.sqlite");
  const db = openStore(path);
  const acc = createAccount(db);
  const keys = Array.from({ length: 20 }, (_, i) => createKey(db, acc.id, `k${i}`).key);
  const stored = db.query<{ key_hash: Uint8Array; prefix: string }, []>("SELECT key_hash, prefix FROM api_keys").all();
  expect(stored).toHaveLength(20);
  for (const r of stored) expect(r.key_hash).toHaveLength(32);
  db.close(); // checkpoints the WAL into the main file
  const bytes = readdirSync(dir)
    .filter((f) => f.startsWith("keys.sqlite"))
    .map((f) => readFileSync(join(dir, f)).toString("latin1"))
    .join("");
  expect(bytes).toContain(keys[0]!.slice(0, 10)); // the display prefix is there: the scan does see text
  for (const k of keys) {
    expect(bytes).not.toContain(k);
    expect(bytes).not.toContain(k.slice(10)); // nor the secret part alone
  }
});

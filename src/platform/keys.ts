// API keys: "ck_" + 43 base62 characters (32 random bytes). Only the SHA-256 hash and a short display
// prefix are stored; the plaintext is returned once, by createKey.
import type { Database } from "bun:sqlite";
import { createHash, randomBytes } from "node:crypto";
import { inTransaction } from "../store/db.ts";
import type { RateLimitOverrides } from "./ratelimit.ts";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_PREFIX = "ck_";
const BODY_LENGTH = 43; // ceil(256 / log2(62)): every 32-byte value fits in 43 base62 digits
export const KEY_LENGTH = KEY_PREFIX.length + BODY_LENGTH;
const DISPLAY_PREFIX_LENGTH = 10;
const KEY_SHAPE = /^ck_[0-9A-Za-z]{43}$/;
// last_used_at is informative; writing it on every request would make each request a write.
const LAST_USED_RESOLUTION_MS = 60_000;

export interface VerifiedKey {
  keyId: number;
  accountId: number;
  limits: RateLimitOverrides;
}

export interface KeyInfo {
  id: number;
  accountId: number;
  prefix: string;
  name: string | null;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
  limits: RateLimitOverrides;
}

/**
 * A new key. The 32 random bytes are read as one 256-bit integer and written in base 62, left-padded
 * to 43 digits: a bijection, so every key is equally likely (no per-character modulo bias).
 */
export function generateApiKey(): string {
  let n = BigInt(`0x${randomBytes(32).toString("hex")}`);
  let body = "";
  for (let i = 0; i < BODY_LENGTH; i++) {
    body = ALPHABET[Number(n % 62n)]! + body;
    n /= 62n;
  }
  return KEY_PREFIX + body;
}

/** True when `key` has the shape of a key this server issues (no database access). */
export function isWellFormedKey(key: string): boolean {
  return key.length === KEY_LENGTH && KEY_SHAPE.test(key);
}

export function hashApiKey(key: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(key, "utf8").digest());
}

export function createKey(db: Database, accountId: number, name?: string | null, now: number = Date.now()): { id: number; key: string; prefix: string } {
  const key = generateApiKey();
  const prefix = key.slice(0, DISPLAY_PREFIX_LENGTH);
  const r = db
    .query("INSERT INTO api_keys (account_id, key_hash, prefix, name, created_at) VALUES (?, ?, ?, ?, ?)")
    .run(accountId, hashApiKey(key), prefix, name ?? null, now);
  return { id: Number(r.lastInsertRowid), key, prefix };
}

interface KeyRow {
  id: bigint;
  account_id: bigint;
  prefix: string;
  name: string | null;
  created_at: bigint;
  revoked_at: bigint | null;
  last_used_at: bigint | null;
  rpm_limit: bigint | null;
  tpm_limit: bigint | null;
  rpd_limit: bigint | null;
}

const optNum = (v: bigint | null) => (v === null ? null : Number(v));
const limitsOf = (r: KeyRow): RateLimitOverrides => ({ rpm: optNum(r.rpm_limit), tpm: optNum(r.tpm_limit), rpd: optNum(r.rpd_limit) });

/**
 * The key behind an `Authorization: Bearer` value (pass the token, without "Bearer "), or null when it
 * is malformed, unknown, revoked or its account is disabled. Lookup is by the SHA-256 of the key
 * through a unique index: the secret itself is never compared, so timing reveals nothing about it.
 */
export function verifyKey(db: Database, bearer: string, now: number = Date.now()): VerifiedKey | null {
  if (!isWellFormedKey(bearer)) return null;
  const row = db
    .query<KeyRow & { disabled: bigint }, [Uint8Array]>(
      `SELECT k.*, a.disabled FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = ?`,
    )
    .get(hashApiKey(bearer));
  if (!row || row.revoked_at !== null || row.disabled !== 0n) return null;
  if (row.last_used_at === null || now - Number(row.last_used_at) >= LAST_USED_RESOLUTION_MS) {
    db.query("UPDATE api_keys SET last_used_at = ? WHERE id = ?").run(now, row.id);
  }
  return { keyId: Number(row.id), accountId: Number(row.account_id), limits: limitsOf(row) };
}

export function listKeys(db: Database, accountId: number): KeyInfo[] {
  return db
    .query<KeyRow, [number]>("SELECT * FROM api_keys WHERE account_id = ? ORDER BY id")
    .all(accountId)
    .map((r) => ({
      id: Number(r.id),
      accountId: Number(r.account_id),
      prefix: r.prefix,
      name: r.name,
      createdAt: Number(r.created_at),
      revokedAt: optNum(r.revoked_at),
      lastUsedAt: optNum(r.last_used_at),
      limits: limitsOf(r),
    }));
}

/**
 * Revokes key `keyId`. With an `accountId` only that account's keys can be revoked (a key acting for
 * its own account); null is the admin, who can revoke any key. True when this call revoked it; false
 * when it does not exist, belongs to another account, or was already revoked.
 */
export function revokeKey(db: Database, accountId: number | null, keyId: number, now: number = Date.now()): boolean {
  const r = db
    .query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND (?3 IS NULL OR account_id = ?3)")
    .run(now, keyId, accountId);
  return r.changes > 0;
}

/** Sets a key's rate-limit overrides (null = server default). Scoped like revokeKey; true when the key was found. */
export function setKeyLimits(db: Database, accountId: number | null, keyId: number, limits: Partial<RateLimitOverrides>): boolean {
  return inTransaction(db, () => {
    const cur = db.query<KeyRow, [number]>("SELECT * FROM api_keys WHERE id = ?").get(keyId);
    if (!cur || (accountId !== null && Number(cur.account_id) !== accountId)) return false;
    const next = { ...limitsOf(cur), ...limits };
    db.query("UPDATE api_keys SET rpm_limit = ?, tpm_limit = ?, rpd_limit = ? WHERE id = ?").run(next.rpm, next.tpm, next.rpd, keyId);
    return true;
  });
}

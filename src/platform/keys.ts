// API keys: "ck_" + 43 base62 characters (32 random bytes). Only the SHA-256 hash and a short display
// prefix are stored; the plaintext is returned once, by createKey.
import { all, dual, filter, forUpdate, get, run, type Q } from "../store/query.ts";
import { createHash, randomBytes } from "node:crypto";
import { NO_KEY_LIMITS, periodStart, type BudgetDuration, type KeyLimits } from "./limits.ts";
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
  /** The key's own limits (expiry, budgets, rate limits, concurrency); null fields: none. */
  limits: KeyLimits;
  /** The account's rate-limit overrides (null: the server's defaults); they bind all its keys together. */
  accountLimits: RateLimitOverrides;
  /** True when the key is past its expiry (it verifies, so that the caller can say so: 401 key_expired). */
  expired: boolean;
}

export interface KeyInfo {
  id: number;
  accountId: number;
  prefix: string;
  name: string | null;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
  limits: KeyLimits;
  /** Nanoton charged to this key in its lifetime. */
  spend: bigint;
  /** Nanoton charged in the current budget period (0 without a budget_duration, or in a new period). */
  periodSpend: bigint;
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

/** A key of `accountId`, with the given limits (none by default). */
export const createKey = dual(function* (
  accountId: number,
  name?: string | null,
  now: number = Date.now(),
  limits: Partial<KeyLimits> = {},
): Q<{ id: number; key: string; prefix: string }> {
  const key = generateApiKey();
  const prefix = key.slice(0, DISPLAY_PREFIX_LENGTH);
  const l = { ...NO_KEY_LIMITS, ...limits };
  const r = yield* get<{ id: bigint }>(
    `INSERT INTO api_keys (account_id, key_hash, prefix, name, created_at, rpm_limit, tpm_limit, rpd_limit, max_parallel_requests,
       max_budget_nanoton, period_budget_nanoton, budget_duration, expires_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    accountId, hashApiKey(key), prefix, name ?? null, now, l.rpm, l.tpm, l.rpd, l.maxParallelRequests, l.maxBudget, l.periodBudget, l.budgetDuration, l.expiresAt,
  );
  return { id: Number(r!.id), key, prefix };
});

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
  max_parallel_requests: bigint | null;
  max_budget_nanoton: bigint | null;
  period_budget_nanoton: bigint | null;
  budget_duration: BudgetDuration | null;
  expires_at: bigint | null;
  spend_nanoton: bigint;
  period_spend_nanoton: bigint;
  period_start: bigint;
}

const optNum = (v: bigint | null) => (v === null ? null : Number(v));
const limitsOf = (r: KeyRow): KeyLimits => ({
  rpm: optNum(r.rpm_limit),
  tpm: optNum(r.tpm_limit),
  rpd: optNum(r.rpd_limit),
  maxParallelRequests: optNum(r.max_parallel_requests),
  maxBudget: r.max_budget_nanoton,
  periodBudget: r.period_budget_nanoton,
  budgetDuration: r.budget_duration,
  expiresAt: optNum(r.expires_at),
});

/** The period's spend as of `now`: what was charged since the current period began. */
const periodSpendOf = (r: KeyRow, now: number) =>
  r.budget_duration !== null && Number(r.period_start) === periodStart(r.budget_duration, now) ? r.period_spend_nanoton : 0n;

/**
 * The key behind an `Authorization: Bearer` value (pass the token, without "Bearer "), or null when it
 * is malformed, unknown, revoked or its account is disabled; an expired key verifies with `expired`.
 * Lookup is by the SHA-256 of the key through a unique index: the secret itself is never compared, so
 * timing reveals nothing about it.
 */
export const verifyKey = dual(function* (bearer: string, now: number = Date.now()): Q<VerifiedKey | null> {
  if (!isWellFormedKey(bearer)) return null;
  const row = yield* get<KeyRow & { disabled: bigint; acc_rpm: bigint | null; acc_tpm: bigint | null; acc_rpd: bigint | null }>(
    `SELECT k.*, a.disabled, a.rpm_limit AS acc_rpm, a.tpm_limit AS acc_tpm, a.rpd_limit AS acc_rpd
     FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = ?`,
    hashApiKey(bearer),
  );
  if (!row || row.revoked_at !== null || row.disabled !== 0n) return null;
  const expired = row.expires_at !== null && Number(row.expires_at) <= now;
  if (!expired && (row.last_used_at === null || now - Number(row.last_used_at) >= LAST_USED_RESOLUTION_MS)) {
    yield* run("UPDATE api_keys SET last_used_at = ? WHERE id = ?", now, row.id);
  }
  return {
    keyId: Number(row.id),
    accountId: Number(row.account_id),
    limits: limitsOf(row),
    accountLimits: { rpm: optNum(row.acc_rpm), tpm: optNum(row.acc_tpm), rpd: optNum(row.acc_rpd) },
    expired,
  };
});

const toKeyInfo = (r: KeyRow, now: number): KeyInfo => ({
  id: Number(r.id),
  accountId: Number(r.account_id),
  prefix: r.prefix,
  name: r.name,
  createdAt: Number(r.created_at),
  revokedAt: optNum(r.revoked_at),
  lastUsedAt: optNum(r.last_used_at),
  limits: limitsOf(r),
  spend: r.spend_nanoton,
  periodSpend: periodSpendOf(r, now),
});

/**
 * One key with its limits and spend, or null. `lock`: inside a transaction that goes on to change the
 * key, its row is locked (FOR UPDATE on Postgres) so another gateway's change waits for this one.
 */
export const keyInfoById = dual(function* (keyId: number, now: number = Date.now(), lock = false): Q<KeyInfo | null> {
  const locking = lock ? yield* forUpdate() : "";
  const r = yield* get<KeyRow>(`SELECT * FROM api_keys WHERE id = ?${locking}`, keyId);
  return r ? toKeyInfo(r, now) : null;
});

export const listKeys = dual(function* (accountId: number, now: number = Date.now()): Q<KeyInfo[]> {
  return (yield* all<KeyRow>("SELECT * FROM api_keys WHERE account_id = ? ORDER BY id", accountId)).map((r) => toKeyInfo(r, now));
});

/** A page of an account's keys in id order after key `after` (keyset paging: OpenAI's `after` / `has_more`). */
export const keyPage = dual(function* (accountId: number, o: { limit: number; after: number | null }, now: number = Date.now()): Q<{ data: KeyInfo[]; hasMore: boolean }> {
  const rows = yield* all<KeyRow>("SELECT * FROM api_keys WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?", accountId, o.after ?? 0, o.limit + 1);
  return { data: rows.slice(0, o.limit).map((r) => toKeyInfo(r, now)), hasMore: rows.length > o.limit };
});

/** A page of an account's keys in id order by offset, with the account's key count (the admin's list shape). */
export const keyOffsetPage = dual(function* (accountId: number, o: { limit: number; offset: number }, now: number = Date.now()): Q<{ data: KeyInfo[]; total: number }> {
  const rows = yield* all<KeyRow>("SELECT * FROM api_keys WHERE account_id = ? ORDER BY id LIMIT ? OFFSET ?", accountId, o.limit, o.offset);
  const total = Number((yield* get<{ n: number | bigint }>("SELECT COUNT(*) AS n FROM api_keys WHERE account_id = ?", accountId))!.n);
  return { data: rows.map((r) => toKeyInfo(r, now)), total };
});

/**
 * Revokes key `keyId`. With an `accountId` only that account's keys can be revoked (a key acting for
 * its own account); null is the admin, who can revoke any key. True when this call revoked it; false
 * when it does not exist, belongs to another account, or was already revoked (a conditional update:
 * of two gateways revoking at once, exactly one gets true).
 */
export const revokeKey = dual(function* (accountId: number | null, keyId: number, now: number = Date.now()): Q<boolean> {
  const scope = filter(["id = ?", keyId], ["account_id = ?", accountId]);
  return (yield* run(`UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL AND ${scope.sql}`, now, ...scope.params)).changes > 0;
});

// Each limit and its column: the one list setKeyLimits may write.
const LIMIT_COLUMNS: Record<keyof KeyLimits, string> = {
  rpm: "rpm_limit",
  tpm: "tpm_limit",
  rpd: "rpd_limit",
  maxParallelRequests: "max_parallel_requests",
  maxBudget: "max_budget_nanoton",
  periodBudget: "period_budget_nanoton",
  budgetDuration: "budget_duration",
  expiresAt: "expires_at",
};

/**
 * Sets the given limits of a key (null clears one; absent ones stay), in one UPDATE. Scoped like
 * revokeKey; true when the key was found. A period budget without a duration (or the reverse) is
 * refused by the caller, not here.
 */
export const setKeyLimits = dual(function* (accountId: number | null, keyId: number, limits: Partial<KeyLimits>): Q<boolean> {
  const entries = (Object.keys(limits) as (keyof KeyLimits)[]).filter((k) => k in LIMIT_COLUMNS && limits[k] !== undefined);
  const scope = filter(["id = ?", keyId], ["account_id = ?", accountId]);
  if (entries.length === 0) return (yield* get(`SELECT 1 AS one FROM api_keys WHERE ${scope.sql}`, ...scope.params)) !== null;
  const sets = entries.map((k) => `${LIMIT_COLUMNS[k]} = ?`).join(", ");
  const values = entries.map((k) => limits[k] as string | number | bigint | null);
  return (yield* run(`UPDATE api_keys SET ${sets} WHERE ${scope.sql}`, ...values, ...scope.params)).changes > 0;
});

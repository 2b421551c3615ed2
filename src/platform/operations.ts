// Account operations behind the platform routes, each one transaction: opening an account with its
// first key (and sign-up credit), an admin credit or debit with an idempotency reference, key lookup.
import type { Database } from "bun:sqlite";
import { inTransaction } from "../store/db.ts";
import { json, recordAudit } from "./audit.ts";
import { createAccount, getAccount } from "./accounts.ts";
import { createKey, keyInfoById, revokeKey, setKeyLimits, type KeyInfo } from "./keys.ts";
import { checkKeyLimits, parseKeyLimits, type KeyLimitsInput } from "./limit-input.ts";
import { NO_KEY_LIMITS, type KeyLimits } from "./limits.ts";
import type { RateLimitOverrides, RateLimits } from "./ratelimit.ts";
import { credit } from "./ledger.ts";

export interface OpenedAccount {
  accountId: number;
  depositCode: string;
  keyId: number;
  /** The plaintext key: return it to the caller once, never store or log it. */
  key: string;
  createdAt: number;
  balance: bigint;
}

/**
 * Creates an account, its first key and, when `signupCredit` > 0, an 'adjustment' credit with
 * reference `signup:<accountId>`, all or nothing.
 */
export function openAccount(db: Database, o: { label: string | null; signupCredit: bigint; keyLimits?: Partial<KeyLimits> }): OpenedAccount {
  const now = Date.now();
  return inTransaction(db, () => {
    const acc = createAccount(db, o.label, now);
    const key = createKey(db, acc.id, o.label, now, o.keyLimits);
    if (o.signupCredit > 0n) credit(db, acc.id, o.signupCredit, "adjustment", `signup:${acc.id}`, "sign-up credit");
    return { accountId: acc.id, depositCode: acc.depositCode, keyId: key.id, key: key.key, createdAt: now, balance: o.signupCredit > 0n ? o.signupCredit : 0n };
  });
}

export type AdminCreditResult =
  | { outcome: "booked" | "repeated"; balance: bigint }
  | { outcome: "no_account" }
  // The reference was booked before with another account or amount.
  | { outcome: "conflict"; accountId: number; amount: bigint };

/** Ledger reference of an admin credit: namespaced so it can never collide with `signup:<id>` and others. */
export const adminReference = (reference: string) => `admin:${reference}`;

/**
 * Books an admin 'adjustment' of `amount` nanoton (either sign, not zero) once per `reference`. A
 * repeat with the same account and amount books nothing ("repeated"); the same reference with another
 * account or amount is a "conflict" (a reused idempotency key), also booking nothing.
 */
export function adminCredit(db: Database, accountId: number, amount: bigint, reason: string, reference: string): AdminCreditResult {
  const ref = adminReference(reference);
  return inTransaction(db, (): AdminCreditResult => {
    const prior = db
      .query<{ account_id: bigint; amount_nanoton: bigint }, [string]>("SELECT account_id, amount_nanoton FROM ledger WHERE kind = 'adjustment' AND reference = ?")
      .get(ref);
    if (prior && (Number(prior.account_id) !== accountId || prior.amount_nanoton !== amount)) {
      return { outcome: "conflict", accountId: Number(prior.account_id), amount: prior.amount_nanoton };
    }
    if (!getAccount(db, accountId)) return { outcome: "no_account" };
    const booked = prior ? false : credit(db, accountId, amount, "adjustment", ref, reason);
    return { outcome: booked ? "booked" : "repeated", balance: getAccount(db, accountId)!.balance };
  });
}

/** A key's owner and revocation time, or null when there is no such key. */
export function keyById(db: Database, keyId: number): { id: number; accountId: number; revokedAt: number | null } | null {
  const r = db.query<{ id: bigint; account_id: bigint; revoked_at: bigint | null }, [number]>("SELECT id, account_id, revoked_at FROM api_keys WHERE id = ?").get(keyId);
  return r ? { id: Number(r.id), accountId: Number(r.account_id), revokedAt: r.revoked_at === null ? null : Number(r.revoked_at) } : null;
}

/** Revokes a key of `accountId` (any account's when null) and reads it back with its first revocation time. */
export function revokeAndRead(db: Database, accountId: number | null, keyId: number): { id: number; accountId: number; revokedAt: number } {
  revokeKey(db, accountId, keyId);
  const k = keyById(db, keyId)!;
  return { id: k.id, accountId: k.accountId, revokedAt: k.revokedAt! };
}

/**
 * Who changes a limit: the operator (admin routes, the CLI) or an account acting on its own keys,
 * whose rate limits are then capped by `ceiling` (the account's own limits).
 */
/** Who changes limits: the admin (`name` goes to the audit log) or an account for its own keys (capped by its limits). */
export type LimitActor = { kind: "admin"; name: string } | { kind: "account"; accountId: number; ceiling: RateLimits };

/**
 * A new key of `accountId` with the limits of `input`, in one statement. The one place keys with
 * limits are made (admin routes, own-key routes, the CLI): the audit log hooks in here.
 */
export function createKeyWithLimits(db: Database, actor: LimitActor, accountId: number, name: string | null, input: KeyLimitsInput): { info: KeyInfo; key: string } {
  const now = Date.now();
  const limits = checkKeyLimits(NO_KEY_LIMITS, parseKeyLimits(input, now), actor.kind === "account" ? actor.ceiling : null);
  return inTransaction(db, () => {
    const k = createKey(db, accountId, name, now, limits);
    const info = keyInfoById(db, k.id, now)!;
    if (actor.kind === "admin") recordAudit(db, { actor: actor.name, action: "key.create", objectType: "key", objectId: k.id, accountId, after: { name: info.name, limits: info.limits } });
    return { info, key: k.key };
  });
}

/**
 * Changes the limits of key `keyId` (of `actor.accountId` only, for an account) from `input`; null
 * when there is no such key. The one place key limits change: the audit log hooks in here.
 */
export function changeKeyLimits(db: Database, actor: LimitActor, keyId: number, input: KeyLimitsInput): KeyInfo | null {
  const scope = actor.kind === "account" ? actor.accountId : null;
  return inTransaction(db, () => {
    const cur = keyInfoById(db, keyId);
    if (!cur || (scope !== null && cur.accountId !== scope)) return null;
    const patch = parseKeyLimits(input);
    checkKeyLimits(cur.limits, patch, actor.kind === "account" ? actor.ceiling : null);
    setKeyLimits(db, scope, keyId, patch);
    const after = keyInfoById(db, keyId)!;
    // The admin's changes are audited; a change to the same values records nothing.
    if (actor.kind === "admin" && json(cur.limits) !== json(after.limits)) {
      recordAudit(db, { actor: actor.name, action: "key.limits", objectType: "key", objectId: keyId, accountId: after.accountId, before: cur.limits, after: after.limits });
    }
    return after;
  });
}

/**
 * Sets an account's rate-limit overrides (null: the server's default), binding all its keys
 * together. Admin only; false when there is no such account. The audit log hooks in here.
 */
export function changeAccountLimits(db: Database, accountId: number, patch: Partial<RateLimitOverrides>, actor: string): boolean {
  const cols = { rpm: "rpm_limit", tpm: "tpm_limit", rpd: "rpd_limit" } as const;
  const keys = (Object.keys(cols) as (keyof typeof cols)[]).filter((k) => patch[k] !== undefined);
  if (keys.length === 0) return getAccount(db, accountId) !== null;
  const sets = keys.map((k, i) => `${cols[k]} = ?${i + 2}`).join(", ");
  return inTransaction(db, () => {
    const before = accountLimitOverrides(db, accountId);
    if (db.query(`UPDATE accounts SET ${sets} WHERE id = ?1`).run(accountId, ...keys.map((k) => patch[k] ?? null)).changes === 0) return false;
    const after = accountLimitOverrides(db, accountId);
    if (json(before) !== json(after)) recordAudit(db, { actor, action: "account.limits", objectType: "account", objectId: accountId, accountId, before, after });
    return true;
  });
}

/** An account's rate-limit overrides (null: the server default), or null when there is no such account. */
export function accountLimitOverrides(db: Database, accountId: number): RateLimitOverrides | null {
  const r = db
    .query<{ rpm_limit: bigint | null; tpm_limit: bigint | null; rpd_limit: bigint | null }, [number]>("SELECT rpm_limit, tpm_limit, rpd_limit FROM accounts WHERE id = ?")
    .get(accountId);
  if (!r) return null;
  const n = (v: bigint | null) => (v === null ? null : Number(v));
  return { rpm: n(r.rpm_limit), tpm: n(r.tpm_limit), rpd: n(r.rpd_limit) };
}

// Account operations behind the platform routes, each one transaction: opening an account with its
// first key (and sign-up credit), an admin credit or debit with an idempotency reference, key lookup.
import { dual, forUpdate, get, run, tx, type Q } from "../store/query.ts";
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
export const openAccount = dual(function* (o: { label: string | null; signupCredit: bigint; keyLimits?: Partial<KeyLimits> }): Q<OpenedAccount> {
  const now = Date.now();
  return yield* tx(function* () {
    const acc = yield* createAccount.q(o.label, now);
    const key = yield* createKey.q(acc.id, o.label, now, o.keyLimits);
    if (o.signupCredit > 0n) yield* credit.q(acc.id, o.signupCredit, "adjustment", `signup:${acc.id}`, "sign-up credit");
    return { accountId: acc.id, depositCode: acc.depositCode, keyId: key.id, key: key.key, createdAt: now, balance: o.signupCredit > 0n ? o.signupCredit : 0n };
  });
});

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
export const adminCredit = dual(function* (accountId: number, amount: bigint, reason: string, reference: string): Q<AdminCreditResult> {
  const ref = adminReference(reference);
  const priorOf = () => get<{ account_id: bigint; amount_nanoton: bigint }>("SELECT account_id, amount_nanoton FROM ledger WHERE kind = 'adjustment' AND reference = ?", ref);
  const conflicts = (p: { account_id: bigint; amount_nanoton: bigint } | null) => p !== null && (Number(p.account_id) !== accountId || p.amount_nanoton !== amount);
  return yield* tx(function* (): Q<AdminCreditResult> {
    let prior = yield* priorOf();
    if (prior && conflicts(prior)) return { outcome: "conflict", accountId: Number(prior.account_id), amount: prior.amount_nanoton };
    if (!(yield* getAccount.q(accountId))) return { outcome: "no_account" };
    const booked = prior ? false : yield* credit.q(accountId, amount, "adjustment", ref, reason);
    if (!booked && !prior) {
      // Another gateway booked this reference between our read and our insert (the ledger's unique
      // reference made ours a no-op): it is a repeat only if it booked the same credit.
      prior = yield* priorOf();
      if (prior && conflicts(prior)) return { outcome: "conflict", accountId: Number(prior.account_id), amount: prior.amount_nanoton };
    }
    return { outcome: booked ? "booked" : "repeated", balance: (yield* getAccount.q(accountId))!.balance };
  });
});

/** A key's owner and revocation time, or null when there is no such key. */
export const keyById = dual(function* (keyId: number): Q<{ id: number; accountId: number; revokedAt: number | null } | null> {
  const r = yield* get<{ id: bigint; account_id: bigint; revoked_at: bigint | null }>("SELECT id, account_id, revoked_at FROM api_keys WHERE id = ?", keyId);
  return r ? { id: Number(r.id), accountId: Number(r.account_id), revokedAt: r.revoked_at === null ? null : Number(r.revoked_at) } : null;
});

/** Revokes a key of `accountId` (any account's when null) and reads it back with its first revocation time. */
export const revokeAndRead = dual(function* (accountId: number | null, keyId: number): Q<{ id: number; accountId: number; revokedAt: number }> {
  return yield* tx(function* () {
    yield* revokeKey.q(accountId, keyId);
    const k = (yield* keyById.q(keyId))!;
    return { id: k.id, accountId: k.accountId, revokedAt: k.revokedAt! };
  });
});

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
export const createKeyWithLimits = dual(function* (actor: LimitActor, accountId: number, name: string | null, input: KeyLimitsInput): Q<{ info: KeyInfo; key: string }> {
  const now = Date.now();
  const limits = checkKeyLimits(NO_KEY_LIMITS, parseKeyLimits(input, now), actor.kind === "account" ? actor.ceiling : null);
  return yield* tx(function* () {
    const k = yield* createKey.q(accountId, name, now, limits);
    const info = (yield* keyInfoById.q(k.id, now))!;
    if (actor.kind === "admin") yield* recordAudit.q({ actor: actor.name, action: "key.create", objectType: "key", objectId: k.id, accountId, after: { name: info.name, limits: info.limits } });
    return { info, key: k.key };
  });
});

/**
 * Changes the limits of key `keyId` (of `actor.accountId` only, for an account) from `input`; null
 * when there is no such key. The one place key limits change: the audit log hooks in here. The key's
 * row is locked while its current limits decide what the patch may be.
 */
export const changeKeyLimits = dual(function* (actor: LimitActor, keyId: number, input: KeyLimitsInput): Q<KeyInfo | null> {
  const scope = actor.kind === "account" ? actor.accountId : null;
  return yield* tx(function* () {
    const cur = yield* keyInfoById.q(keyId, Date.now(), true);
    if (!cur || (scope !== null && cur.accountId !== scope)) return null;
    const patch = parseKeyLimits(input);
    checkKeyLimits(cur.limits, patch, actor.kind === "account" ? actor.ceiling : null);
    yield* setKeyLimits.q(scope, keyId, patch);
    const after = (yield* keyInfoById.q(keyId))!;
    // The admin's changes are audited; a change to the same values records nothing.
    if (actor.kind === "admin" && json(cur.limits) !== json(after.limits)) {
      yield* recordAudit.q({ actor: actor.name, action: "key.limits", objectType: "key", objectId: keyId, accountId: after.accountId, before: cur.limits, after: after.limits });
    }
    return after;
  });
});

/**
 * Sets an account's rate-limit overrides (null: the server's default), binding all its keys
 * together. Admin only; false when there is no such account. The audit log hooks in here.
 */
export const changeAccountLimits = dual(function* (accountId: number, patch: Partial<RateLimitOverrides>, actor: string): Q<boolean> {
  const cols = { rpm: "rpm_limit", tpm: "tpm_limit", rpd: "rpd_limit" } as const;
  const keys = (Object.keys(cols) as (keyof typeof cols)[]).filter((k) => patch[k] !== undefined);
  if (keys.length === 0) return (yield* getAccount.q(accountId)) !== null;
  const sets = keys.map((k) => `${cols[k]} = ?`).join(", ");
  return yield* tx(function* () {
    // Locked: the audit row's "before" is what this change replaced, even with two admins at once.
    const before = yield* accountLimitOverrides.q(accountId, true);
    if (!before) return false;
    yield* run(`UPDATE accounts SET ${sets} WHERE id = ?`, ...keys.map((k) => patch[k] ?? null), accountId);
    const after = (yield* accountLimitOverrides.q(accountId))!;
    if (json(before) !== json(after)) yield* recordAudit.q({ actor, action: "account.limits", objectType: "account", objectId: accountId, accountId, before, after });
    return true;
  });
});

/** An account's rate-limit overrides (null: the server default), or null when there is no such account. `lock`: FOR UPDATE. */
export const accountLimitOverrides = dual(function* (accountId: number, lock = false): Q<RateLimitOverrides | null> {
  const locking = lock ? yield* forUpdate() : "";
  const r = yield* get<{ rpm_limit: bigint | null; tpm_limit: bigint | null; rpd_limit: bigint | null }>(`SELECT rpm_limit, tpm_limit, rpd_limit FROM accounts WHERE id = ?${locking}`, accountId);
  if (!r) return null;
  const n = (v: bigint | null) => (v === null ? null : Number(v));
  return { rpm: n(r.rpm_limit), tpm: n(r.tpm_limit), rpd: n(r.rpd_limit) };
});

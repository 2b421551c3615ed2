// Account operations behind the platform routes, each one transaction: opening an account with its
// first key (and sign-up credit), an admin credit or debit with an idempotency reference, key lookup.
import type { Database } from "bun:sqlite";
import { inTransaction } from "../store/db.ts";
import { createAccount, getAccount } from "./accounts.ts";
import { createKey, revokeKey } from "./keys.ts";
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
export function openAccount(db: Database, o: { label: string | null; signupCredit: bigint }): OpenedAccount {
  const now = Date.now();
  return inTransaction(db, () => {
    const acc = createAccount(db, o.label, now);
    const key = createKey(db, acc.id, o.label, now);
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

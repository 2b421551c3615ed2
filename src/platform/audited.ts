// The admin actions that change money or access, each with its audit row in the same transaction:
// what the admin routes (and the dashboard behind them) call instead of the bare operations.
import type { Database } from "bun:sqlite";
import { inTransaction } from "../store/db.ts";
import { recordAudit } from "./audit.ts";
import { revokeKey } from "./keys.ts";
import { adminCredit, keyById, type AdminCreditResult } from "./operations.ts";

/** {@link adminCredit}, audited as `account.credit` or `account.debit` when it booked something. */
export function auditedCredit(db: Database, actor: string, accountId: number, amount: bigint, reason: string, reference: string): AdminCreditResult {
  return inTransaction(db, () => {
    const r = adminCredit(db, accountId, amount, reason, reference);
    if (r.outcome === "booked") {
      recordAudit(db, {
        actor,
        action: amount > 0n ? "account.credit" : "account.debit",
        objectType: "account",
        objectId: accountId,
        accountId,
        reason,
        before: { balance_nanoton: r.balance - amount },
        after: { balance_nanoton: r.balance, amount_nanoton: amount, reference },
      });
    }
    return r;
  });
}

/**
 * Revokes any key as the admin and reads it back; audited as `key.revoke` when this call revoked it
 * (revoking a revoked key changes nothing and records nothing). Null when there is no such key.
 */
export function auditedRevoke(db: Database, actor: string, keyId: number, reason: string | null = null): { id: number; accountId: number; revokedAt: number } | null {
  return inTransaction(db, () => {
    if (!keyById(db, keyId)) return null;
    const changed = revokeKey(db, null, keyId);
    const k = keyById(db, keyId)!;
    if (changed) {
      recordAudit(db, { actor, action: "key.revoke", objectType: "key", objectId: keyId, accountId: k.accountId, reason, before: { revoked_at: null }, after: { revoked_at: k.revokedAt } });
    }
    return { id: k.id, accountId: k.accountId, revokedAt: k.revokedAt! };
  });
}

// The admin actions that change money or access, each with its audit row in the same transaction:
// what the admin routes (and the dashboard behind them) call instead of the bare operations.
import { dual, tx, type Q } from "../store/query.ts";
import { recordAudit } from "./audit.ts";
import { revokeKey } from "./keys.ts";
import { adminCredit, keyById, type AdminCreditResult } from "./operations.ts";

/** {@link adminCredit}, audited as `account.credit` or `account.debit` when it booked something. */
export const auditedCredit = dual(function* (actor: string, accountId: number, amount: bigint, reason: string, reference: string): Q<AdminCreditResult> {
  return yield* tx(function* () {
    const r = yield* adminCredit.q(accountId, amount, reason, reference);
    if (r.outcome === "booked") {
      yield* recordAudit.q({
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
});

/**
 * Revokes any key as the admin and reads it back; audited as `key.revoke` when this call revoked it
 * (revoking a revoked key changes nothing and records nothing: of two gateways revoking at once, one
 * records it). Null when there is no such key.
 */
export const auditedRevoke = dual(function* (actor: string, keyId: number, reason: string | null = null): Q<{ id: number; accountId: number; revokedAt: number } | null> {
  return yield* tx(function* () {
    if (!(yield* keyById.q(keyId))) return null;
    const changed = yield* revokeKey.q(null, keyId);
    const k = (yield* keyById.q(keyId))!;
    if (changed) {
      yield* recordAudit.q({ actor, action: "key.revoke", objectType: "key", objectId: keyId, accountId: k.accountId, reason, before: { revoked_at: null }, after: { revoked_at: k.revokedAt } });
    }
    return { id: k.id, accountId: k.accountId, revokedAt: k.revokedAt! };
  });
});

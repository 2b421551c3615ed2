// Assigning an unmatched transfer as an audited admin action: the credit and its audit row
// (`deposit.assign`, actor = `assigned_by`) in one transaction, on either store.
import { recordAudit } from "../platform/audit.ts";
import { dual, tx, type Q } from "../store/query.ts";
import { assignDeposit, type AssignResult } from "./service.ts";

export const auditedAssign = dual(function* (txHash: string, accountId: number, by: string, note: string): Q<AssignResult> {
  return yield* tx(function* () {
    const r = yield* assignDeposit.q(txHash, accountId, by, note);
    if (r.outcome === "assigned") {
      yield* recordAudit.q({
        actor: by,
        action: "deposit.assign",
        objectType: "deposit",
        objectId: txHash,
        accountId,
        reason: note,
        before: { status: "unmatched", account_id: null },
        after: { status: "credited", account_id: accountId, amount_nanoton: r.deposit.amount, balance_nanoton: r.balance },
      });
    }
    return r;
  });
});

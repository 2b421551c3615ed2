// Assigning an unmatched transfer as an audited admin action: the credit and its audit row
// (`deposit.assign`, actor = `assigned_by`) in one transaction.
import type { Database } from "bun:sqlite";
import { recordAudit } from "../platform/audit.ts";
import { inTransaction } from "../store/db.ts";
import { assignDeposit, type AssignResult } from "./service.ts";

export function auditedAssign(db: Database, txHash: string, accountId: number, by: string, note: string): AssignResult {
  return inTransaction(db, () => {
    const r = assignDeposit(db, txHash, accountId, by, note);
    if (r.outcome === "assigned") {
      recordAudit(db, {
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
}

// The deposit routes: a customer's own credited deposits, and the admin view of every transfer the
// watcher recorded (filter by status, e.g. unmatched) with assignment of an unmatched one to an account.
import { Elysia } from "elysia";
import { authPlugin } from "../http/auth.ts";
import { ApiError, ErrorResponse } from "../http/errors.ts";
import { formatTon } from "../platform/pricing.ts";
import type { Platform } from "../platform/service.ts";
import { adminErrors, callerOf, keyErrors } from "../platform/routes/common.ts";
import { iso, isoOrNull } from "../platform/wire.ts";
import { normalizeTxHash } from "./client.ts";
import { AdminDeposit, AdminDepositList, AdminDepositsQuery, AssignRequest, AssignResponse, DepositsQuery, UserDeposit, UserDepositList } from "./model.ts";
import { auditedAssign } from "./audited.ts";
import { depositCounts, listDeposits, type Deposit } from "./service.ts";

// Both stores keep lt as a signed 64-bit integer: any larger `before` means "from the newest", not a 500.
const MAX_LT = (1n << 63n) - 1n;
const beforeLt = (before: string | undefined): bigint | null => {
  if (!before) return null;
  const lt = BigInt(before);
  return lt > MAX_LT ? MAX_LT : lt;
};

const ADMIN_NOTE = "Admin route: send the admin token as `Authorization: Bearer <token>`; 403 otherwise.";

function userDeposit(d: Deposit) {
  return {
    tx_hash: d.txHash,
    tx_lt: d.txLt.toString(),
    sender: d.sender,
    amount_nanoton: Number(d.amount),
    amount_ton: formatTon(d.amount),
    comment: d.comment,
    time: iso(d.chainTime),
    credited_at: isoOrNull(d.creditedAt),
  };
}

/** A page of deposits, newest first; the next page starts below the last one's lt. */
function pageOf<T extends { tx_lt: string }>(page: { data: Deposit[]; hasMore: boolean }, wire: (d: Deposit) => T) {
  const data = page.data.map(wire);
  return { object: "list" as const, data, has_more: page.hasMore, next_before: page.hasMore ? (data.at(-1)?.tx_lt ?? null) : null };
}

function adminDeposit(d: Deposit) {
  return {
    ...userDeposit(d),
    status: d.status,
    reason: d.reason,
    account_id: d.accountId,
    seen_at: iso(d.seenAt),
    assigned_by: d.assignedBy,
    assign_note: d.assignNote,
  };
}

export function tonRoutes(deps: { platform: Platform }) {
  const { platform } = deps;
  const db = platform.store;
  return new Elysia({ name: "ton" })
    .use(authPlugin(platform))
    .model({ ErrorResponse, UserDeposit, UserDepositList, AdminDeposit, AdminDepositList, AssignRequest, AssignResponse })
    .get(
      "/v1/deposits",
      async ({ principal, query }) => {
        const page = await listDeposits(db, { accountId: callerOf(principal).accountId, status: "credited", limit: query.limit ?? 20, beforeLt: beforeLt(query.before) });
        return pageOf(page, userDeposit);
      },
      {
        auth: "account",
        query: DepositsQuery,
        response: { 200: "UserDepositList", 400: "ErrorResponse", ...keyErrors },
        detail: {
          tags: ["Billing"],
          summary: "List your deposits",
          description: "TON transfers credited to the caller's account, newest first; their sum is what deposits added to the balance. Authenticated with `Authorization: Bearer ck_...`.",
        },
      },
    )
    .get(
      "/admin/deposits",
      async ({ query }) => {
        const page = await listDeposits(db, { status: query.status, limit: query.limit ?? 100, beforeLt: beforeLt(query.before) });
        return { ...pageOf(page, adminDeposit), counts: await depositCounts(db) };
      },
      {
        auth: "admin",
        query: AdminDepositsQuery,
        response: { 200: "AdminDepositList", 400: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Admin"],
          summary: "List recorded transfers",
          description: `Every transaction of the deposit wallet the watcher recorded, newest first; \`status=unmatched\` lists the transfers waiting for an admin to assign them. ${ADMIN_NOTE}`,
        },
      },
    )
    .post(
      "/admin/deposits/:hash/assign",
      async ({ params, body, set }) => {
        const hash = normalizeTxHash(params.hash);
        if (hash === null) throw new ApiError("not_found", `No deposit '${params.hash}': a transaction hash is 64 hex digits or 44 base64 characters.`, "hash");
        const r = await auditedAssign(db, hash, body.account_id, body.assigned_by, body.reason);
        switch (r.outcome) {
          case "no_deposit":
            throw new ApiError("not_found", `No recorded transfer with hash ${hash}.`, "hash");
          case "no_account":
            throw new ApiError("not_found", `No account ${body.account_id}.`, "account_id");
          case "not_assignable": {
            const d = r.deposit;
            const why =
              d.status === "credited"
                ? `it was already credited to account ${d.accountId}${d.assignedBy ? ` (assigned by ${d.assignedBy})` : ""}`
                : `it is not a deposit (${d.reason}): no money stayed on the wallet`;
            throw new ApiError("invalid_request", `Transfer ${hash} cannot be assigned: ${why}.`, "hash");
          }
          case "assigned":
          case "repeated":
            set.status = r.outcome === "assigned" ? 201 : 200;
            return { booked: r.outcome === "assigned", deposit: adminDeposit(r.deposit), balance_nanoton: Number(r.balance) };
        }
      },
      {
        auth: "admin",
        body: "AssignRequest",
        parse: "json",
        response: { 200: "AssignResponse", 201: "AssignResponse", 400: "ErrorResponse", 404: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Admin"],
          summary: "Assign an unmatched transfer to an account",
          description:
            "Credits an unmatched transfer's amount to `account_id` as a deposit whose ledger reference is the transaction hash (so it can be credited only once), and records `assigned_by` and `reason`. " +
            `201 when booked; assigning it again to the same account answers 200 with \`booked: false\`; a credited or ignored transfer is a 400. \`hash\` is hex or base64(url). ${ADMIN_NOTE}`,
        },
      },
    );
}

// Operator routes (admin token): the accounts with their balances, exact credits and debits with an
// idempotency reference, and revocation of any key; each change is recorded in the audit log.
import { ApiError } from "../../http/errors.ts";
import { listAccounts, searchAccounts } from "../accounts.ts";
import { AdminAccountList, AdminAccountsQuery, CreditRequest, CreditResponse, RevokedKey } from "../model.ts";
import { actorOf } from "../audit.ts";
import { auditedCredit, auditedRevoke } from "../audited.ts";
import { formatTon, parseTon } from "../pricing.ts";
import { adminAccount, parseId, revokedKey } from "../wire.ts";
import { ADMIN_NOTE, adminErrors, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

const DEFAULT_ACCOUNTS_PAGE = 100;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** `amount_ton` as nanoton: exact, not zero, and small enough to stay exact as a JSON number. */
function creditAmount(amountTon: string): bigint {
  let amount: bigint;
  try {
    amount = parseTon(amountTon);
  } catch {
    throw new ApiError("invalid_request", "amount_ton must be a TON amount with at most 9 decimals, e.g. \"1.5\" or \"-0.25\".", "amount_ton");
  }
  if (amount === 0n) throw new ApiError("invalid_request", "amount_ton must not be zero.", "amount_ton");
  if (amount > MAX_SAFE || -amount > MAX_SAFE) throw new ApiError("invalid_request", `amount_ton must be at most ${formatTon(MAX_SAFE)} TON either way.`, "amount_ton");
  return amount;
}

export function adminRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const db = deps.platform.store;
  return routeFile("platform-admin", auth)
    .model({ AdminAccountList, CreditRequest, CreditResponse, RevokedKey })
    .get(
      "/admin/accounts",
      async ({ query }) => {
        const limit = query.limit ?? DEFAULT_ACCOUNTS_PAGE;
        const offset = query.offset ?? 0;
        const page = await (query.q ? searchAccounts(db, query.q, { limit, offset }) : listAccounts(db, { limit, offset }));
        return { object: "list" as const, data: page.data.map(adminAccount), total: page.total, limit, offset };
      },
      {
        auth: "admin",
        query: AdminAccountsQuery,
        response: { 200: "AdminAccountList", 400: "ErrorResponse", ...adminErrors },
        detail: { tags: ["Admin"], summary: "List accounts", description: `Accounts in creation order, with balances; \`q\` searches by id, deposit code, label or key prefix. ${ADMIN_NOTE}` },
      },
    )
    .post(
      "/admin/accounts/:id/credit",
      async ({ params, body, set, request }) => {
        const id = parseId(params.id);
        if (id === null) throw new ApiError("not_found", `No account ${params.id}.`, "id");
        const amount = creditAmount(body.amount_ton);
        const reference = body.reference ?? crypto.randomUUID();
        const r = await auditedCredit(db, actorOf(request), id, amount, body.reason, reference);
        if (r.outcome === "no_account") throw new ApiError("not_found", `No account ${params.id}.`, "id");
        if (r.outcome === "conflict") {
          throw new ApiError(
            "invalid_request",
            `reference '${reference}' was already used for a credit of ${formatTon(r.amount)} TON to account ${r.accountId}; use a new reference for a different credit.`,
            "reference",
          );
        }
        const booked = r.outcome === "booked";
        set.status = booked ? 201 : 200;
        return {
          account_id: id,
          booked,
          reference,
          amount_nanoton: Number(amount),
          amount_ton: formatTon(amount),
          balance_nanoton: Number(r.balance),
          balance_ton: formatTon(r.balance),
        };
      },
      {
        auth: "admin",
        body: "CreditRequest",
        parse: "json",
        response: { 200: "CreditResponse", 201: "CreditResponse", 400: "ErrorResponse", 404: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Admin"],
          summary: "Credit or debit an account",
          description:
            "Books a ledger adjustment of `amount_ton` (negative for a debit; a debit may take the balance below the overdraft limit) with `reason`. " +
            "201 when booked. `reference` is an idempotency key: repeating a booked credit answers 200 with `booked: false` and changes nothing; " +
            `the same reference with another account or amount is a 400. Recorded in the audit log (\`/admin/audit\`) with the \`X-Cocoon-Actor\` header's name. ${ADMIN_NOTE}`,
        },
      },
    )
    .post(
      "/admin/keys/:id/revoke",
      async ({ params, request }) => {
        const id = parseId(params.id);
        const k = id === null ? null : await auditedRevoke(db, actorOf(request), id);
        if (!k) throw new ApiError("not_found", `No key ${params.id}.`, "id");
        return revokedKey(k);
      },
      {
        auth: "admin",
        response: { 200: "RevokedKey", 404: "ErrorResponse", ...adminErrors },
        detail: { tags: ["Admin"], summary: "Revoke any key", description: `Revokes a key of any account; revoking it again answers the first revocation. No body. ${ADMIN_NOTE}` },
      },
    );
}

// Operator reporting routes (admin token, issue 14): usage totals per day / account / model (JSON or
// CSV), the audit log of admin actions, and one account with its keys and their limits.
import { ApiError } from "../../http/errors.ts";
import { getAccount } from "../accounts.ts";
import { listAudit, type AuditEntry as Entry } from "../audit.ts";
import { listKeys } from "../keys.ts";
import { csvResponse, parseGroups, timeRange, USAGE_TOTALS_CSV_HEADER, usageTotalsCsvRows, usageTotalsWire } from "../report.ts";
import { AdminAccountDetail, AdminUsageQuery, AuditList, AuditQuery, UsageTotalsList } from "../report-model.ts";
import { usageTotals } from "../usage-query.ts";
import { adminAccount, iso, isoOrNull, parseId } from "../wire.ts";
import { ADMIN_NOTE, adminErrors, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

const auditWire = (e: Entry) => ({
  id: e.id,
  created_at: iso(e.createdAt),
  actor: e.actor,
  action: e.action,
  object_type: e.objectType,
  object_id: e.objectId,
  account_id: e.accountId,
  reason: e.reason,
  before: e.before,
  after: e.after,
});

export function operatorRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const db = deps.platform.store;
  return routeFile("platform-operator", auth)
    .model({ UsageTotalsList, AuditList, AdminAccountDetail })
    .get(
      "/admin/usage",
      ({ query }) => {
        const { from, to } = timeRange(query);
        const groups = parseGroups(query.group_by);
        const filter = { accountId: query.account_id ?? null, keyId: query.key_id ?? null, model: query.model ?? null, from, to };
        // Two promises, not one async handler: Elysia types a promise of a Response or a body only as separate promises.
        const csv = async () => csvResponse("usage-totals.csv", USAGE_TOTALS_CSV_HEADER, usageTotalsCsvRows(await usageTotals(db, filter, groups)));
        const json = async () => {
          const rows = await usageTotals(db, filter, groups);
          const [grand] = await usageTotals(db, filter, []);
          const limit = query.limit ?? 1000;
          const offset = query.offset ?? 0;
          const data = rows.slice(offset, offset + limit).map(usageTotalsWire);
          return { object: "list" as const, group_by: groups, data, totals: usageTotalsWire(grand!), total: rows.length, limit, offset };
        };
        return query.format === "csv" ? csv() : json();
      },
      {
        auth: "admin",
        query: AdminUsageQuery,
        response: { 200: "UsageTotalsList", 400: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Admin"],
          summary: "Usage totals of every account",
          description:
            "Requests, tokens and revenue (nanoton charged) summed per `group_by` (day in UTC, account, model), with grand totals, `limit` rows from `offset` (of `total`); filtered by `account_id`, `key_id`, `model`, " +
            `\`start_time\` and \`end_time\` (unix seconds or ISO 8601; end exclusive). \`format=csv\` answers the rows as \`text/csv\`. ${ADMIN_NOTE}`,
        },
      },
    )
    .get(
      "/admin/audit",
      async ({ query }) => {
        const limit = query.limit ?? 50;
        const page = await listAudit(db, { limit, before: query.before ?? null, accountId: query.account_id ?? null, action: query.action ?? null, actor: query.actor ?? null });
        return { object: "list" as const, data: page.data.map(auditWire), has_more: page.hasMore, next_before: page.hasMore ? (page.data.at(-1)?.id ?? null) : null };
      },
      {
        auth: "admin",
        query: AuditQuery,
        response: { 200: "AuditList", 400: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Admin"],
          summary: "Read the audit log",
          description:
            "Every admin action (credits, debits, key revocations, deposit assignments, limit changes) with who did it (`X-Cocoon-Actor`), when, and the values before and after; " +
            `newest first, paged with \`before\`; append-only. ${ADMIN_NOTE}`,
        },
      },
    )
    .get(
      "/admin/accounts/:id",
      async ({ params }) => {
        const id = parseId(params.id);
        const a = id === null ? null : await getAccount(db, id);
        if (!a) throw new ApiError("not_found", `No account ${params.id}.`, "id");
        const keys = (await listKeys(db, a.id)).map((k) => ({
          id: k.id,
          prefix: k.prefix,
          name: k.name,
          created_at: iso(k.createdAt),
          revoked_at: isoOrNull(k.revokedAt),
          last_used_at: isoOrNull(k.lastUsedAt),
          // Budgets are bigint nanoton: as JSON numbers (like every *_nanoton field), never a 500 from JSON.stringify.
          limits: Object.fromEntries(Object.entries(k.limits).map(([name, v]) => [name, typeof v === "bigint" ? Number(v) : v])) as Record<string, unknown>,
        }));
        return { ...adminAccount(a), keys };
      },
      {
        auth: "admin",
        response: { 200: "AdminAccountDetail", 404: "ErrorResponse", ...adminErrors },
        detail: { tags: ["Admin"], summary: "Get one account with its keys", description: `The account, and each of its keys with its limits (null: the server's default). ${ADMIN_NOTE}` },
      },
    );
}

// The caller's billed requests (/v1/usage): newest first, paged, filtered by key, model and time
// range, or all of them as CSV (`format=csv`); one by id; other accounts' are 404s.
import { ApiError } from "../../http/errors.ts";
import { usageById } from "../ledger.ts";
import { UsageQuery, UsageRecord, UsageRecordList } from "../model.ts";
import { csvResponse, timeRange, USAGE_CSV_HEADER, usageCsvRows } from "../report.ts";
import { usageAll, usagePage } from "../usage-query.ts";
import { usageRecord } from "../wire.ts";
import { AUTH_NOTE, callerOf, keyErrors, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

const DEFAULT_USAGE_PAGE = 20;

export function usageRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const db = deps.platform.store;
  return routeFile("platform-usage", auth)
    .model({ UsageRecord, UsageRecordList })
    .get(
      "/v1/usage",
      ({ principal, query }) => {
        const { from, to } = timeRange(query);
        const filter = { accountId: callerOf(principal).accountId, keyId: query.key_id ?? null, model: query.model ?? null, from, to };
        // Not an async handler: Elysia types a promise of a Response or a body only as separate promises.
        if (query.format === "csv") return csvResponse("usage.csv", USAGE_CSV_HEADER, usageCsvRows(usageAll(db, filter)));
        return (async () => {
          const page = await usagePage(db, filter, { limit: query.limit ?? DEFAULT_USAGE_PAGE, before: query.before ?? null });
          const data = page.data.map(usageRecord);
          return { object: "list" as const, data, has_more: page.hasMore, next_before: page.hasMore ? (data.at(-1)?.id ?? null) : null };
        })();
      },
      {
        auth: "account",
        query: UsageQuery,
        response: { 200: "UsageRecordList", 400: "ErrorResponse", ...keyErrors },
        detail: {
          tags: ["Usage"],
          summary: "List your requests",
          description:
            "The caller's account's billed requests, newest first, with token counts and cost. Page with `limit` and `before` (the previous page's `next_before`); " +
            "filter with `key_id`, `model`, `start_time` and `end_time` (unix seconds or ISO 8601; end exclusive). `format=csv` answers every matching request as " +
            `\`text/csv\` (columns ${USAGE_CSV_HEADER.join(", ")}), whose \`cost_nanoton\` sums to the charges in the ledger. ${AUTH_NOTE}`,
        },
      },
    )
    .get(
      "/v1/usage/:id",
      async ({ principal, params }) => {
        const u = await usageById(db, callerOf(principal).accountId, params.id);
        if (!u) throw new ApiError("not_found", `No request '${params.id}' in this account's usage.`, "id");
        return usageRecord(u);
      },
      {
        auth: "account",
        response: { 200: "UsageRecord", 404: "ErrorResponse", ...keyErrors },
        detail: { tags: ["Usage"], summary: "Get one request", description: `One of the caller's account's requests; 404 for any other id, including other accounts' requests. ${AUTH_NOTE}` },
      },
    );
}

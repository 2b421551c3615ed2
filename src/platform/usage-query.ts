// Usage reads for reporting: the billed requests filtered by account, key, model and time range
// (pages, or every row for a CSV export), and totals grouped per day / account / model for operators.
import { all, dialect, dual, exec, filter, get, type Db, type Q } from "../store/query.ts";
import { toUsage, type UsageEntry, type UsageRow } from "./ledger.ts";

export interface UsageFilter {
  /** Only this account's requests; null or absent: every account (admin). */
  accountId?: number | null;
  keyId?: number | null;
  model?: string | null;
  /** Unix ms, inclusive. */
  from?: number | null;
  /** Unix ms, exclusive. */
  to?: number | null;
}

// One WHERE clause for every read: only the filters given (Postgres cannot type an always-null parameter).
const where = (f: UsageFilter, cursor: { started_at: bigint; id: string } | null = null) =>
  filter(
    ["account_id = ?", f.accountId],
    ["key_id = ?", f.keyId],
    ["model = ?", f.model],
    ["started_at >= ?", f.from],
    ["started_at < ?", f.to],
    // Keyset: the rows after the cursor in (started_at DESC, id DESC) order.
    ["(started_at, id) < (?, ?)", cursor?.started_at, cursor?.id],
  );

/**
 * A page of the filtered usage, newest first. `before` is the id of the last entry of the previous page
 * (keyset pagination, stable while new requests arrive); an id outside the filter gives an empty page.
 */
export const usagePage = dual(function* (f: UsageFilter, page: { limit: number; before?: string | null }): Q<{ data: UsageEntry[]; hasMore: boolean }> {
  const limit = Math.min(1000, Math.max(1, Math.floor(page.limit)));
  let cursor: { started_at: bigint; id: string } | null = null;
  if (page.before) {
    const scope = filter(["id = ?", page.before], ["account_id = ?", f.accountId]);
    cursor = yield* get<{ started_at: bigint; id: string }>(`SELECT started_at, id FROM usage WHERE ${scope.sql}`, ...scope.params);
    if (!cursor) return { data: [], hasMore: false };
  }
  const w = where(f, cursor);
  const rows = yield* all<UsageRow>(`SELECT * FROM usage WHERE ${w.sql} ORDER BY started_at DESC, id DESC LIMIT ?`, ...w.params, limit + 1);
  return { data: rows.slice(0, limit).map(toUsage), hasMore: rows.length > limit };
});

/** Every filtered entry, newest first, read a page at a time (for a CSV export of any size), on either store. */
export async function* usageAll(db: Db, f: UsageFilter, pageSize = 1000): AsyncGenerator<UsageEntry> {
  let before: string | null = null;
  for (;;) {
    const page: { data: UsageEntry[]; hasMore: boolean } = await exec(db, usagePage.q(f, { limit: pageSize, before }));
    yield* page.data;
    if (!page.hasMore) return;
    before = page.data.at(-1)!.id;
  }
}

export type UsageGroup = "day" | "account" | "model";

export interface UsageTotals {
  /** UTC day, YYYY-MM-DD, when grouped by day; else null. */
  day: string | null;
  accountId: number | null;
  model: string | null;
  requests: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  /** Nanoton charged. */
  cost: bigint;
}

// A day in UTC as YYYY-MM-DD from unix ms, in each database's own date functions.
const DAY_SQL = {
  sqlite: "strftime('%Y-%m-%d', started_at / 1000, 'unixepoch')",
  postgres: "to_char(to_timestamp(started_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
} as const;

/**
 * The filtered usage summed per group (any of day, account, model; none: one row of grand totals),
 * ordered by day, then account, then model. Money is summed in SQL, as integers.
 */
export const usageTotals = dual(function* (f: UsageFilter, groupBy: readonly UsageGroup[]): Q<UsageTotals[]> {
  const GROUP_SQL: Record<UsageGroup, string> = { day: DAY_SQL[yield* dialect()], account: "account_id", model: "model" };
  const groups = (["day", "account", "model"] as const).filter((g) => groupBy.includes(g));
  const col = (g: UsageGroup, as: string) => (groups.includes(g) ? `${GROUP_SQL[g]} AS ${as}` : `NULL AS ${as}`);
  const w = where(f);
  // Postgres sums bigints as numeric: cast back, so every total reads as a bigint on both.
  const sql = `SELECT ${col("day", "day")}, ${col("account", "account_id")}, ${col("model", "model")}, count(*) AS requests,
      CAST(coalesce(sum(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, CAST(coalesce(sum(cached_tokens), 0) AS BIGINT) AS cached_tokens,
      CAST(coalesce(sum(completion_tokens), 0) AS BIGINT) AS completion_tokens, CAST(coalesce(sum(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
      CAST(coalesce(sum(cost_nanoton), 0) AS BIGINT) AS cost_nanoton
    FROM usage WHERE ${w.sql}
    ${groups.length ? `GROUP BY ${groups.map((g) => GROUP_SQL[g]).join(", ")} ORDER BY ${groups.map((g) => GROUP_SQL[g]).join(", ")}` : ""}`;
  type Row = { day: string | null; account_id: bigint | null; model: string | null; requests: bigint; prompt_tokens: bigint; cached_tokens: bigint; completion_tokens: bigint; reasoning_tokens: bigint; cost_nanoton: bigint };
  return (yield* all<Row>(sql, ...w.params)).map((r) => ({
    day: r.day,
    accountId: r.account_id === null ? null : Number(r.account_id),
    model: r.model,
    requests: Number(r.requests),
    promptTokens: Number(r.prompt_tokens),
    cachedTokens: Number(r.cached_tokens),
    completionTokens: Number(r.completion_tokens),
    reasoningTokens: Number(r.reasoning_tokens),
    cost: BigInt(r.cost_nanoton),
  }));
});

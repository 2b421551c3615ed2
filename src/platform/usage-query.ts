// Usage reads for reporting: the billed requests filtered by account, key, model and time range
// (pages, or every row for a CSV export), and totals grouped per day / account / model for operators.
import type { Database } from "bun:sqlite";
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

// One WHERE clause for every read, with the filter's values as numbered parameters ?1..?5.
const WHERE = `(?1 IS NULL OR account_id = ?1) AND (?2 IS NULL OR key_id = ?2) AND (?3 IS NULL OR model = ?3)
  AND (?4 IS NULL OR started_at >= ?4) AND (?5 IS NULL OR started_at < ?5)`;
type FilterArgs = [number | null, number | null, string | null, number | null, number | null];
const args = (f: UsageFilter): FilterArgs => [f.accountId ?? null, f.keyId ?? null, f.model ?? null, f.from ?? null, f.to ?? null];

/**
 * A page of the filtered usage, newest first. `before` is the id of the last entry of the previous page
 * (keyset pagination, stable while new requests arrive); an id outside the filter gives an empty page.
 */
export function usagePage(db: Database, f: UsageFilter, page: { limit: number; before?: string | null }): { data: UsageEntry[]; hasMore: boolean } {
  const limit = Math.min(1000, Math.max(1, Math.floor(page.limit)));
  let cursor: { started_at: bigint; id: string } | null = null;
  if (page.before) {
    cursor = db.query<{ started_at: bigint; id: string }, [string, number | null]>("SELECT started_at, id FROM usage WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)").get(page.before, f.accountId ?? null);
    if (!cursor) return { data: [], hasMore: false };
  }
  const rows = db
    .query<UsageRow, [...FilterArgs, bigint | null, string | null, number]>(
      `SELECT * FROM usage WHERE ${WHERE} AND (?6 IS NULL OR (started_at, id) < (?6, ?7)) ORDER BY started_at DESC, id DESC LIMIT ?8`,
    )
    .all(...args(f), cursor?.started_at ?? null, cursor?.id ?? null, limit + 1);
  return { data: rows.slice(0, limit).map(toUsage), hasMore: rows.length > limit };
}

/** Every filtered entry, newest first, read a page at a time (for a CSV export of any size). */
export function* usageAll(db: Database, f: UsageFilter, pageSize = 1000): Generator<UsageEntry> {
  let before: string | null = null;
  for (;;) {
    const page = usagePage(db, f, { limit: pageSize, before });
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

const GROUP_SQL: Record<UsageGroup, string> = {
  day: "strftime('%Y-%m-%d', started_at / 1000, 'unixepoch')",
  account: "account_id",
  model: "model",
};

/**
 * The filtered usage summed per group (any of day, account, model; none: one row of grand totals),
 * ordered by day, then account, then model. Money is summed in SQL, as integers.
 */
export function usageTotals(db: Database, f: UsageFilter, groupBy: readonly UsageGroup[]): UsageTotals[] {
  const groups = (["day", "account", "model"] as const).filter((g) => groupBy.includes(g));
  const col = (g: UsageGroup, as: string) => (groups.includes(g) ? `${GROUP_SQL[g]} AS ${as}` : `NULL AS ${as}`);
  const sql = `SELECT ${col("day", "day")}, ${col("account", "account_id")}, ${col("model", "model")}, count(*) AS requests,
      coalesce(sum(prompt_tokens), 0) AS prompt_tokens, coalesce(sum(cached_tokens), 0) AS cached_tokens,
      coalesce(sum(completion_tokens), 0) AS completion_tokens, coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
      coalesce(sum(cost_nanoton), 0) AS cost_nanoton
    FROM usage WHERE ${WHERE}
    ${groups.length ? `GROUP BY ${groups.map((g) => GROUP_SQL[g]).join(", ")} ORDER BY ${groups.map((g) => GROUP_SQL[g]).join(", ")}` : ""}`;
  type Row = { day: string | null; account_id: bigint | null; model: string | null; requests: bigint; prompt_tokens: bigint; cached_tokens: bigint; completion_tokens: bigint; reasoning_tokens: bigint; cost_nanoton: bigint };
  return db
    .query<Row, FilterArgs>(sql)
    .all(...args(f))
    .map((r) => ({
      day: r.day,
      accountId: r.account_id === null ? null : Number(r.account_id),
      model: r.model,
      requests: Number(r.requests),
      promptTokens: Number(r.prompt_tokens),
      cachedTokens: Number(r.cached_tokens),
      completionTokens: Number(r.completion_tokens),
      reasoningTokens: Number(r.reasoning_tokens),
      cost: r.cost_nanoton,
    }));
}

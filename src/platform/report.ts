// Reports at the edge: time-range parameters (unix seconds or ISO 8601), usage as CSV rows (RFC 4180,
// streamed page by page) and usage totals on the wire. No Elysia here: the routes call these.
import { ApiError } from "../http/errors.ts";
import type { UsageEntry } from "./ledger.ts";
import { formatTon } from "./pricing.ts";
import type { UsageGroup, UsageTotals } from "./usage-query.ts";
import { costField } from "./service.ts";
import { iso } from "./wire.ts";

/**
 * A time parameter as unix ms: whole unix seconds (OpenAI's usage API: `start_time=1733011200`) or an
 * ISO 8601 date or date-time (`2026-12-01`, `2026-12-01T12:00:00Z`). A 400 naming `param` otherwise.
 */
export function parseTime(value: string | undefined, param: string): number | null {
  if (value === undefined || value === "") return null;
  if (/^[0-9]{1,12}$/.test(value)) return Number(value) * 1000;
  const ms = /^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new ApiError("invalid_request", `${param} must be unix seconds or an ISO 8601 date or date-time (e.g. 2026-12-01 or 2026-12-01T00:00:00Z), got '${value}'.`, param);
  return ms;
}

/** The time range of a query; a 400 when it ends before it starts. */
export function timeRange(q: { start_time?: string; end_time?: string }): { from: number | null; to: number | null } {
  const from = parseTime(q.start_time, "start_time");
  const to = parseTime(q.end_time, "end_time");
  if (from !== null && to !== null && to < from) throw new ApiError("invalid_request", "end_time must not be before start_time.", "end_time");
  return { from, to };
}

/** The `group_by` list ("day,account,model"), each at most once; a 400 for anything else. */
export function parseGroups(value: string | undefined): UsageGroup[] {
  if (value === undefined) return ["day", "account", "model"];
  const out: UsageGroup[] = [];
  for (const g of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (g !== "day" && g !== "account" && g !== "model") throw new ApiError("invalid_request", `group_by takes day, account and model (comma-separated), got '${g}'.`, "group_by");
    if (!out.includes(g)) out.push(g);
  }
  return out;
}

/**
 * One CSV cell: quoted when it holds a comma, quote or line break. Text a spreadsheet would run as a
 * formula (starting with = + - @ or a tab) gets a leading apostrophe: model names and request guids
 * come from clients.
 */
export function csvCell(v: string | number | bigint | null): string {
  if (v === null) return "";
  let s = String(v);
  if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvLine = (cells: readonly (string | number | bigint | null)[]) => `${cells.map(csvCell).join(",")}\r\n`;

type Cells = readonly (string | number | bigint | null)[];

/** A streamed CSV download: the header line, then one line per row, read lazily (from a store page by page). */
export function csvResponse(filename: string, header: readonly string[], rows: Iterable<Cells> | AsyncIterable<Cells>): Response {
  const it = Symbol.asyncIterator in rows ? rows[Symbol.asyncIterator]() : rows[Symbol.iterator]();
  const enc = new TextEncoder();
  let sentHeader = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk = sentHeader ? "" : csvLine(header);
      sentHeader = true;
      // About a page of rows per pull: bounded memory for any export size.
      for (let i = 0; i < 500; i++) {
        const n = await it.next();
        if (n.done) {
          if (chunk) controller.enqueue(enc.encode(chunk));
          controller.close();
          return;
        }
        chunk += csvLine(n.value);
      }
      controller.enqueue(enc.encode(chunk));
    },
  });
  return new Response(stream, {
    headers: { "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": `attachment; filename="${filename}"`, "Cache-Control": "no-store" },
  });
}

/** The CSV columns of a usage export: the JSON record's fields, cost split into nanoton and TON. */
export const USAGE_CSV_HEADER = [
  "id", "created_at", "model", "endpoint", "key_id", "status", "prompt_tokens", "cached_tokens", "completion_tokens",
  "reasoning_tokens", "total_tokens", "cost_nanoton", "cost_ton", "duration_ms", "request_guid",
] as const;

export async function* usageCsvRows(entries: Iterable<UsageEntry> | AsyncIterable<UsageEntry>, withAccount = false): AsyncGenerator<(string | number | bigint | null)[]> {
  for await (const u of entries) {
    const row: (string | number | bigint | null)[] = [
      u.id, iso(u.startedAt), u.model, u.endpoint, u.keyId, u.status, u.promptTokens, u.cachedTokens, u.completionTokens,
      u.reasoningTokens, u.promptTokens + u.completionTokens, u.cost, formatTon(u.cost), u.durationMs, u.requestGuid,
    ];
    yield withAccount ? [u.accountId, ...row] : row;
  }
}

export function usageTotalsWire(t: UsageTotals) {
  return {
    day: t.day,
    account_id: t.accountId,
    model: t.model,
    requests: t.requests,
    prompt_tokens: t.promptTokens,
    cached_tokens: t.cachedTokens,
    completion_tokens: t.completionTokens,
    reasoning_tokens: t.reasoningTokens,
    total_tokens: t.promptTokens + t.completionTokens,
    cost: costField({ nanoton: t.cost, ton: formatTon(t.cost) }),
  };
}

export const USAGE_TOTALS_CSV_HEADER = ["day", "account_id", "model", "requests", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "total_tokens", "cost_nanoton", "cost_ton"] as const;

export function* usageTotalsCsvRows(rows: Iterable<UsageTotals>): Generator<(string | number | bigint | null)[]> {
  for (const t of rows) {
    yield [t.day, t.accountId, t.model, t.requests, t.promptTokens, t.cachedTokens, t.completionTokens, t.reasoningTokens, t.promptTokens + t.completionTokens, t.cost, formatTon(t.cost)];
  }
}

// What a key may do beyond its account's balance (LiteLLM's virtual-key names): an expiry, a lifetime
// spending limit and/or one per UTC day, week or month, its own rpm / tpm / rpd and a cap on requests
// in flight. The period arithmetic here is what both reservation and settlement use.
import type { RateLimits } from "./ratelimit.ts";

export type BudgetDuration = "day" | "week" | "month";
export const BUDGET_DURATIONS: readonly BudgetDuration[] = ["day", "week", "month"];

/** A key's own limits; null everywhere means "none beyond the account's". */
export interface KeyLimits {
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  /** Requests of this key in flight at once (LiteLLM's max_parallel_requests). */
  maxParallelRequests: number | null;
  /** Nanoton the key may spend in its lifetime (LiteLLM's max_budget without a duration). */
  maxBudget: bigint | null;
  /** Nanoton the key may spend per `budgetDuration` (both set, or neither). */
  periodBudget: bigint | null;
  budgetDuration: BudgetDuration | null;
  /** Unix ms after which the key stops working (401 key_expired). */
  expiresAt: number | null;
}

export const NO_KEY_LIMITS: Readonly<KeyLimits> = Object.freeze({
  rpm: null,
  tpm: null,
  rpd: null,
  maxParallelRequests: null,
  maxBudget: null,
  periodBudget: null,
  budgetDuration: null,
  expiresAt: null,
});

/** True when a key carries any limit of its own (such a key may not manage its account's keys). */
export function isRestricted(l: KeyLimits): boolean {
  return Object.values(l).some((v) => v !== null);
}

const DAY = 86_400_000;

/** The start (unix ms, UTC) of the day, ISO week (Monday) or month that `now` falls in. */
export function periodStart(d: BudgetDuration, now: number): number {
  const dayStart = now - (((now % DAY) + DAY) % DAY);
  if (d === "day") return dayStart;
  if (d === "week") return dayStart - ((new Date(dayStart).getUTCDay() + 6) % 7) * DAY;
  const t = new Date(now);
  return Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1);
}

/** When the period that `now` falls in ends (the budget resets). */
export function periodEnd(d: BudgetDuration, now: number): number {
  const start = periodStart(d, now);
  if (d === "day") return start + DAY;
  if (d === "week") return start + 7 * DAY;
  const t = new Date(start);
  return Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1);
}

/** The period starts of `now` for each duration, as the settling SQL takes them. */
export function periodStarts(now: number): Record<BudgetDuration, number> {
  return { day: periodStart("day", now), week: periodStart("week", now), month: periodStart("month", now) };
}

/** The rate limits that bind a key: its own where set, else its account's. */
export function keyRateLimits(key: Pick<KeyLimits, "rpm" | "tpm" | "rpd">, account: RateLimits): RateLimits {
  return { rpm: key.rpm ?? account.rpm, tpm: key.tpm ?? account.tpm, rpd: key.rpd ?? account.rpd };
}

/**
 * A relative duration ("30d", "12h", "90m", "1w") in ms, or null when `s` is not one. For `expires`
 * in the CLI and the routes (LiteLLM's key `duration`).
 */
export function parseDuration(s: string): number | null {
  const m = /^(\d{1,6})(s|m|h|d|w)$/.exec(s.trim());
  if (!m) return null;
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: DAY, w: 7 * DAY }[m[2] as "s" | "m" | "h" | "d" | "w"];
  return Number(m[1]) * unit;
}

/** An expiry as given: an ISO date-time, or a duration from `now` ("30d"); null when it is neither. */
export function parseExpiry(s: string, now: number = Date.now()): number | null {
  const rel = parseDuration(s);
  if (rel !== null) return now + rel;
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return null;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : null;
}

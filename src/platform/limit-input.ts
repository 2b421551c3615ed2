// Key limits as clients and operators give them (LiteLLM's field names: max_budget, budget_duration,
// rpm_limit, tpm_limit, max_parallel_requests, duration; money as exact TON strings) to KeyLimits,
// with the checks every route and the CLI share: a clear 400 naming the field, never a half-set limit.
import { ApiError } from "../http/errors.ts";
import { BUDGET_DURATIONS, parseDuration, type BudgetDuration, type KeyLimits } from "./limits.ts";
import { formatTon, parseTon } from "./pricing.ts";
import type { RateLimits } from "./ratelimit.ts";

/** The limit fields of a request body; absent: unchanged, null: cleared. */
export interface KeyLimitsInput {
  max_budget_ton?: string | null;
  period_budget_ton?: string | null;
  budget_duration?: string | null;
  rpm_limit?: number | null;
  tpm_limit?: number | null;
  rpd_limit?: number | null;
  max_parallel_requests?: number | null;
  expires_at?: string | null;
  /** An expiry relative to now ("30d", "12h"): LiteLLM's `duration`. */
  duration?: string | null;
}

// What people write for a period (OpenRouter: daily/weekly/monthly; LiteLLM: 1d, 7d, 1mo).
const DURATION_ALIASES: Record<string, BudgetDuration> = {
  day: "day", daily: "day", "1d": "day", "24h": "day",
  week: "week", weekly: "week", "1w": "week", "7d": "week",
  month: "month", monthly: "month", "1mo": "month",
};

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function ton(field: string, v: string): bigint {
  let n: bigint;
  try {
    n = parseTon(v);
  } catch {
    throw new ApiError("invalid_request", `${field} must be a TON amount with at most 9 decimals, e.g. "1.5".`, field);
  }
  if (n < 0n || n > MAX_SAFE) throw new ApiError("invalid_request", `${field} must be between 0 and ${formatTon(MAX_SAFE)} TON.`, field);
  return n;
}

function count(field: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new ApiError("invalid_request", `${field} must be an integer of at least ${min}.`, field);
  return v;
}

/** The KeyLimits a body asks for (only the fields it names). Throws a 400 naming the field. */
export function parseKeyLimits(input: KeyLimitsInput, now: number = Date.now()): Partial<KeyLimits> {
  const out: Partial<KeyLimits> = {};
  if (input.max_budget_ton !== undefined) out.maxBudget = input.max_budget_ton === null ? null : ton("max_budget_ton", input.max_budget_ton);
  if (input.period_budget_ton !== undefined) out.periodBudget = input.period_budget_ton === null ? null : ton("period_budget_ton", input.period_budget_ton);
  if (input.budget_duration !== undefined) {
    if (input.budget_duration === null) out.budgetDuration = null;
    else {
      const d = DURATION_ALIASES[input.budget_duration.toLowerCase()];
      if (!d) throw new ApiError("invalid_request", `budget_duration must be one of ${BUDGET_DURATIONS.join(", ")} (UTC calendar periods).`, "budget_duration");
      out.budgetDuration = d;
    }
  }
  for (const [field, key] of [["rpm_limit", "rpm"], ["tpm_limit", "tpm"], ["rpd_limit", "rpd"]] as const) {
    const v = input[field];
    if (v !== undefined) out[key] = v === null ? null : count(field, v, 0);
  }
  if (input.max_parallel_requests !== undefined) {
    out.maxParallelRequests = input.max_parallel_requests === null ? null : count("max_parallel_requests", input.max_parallel_requests, 1);
  }
  if (input.expires_at !== undefined && input.duration !== undefined && input.duration !== null && input.expires_at !== null) {
    throw new ApiError("invalid_request", "Give expires_at or duration, not both.", "duration");
  }
  if (input.expires_at !== undefined) {
    if (input.expires_at === null) out.expiresAt = null;
    else {
      const t = /^\d{4}-\d{2}-\d{2}/.test(input.expires_at) ? Date.parse(input.expires_at) : NaN;
      if (!Number.isFinite(t)) throw new ApiError("invalid_request", "expires_at must be an ISO 8601 date-time, e.g. 2027-01-01T00:00:00Z.", "expires_at");
      out.expiresAt = t;
    }
  }
  if (input.duration !== undefined && input.duration !== null) {
    const ms = parseDuration(input.duration);
    if (ms === null || ms <= 0) throw new ApiError("invalid_request", 'duration must be a positive number with a unit s, m, h, d or w, e.g. "30d".', "duration");
    out.expiresAt = now + ms;
  } else if (input.duration === null && input.expires_at === undefined) out.expiresAt = null;
  return out;
}

/**
 * Checks the limits a key will have once `patch` is applied to `current`: a period budget comes with
 * its duration; set by the account itself (`ceiling`), rate limits are never above the account's.
 */
export function checkKeyLimits(current: KeyLimits, patch: Partial<KeyLimits>, ceiling: RateLimits | null): KeyLimits {
  const next = { ...current, ...patch };
  if ((next.periodBudget === null) !== (next.budgetDuration === null)) {
    throw new ApiError("invalid_request", "period_budget_ton and budget_duration go together: set both, or clear both.", next.periodBudget === null ? "period_budget_ton" : "budget_duration");
  }
  if (ceiling) {
    for (const [key, field] of [["rpm", "rpm_limit"], ["tpm", "tpm_limit"], ["rpd", "rpd_limit"]] as const) {
      const v = patch[key];
      if (v !== undefined && v !== null && v > ceiling[key]) {
        throw new ApiError("invalid_request", `${field} ${v} is above your account's limit of ${ceiling[key]}.`, field);
      }
    }
  }
  return next;
}

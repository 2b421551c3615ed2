// The one usage object on the wire (OpenAI's names), with the request's cost when it was billed, and
// whether the reservation capped max_tokens (the balance or a key budget): on every API shape.
import type { Usage } from "../inference/types.ts";
import { formatTon } from "../platform/pricing.ts";
import { costField, type Cost } from "../platform/service.ts";

/** Token counts; reasoning tokens where they are known (a stored session turn has none). */
export type WireUsageInput = Omit<Usage, "reasoningTokens"> & { reasoningTokens?: number };

/**
 * `capped_by` ("balance" or "key_budget") and `capped_max_tokens` (the limit per choice it set) when
 * the reservation lowered max_tokens, so a reply cut there is not mistaken for an ordinary "length";
 * nothing otherwise. Every usage shape spreads these.
 */
export function cappedFields(cost: Cost | null | undefined): { capped_by?: "balance" | "key_budget"; capped_max_tokens?: number } {
  return cost?.capped ? { capped_by: cost.capped.by, capped_max_tokens: cost.capped.maxTokens } : {};
}

/**
 * `prompt_tokens`, `completion_tokens`, `total_tokens`, `prompt_tokens_details.cached_tokens`, then
 * `completion_tokens_details.reasoning_tokens` when known, `cost` when billed (unless `withCost` is
 * false: a shape that carries it elsewhere) and the capped fields.
 */
export function usageWire(u: WireUsageInput, cost?: Cost | null, o: { withCost?: boolean } = {}) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    ...(u.reasoningTokens === undefined ? {} : { completion_tokens_details: { reasoning_tokens: u.reasoningTokens } }),
    ...(cost && o.withCost !== false ? { cost: costField(cost) } : {}),
    ...cappedFields(cost),
  };
}

/**
 * The cost of a billed response as headers, on every front door (streams carry it in-band):
 * `X-Cocoon-Cost-Nanoton`, and `X-Cocoon-Capped-By` / `X-Cocoon-Capped-Max-Tokens` when the
 * reservation capped max_tokens.
 */
export function costHeaders(cost: Cost | null | undefined): Record<string, string> {
  if (!cost) return {};
  return {
    "X-Cocoon-Cost-Nanoton": String(cost.nanoton),
    ...(cost.capped ? { "X-Cocoon-Capped-By": cost.capped.by, "X-Cocoon-Capped-Max-Tokens": String(cost.capped.maxTokens) } : {}),
  };
}

/** Several billed requests of one call (e.g. a list of prompts) as one cost: the sum, capped when any was. */
export function sumCosts(costs: readonly (Cost | null)[]): Cost | null {
  const billed = costs.filter((c): c is Cost => c !== null);
  if (billed.length === 0) return null;
  const nanoton = billed.reduce((n, c) => n + c.nanoton, 0n);
  // The tightest cap is the one to report.
  const caps = billed.map((c) => c.capped).filter((c): c is NonNullable<Cost["capped"]> => !!c);
  const capped = caps.length ? caps.reduce((a, b) => (b.maxTokens < a.maxTokens ? b : a)) : null;
  return { nanoton, ton: formatTon(nanoton), capped };
}

// The one usage object on the wire (OpenAI's names), with the request's cost when it was billed.
import type { Usage } from "../inference/types.ts";
import { costField, type Cost } from "../platform/service.ts";

/** Token counts; reasoning tokens where they are known (a stored session turn has none). */
export type WireUsageInput = Omit<Usage, "reasoningTokens"> & { reasoningTokens?: number };

/**
 * `prompt_tokens`, `completion_tokens`, `total_tokens`, `prompt_tokens_details.cached_tokens`, then
 * `completion_tokens_details.reasoning_tokens` when known and `cost` when billed.
 */
export function usageWire(u: WireUsageInput, cost?: Cost | null) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    ...(u.reasoningTokens === undefined ? {} : { completion_tokens_details: { reasoning_tokens: u.reasoningTokens } }),
    ...(cost ? { cost: costField(cost) } : {}),
  };
}

/** The cost of a billed response as a header, on every front door (streams carry it in-band). */
export function costHeaders(cost: Cost | null | undefined): Record<string, string> {
  return cost ? { "X-Cocoon-Cost-Nanoton": String(cost.nanoton) } : {};
}

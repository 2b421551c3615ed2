// The Cocoon client fields every inference request accepts (seed 000), as TypeBox properties that
// each front door spreads into its request schema.
import { t } from "elysia";
import { Type } from "@sinclair/typebox";

/**
 * The largest token limit (max_tokens and its aliases) any route accepts: far above every context
 * window, and small enough that limit × choices stays an exact integer in billing.
 */
export const MAX_TOKENS_LIMIT = 2 ** 31 - 1;

export const CocoonFields = {
  max_coefficient: t.Optional(Type.Integer({ minimum: 0, description: "Highest acceptable model price coefficient (0 = no limit); above it: 504." })),
  timeout: t.Optional(t.Number({ exclusiveMinimum: 0, maximum: 86400, description: "Seconds; 504 if nothing was produced by then, else the output so far." })),
  enable_debug: t.Optional(t.Boolean({ description: "Adds a `debug` object with timings, slot and device." })),
  request_guid: t.Optional(t.String({ maxLength: 128, pattern: "^[A-Za-z0-9._:-]+$", description: "Used as the response id suffix and logged." })),
};

/** The usage fields saying the reservation capped max_tokens (see usage.ts cappedFields), for every usage schema. */
export const CappedUsageFields = {
  capped_by: t.Optional(
    t.Union([t.Literal("balance"), t.Literal("key_budget")], {
      description: "Present when max_tokens was lowered to what the balance (or the key's budget) pays for: the reply may have stopped there.",
    }),
  ),
  capped_max_tokens: t.Optional(Type.Integer({ description: "The max_tokens per choice the reservation allowed (with capped_by)." })),
};

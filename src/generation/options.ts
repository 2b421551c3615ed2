// Cocoon's request options (max_coefficient, timeout, enable_debug, request_guid) and the model a
// request runs on, shared by every front door; plus the Cocoon debug object and timing headers.
import { ApiError } from "../http/errors.ts";
import type { EngineEvent, ModelInfo } from "../inference/types.ts";
import type { GenerationDeps } from "./deps.ts";

/** Cocoon fields, read and stripped before the engine sees the request. */
export interface CocoonOptions {
  maxCoefficient: number;
  timeoutMs: number;
  debug: boolean;
  guid: string | null;
}

/** The Cocoon fields as every front door's request schema names them. */
export interface CocoonFields {
  max_coefficient?: number | null;
  timeout?: number | null;
  enable_debug?: boolean | null;
  request_guid?: string | null;
}

export function cocoonOptions(body: CocoonFields): CocoonOptions {
  return {
    maxCoefficient: body.max_coefficient ?? 0,
    timeoutMs: body.timeout ? Math.round(body.timeout * 1000) : 0,
    debug: body.enable_debug ?? false,
    guid: body.request_guid ?? null,
  };
}

export type Endpoint = "chat" | "completion" | "embedding";

/** Resolves the model (by id or alias) and applies the max_coefficient rule (504: no eligible worker). */
export function pickModel(deps: Pick<GenerationDeps, "engine" | "coefficient" | "aliases">, requested: string | undefined, cocoon: CocoonOptions, endpoint: Endpoint): ModelInfo {
  let info: ModelInfo;
  try {
    // An alias runs (and is billed and reported) as the model it names.
    info = deps.engine.model((requested !== undefined ? deps.aliases?.get(requested) : undefined) ?? requested);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError("model_not_found", `The model '${requested}' does not exist`, "model");
  }
  if (endpoint === "chat" && info.type !== "chat") {
    throw new ApiError("invalid_request", `model '${info.id}' is a ${info.type} model; use ${info.type === "embedding" ? "/v1/embeddings" : "/v1/completions"}`, "model");
  }
  if (endpoint === "completion" && info.type === "embedding") {
    throw new ApiError("invalid_request", `model '${info.id}' is an embedding model; use /v1/embeddings`, "model");
  }
  const coefficient = deps.coefficient(info.id);
  if (cocoon.maxCoefficient > 0 && coefficient > cocoon.maxCoefficient) {
    throw new ApiError("no_eligible_worker", `no worker for '${info.id}' within max_coefficient ${cocoon.maxCoefficient} (its coefficient is ${coefficient})`, "max_coefficient");
  }
  return info;
}

/** enable_debug's object: timings, cache, slot and device of one generation. */
export function debugOf(done: Extract<EngineEvent, { type: "done" }>, model: ModelInfo, cocoon: CocoonOptions) {
  const t = done.timings;
  return {
    queue_ms: round(t.queueMs),
    prompt_ms: round(t.promptMs),
    generation_ms: round(t.generationMs),
    tokens_per_second: round(t.tokensPerSecond),
    prompt_tokens_per_second: round(t.promptTokensPerSecond),
    cached_tokens: done.usage.cachedTokens,
    model: model.id,
    device: model.backend,
    slot: done.slot,
    slots: model.slots,
    request_guid: cocoon.guid,
  };
}

export type DebugInfo = ReturnType<typeof debugOf>;

const round = (x: number) => Math.round(x * 1000) / 1000;

export function unixSeconds(ms = Date.now()): number {
  return Math.floor(ms / 1000);
}

/** X-Cocoon-Client-Start / -End: seconds since the epoch with milliseconds. */
export function cocoonTime(ms = Date.now()): string {
  return (ms / 1000).toFixed(3);
}

/** llama-server's reasoning budget field: -1 (or unset) is no limit. */
export function reasoningBudget(tokens: number | null | undefined): number | undefined {
  return tokens === null || tokens === undefined || tokens < 0 ? undefined : tokens;
}

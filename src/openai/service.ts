// OpenAI wire format <-> engine: request bodies become GenerateRequests, engine events become
// chat.completion / text_completion objects and chunks. No Elysia here; routes live in index.ts.
import type { Engine } from "../inference/engine.ts";
import type { EngineEvent, FinishReason, GenerateRequest, ModelInfo, SamplingParams, TokenLogprob, Usage } from "../inference/types.ts";
import type { ChatMessage } from "../inference/chat-template.ts";
import { ApiError } from "../http/errors.ts";
import type { ChatCompletionRequest, CompletionRequest } from "./model.ts";
import type { Metrics } from "../ops/metrics.ts";
import { costField, type Cost, type Platform } from "../platform/service.ts";
import type { SessionService } from "../sessions/service.ts";

export const SYSTEM_FINGERPRINT = "cocoon-server";

/** What the routes need besides the engine. */
export interface InferenceDeps {
  engine: Engine;
  metrics: Metrics;
  /** Keys, rate limits and billing; null when the server runs with --no-auth. */
  platform: Platform | null;
  /** Price coefficient of each model (Cocoon's max_coefficient compares against it). */
  coefficient(model: string): number;
  /** Server-side chat sessions (session_id); createApp provides an in-memory store when absent. */
  sessions?: SessionService | null;
}

/** Cocoon fields, read and stripped before the engine sees the request. */
export interface CocoonOptions {
  maxCoefficient: number;
  timeoutMs: number;
  debug: boolean;
  guid: string | null;
}

type CocoonBody = Pick<ChatCompletionRequest, "max_coefficient" | "timeout" | "enable_debug" | "request_guid">;

export function cocoonOptions(body: CocoonBody): CocoonOptions {
  return {
    maxCoefficient: body.max_coefficient ?? 0,
    timeoutMs: body.timeout ? Math.round(body.timeout * 1000) : 0,
    debug: body.enable_debug ?? false,
    guid: body.request_guid ?? null,
  };
}

/** Resolves the model and applies the max_coefficient rule (504: no eligible worker). */
export function pickModel(deps: InferenceDeps, requested: string | undefined, cocoon: CocoonOptions, endpoint: "chat" | "completion" | "embedding"): ModelInfo {
  let info: ModelInfo;
  try {
    info = deps.engine.model(requested);
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

/** What a chat or completions request produced: a whole response body, or chunks to stream. */
export type Outcome =
  | { stream: false; body: Record<string, unknown>; cost: Cost | null; headers?: Record<string, string> }
  | { stream: true; chunks: AsyncGenerator<Record<string, unknown>>; headers?: Record<string, string> };

let counter = 0;
/** Response ids: the request_guid when given, else a unique random one. */
export function responseId(prefix: "chatcmpl" | "cmpl", guid: string | null): string {
  if (guid) return `${prefix}-${guid}`;
  counter = (counter + 1) % 1e6;
  return `${prefix}-${Date.now().toString(36)}${counter.toString(36)}${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** The sampling fields shared by chat and completions requests. */
export function sampling(body: ChatCompletionRequest | CompletionRequest): SamplingParams {
  const bias: Record<number, number> = {};
  for (const [k, v] of Object.entries(body.logit_bias ?? {})) bias[Number(k)] = v;
  return {
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    // OpenAI-style clients send -1 or 0 for "off".
    topK: body.top_k === undefined || body.top_k === null ? undefined : Math.max(0, body.top_k),
    minP: body.min_p ?? undefined,
    typicalP: body.typical_p ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    repeatPenalty: body.repeat_penalty ?? body.repetition_penalty ?? undefined,
    seed: body.seed ?? undefined,
    logitBias: Object.keys(bias).length ? bias : undefined,
  };
}

export function stops(stop: ChatCompletionRequest["stop"]): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  const list = (typeof stop === "string" ? [stop] : stop).filter((s) => s.length > 0);
  return list.length ? list : undefined;
}

export function chatRequest(body: ChatCompletionRequest, model: ModelInfo, cocoon: CocoonOptions): GenerateRequest {
  for (const [i, m] of body.messages.entries()) {
    if (Array.isArray(m.content) && m.content.some((p) => p.type === "image_url")) {
      throw new ApiError("invalid_request", `model '${model.id}' does not accept images`, `messages[${i}].content`);
    }
    if (m.role === "tool" && !m.tool_call_id) throw new ApiError("invalid_request", "tool messages need tool_call_id", `messages[${i}].tool_call_id`);
  }
  const format = body.response_format;
  if (format?.type === "json_schema" && !format.json_schema.schema) {
    throw new ApiError("invalid_request", "response_format.json_schema.schema is required", "response_format");
  }
  const toolChoice = body.tool_choice;
  if ((toolChoice === "required" || typeof toolChoice === "object") && !body.tools?.length) {
    throw new ApiError("invalid_request", "tool_choice requires tools", "tool_choice");
  }
  return {
    model: model.id,
    messages: body.messages as ChatMessage[],
    tools: body.tools?.map((t) => ({ type: "function" as const, function: { ...t.function, strict: t.function.strict ?? undefined } })),
    toolChoice: typeof toolChoice === "object" ? { name: toolChoice.function.name } : toolChoice,
    parallelToolCalls: body.parallel_tool_calls,
    enableThinking: body.enable_thinking ?? (body.chat_template_kwargs?.enable_thinking as boolean | undefined),
    templateVars: body.chat_template_kwargs,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    sampling: sampling(body),
    stop: stops(body.stop),
    ignoreEos: body.ignore_eos,
    n: body.n ?? 1,
    logprobs: body.logprobs ? (body.top_logprobs ?? 0) : -1,
    responseFormat:
      format?.type === "json_schema"
        ? { type: "json_schema", schema: format.json_schema.schema!, strict: format.json_schema.strict ?? false }
        : format,
    timeoutMs: cocoon.timeoutMs || undefined,
  };
}

/** OpenAI's usage object, plus what the request cost when it was billed. */
export function usageOf(u: Usage, cost?: Cost | null) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
    ...(cost ? { cost: costField(cost) } : {}),
  };
}

/** OpenAI has no "timeout" finish reason: a request ended by its time limit reads as "length". */
export function finishReason(r: FinishReason): string {
  return r === "timeout" || r === "cancelled" ? "length" : r;
}

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

const round = (x: number) => Math.round(x * 1000) / 1000;

export function chatLogprobs(lps: TokenLogprob[]) {
  return {
    content: lps.map((lp) => ({
      token: lp.token,
      logprob: lp.logprob,
      bytes: lp.bytes,
      top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
    })),
    refusal: null,
  };
}

/**
 * Waits for the first output (or the end) so that errors found before any output, and a Cocoon
 * timeout that produced nothing, still get their own HTTP status even for streams.
 */
export async function firstEvents(stream: AsyncIterator<EngineEvent>, cocoon: CocoonOptions): Promise<EngineEvent[]> {
  const head: EngineEvent[] = [];
  for (;;) {
    const r = await stream.next();
    if (r.done) return head;
    head.push(r.value);
    if (r.value.type === "delta") return head;
    if (r.value.type === "done") {
      const timedOut = head.some((e) => e.type === "finish" && e.reason === "timeout");
      if (timedOut && r.value.usage.completionTokens === 0) {
        throw new ApiError("timeout", `no output within the timeout of ${cocoon.timeoutMs / 1000} s`, "timeout");
      }
      return head;
    }
  }
}

/**
 * Passes events through while timing them for the metrics: time to first output, gaps between
 * outputs, tokens and how the generation ended.
 */
export async function* instrument(
  events: AsyncGenerator<EngineEvent>,
  metrics: Metrics,
  o: { model: string; endpoint: string; submittedAt: number },
): AsyncGenerator<EngineEvent> {
  let first: number | null = null;
  let last = 0;
  const gaps: number[] = [];
  let reason = "stop";
  metrics.active++;
  try {
    for await (const e of events) {
      if (e.type === "delta") {
        const t = performance.now();
        if (first === null) first = t;
        else gaps.push((t - last) / 1000);
        last = t;
      } else if (e.type === "finish") reason = e.reason;
      else {
        metrics.observeGeneration({
          model: o.model,
          endpoint: o.endpoint,
          promptTokens: e.usage.promptTokens,
          cachedTokens: e.usage.cachedTokens,
          completionTokens: e.usage.completionTokens,
          reasoningTokens: e.usage.reasoningTokens,
          ttft: first === null ? null : (first - o.submittedAt) / 1000,
          interTokenLatencies: gaps,
          duration: (performance.now() - o.submittedAt) / 1000,
          finishReason: reason,
        });
      }
      yield e;
    }
  } finally {
    metrics.active--;
  }
}

/** Replays buffered events, then the rest of the stream. */
export async function* replay(head: EngineEvent[], stream: AsyncIterator<EngineEvent>): AsyncGenerator<EngineEvent> {
  yield* head;
  for (;;) {
    const r = await stream.next();
    if (r.done) return;
    yield r.value;
  }
}

export function unixSeconds(ms = Date.now()): number {
  return Math.floor(ms / 1000);
}

export function cocoonTime(ms = Date.now()): string {
  return (ms / 1000).toFixed(3);
}

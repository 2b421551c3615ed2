// OpenAI wire format <-> engine: request bodies become GenerateRequests, engine events become
// chat.completion / text_completion objects and chunks. No Elysia here; routes live in index.ts.
import type { FinishReason, GenerateRequest, ModelInfo, SamplingParams, TokenLogprob } from "../inference/types.ts";
import type { ChatMessage } from "../inference/chat-template.ts";
import { ApiError } from "../http/errors.ts";
import type { CocoonOptions } from "../generation/options.ts";
import type { Cost } from "../platform/service.ts";
import type { ChatCompletionRequest, CompletionRequest } from "./model.ts";

export const SYSTEM_FINGERPRINT = "cocoon-server";

/** What a chat or completions request produced: a whole response body, or chunks to stream. */
export type Outcome<B = Record<string, unknown>> =
  | { stream: false; body: B; cost: Cost | null; headers?: Record<string, string> }
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

/** OpenAI has no "timeout" finish reason: a request ended by its time limit reads as "length". */
export function finishReason(r: FinishReason): string {
  return r === "timeout" || r === "cancelled" ? "length" : r;
}

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

// OpenAI wire format <-> engine: request bodies become GenerateRequests, engine events become
// chat.completion / text_completion objects and chunks. No Elysia here; routes live in index.ts.
import type { FinishReason, GenerateRequest, ModelInfo, SamplingParams, TokenLogprob, ToolChoice } from "../inference/types.ts";
import type { ChatMessage, ToolDefinition } from "../inference/chat-template.ts";
import { ApiError } from "../http/errors.ts";
import { reasoningBudget, type CocoonOptions } from "../generation/options.ts";
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

/** The sampling fields shared by chat and completions requests (llama-server's among them). */
export function sampling(body: ChatCompletionRequest | CompletionRequest, model: Pick<ModelInfo, "contextWindow">): SamplingParams {
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
    // llama-server: -1 is the whole context.
    penaltyLastN: body.repeat_last_n === undefined || body.repeat_last_n === null ? undefined : body.repeat_last_n < 0 ? model.contextWindow : Math.min(body.repeat_last_n, model.contextWindow),
    seed: body.seed ?? undefined,
    logitBias: Object.keys(bias).length ? bias : undefined,
  };
}

/**
 * llama-server's output constraints: `grammar` (GBNF, checked by the engine) or `json_schema`,
 * never both, and neither with a JSON response_format.
 */
export function constraint(body: ChatCompletionRequest | CompletionRequest, format?: ChatCompletionRequest["response_format"]): Pick<GenerateRequest, "grammar" | "responseFormat"> {
  const grammar = body.grammar ?? undefined;
  const schema = body.json_schema ?? undefined;
  if (grammar !== undefined && schema !== undefined) throw new ApiError("invalid_request", "grammar and json_schema cannot be combined: send one of them.", "grammar");
  const other = grammar !== undefined ? "grammar" : schema !== undefined ? "json_schema" : null;
  if (other && format && format.type !== "text") throw new ApiError("invalid_request", `${other} cannot be combined with response_format ${format.type}: send one of them.`, other);
  if (grammar !== undefined) {
    if (grammar.trim() === "") throw new ApiError("invalid_request", "grammar is empty: send a GBNF grammar with a root rule, or omit it.", "grammar");
    return { grammar };
  }
  if (schema !== undefined) return { responseFormat: { type: "json_schema", schema, strict: false } };
  if (format?.type === "json_schema") return { responseFormat: { type: "json_schema", schema: format.json_schema.schema!, strict: format.json_schema.strict ?? false } };
  return format ? { responseFormat: format } : {};
}

/** The log-probabilities asked for, as the engine counts them (-1: none); n_probs is llama-server's. */
export function chatLogprobCount(body: ChatCompletionRequest): number {
  if (body.n_probs !== undefined && body.n_probs !== null) return body.n_probs;
  return body.logprobs ? (body.top_logprobs ?? 0) : -1;
}

export function stops(stop: ChatCompletionRequest["stop"]): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  const list = (typeof stop === "string" ? [stop] : stop).filter((s) => s.length > 0);
  return list.length ? list : undefined;
}

export function chatRequest(body: ChatCompletionRequest, model: ModelInfo, cocoon: CocoonOptions): GenerateRequest {
  refuseUnsupported(body);
  const messages = engineMessages(body.messages, model);
  const format = body.response_format;
  if (format?.type === "json_schema" && !format.json_schema.schema) {
    throw new ApiError("invalid_request", "response_format.json_schema.schema is required", "response_format");
  }
  const { tools, toolChoice } = chatTools(body);
  const constrained = constraint(body, format);
  if ((constrained.grammar || body.json_schema) && (toolChoice === "required" || typeof toolChoice === "object")) {
    // A forced tool call has its own grammar; one output cannot follow two.
    throw new ApiError("invalid_request", `${constrained.grammar ? "grammar" : "json_schema"} cannot be combined with a forced tool call`, constrained.grammar ? "grammar" : "json_schema");
  }
  const thinking = reasoningEffort(body.reasoning_effort ?? undefined);
  return {
    model: model.id,
    messages,
    tools,
    toolChoice,
    parallelToolCalls: body.parallel_tool_calls,
    enableThinking: body.enable_thinking ?? (body.chat_template_kwargs?.enable_thinking as boolean | undefined) ?? thinking?.enableThinking,
    templateVars: thinking ? { ...thinking.templateVars, ...body.chat_template_kwargs } : body.chat_template_kwargs,
    reasoningBudget: reasoningBudget(body.reasoning_budget_tokens ?? body.thinking_budget_tokens),
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    sampling: sampling(body, model),
    stop: stops(body.stop),
    ignoreEos: body.ignore_eos,
    n: body.n ?? 1,
    logprobs: chatLogprobCount(body),
    ...constrained,
    timeoutMs: cocoon.timeoutMs || undefined,
  };
}

/** Fields that ask for what this server cannot do: a 400 naming the field, never a silent no-op. */
function refuseUnsupported(body: ChatCompletionRequest): void {
  if (body.audio) throw new ApiError("invalid_request", "audio output is not supported by this server; omit audio.", "audio");
  if (body.modalities?.includes("audio")) throw new ApiError("invalid_request", 'audio output is not supported by this server: modalities may only be ["text"].', "modalities");
  if (body.web_search_options) throw new ApiError("invalid_request", "web search is not supported by this server; omit web_search_options.", "web_search_options");
  if (body.moderation) throw new ApiError("invalid_request", "moderation is not supported by this server; omit moderation.", "moderation");
}

/**
 * The messages as the engine takes them: legacy `function_call` / `function` messages become tool
 * calls and tool results (paired by name), refusal parts text; audio and file parts are a 400.
 */
function engineMessages(list: ChatCompletionRequest["messages"], model: ModelInfo): ChatMessage[] {
  const callIds = new Map<string, string>();
  return list.map((m, i): ChatMessage => {
    let content = m.content ?? null;
    if (Array.isArray(content)) {
      for (const [j, p] of content.entries()) {
        if (p.type === "image_url") throw new ApiError("invalid_request", `model '${model.id}' does not accept images`, `messages[${i}].content`);
        if (p.type === "input_audio" || p.type === "file") throw new ApiError("invalid_request", `model '${model.id}' does not accept ${p.type === "file" ? "files" : "audio"}; send text parts only`, `messages[${i}].content[${j}]`);
      }
      content = content.map((p) => (p.type === "refusal" ? { type: "text" as const, text: p.refusal } : p));
    }
    const base = { content: content as ChatMessage["content"], ...(m.name !== undefined ? { name: m.name } : {}) };
    if (m.role === "function") {
      if (!m.name) throw new ApiError("invalid_request", "function messages need the name of the function they answer", `messages[${i}].name`);
      return { role: "tool", ...base, tool_call_id: callIds.get(m.name) ?? `call_${m.name}` };
    }
    if (m.role === "tool" && !m.tool_call_id) throw new ApiError("invalid_request", "tool messages need tool_call_id", `messages[${i}].tool_call_id`);
    const out: ChatMessage = { role: m.role, ...base };
    if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
    if (m.reasoning_content !== undefined && m.reasoning_content !== null) out.reasoning_content = m.reasoning_content;
    const calls = [...(m.tool_calls ?? [])];
    if (m.function_call) {
      const id = `call_${i}_${m.function_call.name}`;
      callIds.set(m.function_call.name, id);
      calls.push({ id, type: "function", function: m.function_call });
    }
    if (calls.length) out.tool_calls = calls;
    if (m.refusal && (content === null || content === "")) out.content = m.refusal;
    return out;
  });
}

/** tools / tool_choice, with the legacy functions / function_call and allowed_tools folded in. */
function chatTools(body: ChatCompletionRequest): Pick<GenerateRequest, "tools" | "toolChoice"> {
  if (body.functions?.length && body.tools?.length) throw new ApiError("invalid_request", "send either tools or the legacy functions, not both", "functions");
  if (body.function_call !== undefined && body.tool_choice !== undefined) throw new ApiError("invalid_request", "send either tool_choice or the legacy function_call, not both", "function_call");
  let tools: ToolDefinition[] | undefined = body.tools?.map((t) => ({ type: "function" as const, function: { ...t.function, strict: t.function.strict ?? undefined } }));
  if (body.functions?.length) tools = body.functions.map((f) => ({ type: "function" as const, function: f }));
  const choice = body.tool_choice ?? body.function_call;
  const param = body.tool_choice !== undefined ? "tool_choice" : "function_call";
  let toolChoice: ToolChoice | undefined;
  if (choice === undefined || typeof choice === "string") toolChoice = choice;
  else if ("type" in choice && choice.type === "allowed_tools") {
    const allowed = new Set(choice.allowed_tools.tools.map((t) => t.function.name));
    tools = tools?.filter((t) => allowed.has(t.function.name));
    if (!tools?.length) throw new ApiError("invalid_request", "tool_choice.allowed_tools names none of the request's tools", param);
    toolChoice = choice.allowed_tools.mode;
  } else toolChoice = { name: "function" in choice ? choice.function.name : choice.name };
  if ((toolChoice === "required" || typeof toolChoice === "object") && !tools?.length) {
    throw new ApiError("invalid_request", `${param} requires ${param === "tool_choice" ? "tools" : "functions"}`, param);
  }
  if (typeof toolChoice === "object" && !tools!.some((t) => t.function.name === (toolChoice as { name: string }).name)) {
    throw new ApiError("invalid_request", `${param} names '${toolChoice.name}', which is not among the request's ${param === "tool_choice" ? "tools" : "functions"}`, param);
  }
  return { tools, toolChoice };
}

/**
 * reasoning_effort: none / minimal turn thinking off (Qwen3's enable_thinking), the others on; the
 * level goes to templates that read one (gpt-oss's `reasoning_effort`, low / medium / high).
 */
export function reasoningEffort(effort: string | undefined): { enableThinking: boolean; templateVars: Record<string, unknown> } | null {
  if (effort === undefined) return null;
  const level = effort === "none" || effort === "minimal" ? "low" : effort === "xhigh" || effort === "max" ? "high" : effort;
  return { enableThinking: effort !== "none" && effort !== "minimal", templateVars: { reasoning_effort: level } };
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

// The OpenAI wire format towards an upstream: a typed GenerateRequest as a chat-completions or
// completions body (streamed, usage forced on), and its SSE chunks back as engine events.
import type { EngineEvent, FinishReason, GenerateRequest, TokenLogprob, ToolCall, ToolCallDelta, Usage } from "../inference/types.ts";

/** The endpoint a request goes to: chat for messages, completions for a raw prompt. */
export function upstreamPath(request: GenerateRequest): "/v1/chat/completions" | "/v1/completions" {
  return request.messages ? "/v1/chat/completions" : "/v1/completions";
}

/**
 * The body sent upstream. Standard OpenAI fields plus the llama.cpp extensions that cocoon-server,
 * llama-server and vLLM accept (top_k, min_p, repeat_penalty, grammar, chat_template_kwargs, ...);
 * only fields the request set are sent, so a server that lacks an extension sees nothing new.
 */
export function upstreamBody(request: GenerateRequest, model: string): Record<string, unknown> {
  const s = request.sampling ?? {};
  const body: Record<string, unknown> = { model, stream: true, stream_options: { include_usage: true } };
  if (request.messages) {
    body.messages = request.messages;
    if (request.tools?.length) body.tools = request.tools;
    if (request.toolChoice !== undefined) body.tool_choice = typeof request.toolChoice === "string" ? request.toolChoice : { type: "function", function: { name: request.toolChoice.name } };
    if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls;
    const kwargs = { ...(request.templateVars ?? {}), ...(request.enableThinking === undefined ? {} : { enable_thinking: request.enableThinking }) };
    if (Object.keys(kwargs).length) body.chat_template_kwargs = kwargs;
    if (request.logprobs !== undefined && request.logprobs >= 0) {
      body.logprobs = true;
      if (request.logprobs > 0) body.top_logprobs = request.logprobs;
    }
  } else {
    body.prompt = request.prompt ?? "";
    if (request.suffix !== undefined) body.suffix = request.suffix;
    if (request.logprobs !== undefined && request.logprobs >= 0) body.logprobs = request.logprobs;
  }
  const limit = request.maxTokens ?? request.defaultMaxTokens;
  if (limit !== undefined) body.max_tokens = limit;
  if (request.n !== undefined && request.n !== 1) body.n = request.n;
  if (request.stop?.length) body.stop = request.stop;
  if (s.temperature !== undefined) body.temperature = s.temperature;
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.topK !== undefined) body.top_k = s.topK;
  if (s.minP !== undefined) body.min_p = s.minP;
  if (s.typicalP !== undefined) body.typical_p = s.typicalP;
  if (s.repeatPenalty !== undefined) body.repeat_penalty = s.repeatPenalty;
  if (s.frequencyPenalty !== undefined) body.frequency_penalty = s.frequencyPenalty;
  if (s.presencePenalty !== undefined) body.presence_penalty = s.presencePenalty;
  if (s.penaltyLastN !== undefined) body.repeat_last_n = s.penaltyLastN;
  if (s.seed !== undefined) body.seed = s.seed;
  if (s.logitBias && Object.keys(s.logitBias).length) body.logit_bias = s.logitBias;
  if (request.ignoreEos) body.ignore_eos = true;
  if (request.grammar !== undefined) body.grammar = request.grammar;
  else if (request.responseFormat && request.responseFormat.type !== "text") {
    body.response_format =
      request.responseFormat.type === "json_schema"
        ? { type: "json_schema", json_schema: { name: "response", schema: request.responseFormat.schema, ...(request.responseFormat.strict === undefined ? {} : { strict: request.responseFormat.strict }) } }
        : { type: "json_object" };
  }
  return body;
}

const FINISH: Record<string, FinishReason> = { stop: "stop", length: "length", tool_calls: "tool_calls", function_call: "tool_calls", content_filter: "stop", timeout: "timeout", cancelled: "cancelled" };

interface ChunkChoice {
  index?: number;
  text?: string;
  delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[] };
  finish_reason?: string | null;
  stop_reason?: unknown;
  logprobs?: { content?: { token: string; logprob: number; bytes?: number[] | null; top_logprobs?: { token: string; logprob: number; bytes?: number[] | null }[] }[] | null; tokens?: string[]; token_logprobs?: number[]; top_logprobs?: Record<string, number>[] | null } | null;
}

export interface UpstreamUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

const bytesOf = (s: string) => [...Buffer.from(s, "utf8")];

function logprobsOf(lp: ChunkChoice["logprobs"]): TokenLogprob[] {
  if (!lp) return [];
  if (lp.content) {
    return lp.content.map((c) => ({
      id: -1,
      token: c.token,
      bytes: c.bytes ?? bytesOf(c.token),
      logprob: c.logprob,
      top: (c.top_logprobs ?? []).map((t) => ({ token: t.token, bytes: t.bytes ?? bytesOf(t.token), logprob: t.logprob })),
    }));
  }
  // The completions shape: parallel arrays of tokens, their log-probabilities and the top ones.
  return (lp.tokens ?? []).map((token, i) => ({
    id: -1,
    token,
    bytes: bytesOf(token),
    logprob: lp.token_logprobs?.[i] ?? 0,
    top: Object.entries(lp.top_logprobs?.[i] ?? {}).map(([t, logprob]) => ({ token: t, bytes: bytesOf(t), logprob })),
  }));
}

/** Turns an upstream's chunks into engine events, collecting each choice's text and tool calls. */
export class ChunkReader {
  /** What each choice produced, for counting when the upstream reports no usage. */
  readonly text: string[] = [];
  /** Content-bearing chunks per choice (llama-server and vLLM send about one per token). */
  readonly pieces: number[] = [];
  readonly finished = new Map<number, FinishReason>();
  usage: UpstreamUsage | null = null;
  private readonly calls: Map<number, ToolCall>[] = [];

  constructor(readonly n: number) {
    for (let i = 0; i < n; i++) {
      this.text.push("");
      this.pieces.push(0);
      this.calls.push(new Map());
    }
  }

  /** Events of one parsed `data:` payload. */
  events(chunk: { choices?: ChunkChoice[]; usage?: UpstreamUsage | null }): EngineEvent[] {
    if (chunk.usage) this.usage = chunk.usage;
    const out: EngineEvent[] = [];
    for (const c of chunk.choices ?? []) {
      const index = c.index ?? 0;
      if (index < 0 || index >= this.n || this.finished.has(index)) continue;
      const content = c.text ?? c.delta?.content ?? "";
      const reasoning = c.delta?.reasoning_content ?? c.delta?.reasoning ?? "";
      const toolCalls: ToolCallDelta[] = [];
      for (const tc of c.delta?.tool_calls ?? []) {
        const ti = tc.index ?? 0;
        const call = this.calls[index]!.get(ti) ?? { id: tc.id ?? `call_${index}_${ti}`, type: "function" as const, function: { name: "", arguments: "" } };
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.function.name += tc.function.name;
        if (tc.function?.arguments) call.function.arguments += tc.function.arguments;
        this.calls[index]!.set(ti, call);
        toolCalls.push({ index: ti, ...(tc.id ? { id: tc.id } : {}), ...(tc.function?.name ? { name: tc.function.name } : {}), ...(tc.function?.arguments ? { arguments: tc.function.arguments } : {}) });
      }
      const logprobs = logprobsOf(c.logprobs);
      if (content || reasoning || toolCalls.length || logprobs.length) {
        this.text[index] += content + reasoning + toolCalls.map((t) => (t.name ?? "") + (t.arguments ?? "")).join("");
        this.pieces[index]!++;
        out.push({ type: "delta", index, content, reasoning, toolCalls, logprobs });
      }
      if (c.finish_reason) out.push(this.finish(index, FINISH[c.finish_reason] ?? "stop"));
    }
    return out;
  }

  /** Ends a choice (from the upstream's finish_reason, or ours: cancelled, timeout). */
  finish(index: number, reason: FinishReason): EngineEvent {
    this.finished.set(index, reason);
    const toolCalls = [...this.calls[index]!.values()];
    return { type: "finish", index, reason: toolCalls.length && reason === "stop" ? "tool_calls" : reason, toolCalls, stop: null };
  }

  /** Finish events for the choices the upstream left open. */
  close(reason: FinishReason): EngineEvent[] {
    const out: EngineEvent[] = [];
    for (let i = 0; i < this.n; i++) if (!this.finished.has(i)) out.push(this.finish(i, reason));
    return out;
  }

  reasons(): FinishReason[] {
    return Array.from({ length: this.n }, (_, i) => this.finished.get(i) ?? "stop");
  }
}

/** The upstream's usage in our terms, or null when it sent none (or an unusable one). */
export function usageOf(u: UpstreamUsage | null): Usage | null {
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return null;
  const int = (x: unknown) => (typeof x === "number" && Number.isFinite(x) && x >= 0 ? Math.floor(x) : 0);
  return {
    promptTokens: int(u.prompt_tokens),
    cachedTokens: Math.min(int(u.prompt_tokens), int(u.prompt_tokens_details?.cached_tokens)),
    completionTokens: int(u.completion_tokens),
    reasoningTokens: Math.min(int(u.completion_tokens), int(u.completion_tokens_details?.reasoning_tokens)),
  };
}

/**
 * Reads `data:` payloads of an SSE body, one parsed JSON value each; returns true at `[DONE]`, false
 * when the body ends without it (a worker that died mid-stream).
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown, boolean> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = buf.search(/\r?\n\r?\n/);
      if (end < 0) break;
      const event = buf.slice(0, end);
      buf = buf.slice(end + (buf[end] === "\r" ? 4 : 2));
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") return true;
      yield JSON.parse(data);
    }
  }
  return false;
}

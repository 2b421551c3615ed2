// /v1/chat/completions logic: one engine stream becomes either a chat.completion object or a
// sequence of chat.completion.chunk objects (framed as SSE or WebSocket messages by the caller).
import type { EngineEvent, ModelInfo, TokenLogprob, ToolCall } from "../inference/types.ts";
import { EngineError } from "../inference/types.ts";
import { ApiError, toApiError } from "../http/errors.ts";
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonOptions, debugOf, pickModel, unixSeconds, type CocoonOptions } from "../generation/options.ts";
import { startGeneration, type StartedGeneration } from "../generation/start.ts";
import { usageWire } from "../generation/usage.ts";
import type { Cost, Principal } from "../platform/service.ts";
import { ownerOf, textOf, type Turn } from "../sessions/service.ts";
import type { ChatCompletion, ChatCompletionRequest } from "./model.ts";
import { SYSTEM_FINGERPRINT, chatLogprobs, chatRequest, finishReason, responseId, type Outcome } from "./service.ts";

interface ChoiceState {
  content: string;
  reasoning: string;
  logprobs: TokenLogprob[];
  toolCalls: ToolCall[];
  finish: string | null;
}

/** Validates, submits and waits for the first output; errors before any output are thrown. */
export async function runChat(deps: GenerationDeps, body: ChatCompletionRequest, signal?: AbortSignal, principal: Principal | null = null): Promise<Outcome<ChatCompletion>> {
  const cocoon = cocoonOptions(body);
  const model = pickModel(deps, body.model, cocoon, "chat");
  if (body.messages.length === 0 && body.session_id === undefined) {
    throw new ApiError("invalid_request", "Invalid value for 'messages': expected at least 1 message (an empty list only with a session_id, to answer its stored history).", "messages");
  }
  const request = chatRequest(body, model, cocoon);
  const turn = body.session_id === undefined ? null : await beginSessionTurn(deps, body, principal);
  if (turn) {
    request.messages = turn.messages;
    request.sessionKey = turn.key;
  }
  const { source, events, settle } = await startGeneration(deps, { request, model, principal, endpoint: "chat", cocoon, signal, turn });
  const id = responseId("chatcmpl", cocoon.guid);
  const created = unixSeconds();
  const headers = turn ? { "X-Cocoon-Session-Id": turn.id } : undefined;
  if (body.stream) {
    return { stream: true, headers, chunks: chatChunks(events, source, { id, created, model, cocoon, n: request.n ?? 1, includeUsage: body.stream_options?.include_usage ?? false, settle }) };
  }
  const result = await chatObject(events, { id, created, model, cocoon, n: request.n ?? 1, logprobs: (request.logprobs ?? -1) >= 0, settle });
  return { stream: false, headers, ...result };
}

/**
 * POST /apply-template (llama-server's): the prompt a chat completions body renders to, with the tool,
 * reasoning and template settings generation would use. Nothing is generated or billed.
 */
export async function applyTemplate(deps: GenerationDeps, body: ChatCompletionRequest): Promise<{ prompt: string }> {
  const cocoon = cocoonOptions(body);
  const model = pickModel(deps, body.model, cocoon, "chat");
  const request = chatRequest(body, model, cocoon);
  try {
    const { prompt } = await deps.engine.render(model.id, { messages: request.messages!, request });
    return { prompt };
  } catch (err) {
    if (err instanceof EngineError) throw toApiError(err);
    throw err;
  }
}

/** session_id: the new messages as they will be stored, and the session's turn (its lock held). */
function beginSessionTurn(deps: GenerationDeps, body: ChatCompletionRequest, principal: Principal | null): Promise<Turn> {
  const sessions = deps.sessions;
  if ((body.n ?? 1) > 1) throw new ApiError("invalid_request", "n must be 1 with session_id: a session stores one reply per turn.", "n");
  if (body.tools?.length || body.functions?.length) throw new ApiError("invalid_request", "tools cannot be combined with session_id: sessions store text conversations.", body.tools?.length ? "tools" : "functions");
  const incoming = body.messages.map((m, i) => {
    if (m.role === "tool" || m.role === "function") throw new ApiError("invalid_request", "tool messages cannot be stored in a session.", `messages[${i}].role`);
    return { role: m.role, content: textOf(m.content), reasoningContent: m.reasoning_content ?? null };
  });
  return sessions.beginTurn(ownerOf(principal), body.session_id!, incoming, { param: "session_id" });
}

async function chatObject(
  events: AsyncGenerator<EngineEvent>,
  o: { id: string; created: number; model: ModelInfo; cocoon: CocoonOptions; n: number; logprobs: boolean; settle: StartedGeneration["settle"] },
): Promise<{ body: ChatCompletion; cost: Cost | null }> {
  const choices: ChoiceState[] = Array.from({ length: o.n }, () => ({ content: "", reasoning: "", logprobs: [], toolCalls: [], finish: null }));
  let done: Extract<EngineEvent, { type: "done" }> | null = null;
  try {
    for await (const e of events) {
      if (e.type === "delta") {
        const c = choices[e.index]!;
        c.content += e.content;
        c.reasoning += e.reasoning;
        c.logprobs.push(...e.logprobs);
      } else if (e.type === "finish") {
        choices[e.index]!.finish = finishReason(e.reason);
        choices[e.index]!.toolCalls = e.toolCalls;
      } else {
        done = e;
      }
    }
  } catch (err) {
    throw toApiError(err);
  }
  if (!done) throw toApiError(new EngineError("internal", "the generation ended without a result"));
  const cost = await o.settle(done);
  const body: ChatCompletion = {
    id: o.id,
    object: "chat.completion",
    created: o.created,
    model: o.model.id,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: choices.map((c, index) => ({
      index,
      message: {
        role: "assistant" as const,
        content: c.toolCalls.length && c.content === "" ? null : c.content,
        ...(c.reasoning ? { reasoning_content: c.reasoning } : {}),
        ...(c.toolCalls.length ? { tool_calls: c.toolCalls } : {}),
        refusal: null,
      },
      logprobs: o.logprobs ? chatLogprobs(c.logprobs) : null,
      finish_reason: c.finish ?? "stop",
    })),
    usage: usageWire(done.usage, cost),
    ...(o.cocoon.debug ? { debug: debugOf(done, o.model, o.cocoon) } : {}),
  };
  return { body, cost };
}

async function* chatChunks(
  events: AsyncGenerator<EngineEvent>,
  source: AsyncIterableIterator<EngineEvent>,
  o: { id: string; created: number; model: ModelInfo; cocoon: CocoonOptions; n: number; includeUsage: boolean; settle: StartedGeneration["settle"] },
): AsyncGenerator<Record<string, unknown>> {
  const base = { id: o.id, object: "chat.completion.chunk", created: o.created, model: o.model.id, system_fingerprint: SYSTEM_FINGERPRINT };
  const usageField = o.includeUsage ? { usage: null } : {};
  const chunk = (index: number, delta: Record<string, unknown>, finish: string | null, logprobs?: TokenLogprob[]) => ({
    ...base,
    choices: [{ index, delta, logprobs: logprobs && logprobs.length ? chatLogprobs(logprobs) : null, finish_reason: finish }],
    ...usageField,
  });
  const started = new Set<number>();
  let completed = false;
  try {
    for await (const e of events) {
      if (e.type === "delta") {
        if (!started.has(e.index)) {
          // OpenAI opens each choice with the role and an empty content.
          started.add(e.index);
          yield chunk(e.index, { role: "assistant", content: "" }, null);
        }
        if (e.reasoning) yield chunk(e.index, { reasoning_content: e.reasoning }, null);
        if (e.content || e.logprobs.length) yield chunk(e.index, { content: e.content }, null, e.logprobs);
        for (const t of e.toolCalls) {
          const call: Record<string, unknown> = { index: t.index };
          if (t.id) Object.assign(call, { id: t.id, type: "function", function: { name: t.name, arguments: "" } });
          else call.function = { arguments: t.arguments ?? "" };
          yield chunk(e.index, { tool_calls: [call] }, null);
        }
      } else if (e.type === "finish") {
        if (!started.has(e.index)) {
          started.add(e.index);
          yield chunk(e.index, { role: "assistant", content: "" }, null);
        }
        yield chunk(e.index, {}, finishReason(e.reason));
      } else {
        completed = true;
        const cost = await o.settle(e);
        const debug = o.cocoon.debug ? { debug: debugOf(e, o.model, o.cocoon) } : {};
        if (o.includeUsage) yield { ...base, choices: [], usage: usageWire(e.usage, cost), ...debug };
        else if (o.cocoon.debug) yield { ...base, choices: [], ...debug };
      }
    }
  } finally {
    // A consumer that stops early (client gone) cancels the generation.
    if (!completed) await source.return?.();
  }
}

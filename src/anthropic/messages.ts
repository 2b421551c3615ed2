// /v1/messages logic: one engine stream becomes either a message object or Anthropic's stream events
// (message_start, content blocks with their deltas, message_delta, message_stop), framed by index.ts.
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonOptions, pickModel } from "../generation/options.ts";
import { startGeneration, type StartedGeneration } from "../generation/start.ts";
import { toApiError } from "../http/errors.ts";
import { promptTokensUpperBound } from "../generation/billing.ts";
import type { EngineEvent, FinishReason, GenerateRequest, ModelInfo, ToolCall } from "../inference/types.ts";
import { EngineError } from "../inference/types.ts";
import type { Cost, Principal } from "../platform/service.ts";
import type { ContentBlock, CountTokensRequest, Message, MessagesRequest } from "./model.ts";
import { conversationRequest, messageId, messageUsage, messagesRequest, stopReason, thinkingSignature, toolInput, toolUseId } from "./service.ts";

type Done = Extract<EngineEvent, { type: "done" }>;

/** A stream event: its `type` is also the SSE event name. */
export type StreamEvent = { type: string } & Record<string, unknown>;

export type MessagesOutcome = { stream: false; body: Message; cost: Cost | null } | { stream: true; events: AsyncGenerator<StreamEvent>; cost: () => Cost | null };

/** Validates, submits and waits for the first output; errors before any output are thrown. */
export async function runMessages(deps: GenerationDeps, body: MessagesRequest, signal: AbortSignal | undefined, principal: Principal | null): Promise<MessagesOutcome> {
  const cocoon = cocoonOptions(body);
  const model = pickModel(deps, body.model, cocoon, "chat");
  const request = messagesRequest(body, model, cocoon);
  const capped = await fitToContext(deps, model, request);
  const started = await startGeneration(deps, { request, model, principal, endpoint: "chat", cocoon, signal, turn: null });
  const events = started.events;
  const id = messageId(cocoon.guid);
  if (!body.stream) return { stream: false, ...(await messageObject(events, { id, model, capped, settle: started.settle })) };
  let cost: Cost | null = null;
  const settle = async (done: Done | null) => (cost = await started.settle(done));
  return { stream: true, events: messageEvents(events, started.source, { id, model, capped, settle }), cost: () => cost };
}

/**
 * Anthropic lets max_tokens run past the context window (clients such as Claude Code send 32000 with
 * a 20k prompt) and ends the message with stop_reason model_context_window_exceeded: max_tokens is
 * cut to what the window leaves. Only a request that may not fit is tokenized ahead for this.
 */
async function fitToContext(deps: GenerationDeps, model: ModelInfo, request: GenerateRequest): Promise<boolean> {
  const max = request.maxTokens!;
  if (promptTokensUpperBound(request, model) + max <= model.contextWindow) return false;
  const room = model.contextWindow - (await promptTokens(deps, model, request));
  // A prompt that fills the window alone is the engine's context-length 400.
  if (room >= max || room < 1) return false;
  request.maxTokens = room;
  return true;
}

/** /v1/messages/count_tokens: the prompt's tokens through the model's chat template, as the engine would count them. */
export async function countTokens(deps: GenerationDeps, body: CountTokensRequest): Promise<number> {
  const model = pickModel(deps, body.model, cocoonOptions({}), "chat");
  return promptTokens(deps, model, conversationRequest(body));
}

async function promptTokens(deps: GenerationDeps, model: ModelInfo, r: Pick<GenerateRequest, "messages" | "tools" | "toolChoice" | "enableThinking">): Promise<number> {
  try {
    const rendered = await deps.engine.render(model.id, {
      messages: r.messages!,
      options: { tools: r.tools && r.toolChoice !== "none" ? r.tools : undefined, enableThinking: r.enableThinking },
    });
    return (await deps.engine.tokenize(model.id, rendered.prompt, { addSpecial: true, parseSpecial: true })).length;
  } catch (err) {
    throw toApiError(err);
  }
}

async function messageObject(events: AsyncGenerator<EngineEvent>, o: { id: string; model: ModelInfo; capped: boolean; settle: StartedGeneration["settle"] }): Promise<{ body: Message; cost: Cost | null }> {
  let content = "";
  let reasoning = "";
  let finish: { reason: FinishReason; stop: string | null; toolCalls: ToolCall[] } = { reason: "stop", stop: null, toolCalls: [] };
  let done: Done | null = null;
  try {
    for await (const e of events) {
      if (e.type === "delta") {
        content += e.content;
        reasoning += e.reasoning;
      } else if (e.type === "finish") finish = e;
      else done = e;
    }
  } catch (err) {
    throw toApiError(err);
  }
  if (!done) throw toApiError(new EngineError("internal", "the generation ended without a result"));
  const cost = await o.settle(done);
  const blocks: ContentBlock[] = [];
  if (reasoning) blocks.push({ type: "thinking", thinking: reasoning, signature: thinkingSignature(reasoning) });
  if (content || !finish.toolCalls.length) blocks.push({ type: "text", text: content });
  for (const c of finish.toolCalls) blocks.push({ type: "tool_use", id: toolUseId(), name: c.function.name, input: toolInput(c.function.arguments) });
  const body: Message = {
    id: o.id,
    type: "message",
    role: "assistant",
    model: o.model.id,
    content: blocks,
    ...stopReason(finish.reason, finish.stop, o.capped),
    usage: messageUsage(done.usage, cost),
  };
  return { body, cost };
}

const noUsage = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };

/**
 * Anthropic's stream: message_start and ping, then each content block opened, filled by its deltas
 * and closed in the order the model wrote them (thinking, text, tool_use), then message_delta with
 * the stop reason and the whole usage (the prompt's tokens are only known at the end), message_stop.
 */
async function* messageEvents(
  events: AsyncGenerator<EngineEvent>,
  source: AsyncIterableIterator<EngineEvent>,
  o: { id: string; model: ModelInfo; capped: boolean; settle: (done: Done | null) => Promise<Cost | null> },
): AsyncGenerator<StreamEvent> {
  yield {
    type: "message_start",
    message: { id: o.id, type: "message", role: "assistant", model: o.model.id, content: [], stop_reason: null, stop_sequence: null, usage: noUsage },
  };
  yield { type: "ping" };
  const blocks = new OpenBlocks();
  const startedCalls = new Set<number>();
  let finish: { reason: FinishReason; stop: string | null } = { reason: "stop", stop: null };
  let completed = false;
  try {
    for await (const e of events) {
      if (e.type === "delta") {
        if (e.index !== 0) continue;
        if (e.reasoning) {
          if (blocks.kind !== "thinking") yield* blocks.open("thinking", { type: "thinking", thinking: "", signature: "" });
          yield blocks.delta({ type: "thinking_delta", thinking: e.reasoning });
        }
        if (e.content) {
          if (blocks.kind !== "text") yield* blocks.open("text", { type: "text", text: "" });
          yield blocks.delta({ type: "text_delta", text: e.content });
        }
        for (const t of e.toolCalls) {
          if (t.name !== undefined && !startedCalls.has(t.index)) {
            startedCalls.add(t.index);
            yield* blocks.open("tool_use", { type: "tool_use", id: toolUseId(), name: t.name, input: {} }, t.index);
          }
          if (t.arguments && blocks.kind === "tool_use" && blocks.call === t.index) yield blocks.delta({ type: "input_json_delta", partial_json: t.arguments });
        }
      } else if (e.type === "finish") {
        if (e.index !== 0) continue;
        finish = e;
        // Calls the parser only completed at the end arrive whole.
        for (const [i, c] of e.toolCalls.entries()) {
          if (startedCalls.has(i)) continue;
          startedCalls.add(i);
          yield* blocks.open("tool_use", { type: "tool_use", id: toolUseId(), name: c.function.name, input: {} }, i);
          yield blocks.delta({ type: "input_json_delta", partial_json: c.function.arguments });
        }
      } else {
        completed = true;
        const cost = await o.settle(e);
        yield* blocks.close();
        if (blocks.index < 0) {
          // An empty answer is still one (empty) text block, as Anthropic sends it.
          yield* blocks.open("text", { type: "text", text: "" });
          yield* blocks.close();
        }
        const usage = messageUsage(e.usage, cost);
        yield { type: "message_delta", delta: stopReason(finish.reason, finish.stop, o.capped), usage };
        yield { type: "message_stop" };
      }
    }
  } finally {
    // A consumer that stops early (client gone) cancels the generation; billing settles from its end.
    if (!completed) await source.return?.();
  }
}

/** The content block being streamed: opening one closes the one before (a thinking block with its signature). */
class OpenBlocks {
  index = -1;
  kind: "thinking" | "text" | "tool_use" | null = null;
  /** The tool call index of an open tool_use block. */
  call = -1;
  private thinking = "";

  *open(kind: "thinking" | "text" | "tool_use", block: Record<string, unknown>, call = -1): Generator<StreamEvent> {
    yield* this.close();
    this.index++;
    this.kind = kind;
    this.call = call;
    this.thinking = "";
    yield { type: "content_block_start", index: this.index, content_block: block };
  }

  delta(delta: { type: string } & Record<string, string>): StreamEvent {
    if (delta.type === "thinking_delta") this.thinking += delta.thinking;
    return { type: "content_block_delta", index: this.index, delta };
  }

  *close(): Generator<StreamEvent> {
    if (this.kind === null) return;
    if (this.kind === "thinking") yield { type: "content_block_delta", index: this.index, delta: { type: "signature_delta", signature: thinkingSignature(this.thinking) } };
    yield { type: "content_block_stop", index: this.index };
    this.kind = null;
  }
}

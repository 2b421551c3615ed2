// One engine stream as the Responses API's output: reasoning, message and function_call items opened
// and closed in order, as OpenAI's typed stream events (each with its sequence_number), ending with
// the final response object. A whole (non-stream) response is the last event's response.
import type { EngineEvent, TokenLogprob, ToolCall, Usage } from "../inference/types.ts";
import { toApiError } from "../http/errors.ts";
import { cappedFields } from "../generation/usage.ts";
import { costField, type Cost } from "../platform/service.ts";
import { newId } from "./input.ts";
import type { FunctionCall, OutputItem, OutputMessage, ReasoningItem, ResponseObject, ResponseStreamEvent } from "./model.ts";

type Done = Extract<EngineEvent, { type: "done" }>;
type Logprob = OutputMessage["content"][number]["logprobs"][number];
/** A stream event before its sequence number is set. */
type Event = ResponseStreamEvent extends infer E ? (E extends { sequence_number: number } ? Omit<E, "sequence_number"> : never) : never;

export interface OutputOptions {
  /** The response as created: its settings echoed, status in_progress, no output yet. */
  base: ResponseObject;
  /** Charges what was processed (idempotent); null when billing is off. */
  settle(done: Done): Promise<Cost | null>;
  /** Seals reasoning as `encrypted_content`; absent unless the request included it. */
  seal?: (text: string) => string;
  /** A called function's name and namespace, from the name the model called. Defaults to the name as it is. */
  callee?: (name: string) => { name: string; namespace?: string };
  /** Called with the final response (completed, incomplete or failed) before it is sent. */
  onEnd?: (response: ResponseObject) => void | Promise<void>;
  /** A failure after output began: thrown (whole responses) or sent as response.failed + error (streams). */
  failures: "throw" | "events";
}

export function responseUsage(u: Usage, cost: Cost | null): NonNullable<ResponseObject["usage"]> {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens, cache_write_tokens: 0 },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.promptTokens + u.completionTokens,
    ...(cost ? { cost: costField(cost) } : {}),
    ...cappedFields(cost),
  };
}

const logprobsOf = (lps: TokenLogprob[]): Logprob[] =>
  lps.map((lp) => ({ token: lp.token, logprob: lp.logprob, bytes: lp.bytes, top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })) }));

type Open =
  | { kind: "reasoning"; index: number; item: ReasoningItem; text: string }
  | { kind: "message"; index: number; item: OutputMessage }
  | { kind: "call"; index: number; item: FunctionCall };

/** The whole sequence of events of one response, from response.created to its final event. */
export async function* responseEvents(events: AsyncGenerator<EngineEvent>, source: AsyncIterator<EngineEvent>, o: OutputOptions): AsyncGenerator<ResponseStreamEvent> {
  let seq = 0;
  const ev = (e: Event): ResponseStreamEvent => ({ ...structuredClone(e), sequence_number: seq++ }) as ResponseStreamEvent;
  const output: OutputItem[] = [];
  const snapshot = (r: ResponseObject): ResponseObject => ({ ...r, output: structuredClone(output) });
  let current: Open | null = null;
  const calls = new Map<number, Extract<Open, { kind: "call" }>>();
  // Leading whitespace of the answer waits: a tool call after it means there is no message.
  let pending = "";
  let pendingLogprobs: Logprob[] = [];
  let finish: { reason: string; toolCalls: ToolCall[] } | null = null;
  let ended = false;

  function* open(item: OutputItem): Generator<ResponseStreamEvent> {
    const index = output.length;
    output.push(item);
    yield ev({ type: "response.output_item.added", output_index: index, item });
    if (item.type === "reasoning") {
      current = { kind: "reasoning", index, item, text: "" };
      item.content!.push({ type: "reasoning_text", text: "" });
      yield ev({ type: "response.content_part.added", output_index: index, item_id: item.id, content_index: 0, part: { type: "reasoning_text", text: "" } });
    } else if (item.type === "message") {
      current = { kind: "message", index, item };
      item.content.push({ type: "output_text", text: "", annotations: [], logprobs: [] });
      yield ev({ type: "response.content_part.added", output_index: index, item_id: item.id, content_index: 0, part: { type: "output_text", text: "", annotations: [], logprobs: [] } });
    } else current = { kind: "call", index, item };
  }

  function* close(status: "completed" | "incomplete"): Generator<ResponseStreamEvent> {
    const c = current as Open | null;
    current = null;
    if (!c) return;
    const at = { output_index: c.index, item_id: c.item.id };
    if (c.kind === "reasoning") {
      const part = c.item.content![0]!;
      yield ev({ type: "response.reasoning_text.done", ...at, content_index: 0, text: part.text });
      yield ev({ type: "response.content_part.done", ...at, content_index: 0, part });
      if (o.seal) c.item.encrypted_content = o.seal(part.text);
    } else if (c.kind === "message") {
      const part = c.item.content[0]!;
      yield ev({ type: "response.output_text.done", ...at, content_index: 0, text: part.text, logprobs: part.logprobs });
      yield ev({ type: "response.content_part.done", ...at, content_index: 0, part });
    } else {
      yield ev({ type: "response.function_call_arguments.done", ...at, arguments: c.item.arguments });
    }
    c.item.status = c.kind === "call" ? "completed" : status;
    yield ev({ type: "response.output_item.done", output_index: c.index, item: c.item });
  }

  function* reason(text: string): Generator<ResponseStreamEvent> {
    if (current?.kind !== "reasoning") {
      yield* close("completed");
      yield* open({ id: newId("rs"), type: "reasoning", summary: [], content: [], status: "in_progress" });
    }
    const c = current as unknown as Extract<Open, { kind: "reasoning" }>;
    c.item.content![0]!.text += text;
    yield ev({ type: "response.reasoning_text.delta", output_index: c.index, item_id: c.item.id, content_index: 0, delta: text });
  }

  function* answer(text: string, lps: Logprob[]): Generator<ResponseStreamEvent> {
    if (current?.kind !== "message") {
      if (calls.size > 0 || (pending + text).trim() === "") {
        pending += text;
        pendingLogprobs.push(...lps);
        return;
      }
      yield* close("completed");
      yield* open({ id: newId("msg"), type: "message", status: "in_progress", role: "assistant", content: [] });
      text = pending + text;
      lps = [...pendingLogprobs, ...lps];
      pending = "";
      pendingLogprobs = [];
    }
    const c = current as unknown as Extract<Open, { kind: "message" }>;
    const part = c.item.content[0]!;
    part.text += text;
    part.logprobs.push(...lps);
    yield ev({ type: "response.output_text.delta", output_index: c.index, item_id: c.item.id, content_index: 0, delta: text, logprobs: lps });
  }

  function* call(index: number, id: string, name: string): Generator<ResponseStreamEvent> {
    yield* close("completed");
    pending = "";
    pendingLogprobs = [];
    const { name: fn, namespace } = o.callee?.(name) ?? { name };
    yield* open({ id: newId("fc"), type: "function_call", status: "in_progress", call_id: id, name: fn, arguments: "", ...(namespace ? { namespace } : {}) });
    calls.set(index, current as unknown as Extract<Open, { kind: "call" }>);
  }

  async function* end(done: Done, cost: Cost | null): AsyncGenerator<ResponseStreamEvent> {
    const reason = finish?.reason ?? done.reasons[0] ?? "stop";
    // The parsed calls are authoritative: their arguments replace what the deltas added up to.
    for (const [i, t] of (finish?.toolCalls ?? []).entries()) {
      if (!calls.has(i)) yield* call(i, t.id, t.function.name);
      calls.get(i)!.item.arguments = t.function.arguments;
    }
    const hasMessage = output.some((x) => x.type === "message");
    if (!hasMessage && calls.size === 0 && (pending !== "" || output.length === 0)) {
      // An answer of whitespace only (or nothing at all) is still a message.
      yield* close("completed");
      yield* open({ id: newId("msg"), type: "message", status: "in_progress", role: "assistant", content: [] });
      const [text, lps] = [pending, pendingLogprobs];
      pending = "";
      pendingLogprobs = [];
      if (text || lps.length) yield* answer(text, lps);
    }
    const truncated = reason === "length" || reason === "timeout" || reason === "cancelled";
    yield* close(truncated ? "incomplete" : "completed");
    const final: ResponseObject = {
      ...snapshot(o.base),
      status: truncated ? "incomplete" : "completed",
      completed_at: truncated ? null : Math.floor(Date.now() / 1000),
      incomplete_details: truncated ? { reason: "max_output_tokens" } : null,
      usage: responseUsage(done.usage, cost),
    };
    // A cancelled generation (the client went away) is not kept.
    if (!done.reasons.includes("cancelled")) await o.onEnd?.(final);
    yield ev({ type: truncated ? "response.incomplete" : "response.completed", response: final });
  }

  try {
    yield ev({ type: "response.created", response: snapshot(o.base) });
    yield ev({ type: "response.in_progress", response: snapshot(o.base) });
    try {
      for await (const e of events) {
        if (e.type === "delta") {
          if (e.index !== 0) continue;
          if (e.reasoning) yield* reason(e.reasoning);
          if (e.content || e.logprobs.length) yield* answer(e.content, logprobsOf(e.logprobs));
          for (const t of e.toolCalls) {
            if (t.id) yield* call(t.index, t.id, t.name ?? "");
            const c = calls.get(t.index);
            if (c && t.arguments) {
              c.item.arguments += t.arguments;
              yield ev({ type: "response.function_call_arguments.delta", output_index: c.index, item_id: c.item.id, delta: t.arguments });
            }
          }
        } else if (e.type === "finish") {
          if (e.index === 0) finish = { reason: e.reason, toolCalls: e.toolCalls };
        } else {
          ended = true;
          // A generation the client cancelled has nobody to tell.
          if (e.reasons.includes("cancelled") && o.failures === "events") return;
          yield* end(e, await o.settle(e));
        }
      }
    } catch (err) {
      ended = true;
      const api = toApiError(err);
      if (o.failures === "throw") throw api;
      if (current) (current as Open).item.status = "incomplete";
      const failed: ResponseObject = {
        ...snapshot(o.base),
        status: "failed",
        error: { code: api.status === 429 ? "rate_limit_exceeded" : "server_error", message: api.message },
      };
      await o.onEnd?.(failed);
      yield ev({ type: "response.failed", response: failed });
      yield ev({ type: "error", code: api.code, message: api.message, param: api.param });
    }
  } finally {
    // A consumer that stops early (the client went away) cancels the generation.
    if (!ended) await source.return?.();
  }
}

/** The final response of the events (whole, non-streamed responses). */
export async function finalResponse(events: AsyncGenerator<ResponseStreamEvent>): Promise<ResponseObject> {
  let final: ResponseObject | null = null;
  for await (const e of events) {
    if (e.type === "response.completed" || e.type === "response.incomplete" || e.type === "response.failed") final = e.response;
  }
  if (!final) throw toApiError(new Error("the generation ended without a result"));
  return final;
}

// What the scheduler takes and gives: a request after rendering and tokenizing, and the events it
// emits to the engine (the public ones plus "started" and "error"); and its state per running
// request and per sequence.
import type { ChoiceOutput, OutputOptions } from "./output.ts";
import type { TokenSampler, TokenSamplerOptions } from "../native/token-sampler.ts";
import type { CachedSequence } from "./prompt-cache.ts";
import type { DraftPace } from "./speculative.ts";
import type { EngineError, EngineEvent, FinishReason } from "./types.ts";

/** A request after rendering and tokenizing: everything the scheduler needs. */
export interface PreparedRequest {
  id: string;
  tokens: Int32Array;
  maxTokens: number;
  /** Sampler settings per choice (seeds differ). */
  samplers: TokenSamplerOptions[];
  output: OutputOptions;
  timeoutMs: number;
  sessionKey: string | null;
  /** Whose cached prefixes it may reuse (GenerateRequest.cacheScope); null: the shared scope. */
  cacheScope: string | null;
  receivedAt: number;
  /** The request field the prompt came from, named in context-overflow errors. */
  promptParam: "messages" | "prompt";
}

/** Scheduler -> engine messages: public events plus "started" (left the queue) and "error". */
export type SchedulerEvent =
  | EngineEvent
  | { type: "started" }
  | { type: "error"; code: EngineError["code"]; message: string; param?: string };

export type Emit = (id: string, event: SchedulerEvent) => void;

/** A running request. */
export interface Active {
  req: PreparedRequest;
  slots: Slot[];
  cachedTokens: number;
  startedAt: number;
  firstTokenAt: number;
  deadline: number;
  choicesLeft: number;
  completionTokens: number;
  reasoningTokens: number;
  cancelled: boolean;
  reasons: FinishReason[];
  /** Prompt tokens in the KV cache when the request ended (all of them once the prompt is done). */
  promptFed: number;
}

/** One sequence of the context: a lane while it runs a request's choice, else idle (maybe resident). */
export interface Slot extends CachedSequence {
  state: "idle" | "prompt" | "generate";
  active: Active | null;
  choice: number;
  /** Next prompt token to feed (state "prompt"). */
  promptPos: number;
  /** Token sampled but not yet decoded (state "generate"). */
  pending: number;
  row: number;
  generated: number;
  sampler: TokenSampler | null;
  output: ChoiceOutput | null;
  /** Tokens guessed to follow `pending` (speculative.ts), decoded with it this step, and their rows. */
  draft: number[];
  draftRows: number[];
  /** How much this request's slot drafts next (speculative.ts), when there is a drafter. */
  pace: DraftPace | null;
}

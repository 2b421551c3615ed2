// What the scheduler takes and gives: a request after rendering and tokenizing, and the events it
// emits to the engine (the public ones plus "started" and "error").
import type { OutputOptions } from "./output.ts";
import type { TokenSamplerOptions } from "../native/token-sampler.ts";
import type { EngineError, EngineEvent } from "./types.ts";

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

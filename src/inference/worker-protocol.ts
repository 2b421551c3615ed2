// Messages between the engine (main thread) and a model worker. Plain structured-clonable data only.
import type { SchedulerEvent } from "./scheduler.ts";
import type { ChatMessage, GenerateRequest, ModelInfo, ModelStats } from "./types.ts";
import type { RenderOptions } from "./chat-template.ts";
import type { LogLevelName } from "../native/llama.ts";

export interface ModelSpec {
  id: string;
  path: string;
  /** Forced model type; detected from the GGUF when absent. */
  type?: ModelInfo["type"];
  /** Per-model overrides of the engine-wide settings. */
  slots?: number;
  ctxSize?: number;
  gpuLayers?: number;
  /** Speculative decoding with a draft model (llama-server's --model-draft) sharing the target's vocabulary. */
  draft?: DraftSpec;
}

export interface DraftSpec {
  path: string;
  /** Tokens drafted per step at most (--draft-max). Defaults to DRAFT_MAX. */
  max?: number;
  /** Drafts shorter than this are not used (--draft-min). Defaults to 0. */
  min?: number;
}

/** Tokens a draft model guesses per step unless its spec says `draft-max`. */
export const DRAFT_MAX = 8;

export interface WorkerInit {
  model: ModelSpec;
  libDir: string;
  llamaLogLevel: LogLevelName;
  slots: number;
  /** Context window per request; 0 = the model's training context. */
  ctxPerSlot: number;
  batchSize: number;
  threads: number;
  gpuLayers: number;
  maxQueue: number;
  /** Bytes of parked KV state the scheduler may keep. */
  parkBytes: number;
  /** Prompt tokens per step beside generating slots (0 = automatic). */
  promptBudget: number;
  /** N-gram lookup speculation: tokens guessed per step (0 = off). */
  ngramDraft: number;
  /** Resident KV state rewritten compactly while idle, at most (0 = never). */
  compactBytes: number;
  /** Decode next tokens apart from a prompt chunk in deep steps; null = on the CPU backend. */
  splitMixedSteps: boolean | null;
}

/**
 * A request as the engine worker receives it: a completion's prompt is token ids (its text and
 * suffix were tokenized by the tokenizer worker); chat messages are rendered in the worker and
 * their prompt tokenized through the main thread ("tokenize" / "tokens").
 */
export type WorkerRequest = Omit<GenerateRequest, "prompt" | "suffix"> & { prompt?: Int32Array | number[] };

export type CallMap = {
  /** Inputs as token ids (text inputs were tokenized by the tokenizer worker). */
  embed: { args: { inputs: Int32Array[] }; result: { vectors: Float32Array[]; promptTokens: number } };
  /** With `request`, its messages rendered with the options generation would derive from it (POST /apply-template). */
  render: { args: { messages: ChatMessage[]; options?: RenderOptions; request?: GenerateRequest }; result: { prompt: string; startsInReasoning: boolean } };
  forgetSession: { args: { key: string }; result: { slots: number; parked: number; stats: ModelStats } };
};

export type ToWorker =
  | { type: "init"; init: WorkerInit }
  | { type: "submit"; id: string; request: WorkerRequest }
  /** The answer to a "tokenize" the worker sent. */
  | { type: "tokens"; tid: number; tokens?: Int32Array; error?: WireError }
  | { type: "cancel"; id: string }
  | { [M in keyof CallMap]: { type: "call"; rid: number; method: M; args: CallMap[M]["args"] } }[keyof CallMap]
  | { type: "crash" }
  | { type: "shutdown" };

export type WireError = { code: import("./types.ts").EngineError["code"]; message: string; param?: string };

export type ToMain =
  | { type: "ready"; info: ModelInfo }
  | { type: "events"; events: { id: string; event: SchedulerEvent }[]; stats: ModelStats }
  | { type: "reply"; rid: number; result?: unknown; error?: WireError }
  /** About once a second while requests run: what each has processed so far (billing checkpoints). */
  | { type: "progress"; requests: { id: string; usage: import("./types.ts").Usage }[] }
  /** A rendered chat prompt to tokenize off this thread (answered with "tokens"). */
  | { type: "tokenize"; tid: number; text: string; addSpecial: boolean; parseSpecial: boolean }
  | { type: "fatal"; error: string }
  | { type: "closed" };

// The engine's public vocabulary: plain typed requests in, typed events out. No HTTP shapes here;
// the OpenAI and Cocoon layers translate to and from these.
import type { ChatFormatInfo, ChatMessage, ToolDefinition } from "./chat-template.ts";

export type { ChatFormatInfo, ChatMessage, ToolDefinition };

export interface SamplingParams {
  /** 0 = greedy. Defaults to 0.8. */
  temperature?: number;
  /** Defaults to 0.95 (1 disables). */
  topP?: number;
  /** Defaults to 40 (0 disables). */
  topK?: number;
  /** Defaults to 0.05 (0 disables). */
  minP?: number;
  /** Defaults to 1 (disabled). */
  typicalP?: number;
  /** Defaults to 1 (disabled). */
  repeatPenalty?: number;
  /** Defaults to 0. */
  frequencyPenalty?: number;
  /** Defaults to 0. */
  presencePenalty?: number;
  /** Recent tokens the penalties consider. Defaults to 64. */
  penaltyLastN?: number;
  /** Same seed, same output. Defaults to a random seed. */
  seed?: number;
  /** Token id -> bias added to its logit (-100 or less bans it). */
  logitBias?: Record<number, number>;
}

export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; schema: Record<string, unknown>; strict?: boolean };

export type ToolChoice = "auto" | "none" | "required" | { name: string };

export interface GenerateRequest {
  /** Model id; defaults to the first loaded model. */
  model?: string;
  /** Raw prompt (text or token ids) for completions; exactly one of prompt and messages. */
  prompt?: string | number[];
  /** Text after the completion (fill-in-the-middle); needs a model with FIM tokens. */
  suffix?: string;
  /** Chat messages, rendered with the model's own chat template. */
  messages?: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /** Allow several tool calls in one answer. Defaults to true. */
  parallelToolCalls?: boolean;
  /** Turn reasoning (`<think>`) on or off where the template supports it. Defaults to the template's default. */
  enableThinking?: boolean;
  /** Extra variables passed to the chat template. */
  templateVars?: Record<string, unknown>;
  /** Tokens the reasoning block may hold before its closing tag is forced (llama.cpp's reasoning budget). Defaults to no limit. */
  reasoningBudget?: number;
  /** Most tokens to generate per choice. Defaults to what is left of the context. */
  maxTokens?: number;
  /**
   * Without maxTokens: a cap on the default (what is left of the context, when that is smaller), for
   * APIs whose default is a fixed number that a long session's history would otherwise overflow.
   */
  defaultMaxTokens?: number;
  sampling?: SamplingParams;
  /** Up to 16 stop strings; the text stops before them. */
  stop?: string[];
  /** Keep generating past end-of-generation tokens. Defaults to false. */
  ignoreEos?: boolean;
  /** Choices to generate from the one prompt. Defaults to 1. */
  n?: number;
  /** -1 or undefined: no log-probabilities; 0: the chosen tokens'; k <= 20: plus the top k. */
  logprobs?: number;
  responseFormat?: ResponseFormat;
  /** A raw GBNF grammar (root rule "root"); overrides responseFormat. */
  grammar?: string;
  /** Ends the request with what it produced so far. */
  timeoutMs?: number;
  /** Pins a conversation: its next turn resumes from this turn's cached state. */
  sessionKey?: string;
  /**
   * Whose KV cache the prompt may reuse: prefixes are reused only within one scope (an account), so
   * cached-token counts, costs and timings never reveal another account's prompt. Defaults to one
   * scope shared by every request without one.
   */
  cacheScope?: string;
}

export type FinishReason = "stop" | "length" | "tool_calls" | "cancelled" | "timeout";

export interface TopLogprob {
  token: string;
  bytes: number[];
  logprob: number;
}

export interface TokenLogprob extends TopLogprob {
  id: number;
  top: TopLogprob[];
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  arguments?: string;
}

export interface Usage {
  promptTokens: number;
  /** Prompt tokens served from cache (prefix reuse or a pinned session). */
  cachedTokens: number;
  completionTokens: number;
  /** Completion tokens inside the reasoning block. */
  reasoningTokens: number;
}

export interface Timings {
  queueMs: number;
  promptMs: number;
  generationMs: number;
  /** Prompt tokens processed (not cached) per second. */
  promptTokensPerSecond: number;
  /** Generated tokens per second, across all choices. */
  tokensPerSecond: number;
}

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export type EngineEvent =
  /** New output of choice `index`: any mix of content, reasoning, tool-call pieces and token log-probs. */
  | { type: "delta"; index: number; content: string; reasoning: string; toolCalls: ToolCallDelta[]; logprobs: TokenLogprob[] }
  /** Choice `index` ended. */
  | { type: "finish"; index: number; reason: FinishReason; toolCalls: ToolCall[]; stop: string | null }
  /** The request ended: always the last event. */
  | {
      type: "done";
      usage: Usage;
      timings: Timings;
      /** The slot that ran it (-1: never started). */
      slot: number;
      /** How each choice ended. */
      reasons: FinishReason[];
    };

export interface ModelInfo {
  id: string;
  path: string;
  type: "chat" | "completion" | "embedding";
  /** Tokens one request may use (prompt + completion). */
  contextWindow: number;
  trainContext: number;
  slots: number;
  embeddingDims: number;
  /** The most bytes of text one token covers: text over contextWindow × this bytes cannot fit. */
  longestTokenBytes: number;
  vocabSize: number;
  description: string;
  sizeBytes: number;
  parameters: number;
  chatTemplate: boolean;
  /** The model has fill-in-the-middle tokens (completions with `suffix`). */
  infill: boolean;
  supportsTools: boolean;
  supportsThinking: boolean;
  /** The chat format llama.cpp detected from the template; null without one. */
  chatFormat: ChatFormatInfo | null;
  backend: string;
  gpuLayers: number;
}

export interface ModelStats {
  id: string;
  slotsBusy: number;
  slotsTotal: number;
  queued: number;
  promptTokens: number;
  generatedTokens: number;
  cachedTokens: number;
  requests: number;
  restarts: number;
  ready: boolean;
  /** KV cache cells holding tokens (shared prefixes counted per slot) and cells in all. */
  kvUsedCells: number;
  kvTotalCells: number;
  /** Slots pinned to a conversation (`sessionKey`). */
  pinnedSlots: number;
  /** Idle sequences whose KV stays resident in the cache (warm conversations), and how many were evicted under memory pressure. */
  residentSequences: number;
  evictions: number;
  /** Times the resident sequences' KV cells were rewritten contiguously while idle, and the ms it took. */
  kvCompactions: number;
  kvCompactMs: number;
  /** Steps whose next tokens were decoded apart from their prompt chunk (Scheduler.splitWorthIt). */
  splitSteps: number;
  /** Speculative decoding (n-gram lookup or a draft model; null: off): tokens guessed, and those the sampler kept (each saved a decode step). */
  speculative: "ngram" | "draft" | null;
  draftedTokens: number;
  acceptedTokens: number;
  /** Slot steps that verified a draft, ms spent drafting (the draft model's decodes), and the draft model's KV cells. */
  draftSteps: number;
  draftMs: number;
  draftKvCells: number;
  /** KV states parked in memory, those of pinned conversations, and their bytes. */
  parkedStates: number;
  parkedSessions: number;
  parkedBytes: number;
}

/** Typed engine failures; the HTTP layer maps each code to a status. */
export class EngineError extends Error {
  override name = "EngineError";
  constructor(
    readonly code:
      | "overloaded"
      | "model_not_found"
      | "context_overflow"
      | "invalid_request"
      | "worker_crashed"
      // A remote worker (--upstream) failed mid-response.
      | "upstream_failed"
      | "shutting_down"
      | "internal",
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

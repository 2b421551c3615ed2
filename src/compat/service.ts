// Seed 003 requests -> engine requests, and engine streams -> plain text pieces with a final summary
// (tokens, usage, cost). Billing, metrics and sessions work as on /v1; framing (JSON, SSE lines,
// WebSocket frames) is left to index.ts. No Elysia here.
import { basename } from "node:path";
import type { EngineEvent, FinishReason, GenerateRequest, ModelInfo, Usage } from "../inference/types.ts";
import { ApiError } from "../http/errors.ts";
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonOptions, debugOf, pickModel, type CocoonOptions, type DebugInfo } from "../generation/options.ts";
import { startGeneration, type StartedGeneration } from "../generation/start.ts";
import type { Cost, Principal } from "../platform/service.ts";
import { newSessionId, ownerOf, type Turn } from "../sessions/service.ts";
import type { SeedChatRequest, SeedCompletionRequest } from "./model.ts";

export interface TextPiece {
  content: string;
  reasoning: string;
}

export interface TextSummary {
  /** Tokens generated. */
  tokens: number;
  usage: Usage;
  reason: FinishReason;
  cost: Cost | null;
  /** Timings, slot and device, when the request set enable_debug. */
  debug: DebugInfo | null;
}

/** A started generation: its text pieces; the generator's return value is the summary. */
export interface TextRun {
  model: ModelInfo;
  sessionId: string | null;
  pieces: AsyncGenerator<TextPiece, TextSummary | null>;
}

/** Where the model runs, in the seed's device words. */
export function deviceOf(model: ModelInfo): "cuda" | "cpu" | "metal" {
  if (model.gpuLayers === 0) return "cpu";
  return model.backend === "cuda" || model.backend === "metal" ? model.backend : "cpu";
}

/** X-Cocoon-Device, plus a note when the client asked for another device (a loaded model cannot move). */
export function deviceHeaders(model: ModelInfo, requested: string | undefined): Record<string, string> {
  const actual = deviceOf(model);
  const headers: Record<string, string> = { "X-Cocoon-Device": actual };
  if (requested && requested !== actual) {
    headers["X-Cocoon-Device-Note"] = `requested ${requested}; the model is loaded on ${actual} and cannot move`;
  }
  return headers;
}

/** GET /models/{id}: the seed's model object. */
export function seedModel(m: ModelInfo) {
  // llama.cpp describes a model as "<arch> <size> <file type>", e.g. "qwen3 0.6B Q8_0".
  const quantization = m.description.split(" ").slice(2).join(" ").trim();
  return { id: m.id, name: basename(m.path).replace(/\.gguf$/i, ""), context_length: m.contextWindow, quantization: quantization || null };
}

/** The same error naming the seed's field instead of /v1's (e.g. "model-name" for "model"). */
function renamed(err: unknown, names: Record<string, string>): unknown {
  if (!(err instanceof ApiError) || err.param === null || !(err.param in names)) return err;
  return new ApiError(err.kind, err.message, names[err.param]!, err.headers);
}

/** Submits, bills and waits for the first output: errors before any output are thrown (HTTP status). */
async function startRun(
  deps: GenerationDeps,
  request: GenerateRequest,
  model: ModelInfo,
  principal: Principal | null,
  endpoint: "chat" | "completion",
  signal: AbortSignal | undefined,
  turn: Turn | null,
  cocoon: CocoonOptions,
): Promise<TextRun> {
  const started = await startGeneration(deps, { request: { ...request, timeoutMs: cocoon.timeoutMs || undefined }, model, principal, endpoint, cocoon, signal, turn });
  return { model, sessionId: turn?.id ?? null, pieces: textPieces(started, (done) => (cocoon.debug ? debugOf(done, model, cocoon) : null)) };
}

async function* textPieces(
  { events, source, settle }: StartedGeneration,
  debug: (done: Extract<EngineEvent, { type: "done" }>) => TextSummary["debug"],
): AsyncGenerator<TextPiece, TextSummary | null> {
  let completed = false;
  let summary: TextSummary | null = null;
  try {
    for await (const e of events) {
      if (e.type === "delta") {
        if (e.content || e.reasoning) yield { content: e.content, reasoning: e.reasoning };
      } else if (e.type === "done") {
        completed = true;
        summary = { tokens: e.usage.completionTokens, usage: e.usage, reason: e.reasons[0] ?? "stop", cost: await settle(e), debug: debug(e) };
      }
    }
  } finally {
    // A consumer that stops early (client gone, socket closed) cancels the generation.
    if (!completed) await source.return?.();
  }
  return summary;
}

/** POST /completions: a raw-text completion with the seed's defaults. */
export function seedCompletion(deps: GenerationDeps, body: SeedCompletionRequest, principal: Principal | null, signal?: AbortSignal): Promise<TextRun> {
  const cocoon = cocoonOptions(body);
  const model = pickModel(deps, body.model, cocoon, "completion");
  if (body.prompt.length === 0) throw new ApiError("invalid_request", "Invalid value for 'prompt': the prompt is empty.", "prompt");
  const request: GenerateRequest = {
    model: model.id,
    prompt: body.prompt,
    maxTokens: body.max_tokens ?? 128,
    sampling: { temperature: body.temperature ?? 0.7, topP: body.top_p ?? 0.95 },
    stop: body.stop?.length ? body.stop : undefined,
  };
  return startRun(deps, request, model, principal, "completion", signal, null, cocoon);
}

/**
 * POST /chat/completions and WS /chat/ws: one turn of a session (`session-id`, or `fallbackId`, or
 * a new random id) with the seed's defaults.
 */
export async function seedChat(
  deps: GenerationDeps,
  body: SeedChatRequest,
  principal: Principal | null,
  signal?: AbortSignal,
  fallbackId?: string,
): Promise<TextRun> {
  const names = { model: "model-name", messages: "prompt" };
  const cocoon = cocoonOptions(body);
  let model: ModelInfo;
  try {
    model = pickModel(deps, body["model-name"], cocoon, "chat");
  } catch (err) {
    throw renamed(err, names);
  }
  if (body.prompt.trim() === "") throw new ApiError("invalid_request", "Invalid value for 'prompt': the message is empty.", "prompt");
  const id = body["session-id"] ?? fallbackId ?? newSessionId();
  const turn = await deps.sessions.beginTurn(ownerOf(principal), id, [{ role: "user", content: body.prompt }], {
    param: "session-id",
    systemPrompt: body["system-prompt"],
  });
  const request: GenerateRequest = {
    model: model.id,
    messages: turn.messages,
    sessionKey: turn.key,
    maxTokens: body["max-token"],
    // The seed's default of 512, clamped to what the session's history leaves of the context: a
    // long session keeps answering (shorter) instead of failing every turn without max-token.
    defaultMaxTokens: SEED_CHAT_MAX_TOKENS,
    sampling: {
      temperature: body.temperature ?? 0.7,
      topP: body["top-p"] ?? 0.95,
      topK: body["top-k"] ?? 40,
      repeatPenalty: body["repeat-penalty"] ?? 1.1,
    },
    stop: body.stop?.length ? body.stop : undefined,
  };
  try {
    return await startRun(deps, request, model, principal, "chat", signal, turn, cocoon);
  } catch (err) {
    if (err instanceof ApiError && err.kind === "context_length_exceeded") {
      const advice =
        body["max-token"] === undefined
          ? `Session '${id}' is full: its history leaves no room for a reply in the model's ${model.contextWindow}-token context. ` +
            `Roll back messages (POST /chat/history/${id}/rollback), delete the session (DELETE /chat/history/${id}) or start a new one.`
          : `Lower max-token, or make room in session '${id}': roll back messages (POST /chat/history/${id}/rollback) or delete it (DELETE /chat/history/${id}).`;
      throw new ApiError("context_length_exceeded", `${err.message}. ${advice}`, "prompt", err.headers);
    }
    throw renamed(err, names);
  }
}

/** The seed's max-token default (its documentation's). */
export const SEED_CHAT_MAX_TOKENS = 512;

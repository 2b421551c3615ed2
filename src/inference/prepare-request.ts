// Request preparation in the engine worker: a request (its prompt already token ids, or chat messages
// rendered here and tokenized by the tokenizer worker) gets limits, stop strings, a grammar
// (response_format, forced tool calls) and sampler settings per choice. Every invalid request is an EngineError here.
import { LlamaError, type LlamaModel } from "../native/llama.ts";
import type { TokenSamplerOptions } from "../native/token-sampler.ts";
import { ChatTemplateError, type ChatTemplate } from "./chat-template.ts";
import { JSON_OBJECT_GRAMMAR, GrammarError, jsonSchemaToGrammar } from "./grammar.ts";
import type { PreparedRequest } from "./scheduler.ts";
import { EngineError, type ModelInfo } from "./types.ts";
import { refuseUnfittable } from "./fits.ts";
import type { WorkerRequest } from "./worker-protocol.ts";

const MAX_STOPS = 16;

/** What preparation needs of the loaded model; the worker's ModelHost provides it. */
export interface PrepareHost {
  readonly model: LlamaModel;
  /** The model's chat template; null for completion and embedding models. */
  readonly template: ChatTemplate | null;
  readonly info: Pick<ModelInfo, "id" | "contextWindow" | "longestTokenBytes">;
  /** End-of-generation tokens, banned when a request ignores EOS. */
  readonly eog: readonly number[];
}

/** A chat request's prompt as rendered text: its tokens come from the tokenizer worker. */
export interface RenderedChat {
  prompt: string;
  startsInReasoning: boolean;
  toolFormat: PreparedRequest["output"]["toolFormat"];
}

/**
 * Renders a chat request's messages with the model's template (null for a request without
 * messages). Text that cannot fit is refused here from its byte count, before anyone tokenizes it.
 */
export function renderChat(host: PrepareHost, req: WorkerRequest): RenderedChat | null {
  if (!req.messages) return null;
  if (!host.template) throw new EngineError("invalid_request", `model ${host.info.id} has no chat template; use /v1/completions`, "messages");
  let rendered;
  try {
    rendered = host.template.render(req.messages, {
      tools: req.tools && req.tools.length > 0 && req.toolChoice !== "none" ? req.tools : undefined,
      enableThinking: req.enableThinking,
      extra: req.templateVars,
    });
  } catch (err) {
    if (err instanceof ChatTemplateError) throw new EngineError("invalid_request", err.message, "messages");
    throw err;
  }
  const toolFormat = req.tools?.length && req.toolChoice !== "none" ? host.template.toolFormat : "none";
  refuseUnfittable(Buffer.byteLength(rendered.prompt), host.info, "messages", "the rendered prompt");
  return { prompt: rendered.prompt, startsInReasoning: rendered.startsInReasoning, toolFormat };
}

/**
 * Turns a request whose prompt is token ids (text was tokenized by the tokenizer worker; a chat
 * request's rendered prompt comes as `chat`) into sampler settings; throws EngineError on anything invalid.
 */
export function prepareRequest(host: PrepareHost, id: string, req: WorkerRequest, receivedAt: number, chat?: RenderedChat & { tokens: Int32Array }): PreparedRequest {
  const m = host.model;
  let tokens: Int32Array;
  let startsInReasoning = false;
  let toolFormat: PreparedRequest["output"]["toolFormat"] = "none";
  if (req.messages) {
    if (!chat) throw new EngineError("internal", "a chat request reached preparation before its prompt was tokenized");
    tokens = chat.tokens;
    startsInReasoning = chat.startsInReasoning;
    toolFormat = chat.toolFormat;
  } else if (req.prompt !== undefined) {
    const bad = req.prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= m.nVocab);
    if (bad !== undefined) throw new EngineError("invalid_request", `token id ${bad} is outside the vocabulary (0..${m.nVocab - 1})`, "prompt");
    tokens = Int32Array.from(req.prompt);
  } else {
    throw new EngineError("invalid_request", "a request needs a prompt or messages", "prompt");
  }

  const ctxPerSlot = host.info.contextWindow;
  if (req.maxTokens !== undefined && (!Number.isInteger(req.maxTokens) || req.maxTokens < 1)) {
    throw new EngineError("invalid_request", "max_tokens must be a positive integer", "max_tokens");
  }
  const maxTokens = req.maxTokens ?? Math.max(1, Math.min(req.defaultMaxTokens ?? Infinity, ctxPerSlot - tokens.length));
  const n = req.n ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new EngineError("invalid_request", "n must be a positive integer", "n");
  const stops = req.stop ?? [];
  if (stops.length > MAX_STOPS) throw new EngineError("invalid_request", `at most ${MAX_STOPS} stop strings are allowed`, "stop");

  const grammar = grammarFor(req, host.template);
  if (req.grammar) checkGrammar(m, req.grammar);
  const s = req.sampling ?? {};
  const bias: [number, number][] = [];
  for (const [k, v] of Object.entries(s.logitBias ?? {})) {
    const token = Number(k);
    if (!Number.isInteger(token) || token < 0 || token >= m.nVocab) {
      throw new EngineError("invalid_request", `logit_bias names token ${k}, outside the vocabulary`, "logit_bias");
    }
    // OpenAI's -100 means "never"; make it exact.
    bias.push([token, v <= -100 ? -Infinity : v]);
  }
  if (req.ignoreEos) for (const t of host.eog) bias.push([t, -Infinity]);
  const baseSeed = s.seed ?? Math.floor(Math.random() * 2 ** 31);
  // Unset fields stay unset: TokenSampler fills them from SAMPLING_DEFAULTS.
  const samplers: TokenSamplerOptions[] = Array.from({ length: n }, (_, i) => ({
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    minP: s.minP,
    typicalP: s.typicalP,
    repeatPenalty: s.repeatPenalty,
    frequencyPenalty: s.frequencyPenalty,
    presencePenalty: s.presencePenalty,
    penaltyLastN: s.penaltyLastN,
    seed: baseSeed + i,
    logitBias: bias,
    grammar,
    logprobs: req.logprobs,
  }));
  return {
    id,
    tokens,
    maxTokens,
    samplers,
    output: {
      stops,
      reasoning: req.messages !== undefined,
      startsInReasoning,
      toolFormat,
      logprobs: (req.logprobs ?? -1) >= 0,
    },
    timeoutMs: req.timeoutMs ?? 0,
    sessionKey: req.sessionKey ?? null,
    cacheScope: req.cacheScope ?? null,
    receivedAt,
    promptParam: req.messages ? "messages" : "prompt",
  };
}

/** A caller's own GBNF is parsed once here, so a bad one is a 400 rather than a failed slot. */
function checkGrammar(m: LlamaModel, grammar: string): void {
  let sampler;
  try {
    sampler = m.createSampler([{ type: "grammar", grammar }]);
  } catch (err) {
    const detail = err instanceof LlamaError && err.detail ? `: ${err.detail.slice(0, 300)}` : "";
    throw new EngineError("invalid_request", `grammar is not a valid GBNF grammar with a root rule${detail}`, "grammar");
  }
  sampler.dispose();
}

function grammarFor(req: WorkerRequest, template: ChatTemplate | null): string | undefined {
  if (req.grammar) return req.grammar;
  const forced = toolGrammar(req, template);
  if (forced) return forced;
  const f = req.responseFormat;
  if (!f || f.type === "text") return undefined;
  if (f.type === "json_object") return JSON_OBJECT_GRAMMAR;
  try {
    return jsonSchemaToGrammar(f.schema, { strict: f.strict });
  } catch (err) {
    if (err instanceof GrammarError) throw new EngineError("invalid_request", `response_format: ${err.message}`, "response_format");
    throw err;
  }
}

/**
 * tool_choice "required" or a named function: a grammar that admits only tool calls, in the
 * model's format, whose arguments match the tools' JSON schemas. Only the hermes format
 * (Qwen, Hermes) is enforced this way; other formats get the tools in the prompt only.
 */
function toolGrammar(req: WorkerRequest, template: ChatTemplate | null): string | undefined {
  const choice = req.toolChoice;
  if (!req.tools?.length || !choice || choice === "auto" || choice === "none") return undefined;
  if (template?.toolFormat !== "hermes") return undefined;
  const tools = typeof choice === "object" ? req.tools.filter((t) => t.function.name === choice.name) : req.tools;
  if (tools.length === 0) {
    throw new EngineError("invalid_request", `tool_choice names "${(choice as { name: string }).name}", which is not among the tools`, "tool_choice");
  }
  const schema = {
    anyOf: tools.map((t) => ({
      type: "object",
      properties: { name: { const: t.function.name }, arguments: t.function.parameters ?? { type: "object" } },
      required: ["name", "arguments"],
      additionalProperties: false,
    })),
  };
  let json: string;
  try {
    json = jsonSchemaToGrammar(schema, { strict: true });
  } catch (err) {
    if (err instanceof GrammarError) throw new EngineError("invalid_request", `tools: ${err.message}`, "tools");
    throw err;
  }
  const call = String.raw`"<tool_call>
" tool-call-json "
</tool_call>"`;
  const more = req.parallelToolCalls === false ? "" : ` ( "\n" ${call} ){0,7}`;
  return `root ::= ${call}${more}
${json.replace(/^root ::=/m, "tool-call-json ::=")}`;
}

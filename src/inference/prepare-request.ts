// Request preparation in the engine worker: a request (its prompt already token ids, or chat messages
// rendered here and tokenized by the tokenizer worker) gets limits, stop strings, a grammar
// (response_format, forced tool calls) and sampler settings per choice. Every invalid request is an EngineError here.
import { ChatStream, LlamaError, type ChatApplied, type LlamaModel } from "../native/llama.ts";
import type { LazyGrammar, TokenSamplerOptions } from "../native/token-sampler.ts";
import type { ReasoningBudgetOptions } from "../native/reasoning-budget.ts";
import { ChatTemplateError, type ChatTemplate, type RenderOptions } from "./chat-template.ts";
import { JSON_OBJECT_GRAMMAR, GrammarError, jsonSchemaToGrammar } from "./grammar.ts";
import type { PreparedRequest } from "./scheduler.ts";
import { EngineError, type GenerateRequest, type ModelInfo } from "./types.ts";
import { refuseUnfittable } from "./fits.ts";
import { grammarUnion } from "./grammar-union.ts";
import { gemma4SchemaGrammar } from "./gemma4-grammar.ts";
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

/** A request's fields other than its prompt: what rendering and sampling read. */
type RequestFields = Omit<GenerateRequest, "prompt" | "suffix">;

/**
 * Renders a chat request's messages with the model's template and the request's tool and reasoning
 * settings (null for a request without messages). Text that cannot fit is refused here from its
 * byte count, before anyone tokenizes it; the tokenizer worker turns the prompt into ids.
 */
export function renderChat(host: PrepareHost, req: WorkerRequest): ChatApplied | null {
  if (!req.messages) return null;
  if (!host.template) throw new EngineError("invalid_request", `model ${host.info.id} has no chat template; use /v1/completions`, "messages");
  guardForcedToolSchemas(req);
  let chat: ChatApplied;
  try {
    chat = host.template.render(req.messages, renderOptions(req)).params;
  } catch (err) {
    if (err instanceof ChatTemplateError) throw new EngineError("invalid_request", err.message, "messages");
    throw err;
  }
  refuseUnfittable(Buffer.byteLength(chat.prompt), host.info, "messages", "the rendered prompt");
  return chat;
}

/**
 * Turns a request whose prompt is token ids (text was tokenized by the tokenizer worker; a chat
 * request's rendered prompt comes as `chat`) into sampler settings; throws EngineError on anything invalid.
 */
export function prepareRequest(host: PrepareHost, id: string, req: WorkerRequest, receivedAt: number, rendered?: ChatApplied & { tokens: Int32Array }): PreparedRequest {
  const m = host.model;
  let tokens: Int32Array;
  let chat: ChatApplied | null = null;
  if (req.messages) {
    if (!rendered) throw new EngineError("internal", "a chat request reached preparation before its prompt was tokenized");
    tokens = rendered.tokens;
    chat = rendered;
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

  const tooling = chat !== null && (req.tools?.length ?? 0) > 0 && req.toolChoice !== "none";
  // A caller's own grammar wins (it already says what the answer looks like); else the format's.
  let forced = tooling && chat!.grammar !== "" && !req.grammar ? chat : null;
  // A forced call starts at once (OpenAI's meaning), but llama.cpp's "required" grammar lets text or
  // reasoning run first, which a model may never end. The format's lazy "auto" grammar has the call
  // itself as its root: applied from the first token it forces exactly the call.
  const callRoot = forced && !forced.grammar_lazy ? callRootGrammar(host.template!, req, forced.grammar) : null;
  if (callRoot) forced = { ...forced!, grammar: callRoot };
  // Tools offered and a response_format asked for (Codex's --output-schema): from the first token
  // either a call in the format or the answer the format describes, nothing else.
  const answer = forced?.grammar_lazy && hasAnswerFormat(req) ? grammarFor(req) : undefined;
  if (forced && answer) forced = { ...forced, grammar: grammarUnion(rootedAtCall(forced.grammar), answer), grammar_lazy: false };
  const grammar = forced ? forced.grammar : grammarFor(req);
  const grammarLazy = forced?.grammar_lazy ? lazyGrammar(m, forced) : undefined;
  // llama.cpp's forced tool grammars begin with the generation prompt, which the prompt already holds.
  const grammarPrefill = forced && !forced.grammar_lazy && !callRoot && !answer ? prefillTokens(m, forced.generation_prompt) : undefined;
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
  const reasoningBudget = chat ? budgetFor(m, chat, req.reasoningBudget, grammar !== undefined && !grammarLazy) : undefined;
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
    grammarLazy,
    grammarPrefill,
    logprobs: req.logprobs,
    reasoningBudget,
  }));
  const parserParams = chat && {
    format_id: chat.format_id,
    parser: chat.parser,
    generation_prompt: chat.generation_prompt,
    parse_tool_calls: tooling,
  };
  const chatLib = m.llama.chat;
  return {
    id,
    tokens,
    maxTokens,
    samplers,
    output: {
      // The format's own end markers (llama-server's additional_stops) end the answer too.
      stops: chat ? [...stops, ...chat.additional_stops.filter((s) => s && !stops.includes(s))] : stops,
      parser: parserParams ? () => new ChatStream(chatLib, parserParams) : null,
      specialTokens: chat ? specialTokens(m, chat) : new Set(),
      mistralIds: host.template?.format.family === "mistral",
      singleCall: parallelCalls(req) === false,
      logprobs: (req.logprobs ?? -1) >= 0,
      toolCalls: tooling,
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

/** The request's tool and reasoning settings as llama.cpp's chat inputs. */
export function renderOptions(req: RequestFields): RenderOptions {
  const choice = req.toolChoice;
  let tools = req.tools && req.tools.length > 0 ? req.tools : undefined;
  let toolChoice: RenderOptions["toolChoice"] = choice === "none" || choice === "required" ? choice : "auto";
  if (tools && typeof choice === "object") {
    // A named function: that tool alone, and a call to it required (OpenAI's meaning).
    tools = tools.filter((t) => t.function.name === choice.name);
    if (tools.length === 0) throw new EngineError("invalid_request", `tool_choice names "${choice.name}", which is not among the tools`, "tool_choice");
    toolChoice = "required";
  }
  const parallelToolCalls = parallelCalls(req);
  // A forced call comes before any reasoning, so the prompt closes the thinking block where the
  // template has the switch (unless the caller set it).
  const thinkingSet = req.enableThinking !== undefined || typeof req.templateVars?.enable_thinking === "boolean";
  const constrained = toolChoice === "required" || (toolChoice === "auto" && hasAnswerFormat(req));
  const enableThinking = constrained && tools && !thinkingSet ? false : req.enableThinking;
  return { tools, toolChoice, parallelToolCalls, enableThinking, extra: req.templateVars };
}

/**
 * A forced call's grammar holds the tools' parameter schemas, which llama.cpp converts with no bound
 * (1e8 minItems is a minute-long conversion, then a grammar it cannot load): ours checks them first.
 */
function guardForcedToolSchemas(req: RequestFields): void {
  const choice = req.toolChoice;
  if (req.grammar || !req.tools?.length || !(choice === "required" || typeof choice === "object")) return;
  const tools = typeof choice === "object" ? req.tools.filter((t) => t.function.name === choice.name) : req.tools;
  for (const t of tools) {
    try {
      jsonSchemaToGrammar(t.function.parameters ?? { type: "object" }, { strict: true });
    } catch (err) {
      if (err instanceof GrammarError) throw new EngineError("invalid_request", `tools: ${t.function.name}: ${err.message}`, "tools");
      throw err;
    }
  }
}

/**
 * The lazy tool-call grammar of the same request rendered with tool_choice "auto" (its root is the
 * call); for a format with no trigger to be lazy on (Llama 3's bare JSON calls), the required grammar
 * itself rooted at its call rule rather than at the free text it allows first; else null.
 */
function callRootGrammar(template: ChatTemplate, req: RequestFields, required: string): string | null {
  const opts = renderOptions(req);
  if (opts.toolChoice !== "required") return null;
  let auto: ChatApplied;
  try {
    auto = template.render(req.messages!, { ...opts, toolChoice: "auto" }).params;
  } catch {
    return null;
  }
  // Gemma 4's call grammar takes any dict: the tools' schemas are written in (gemma4-grammar.ts).
  if (auto.grammar_lazy && auto.grammar !== "") return gemma4SchemaGrammar(rootedAtCall(auto.grammar), opts.tools);
  return /^tool-calls? ::= /m.test(required) ? rootedAtCall(required) : null;
}

/**
 * A lazy grammar's root is the union of its trigger rules, one of which may match nothing at all
 * (Qwen3's "tool-calls" is (tool-call? space)+). The call's own rule becomes the root: the section
 * rule where it opens with a literal marker, else the per-call rule.
 */
function rootedAtCall(grammar: string): string {
  const body = (name: string) => grammar.match(new RegExp(`^${name} ::= (.*)$`, "m"))?.[1];
  const section = body("tool-calls");
  const root = section?.startsWith('"') ? "tool-calls" : body("tool-call") !== undefined ? "tool-call" : null;
  const rooted = root ? grammar.replace(/^root ::= .*$/m, `root ::= ${root}`) : grammar;
  // JSON's optional whitespace as one space at most: llama.cpp's allows two newlines and twenty tabs
  // between every token, which a weak model fills until max_tokens instead of finishing the call.
  // gpt-oss's `<|channel|>commentary <|constrain|>json`: the marker optional and the type unbounded
  // let letters run on after the channel name ("analysisisis..."); the type comes after the marker.
  return rooted
    .replace(/^space ::= .*$/m, 'space ::= | " "')
    .replaceAll('"<|constrain|>"? [A-Za-z0-9_-]+', '"<|constrain|>" [A-Za-z0-9_-]{1,16}');
}

/**
 * llama-server's sampler setup for a lazy grammar: trigger words become escaped patterns (or the
 * token itself where the word is one token); patterns pass through; full patterns are anchored.
 */
function lazyGrammar(m: LlamaModel, chat: ChatApplied): LazyGrammar {
  const patterns: string[] = [];
  const tokens: number[] = [];
  for (const t of chat.grammar_triggers) {
    if (t.type === "token") tokens.push(t.token);
    else if (t.type === "word") {
      const ids = m.tokenize(t.value, { addSpecial: false, parseSpecial: true });
      if (ids.length === 1 && chat.preserved_tokens.includes(t.value)) tokens.push(ids[0]!);
      else patterns.push(escapeRegex(t.value));
    } else if (t.type === "pattern") patterns.push(t.value);
    else patterns.push(t.value === "" ? "^$" : `${t.value.startsWith("^") ? "" : "^"}${t.value}${t.value.endsWith("$") ? "" : "$"}`);
  }
  return { patterns, tokens };
}

/** common_sampler_init's prefill: the generation prompt's tokens, minus a leading space some tokenizers add. */
function prefillTokens(m: LlamaModel, generationPrompt: string): number[] {
  if (!generationPrompt) return [];
  const ids = Array.from(m.tokenize(generationPrompt, { addSpecial: false, parseSpecial: true }));
  const first = ids.length ? new TextDecoder().decode(m.tokenBytes(ids[0]!, true)) : "";
  if (/^\s/.test(first) && !/^\s/.test(generationPrompt)) ids.shift();
  return ids;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** The format's markers that are single special tokens: generated, they print as their text. */
function specialTokens(m: LlamaModel, chat: ChatApplied): Set<number> {
  const out = new Set<number>();
  const words = [...chat.preserved_tokens, ...chat.grammar_triggers.filter((t) => t.type === "word").map((t) => t.value)];
  for (const w of words) {
    const ids = m.tokenize(w, { addSpecial: false, parseSpecial: true });
    if (ids.length === 1) out.add(ids[0]!);
  }
  for (const t of chat.grammar_triggers) if (t.type === "token" && t.token >= 0) out.add(t.token);
  return out;
}

/**
 * The reasoning block's tags as tokens, for the sampler that closes the block when the budget is
 * spent. None where the format has no closing tag, or where a grammar binds every token (a strict
 * one could refuse the forced tag; such answers cannot open a block anyway).
 */
function budgetFor(m: LlamaModel, chat: ChatApplied, budget: number | undefined, strictGrammar: boolean): ReasoningBudgetOptions | undefined {
  if (budget === undefined || strictGrammar) return undefined;
  if (!Number.isInteger(budget) || budget < 0) throw new EngineError("invalid_request", "the reasoning budget must be a non-negative integer", "reasoning_budget_tokens");
  const ends = chat.thinking_end_tags.filter(Boolean);
  if (ends.length === 0) return undefined;
  const ids = (text: string) => Array.from(m.tokenize(text, { addSpecial: false, parseSpecial: true }));
  const startTag = chat.thinking_start_tag;
  const open = startTag !== "" && chat.generation_prompt.trimEnd().endsWith(startTag.trimEnd());
  return { budget, start: startTag ? ids(startTag) : [], ends: ends.map(ids), forced: ids(ends[0]!), open };
}

/** A named function is one call to it (as OpenAI answers it; the legacy function_call has room for one). */
function parallelCalls(req: RequestFields): boolean | undefined {
  return typeof req.toolChoice === "object" ? (req.parallelToolCalls ?? false) : req.parallelToolCalls;
}

function hasAnswerFormat(req: RequestFields): boolean {
  return !!req.responseFormat && req.responseFormat.type !== "text";
}

function grammarFor(req: RequestFields): string | undefined {
  if (req.grammar) return req.grammar;
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

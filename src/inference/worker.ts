// The engine worker: one per loaded model. It owns the llama model and context, turns requests into
// tokens (chat template, grammar, sampler settings) and runs the scheduler's step loop, so the main
// thread never calls llama.cpp. Talks to engine.ts through the messages in worker-protocol.ts.
import { loadLlama, LlamaBatch, type LlamaContext, type LlamaModel } from "../native/llama.ts";
import { eogTokens, type TokenSamplerOptions } from "../native/token-sampler.ts";
import { ChatTemplate, ChatTemplateError } from "./chat-template.ts";
import { JSON_OBJECT_GRAMMAR, GrammarError, jsonSchemaToGrammar } from "./grammar.ts";
import { Scheduler, type PreparedRequest, type SchedulerEvent } from "./scheduler.ts";
import { EngineError, type GenerateRequest, type ModelInfo } from "./types.ts";
import type { ToMain, ToWorker, WorkerInit } from "./worker-protocol.ts";

declare const self: Worker;

const MAX_STOPS = 16;

class ModelHost {
  readonly model: LlamaModel;
  readonly ctx: LlamaContext;
  readonly scheduler: Scheduler;
  readonly template: ChatTemplate | null;
  readonly info: ModelInfo;
  private readonly eog: number[];
  private embedCtx: LlamaContext | null = null;
  private outbox: { id: string; event: SchedulerEvent }[] = [];

  constructor(readonly init: WorkerInit) {
    const llama = loadLlama({ libDir: init.libDir, logLevel: init.llamaLogLevel });
    this.model = llama.loadModel(init.model.path, { gpuLayers: init.gpuLayers });
    const m = this.model;
    const source = m.chatTemplate();
    const type = init.model.type ?? detectType(m, source);
    const decoder = new TextDecoder();
    this.template =
      type === "chat" ? new ChatTemplate(source, { bosToken: decoder.decode(m.tokenBytes(m.bos)), eosToken: decoder.decode(m.tokenBytes(m.eos)) }) : null;
    const ctxPerSlot = Math.min(init.ctxPerSlot || m.nCtxTrain, m.nCtxTrain);
    const slots = type === "embedding" ? 1 : init.slots;
    this.ctx = m.createContext({
      nCtx: ctxPerSlot * slots,
      nSeqMax: slots,
      nBatch: init.batchSize,
      threads: init.threads || undefined,
      kvUnified: true,
    });
    this.scheduler = new Scheduler(m, this.ctx, (id, event) => this.outbox.push({ id, event }), {
      ctxPerSlot,
      maxQueue: init.maxQueue,
      parkBytes: init.parkBytes,
    });
    this.eog = eogTokens(m);
    this.info = {
      id: init.model.id,
      path: init.model.path,
      type,
      contextWindow: ctxPerSlot,
      trainContext: m.nCtxTrain,
      slots,
      embeddingDims: m.nEmbd,
      vocabSize: m.nVocab,
      description: m.description,
      sizeBytes: m.size,
      parameters: m.nParams,
      chatTemplate: source !== null,
      infill: m.fimTokens !== null,
      supportsTools: this.template?.supportsTools ?? false,
      supportsThinking: this.template?.supportsThinking ?? false,
      backend: llama.backend,
      gpuLayers: init.gpuLayers,
    };
  }

  /** Turns a request into tokens and sampler settings; throws EngineError on anything invalid. */
  prepare(id: string, req: GenerateRequest, receivedAt: number): PreparedRequest {
    const m = this.model;
    let tokens: Int32Array;
    let startsInReasoning = false;
    let toolFormat: PreparedRequest["output"]["toolFormat"] = "none";
    if (req.messages) {
      if (!this.template) throw new EngineError("invalid_request", `model ${this.info.id} has no chat template; use /v1/completions`, "messages");
      let rendered;
      try {
        rendered = this.template.render(req.messages, {
          tools: req.tools && req.tools.length > 0 && req.toolChoice !== "none" ? req.tools : undefined,
          enableThinking: req.enableThinking,
          extra: req.templateVars,
        });
      } catch (err) {
        if (err instanceof ChatTemplateError) throw new EngineError("invalid_request", err.message, "messages");
        throw err;
      }
      startsInReasoning = rendered.startsInReasoning;
      if (req.tools?.length && req.toolChoice !== "none") toolFormat = this.template.toolFormat;
      tokens = m.tokenize(rendered.prompt, { addSpecial: true, parseSpecial: true });
    } else if (req.suffix !== undefined) {
      const fim = m.fimTokens;
      if (!fim) throw new EngineError("invalid_request", `model ${this.info.id} has no fill-in-the-middle tokens, so suffix is not supported`, "suffix");
      const prefix = typeof req.prompt === "string" ? m.tokenize(req.prompt, { parseSpecial: false }) : Int32Array.from(req.prompt ?? []);
      tokens = Int32Array.from([fim.prefix, ...prefix, fim.suffix, ...m.tokenize(req.suffix, { parseSpecial: false }), fim.middle]);
    } else if (typeof req.prompt === "string") {
      tokens = m.tokenize(req.prompt, { addSpecial: true, parseSpecial: true });
    } else if (Array.isArray(req.prompt)) {
      const bad = req.prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= m.nVocab);
      if (bad !== undefined) throw new EngineError("invalid_request", `token id ${bad} is outside the vocabulary (0..${m.nVocab - 1})`, "prompt");
      tokens = Int32Array.from(req.prompt);
    } else {
      throw new EngineError("invalid_request", "a request needs a prompt or messages", "prompt");
    }

    const ctxPerSlot = this.info.contextWindow;
    if (req.maxTokens !== undefined && (!Number.isInteger(req.maxTokens) || req.maxTokens < 1)) {
      throw new EngineError("invalid_request", "max_tokens must be a positive integer", "max_tokens");
    }
    const maxTokens = req.maxTokens ?? Math.max(1, Math.min(req.defaultMaxTokens ?? Infinity, ctxPerSlot - tokens.length));
    const n = req.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new EngineError("invalid_request", "n must be a positive integer", "n");
    const stops = req.stop ?? [];
    if (stops.length > MAX_STOPS) throw new EngineError("invalid_request", `at most ${MAX_STOPS} stop strings are allowed`, "stop");

    const grammar = this.grammarFor(req);
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
    if (req.ignoreEos) for (const t of this.eog) bias.push([t, -Infinity]);
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
      receivedAt,
      promptParam: req.messages ? "messages" : "prompt",
    };
  }

  private grammarFor(req: GenerateRequest): string | undefined {
    if (req.grammar) return req.grammar;
    const forced = this.toolGrammar(req);
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
  private toolGrammar(req: GenerateRequest): string | undefined {
    const choice = req.toolChoice;
    if (!req.tools?.length || !choice || choice === "auto" || choice === "none") return undefined;
    if (this.template?.toolFormat !== "hermes") return undefined;
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

  /** L2-normalised pooled embeddings, one input at a time in a context of their own. */
  embed(inputs: (string | number[])[]): { vectors: Float32Array[]; promptTokens: number } {
    const m = this.model;
    const size = this.info.contextWindow;
    if (!this.embedCtx) {
      this.embedCtx = m.createContext({
        nCtx: size,
        nBatch: size,
        nUbatch: size,
        nSeqMax: 1,
        embeddings: true,
        pooling: this.info.type === "embedding" ? -1 : 1,
        threads: this.init.threads || undefined,
      });
    }
    const ctx = this.embedCtx;
    const batch = new LlamaBatch(size);
    let promptTokens = 0;
    const vectors = inputs.map((input, i) => {
      const tokens = typeof input === "string" ? m.tokenize(input, { addSpecial: true, parseSpecial: false }) : Int32Array.from(input);
      if (tokens.length === 0) throw new EngineError("invalid_request", `input[${i}] is empty`, "input");
      const bad = tokens.find((t) => t < 0 || t >= m.nVocab);
      if (bad !== undefined) throw new EngineError("invalid_request", `input[${i}] has token id ${bad}, outside the vocabulary (0..${m.nVocab - 1})`, "input");
      if (tokens.length > size) {
        throw new EngineError("context_overflow", `input[${i}] has ${tokens.length} tokens; the limit is ${size}`, "input");
      }
      promptTokens += tokens.length;
      ctx.clearMemory();
      batch.clear();
      tokens.forEach((t, p) => batch.add(t, p, 0, true));
      if (m.hasEncoder) ctx.encode(batch);
      else ctx.decode(batch);
      const v = ctx.embeddings(0);
      let norm = 0;
      for (const x of v) norm += x * x;
      norm = Math.sqrt(norm) || 1;
      for (let j = 0; j < v.length; j++) v[j]! /= norm;
      return v;
    });
    return { vectors, promptTokens };
  }

  takeOutbox(): { id: string; event: SchedulerEvent }[] {
    const out = this.outbox;
    this.outbox = [];
    return out;
  }
}

/** chat when the model has a chat template, embedding for encoder-only/pooling models, else completion. */
function detectType(m: LlamaModel, template: string | null): ModelInfo["type"] {
  const arch = m.meta("general.architecture") ?? "";
  if (m.meta(`${arch}.pooling_type`) !== null || /bert/i.test(arch)) return "embedding";
  return template ? "chat" : "completion";
}

// ---- message loop ---------------------------------------------------------------------------------

let host: ModelHost | null = null;
let wake: (() => void) | null = null;
let stopping = false;

function post(msg: ToMain): void {
  self.postMessage(msg);
}

function flush(): void {
  if (!host) return;
  const events = host.takeOutbox();
  if (events.length) post({ type: "events", events, stats: host.scheduler.snapshot(host.info.id) });
}

function fail(err: unknown): { code: EngineError["code"]; message: string; param?: string } {
  if (err instanceof EngineError) return { code: err.code, message: err.message, param: err.param };
  return { code: "internal", message: err instanceof Error ? err.message : String(err) };
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  try {
    switch (msg.type) {
      case "init":
        host = new ModelHost(msg.init);
        post({ type: "ready", info: host.info });
        void loop();
        break;
      case "submit": {
        const h = host!;
        try {
          h.scheduler.submit(h.prepare(msg.id, msg.request, performance.now()));
        } catch (err) {
          post({ type: "events", events: [{ id: msg.id, event: { type: "error", ...fail(err) } }], stats: h.scheduler.snapshot(h.info.id) });
        }
        break;
      }
      case "cancel":
        host?.scheduler.cancel(msg.id);
        break;
      case "call": {
        const h = host!;
        try {
          let result: unknown;
          if (msg.method === "tokenize") {
            result = Array.from(h.model.tokenize(msg.args.text, { addSpecial: msg.args.addSpecial ?? false, parseSpecial: msg.args.parseSpecial ?? true }));
          } else if (msg.method === "detokenize") {
            result = h.model.detokenize(msg.args.tokens);
          } else if (msg.method === "embed") {
            result = h.embed(msg.args.inputs);
          } else if (msg.method === "render") {
            if (!h.template) throw new EngineError("invalid_request", `model ${h.info.id} has no chat template`, "messages");
            result = h.template.render(msg.args.messages, msg.args.options);
          } else if (msg.method === "forgetSession") {
            result = { ...h.scheduler.forgetSession(msg.args.key), stats: h.scheduler.snapshot(h.info.id) };
          }
          post({ type: "reply", rid: msg.rid, result });
        } catch (err) {
          post({ type: "reply", rid: msg.rid, error: fail(err) });
        }
        break;
      }
      case "crash":
        // Test hook: an uncaught error outside any handler, as a native fault would surface.
        setTimeout(() => {
          throw new Error("simulated worker crash");
        });
        break;
      case "shutdown":
        stopping = true;
        break;
    }
  } catch (err) {
    post({ type: "fatal", error: fail(err).message });
  }
  wake?.();
};

async function loop(): Promise<void> {
  const h = host!;
  while (!stopping) {
    let worked = false;
    try {
      worked = h.scheduler.step();
    } catch (err) {
      h.scheduler.failAll(err);
    }
    flush();
    if (worked) {
      // Let queued messages (submits, cancels) in between steps.
      await new Promise<void>((r) => setImmediate(r));
    } else {
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
  }
  h.ctx.dispose();
  h.model.dispose();
  post({ type: "closed" });
}

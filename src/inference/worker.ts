// The engine worker: one per loaded model. It owns the llama model and context, turns requests into
// tokens (prepare-request.ts) and runs the scheduler's step loop, so the main thread never calls
// llama.cpp. Talks to engine.ts through the messages in worker-protocol.ts.
import { loadLlama, ChatTemplates, LlamaBatch, type LlamaContext, type LlamaModel } from "../native/llama.ts";
import { eogTokens } from "../native/token-sampler.ts";
import { ChatTemplate } from "./chat-template.ts";
import { prepareRequest, type PrepareHost } from "./prepare-request.ts";
import { Scheduler, type SchedulerEvent } from "./scheduler.ts";
import { EngineError, type ModelInfo } from "./types.ts";
import type { ToMain, ToWorker, WorkerInit } from "./worker-protocol.ts";

declare const self: Worker;

class ModelHost implements PrepareHost {
  readonly model: LlamaModel;
  readonly ctx: LlamaContext;
  readonly scheduler: Scheduler;
  readonly template: ChatTemplate | null;
  readonly info: ModelInfo;
  readonly eog: number[];
  private embedCtx: LlamaContext | null = null;
  private outbox: { id: string; event: SchedulerEvent }[] = [];

  constructor(readonly init: WorkerInit) {
    const llama = loadLlama({ libDir: init.libDir, logLevel: init.llamaLogLevel });
    this.model = llama.loadModel(init.model.path, { gpuLayers: init.gpuLayers });
    const m = this.model;
    const source = m.chatTemplate();
    const type = init.model.type ?? detectType(m, source);
    // llama.cpp's chat library reads the template and its bos/eos from the model itself (ChatML when none).
    this.template = type === "chat" ? new ChatTemplate(ChatTemplates.create(llama.chat, m.handle, null)) : null;
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
      chatFormat: this.template?.format ?? null,
      backend: llama.backend,
      gpuLayers: init.gpuLayers,
    };
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

/** llama.cpp aborts the process on an id outside the vocabulary: refused before it is called. */
function checkIds(nVocab: number, tokens: number[]): void {
  const bad = tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= nVocab);
  if (bad !== undefined) throw new EngineError("invalid_request", `token id ${bad} is outside the vocabulary (0..${nVocab - 1})`, "tokens");
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
          h.scheduler.submit(prepareRequest(h, msg.id, msg.request, performance.now()));
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
            checkIds(h.model.nVocab, msg.args.tokens);
            result = h.model.detokenize(msg.args.tokens);
          } else if (msg.method === "pieces") {
            checkIds(h.model.nVocab, msg.args.tokens);
            result = msg.args.tokens.map((t) => Array.from(h.model.tokenBytes(t)));
          } else if (msg.method === "embed") {
            result = h.embed(msg.args.inputs);
          } else if (msg.method === "render") {
            if (!h.template) throw new EngineError("invalid_request", `model ${h.info.id} has no chat template`, "messages");
            const { prompt, startsInReasoning } = h.template.render(msg.args.messages, msg.args.options);
            result = { prompt, startsInReasoning };
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

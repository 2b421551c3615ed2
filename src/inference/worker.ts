// The engine worker: one per loaded model. It owns the llama model and context, prepares requests
// (prepare-request.ts) and runs the scheduler's step loop, so the main thread never calls llama.cpp.
// It never tokenizes: prompts come as ids, and a chat prompt it renders is tokenized by the
// tokenizer worker. Talks to engine.ts through the messages in worker-protocol.ts.
import { loadLlama, ChatTemplates, type LlamaContext, type LlamaModel } from "../native/llama.ts";
import { eogTokens } from "../native/token-sampler.ts";
import { ChatTemplate, ChatTemplateError } from "./chat-template.ts";
import { Embedder } from "./embedder.ts";
import { prepareRequest, renderChat, renderOptions, type PrepareHost } from "./prepare-request.ts";
import type { CachedSequence } from "./prompt-cache.ts";
import { Scheduler, type SchedulerEvent } from "./scheduler.ts";
import { ModelDrafter, NgramDrafter, type Drafter } from "./speculative.ts";
import { EngineError, type ModelInfo } from "./types.ts";
import { DRAFT_MAX, type ToMain, type ToWorker, type WorkerInit } from "./worker-protocol.ts";

declare const self: Worker;

/** Sequences per slot that may keep a conversation's KV resident; llama.cpp allows 256 in all. */
const RESIDENT_PER_SLOT = 4;
const MAX_SEQUENCES = 256;

class ModelHost implements PrepareHost {
  readonly model: LlamaModel;
  readonly ctx: LlamaContext;
  /** The draft model when it is not the target itself (freed with it). */
  readonly draftModel: LlamaModel | null = null;
  readonly scheduler: Scheduler;
  readonly template: ChatTemplate | null;
  readonly info: ModelInfo;
  readonly eog: number[];
  /** Embedding requests, run in bounded steps between decode steps. */
  readonly embedder: Embedder;
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
      // Sequences outnumber slots: idle conversations keep their KV resident while cells are free.
      nSeqMax: type === "embedding" ? 1 : Math.min(MAX_SEQUENCES, slots * RESIDENT_PER_SLOT),
      nBatch: init.batchSize,
      threads: init.threads || undefined,
      kvUnified: true,
    });
    let drafter: ((sequences: readonly CachedSequence[]) => Drafter) | undefined;
    const draft = type === "embedding" ? undefined : init.model.draft;
    if (draft) {
      // The target as its own draft shares its weights; any other draft must share its vocabulary.
      const same = draft.path === init.model.path;
      const dm = same ? m : llama.loadModel(draft.path, { gpuLayers: init.gpuLayers });
      if (!same) this.draftModel = dm;
      const why = same ? null : m.vocabMismatch(dm);
      if (why !== null) {
        this.draftModel?.dispose();
        m.dispose();
        throw new Error(`draft model ${draft.path} cannot draft for ${init.model.id}: its vocabulary does not match (${why})`);
      }
      drafter = (sequences) => makeDrafter(dm, this.ctx, init, sequences);
    } else if (init.ngramDraft > 0 && type !== "embedding") {
      drafter = () => new NgramDrafter(init.ngramDraft);
    }
    this.scheduler = new Scheduler(m, this.ctx, (id, event) => this.outbox.push({ id, event }), {
      ctxPerSlot,
      lanes: slots,
      maxQueue: init.maxQueue,
      parkBytes: init.parkBytes,
      promptBudget: init.promptBudget,
      compactBytes: init.compactBytes,
      // ggml-cpu's tiled flash attention: see Scheduler.splitWorthIt.
      splitMixedSteps: init.splitMixedSteps ?? (llama.backend === "cpu" || init.gpuLayers === 0),
      drafter,
    });
    this.embedder = new Embedder(m, ctxPerSlot, { type, threads: init.threads || undefined });
    this.eog = eogTokens(m);
    this.info = {
      id: init.model.id,
      path: init.model.path,
      type,
      contextWindow: ctxPerSlot,
      trainContext: m.nCtxTrain,
      slots,
      embeddingDims: m.nEmbd,
      longestTokenBytes: m.longestTokenBytes(),
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

  takeOutbox(): { id: string; event: SchedulerEvent }[] {
    const out = this.outbox;
    this.outbox = [];
    return out;
  }
}

/**
 * The draft model's context: a sequence per target sequence, as many cells as the target plus a
 * draft per slot (its sequences never hold more than the target's), and the target's threads.
 */
function makeDrafter(dm: LlamaModel, target: LlamaContext, init: WorkerInit, sequences: readonly CachedSequence[]): ModelDrafter {
  const draft = init.model.draft!;
  const max = draft.max ?? DRAFT_MAX;
  const ctx = dm.createContext({
    nCtx: target.nCtx + init.slots * (max + 1),
    nSeqMax: target.nSeqMax,
    nBatch: init.batchSize,
    threads: init.threads || undefined,
    kvUnified: true,
  });
  return new ModelDrafter(dm, ctx, sequences, target.model.nVocab, { max, min: draft.min });
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

/** How often running requests report what they processed, for billing checkpoints. */
const PROGRESS_MS = 1000;
let progressAt = 0;

function flush(): void {
  if (!host) return;
  const events = host.takeOutbox();
  if (events.length) post({ type: "events", events, stats: host.scheduler.snapshot(host.info.id) });
  const t = performance.now();
  if (t - progressAt >= PROGRESS_MS) {
    progressAt = t;
    const requests = host.scheduler.progress();
    if (requests.length) post({ type: "progress", requests });
  }
}

/** Chat requests whose rendered prompt is being tokenized elsewhere; true once cancelled meanwhile. */
const preparing = new Map<string, boolean>();
/** Tokenizations asked of the main thread (which relays them to the tokenizer worker), by tid. */
const relays = new Map<number, (tokens: Int32Array | null, err: EngineError | null) => void>();
let nextTid = 0;

/** Tokenizes text on the tokenizer worker, so this thread keeps decoding meanwhile; `done` runs from onmessage. */
function tokenizeElsewhere(text: string, done: (tokens: Int32Array | null, err: EngineError | null) => void): void {
  const tid = ++nextTid;
  relays.set(tid, done);
  post({ type: "tokenize", tid, text, addSpecial: true, parseSpecial: true });
}

function refuse(h: ModelHost, id: string, err: unknown): void {
  post({ type: "events", events: [{ id, event: { type: "error", ...fail(err) } }], stats: h.scheduler.snapshot(h.info.id) });
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
        const { id, request } = msg;
        const receivedAt = performance.now();
        try {
          const chat = renderChat(h, request);
          if (!chat) h.scheduler.submit(prepareRequest(h, id, request, receivedAt));
          else {
            preparing.set(id, false);
            tokenizeElsewhere(chat.prompt, (tokens, err) => {
              const cancelled = preparing.get(id);
              preparing.delete(id);
              try {
                if (err) throw err;
                h.scheduler.submit(prepareRequest(h, id, request, receivedAt, { ...chat, tokens: tokens! }));
                // Cancelled while tokenizing: queued, then cancelled, so it ends as any cancelled request.
                if (cancelled) h.scheduler.cancel(id);
              } catch (e) {
                refuse(h, id, e);
              }
            });
          }
        } catch (err) {
          refuse(h, id, err);
        }
        break;
      }
      case "tokens": {
        const done = relays.get(msg.tid);
        relays.delete(msg.tid);
        done?.(msg.tokens ?? null, msg.error ? new EngineError(msg.error.code, msg.error.message, msg.error.param) : null);
        break;
      }
      case "cancel":
        if (preparing.has(msg.id)) preparing.set(msg.id, true);
        else host?.scheduler.cancel(msg.id);
        break;
      case "call": {
        const h = host!;
        try {
          let result: unknown;
          if (msg.method === "embed") {
            // Answered by the loop's embedding steps, not here.
            const rid = msg.rid;
            h.embedder.submit(
              msg.args.inputs,
              (r) => post({ type: "reply", rid, result: r }),
              (err) => post({ type: "reply", rid, error: fail(err) }),
            );
            break;
          } else if (msg.method === "render") {
            if (!h.template) throw new EngineError("invalid_request", `model ${h.info.id} has no chat template`, "messages");
            const options = msg.args.request ? renderOptions(msg.args.request) : msg.args.options;
            try {
              const { prompt, startsInReasoning } = h.template.render(msg.args.messages, options);
              result = { prompt, startsInReasoning };
            } catch (err) {
              // The template's own refusal (raise_exception) is the caller's conversation: a 400.
              if (err instanceof ChatTemplateError) throw new EngineError("invalid_request", err.message, "messages");
              throw err;
            }
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
    // One bounded embedding step between decode steps: within the prompt budget while slots
    // generate, so embeddings share the worker instead of holding it.
    if (h.embedder.step(h.scheduler.sideBudget)) worked = true;
    if (worked) {
      // Let queued messages (submits, cancels) in between steps.
      await new Promise<void>((r) => setImmediate(r));
    } else {
      await new Promise<void>((r) => (wake = r));
      wake = null;
      // Submits posted together are all handled before the first step, which then takes them all.
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  h.embedder.failAll(new EngineError("shutting_down", "the server is shutting down"));
  h.embedder.dispose();
  h.scheduler.drafter?.dispose();
  h.ctx.dispose();
  h.draftModel?.dispose();
  h.model.dispose();
  post({ type: "closed" });
}

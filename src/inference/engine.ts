// The engine's public API on the main thread: submit() streams typed events from a model's worker,
// plus embed, tokenize, model info and live stats. It schedules and relays only; every llama.cpp
// call happens in a worker, which is restarted if it dies. Text becomes token ids in the model's
// tokenizer workers (tokenizer-pool.ts), never in the engine worker that decodes.
import { EngineError, type EngineEvent, type GenerateRequest, type ModelInfo, type ModelStats, type Usage } from "./types.ts";
import type { CallMap, ModelSpec, ToMain, ToWorker, WireError, WorkerInit, WorkerRequest } from "./worker-protocol.ts";
import { TokenizerPool } from "./tokenizer-pool.ts";
import type { TokenizerCallMap } from "./tokenizer-protocol.ts";
import type { LogLevelName } from "../native/llama.ts";
import { locateNative } from "../native/paths.ts";

export interface EngineOptions {
  models: ModelSpec[];
  /** Parallel slots per model. Defaults to 4. */
  slots?: number;
  /** Context window per request (0 = the model's own). Defaults to 4096. */
  ctxSize?: number;
  /** Most tokens per decode step. Defaults to 512. */
  batchSize?: number;
  /** Prompt tokens per step while other requests generate (chunked prefill; 0 = automatic). Defaults to 0. */
  promptBudget?: number;
  /** N-gram lookup speculation: tokens guessed per step (0 = off). Defaults to 0. */
  ngramDraft?: number;
  /** CPU threads (0 = all cores). Defaults to 0. */
  threads?: number;
  /** Layers offloaded to the GPU (-1 = all). Defaults to -1. */
  gpuLayers?: number;
  /** Requests that may wait for a slot, per model. Defaults to 64. */
  maxQueue?: number;
  /** MiB of parked KV state per model (evicted prompts, pinned sessions). Defaults to 1024. */
  cacheRamMiB?: number;
  /** Decode a step's next tokens apart from its prompt chunk when their sequences are long. Defaults to true on the CPU backend. */
  splitMixedSteps?: boolean;
  /** MiB of resident KV state the engine may rewrite compactly while idle, copied to RAM meanwhile (0 = never). Defaults to 512, at most cacheRamMiB. */
  kvCompactMiB?: number;
  /** Library directory; defaults to the located one (extracted when compiled). */
  libDir?: string;
  /** Defaults to "error". */
  llamaLogLevel?: LogLevelName;
  /** Tokenizer workers per model (vocabulary-only copies, tens of MB each). Defaults to 2. */
  tokenizers?: number;
}

declare global {
  /** Set by a compiled executable's entry: where its bundled worker entry point lives. */
  // eslint-disable-next-line no-var
  var __cocoonWorkerPath: string | undefined;
}

type Done = Extract<EngineEvent, { type: "done" }>;

type Listener = {
  push(event: EngineEvent): void;
  /** The request failed; `done` is what it processed when that is known (a shutdown's cancel). */
  fail(err: EngineError, done?: Done): void;
  /** What it processed so far (about once a second while it runs). */
  progress(usage: Usage): void;
};

/** Longest a tokenized submit waits for others being tokenized alongside it. */
const COALESCE_MS = 15;

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/** Runs one model's worker and relays its messages; restarts it when it dies. */
class ModelRunner {
  info!: ModelInfo;
  stats: ModelStats;
  restarts = 0;
  private worker!: Worker;
  private ready!: Promise<void>;
  /** Text -> ids off the engine worker; created once the engine worker has said what fits. */
  tokenizers!: TokenizerPool;
  /** Per request: resolves once its submit was posted (after tokenizing), so a cancel never overtakes it. */
  private readonly sent = new Map<string, Promise<void>>();
  private readonly listeners = new Map<string, Listener>();
  /** Ids that have not left the worker's queue yet: the overload check counts them. */
  private readonly waiting = new Set<string>();
  private readonly calls = new Map<number, Pending>();
  /**
   * Submits still being tokenized, and tokenized ones held until those are done (at most
   * COALESCE_MS): requests that arrive together reach the worker together and share its next step,
   * instead of the first taking a step of its own while the rest wait for it.
   */
  private tokenizing = 0;
  private held: (() => void)[] = [];
  private holdTimer: Timer | null = null;
  private rid = 0;
  private closing = false;
  /** Set by stopAll: requests still running end with "shutting_down" once the worker says what they processed. */
  private stopping = false;

  constructor(
    private readonly init: WorkerInit,
    private readonly maxQueue: number,
    private readonly tokenizerCount: number,
  ) {
    this.stats = { id: init.model.id, slotsBusy: 0, slotsTotal: init.slots, queued: 0, promptTokens: 0, generatedTokens: 0, cachedTokens: 0, requests: 0, restarts: 0, ready: false, kvUsedCells: 0, kvTotalCells: 0, pinnedSlots: 0, residentSequences: 0, evictions: 0, kvCompactions: 0, kvCompactMs: 0, splitSteps: 0, speculative: null, draftedTokens: 0, acceptedTokens: 0, draftSteps: 0, draftMs: 0, draftKvCells: 0, parkedStates: 0, parkedSessions: 0, parkedBytes: 0 };
  }

  start(): Promise<void> {
    const worker = new Worker(globalThis.__cocoonWorkerPath ?? new URL("./worker.ts", import.meta.url).href);
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<ToMain>) => {
        const msg = e.data;
        if (msg.type === "ready") {
          this.info = msg.info;
          this.stats = { ...this.stats, slotsTotal: msg.info.slots, ready: true };
          this.tokenizers ??= new TokenizerPool(
            { libDir: this.init.libDir, llamaLogLevel: this.init.llamaLogLevel, path: this.init.model.path, info: { id: msg.info.id, contextWindow: msg.info.contextWindow, longestTokenBytes: msg.info.longestTokenBytes } },
            this.tokenizerCount,
          );
          resolve();
        } else if (msg.type === "fatal" && !this.info) {
          reject(new EngineError("internal", `model ${this.init.model.id} failed to load: ${msg.error}`));
        } else {
          this.onMessage(msg);
        }
      };
      worker.addEventListener("error", (e) => {
        const message = (e as ErrorEvent).message || "worker error";
        if (!this.info) reject(new EngineError("internal", `model ${this.init.model.id} failed to load: ${message}`));
        else this.onCrash(message);
      });
    });
    this.post({ type: "init", init: this.init });
    return this.ready;
  }

  private post(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(msg, transfer);
  }

  /** The engine worker's rendered chat prompt, tokenized by a tokenizer worker and sent back as ids. */
  private relayTokenize(msg: Extract<ToMain, { type: "tokenize" }>): void {
    const worker = this.worker;
    // A reply for a worker that has since been replaced is dropped (its tids mean nothing to the new one).
    const reply = (m: ToWorker, transfer: ArrayBuffer[] = []) => this.worker === worker && worker.postMessage(m, transfer);
    this.tokenizers.call("tokenize", { text: msg.text, addSpecial: msg.addSpecial, parseSpecial: msg.parseSpecial }).then(
      (tokens) => reply({ type: "tokens", tid: msg.tid, tokens }, [tokens.buffer as ArrayBuffer]),
      (err) => reply({ type: "tokens", tid: msg.tid, error: wire(err) }),
    );
  }

  private onMessage(msg: ToMain): void {
    switch (msg.type) {
      case "events":
        this.stats = { ...msg.stats, restarts: this.restarts };
        for (const { id, event } of msg.events) {
          const l = this.listeners.get(id);
          if (event.type === "started") {
            this.waiting.delete(id);
            continue;
          }
          if (!l) continue;
          if (this.stopping && event.type !== "delta") {
            // Cut at shutdown: the stream ends with an error, billed at what the cancel reports.
            if (event.type === "done") {
              this.forget(id);
              l.fail(new EngineError("shutting_down", "the server is shutting down; the request was cut off"), event);
            } else if (event.type === "error") {
              this.forget(id);
              l.fail(new EngineError(event.code, event.message, event.param));
            }
            continue;
          }
          if (event.type === "error") {
            this.forget(id);
            l.fail(new EngineError(event.code, event.message, event.param));
          } else {
            l.push(event);
            if (event.type === "done") this.forget(id);
          }
        }
        break;
      case "reply": {
        const p = this.calls.get(msg.rid);
        this.calls.delete(msg.rid);
        if (msg.error) p?.reject(toError(msg.error));
        else p?.resolve(msg.result);
        break;
      }
      case "progress":
        for (const p of msg.requests) this.listeners.get(p.id)?.progress(p.usage);
        break;
      case "tokenize":
        this.relayTokenize(msg);
        break;
      case "fatal":
        this.onCrash(msg.error);
        break;
      case "closed":
        break;
    }
  }

  private forget(id: string): void {
    this.listeners.delete(id);
    this.waiting.delete(id);
    this.sent.delete(id);
  }

  /** A dead worker fails what it held; a new one takes over. */
  private onCrash(message: string): void {
    if (this.closing) return;
    const err = new EngineError("worker_crashed", `the inference worker for ${this.init.model.id} failed (${message}); the request was lost, retry it`);
    for (const [, l] of this.listeners) l.fail(err);
    for (const [, p] of this.calls) p.reject(err);
    this.listeners.clear();
    this.waiting.clear();
    this.sent.clear();
    this.calls.clear();
    this.worker.terminate();
    this.restarts++;
    this.stats = { ...this.stats, ready: false, restarts: this.restarts, slotsBusy: 0, queued: 0 };
    this.start().catch(() => {
      // A worker that cannot come back leaves the model unavailable; submits report it.
    });
  }

  submit(id: string, request: GenerateRequest, listener: Listener): void {
    // Requests not yet started are queued or about to take a free slot (as last reported).
    const free = Math.max(0, this.stats.slotsTotal - this.stats.slotsBusy);
    if (this.waiting.size >= this.maxQueue + free) {
      throw new EngineError("overloaded", `model ${this.init.model.id} is busy: ${this.waiting.size} requests are waiting; retry shortly`);
    }
    this.listeners.set(id, listener);
    this.waiting.add(id);
    this.tokenizing++;
    const sent = this.ready
      .then(() => this.withIds(request))
      .then(
        (req) =>
          this.whenTokenized(() => {
            // Gone meanwhile (its worker crashed, or the engine closed): nothing to send.
            if (this.listeners.get(id) === listener) this.post({ type: "submit", id, request: req }, req.prompt instanceof Int32Array ? [req.prompt.buffer as ArrayBuffer] : []);
          }),
        (err) => {
          this.tokenizing--;
          this.releaseHeld();
          this.forget(id);
          listener.fail(err instanceof EngineError ? err : new EngineError("internal", String(err)));
        },
      );
    this.sent.set(id, sent);
  }

  /** Posts a tokenized submit once no other is still tokenizing (or COALESCE_MS later); resolves when posted. */
  private whenTokenized(post: () => void): Promise<void> {
    this.tokenizing--;
    return new Promise<void>((resolve) => {
      this.held.push(() => {
        post();
        resolve();
      });
      if (this.tokenizing === 0) this.releaseHeld();
      else this.holdTimer ??= setTimeout(() => this.releaseHeld(true), COALESCE_MS);
    });
  }

  private releaseHeld(force = false): void {
    if (!force && this.tokenizing > 0) return;
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    const held = this.held;
    this.held = [];
    for (const post of held) post();
  }

  /** A completion's text prompt and suffix become ids in a tokenizer worker; chat messages go as they are. */
  private async withIds(request: GenerateRequest): Promise<WorkerRequest> {
    const { prompt, suffix, ...rest } = request;
    if (typeof prompt !== "string" && suffix === undefined) return { ...rest, prompt };
    return { ...rest, prompt: await this.tokenizers.call("prompt", { prompt, suffix }) };
  }

  cancel(id: string): void {
    // Chained on the submit's own promise (which waits for tokenizing), so a cancel right after
    // submit() can never reach the worker before the request it cancels.
    if (this.listeners.has(id)) void (this.sent.get(id) ?? this.ready).then(() => this.post({ type: "cancel", id }));
  }

  /** A call on one of the model's tokenizer workers. */
  async tokenizer<M extends keyof TokenizerCallMap>(method: M, args: TokenizerCallMap[M]["args"]): Promise<TokenizerCallMap[M]["result"]> {
    await this.ready;
    return this.tokenizers.call(method, args);
  }

  async call<M extends keyof CallMap>(method: M, args: CallMap[M]["args"]): Promise<CallMap[M]["result"]> {
    await this.ready;
    const rid = ++this.rid;
    return new Promise((resolve, reject) => {
      this.calls.set(rid, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ type: "call", rid, method, args } as ToWorker);
    });
  }

  /** Updates the stats from a snapshot that came with a reply rather than with events. */
  refreshStats(stats: ModelStats): void {
    this.stats = { ...stats, restarts: this.restarts };
  }

  crashForTest(): void {
    this.post({ type: "crash" });
  }

  /**
   * Cuts every running request: each is cancelled in the worker, whose done event says what it
   * processed (so it is billed for that), and its stream ends with a "shutting_down" error. Resolves
   * when all have ended, or after `timeoutMs`.
   */
  async stopAll(timeoutMs: number): Promise<void> {
    this.stopping = true;
    for (const id of this.listeners.keys()) this.cancel(id);
    const deadline = Date.now() + timeoutMs;
    while (this.listeners.size > 0 && Date.now() < deadline) await Bun.sleep(20);
  }

  close(): void {
    this.closing = true;
    const err = new EngineError("shutting_down", "the server is shutting down");
    for (const [, l] of this.listeners) l.fail(err);
    this.listeners.clear();
    this.worker.terminate();
    this.tokenizers?.close();
  }
}

function toError(e: WireError): EngineError {
  return new EngineError(e.code, e.message, e.param);
}

function wire(err: unknown): WireError {
  if (err instanceof EngineError) return { code: err.code, message: err.message, param: err.param };
  return { code: "internal", message: err instanceof Error ? err.message : String(err) };
}

/** A running generation: its events, and its final usage even when nobody reads to the end. */
export interface Generation extends AsyncIterableIterator<EngineEvent> {
  /** The done event (also after a cancel, a shutdown or a consumer that stopped reading), or null on failure. */
  final: Promise<Extract<EngineEvent, { type: "done" }> | null>;
  /** What it processed so far, as last reported (null before the first report). */
  readonly processed: Usage | null;
  /** Called with each progress report while it runs (about once a second). */
  onProgress?: (usage: Usage) => void;
}

let nextId = 0;

export class Engine {
  private readonly runners = new Map<string, ModelRunner>();

  private constructor(private readonly order: string[]) {}

  /** Loads every model in its own worker; resolves when all are ready. */
  static async start(opts: EngineOptions): Promise<Engine> {
    if (opts.models.length === 0) throw new EngineError("invalid_request", "no models to serve");
    const libDir = opts.libDir ?? locateNative().dir;
    const engine = new Engine(opts.models.map((m) => m.id));
    for (const model of opts.models) {
      const runner = new ModelRunner(
        {
          model,
          libDir,
          llamaLogLevel: opts.llamaLogLevel ?? "error",
          slots: model.slots ?? opts.slots ?? 4,
          ctxPerSlot: model.ctxSize ?? opts.ctxSize ?? 4096,
          batchSize: opts.batchSize ?? 512,
          threads: opts.threads ?? 0,
          gpuLayers: model.gpuLayers ?? opts.gpuLayers ?? -1,
          maxQueue: opts.maxQueue ?? 64,
          parkBytes: (opts.cacheRamMiB ?? 1024) * 2 ** 20,
          promptBudget: opts.promptBudget ?? 0,
          compactBytes: (opts.kvCompactMiB ?? Math.min(512, opts.cacheRamMiB ?? 1024)) * 2 ** 20,
          splitMixedSteps: opts.splitMixedSteps ?? null,
          ngramDraft: opts.ngramDraft ?? 0,
        },
        opts.maxQueue ?? 64,
        opts.tokenizers ?? 2,
      );
      engine.runners.set(model.id, runner);
      // One at a time: each worker loads the ggml backends into the process-wide registry, and two
      // doing it at once can leave one with no backend ("no ggml backend could be loaded").
      try {
        await runner.start();
        // The next model's worker loads backends too: after these tokenizers have (the last model's load in the background).
        if (model !== opts.models.at(-1)) await runner.tokenizers.ready;
      } catch (err) {
        engine.close();
        throw err;
      }
    }
    return engine;
  }

  private runner(model?: string): ModelRunner {
    const id = model ?? this.order[0]!;
    const r = this.runners.get(id);
    if (!r) throw new EngineError("model_not_found", `model "${id}" does not exist; available: ${this.order.join(", ")}`, "model");
    return r;
  }

  models(): ModelInfo[] {
    return this.order.map((id) => this.runners.get(id)!.info);
  }

  model(id?: string): ModelInfo {
    return this.runner(id).info;
  }

  stats(): ModelStats[] {
    return this.order.map((id) => this.runners.get(id)!.stats);
  }

  /**
   * Starts a generation. Throws EngineError at once when the model is unknown or its queue is full;
   * errors found by the worker (context overflow, bad parameters) are thrown by the first next().
   * Aborting `signal` frees the request's slots at the next step and ends the stream with
   * finish reason "cancelled".
   */
  submit(request: GenerateRequest, signal?: AbortSignal): Generation {
    const runner = this.runner(request.model);
    const id = `r${++nextId}`;
    const buffered: EngineEvent[] = [];
    let failure: EngineError | null = null;
    let ended = false;
    let wakeup: (() => void) | null = null;
    const notify = () => {
      const w = wakeup;
      wakeup = null;
      w?.();
    };
    const onAbort = () => runner.cancel(id);
    let settle: (done: Extract<EngineEvent, { type: "done" }> | null) => void = () => {};
    const final = new Promise<Extract<EngineEvent, { type: "done" }> | null>((r) => (settle = r));
    let processed: Usage | null = null;
    runner.submit(id, request, {
      progress(usage) {
        processed = usage;
        iterator.onProgress?.(usage);
      },
      push(event) {
        buffered.push(event);
        if (event.type === "done") {
          ended = true;
          settle(event);
        }
        notify();
      },
      fail(err, done) {
        failure = err;
        ended = true;
        settle(done ?? null);
        notify();
      },
    });
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => signal?.removeEventListener("abort", onAbort);

    const iterator: Generation = {
      final,
      get processed() {
        return processed;
      },
      async next(): Promise<IteratorResult<EngineEvent>> {
        for (;;) {
          const event = buffered.shift();
          if (event) return { value: event, done: false };
          if (failure) {
            cleanup();
            const err = failure;
            failure = null;
            throw err;
          }
          if (ended) {
            cleanup();
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => (wakeup = r));
        }
      },
      async return(): Promise<IteratorResult<EngineEvent>> {
        // A consumer that stops reading (e.g. a closed HTTP stream) frees the slot.
        if (!ended) runner.cancel(id);
        cleanup();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Pooled, L2-normalised embeddings of each input (text inputs are tokenized in a tokenizer worker first). */
  async embed(model: string | undefined, inputs: (string | number[])[]): Promise<CallMap["embed"]["result"]> {
    const runner = this.runner(model);
    const ids = await runner.tokenizer("inputs", { inputs });
    return runner.call("embed", { inputs: ids });
  }

  async tokenize(model: string | undefined, text: string, opts: { addSpecial?: boolean; parseSpecial?: boolean } = {}): Promise<number[]> {
    return Array.from(await this.runner(model).tokenizer("tokenize", { text, ...opts }));
  }

  detokenize(model: string | undefined, tokens: number[]): Promise<string> {
    return this.runner(model).tokenizer("detokenize", { tokens });
  }

  /** Each token's raw bytes (a piece can end inside a UTF-8 character). */
  pieces(model: string | undefined, tokens: number[]): Promise<number[][]> {
    return this.runner(model).tokenizer("pieces", { tokens });
  }

  /** Test hook: holds every tokenization of a model (as a tokenizer busy forever would) until released. */
  pauseTokenizerForTest(model: string | undefined, paused: boolean): void {
    this.runner(model).tokenizers.pauseForTest(paused);
  }

  /** The prompt a chat request renders to (for debugging and echo). */
  render(model: string | undefined, args: CallMap["render"]["args"]): Promise<CallMap["render"]["result"]> {
    return this.runner(model).call("render", args);
  }

  /**
   * Forgets a pinned conversation on every model: frees its slot's KV cells and drops its parked
   * states (after its session is deleted). Returns how many slots and parked states were freed.
   */
  async forgetSession(key: string): Promise<{ slots: number; parked: number }> {
    const results = await Promise.all(
      [...this.runners.values()].map(async (r) => {
        if (!r.info) return { slots: 0, parked: 0 };
        const res = await r.call("forgetSession", { key });
        r.refreshStats(res.stats);
        return res;
      }),
    );
    return results.reduce((a, b) => ({ slots: a.slots + b.slots, parked: a.parked + b.parked }), { slots: 0, parked: 0 });
  }

  /** Test hook: makes a model's worker die as a native crash would. */
  crashWorkerForTest(model?: string): void {
    this.runner(model).crashForTest();
  }

  /** Cuts every running request on every model (see ModelRunner.stopAll), billed at what each processed. */
  async stopAll(timeoutMs: number): Promise<void> {
    await Promise.all([...this.runners.values()].map((r) => r.stopAll(timeoutMs)));
  }

  close(): void {
    for (const r of this.runners.values()) r.close();
  }
}

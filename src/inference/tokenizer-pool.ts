// The main thread's side of a model's tokenizer workers: a small pool of vocabulary-only copies of
// the model, each call sent to the one with the least text waiting, so a short prompt is not queued
// behind a 500 KB one. A worker that dies fails its calls and is replaced.
import { EngineError } from "./types.ts";
import type { FromTokenizer, TokenizerCallMap, TokenizerInit, ToTokenizer } from "./tokenizer-protocol.ts";

declare global {
  /** Set by a compiled executable's entry: where its bundled tokenizer worker entry point lives. */
  // eslint-disable-next-line no-var
  var __cocoonTokenizerWorkerPath: string | undefined;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  weight: number;
}

class TokenizerWorker {
  private worker!: Worker;
  private ready: Promise<void>;
  /** True once its vocabulary is loaded: the pool prefers workers that can answer now. */
  loaded = false;
  private readonly calls = new Map<number, Pending>();
  private rid = 0;
  private closing = false;
  /** Bytes of text (or ids) sent and not answered yet: the pool's measure of how busy it is. */
  load = 0;

  /** Starts once `after` resolves (workers load one at a time). */
  constructor(
    private readonly init: TokenizerInit,
    after: Promise<void>,
  ) {
    this.ready = after.then(() => this.launch());
    this.ready.catch(() => {
      // Reported to each call instead.
    });
  }

  /** Resolves when loaded. */
  get started(): Promise<void> {
    return this.ready;
  }

  private launch(): Promise<void> {
    const worker = new Worker(globalThis.__cocoonTokenizerWorkerPath ?? new URL("./tokenizer-worker.ts", import.meta.url).href);
    this.worker = worker;
    let loaded = false;
    return new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromTokenizer>) => {
        const msg = e.data;
        if (msg.type === "ready") {
          loaded = true;
          this.loaded = true;
          resolve();
        } else if (msg.type === "fatal") {
          if (!loaded) reject(new EngineError("internal", `the tokenizer for ${this.init.info.id} failed to load: ${msg.error}`));
          else this.onCrash(msg.error);
        } else if (msg.type === "reply") {
          const p = this.calls.get(msg.rid);
          this.calls.delete(msg.rid);
          if (!p) return;
          this.load -= p.weight;
          if (msg.error) p.reject(new EngineError(msg.error.code, msg.error.message, msg.error.param));
          else p.resolve(msg.result);
        }
      };
      worker.addEventListener("error", (e) => {
        const message = (e as ErrorEvent).message || "tokenizer worker error";
        if (!loaded) reject(new EngineError("internal", `the tokenizer for ${this.init.info.id} failed to load: ${message}`));
        else this.onCrash(message);
      });
      this.post({ type: "init", init: this.init });
    });
  }

  private post(msg: ToTokenizer): void {
    this.worker.postMessage(msg);
  }

  private onCrash(message: string): void {
    if (this.closing) return;
    const err = new EngineError("worker_crashed", `the tokenizer worker for ${this.init.info.id} failed (${message}); retry the request`);
    for (const p of this.calls.values()) p.reject(err);
    this.calls.clear();
    this.load = 0;
    this.loaded = false;
    this.worker.terminate();
    this.ready = this.launch();
    this.ready.catch(() => {
      // Calls to a tokenizer that cannot come back fail with its load error.
    });
  }

  async call<M extends keyof TokenizerCallMap>(method: M, args: TokenizerCallMap[M]["args"], weight: number): Promise<TokenizerCallMap[M]["result"]> {
    this.load += weight;
    try {
      await this.ready;
    } catch (err) {
      this.load -= weight;
      throw err;
    }
    const rid = ++this.rid;
    return new Promise((resolve, reject) => {
      this.calls.set(rid, { resolve: resolve as (v: unknown) => void, reject, weight });
      this.post({ type: "call", rid, method, args } as ToTokenizer);
    });
  }

  pause(paused: boolean): void {
    void this.ready.then(() => this.post({ type: "pause", paused }));
  }

  close(): void {
    this.closing = true;
    const err = new EngineError("shutting_down", "the server is shutting down");
    for (const p of this.calls.values()) p.reject(err);
    this.calls.clear();
    this.worker?.terminate();
  }
}

/** What a call's arguments weigh: bytes of text, or ids, the worker must go through. */
function weigh(args: Record<string, unknown>): number {
  let n = 1;
  for (const v of Object.values(args)) {
    if (typeof v === "string") n += v.length;
    else if (Array.isArray(v)) for (const x of v) n += typeof x === "string" ? x.length : Array.isArray(x) ? x.length : 1;
  }
  return n;
}

export class TokenizerPool {
  private readonly workers: TokenizerWorker[];
  /** Resolves once every worker has loaded (they load one after another). */
  readonly ready: Promise<void>;

  constructor(init: TokenizerInit, size: number) {
    // One at a time, as the engine's workers: each loads the ggml backends into the process-wide registry.
    this.workers = [];
    let prev = Promise.resolve();
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = new TokenizerWorker(init, prev);
      this.workers.push(w);
      prev = w.started;
    }
    this.ready = prev;
    this.ready.catch(() => {
      // Reported to each call instead.
    });
  }

  /** Runs one call on the least loaded worker. */
  call<M extends keyof TokenizerCallMap>(method: M, args: TokenizerCallMap[M]["args"]): Promise<TokenizerCallMap[M]["result"]> {
    const loaded = this.workers.filter((w) => w.loaded);
    const w = (loaded.length ? loaded : this.workers).reduce((a, b) => (b.load < a.load ? b : a));
    return w.call(method, args, weigh(args));
  }

  /** Test hook: holds (or releases) every call, as a tokenization that takes forever would. */
  pauseForTest(paused: boolean): void {
    for (const w of this.workers) w.pause(paused);
  }

  close(): void {
    for (const w of this.workers) w.close();
  }
}

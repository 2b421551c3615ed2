// One request on the upstream workers, as an engine Generation: routed by the pool, failed over to
// another worker while nothing was received, cancelled upstream when the client goes, and ended with
// the upstream's usage (or our own count where it reports none) so that billing settles as for the
// local engine.
import type { Generation } from "../inference/engine.ts";
import { EngineError, type EngineEvent, type FinishReason, type GenerateRequest, type ModelInfo, type Usage } from "../inference/types.ts";
import { ApiError } from "../http/errors.ts";
import type { RouteOptions, Upstream, UpstreamPool } from "./pool.ts";
import { ChunkReader, sseData, upstreamBody, upstreamPath, usageOf } from "./wire.ts";
import { CACHE_SCOPE_HEADER } from "./worker-role.ts";

type Done = Extract<EngineEvent, { type: "done" }>;

export interface ForwardDeps {
  pool: UpstreamPool;
  /** An upstream must send its response headers within this; else the next worker is tried. */
  firstByteTimeoutMs: number;
  /** Tokens of a request whose upstream reported no usage (what each choice produced is given). */
  count(model: string, request: GenerateRequest, produced: { text: string[]; pieces: number[] }, prompted: boolean): Promise<Usage>;
  log?: (level: "debug" | "info" | "warn" | "error", line: string) => void;
}

/** Why an attempt on one worker failed, and whether to try another. */
class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly eject: boolean,
  ) {
    super(message);
  }
}

/** An upstream's error answer: its message, as our closed set of errors for a client mistake. */
async function clientError(res: Response): Promise<ApiError> {
  let message = `the worker refused the request (${res.status})`;
  let param: string | null = null;
  let code: string | null = null;
  try {
    const body = (await res.json()) as { error?: { message?: string; param?: string | null; code?: string | null } | string; message?: string };
    const e = typeof body.error === "object" ? body.error : null;
    message = e?.message ?? (typeof body.error === "string" ? body.error : undefined) ?? body.message ?? message;
    param = e?.param ?? null;
    code = e?.code ?? null;
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 413) return new ApiError("payload_too_large", message, param);
  if (res.status === 422) return new ApiError("unprocessable", message, param);
  if (code === "context_length_exceeded" || /context|too long|maximum.*length/i.test(message)) return new ApiError("context_length_exceeded", message, param ?? "messages");
  return new ApiError("invalid_request", message, param);
}

/**
 * Sends a request to a worker and reads up to its first event. Network failures, 5xx, 429, 401/403
 * and streams that end before any event are AttemptFailures (another worker is tried); other 4xx are
 * the client's and thrown as ApiErrors.
 */
async function attempt(
  u: Upstream,
  path: string,
  body: string,
  abort: AbortSignal,
  timeoutMs: number,
  reader: ChunkReader,
  scope: string | undefined,
  /** The worker had a free slot for this request (a busy one queues it: a timeout is no fault then). */
  hadRoom: boolean,
): Promise<{ stream: AsyncGenerator<unknown, boolean>; head: EngineEvent[] }> {
  const own = new AbortController();
  const timer = setTimeout(() => own.abort(new Error(`no response headers within ${timeoutMs / 1000} s`)), timeoutMs);
  let res: Response;
  try {
    res = await fetch(`${u.spec.url}${path}`, {
      method: "POST",
      // The account's cache scope: a cocoon worker keeps prefixes of different accounts apart.
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...u.headers(), ...(scope ? { [CACHE_SCOPE_HEADER]: scope } : {}) },
      body,
      signal: AbortSignal.any([abort, own.signal]),
    });
  } catch (err) {
    if (abort.aborted) throw err;
    // A cocoon worker sends its headers with the first output, so a full one (queueing the request)
    // may be slow without being broken: only a worker that had room is ejected for a timeout.
    if (own.signal.aborted) throw new AttemptFailure(String((own.signal.reason as Error)?.message), hadRoom);
    throw new AttemptFailure(`unreachable (${(err as Error).message})`, true);
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    if (res.status >= 500 || res.status === 429 || res.status === 401 || res.status === 403 || res.status === 404) {
      await res.arrayBuffer().catch(() => {});
      // Busy (503, 429) or lost the model (404): another worker, without ejecting this one; a broken
      // worker (5xx) or a wrong key (401/403) is ejected.
      throw new AttemptFailure(`answered ${res.status}`, res.status !== 503 && res.status !== 429 && res.status !== 404);
    }
    throw await clientError(res);
  }
  if (!res.body) throw new AttemptFailure("answered without a body", true);
  const stream = sseData(res.body);
  const head: EngineEvent[] = [];
  try {
    for (;;) {
      const r = await stream.next();
      if (r.done) {
        // [DONE] with nothing before it: an empty answer, still an answer. A cut stream is a failure.
        if (!r.value) throw new AttemptFailure("closed the stream before any output", true);
        return { stream, head };
      }
      head.push(...reader.events(r.value as Parameters<ChunkReader["events"]>[0]));
      if (head.length) return { stream, head };
    }
  } catch (err) {
    if (abort.aborted || err instanceof AttemptFailure) throw err;
    throw new AttemptFailure(`failed before any output (${(err as Error).message})`, true);
  }
}

/** A request for a remote model: a Generation just like the local engine's. */
export function forwardGeneration(deps: ForwardDeps, model: ModelInfo, request: GenerateRequest, signal: AbortSignal | undefined, route: RouteOptions): Generation {
  const ac = new AbortController();
  let ending: FinishReason | null = null;
  const stop = (why: FinishReason) => {
    ending ??= why;
    ac.abort();
  };
  const onAbort = () => stop("cancelled");
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = request.timeoutMs ? setTimeout(() => stop("timeout"), request.timeoutMs) : null;
  let resolveFinal!: (d: Done | null) => void;
  const final = new Promise<Done | null>((r) => (resolveFinal = r));
  const n = request.n ?? 1;
  const body = JSON.stringify(upstreamBody(request, model.id));
  const path = upstreamPath(request);
  const t0 = performance.now();

  async function* run(): AsyncGenerator<EngineEvent> {
    const tried = new Set<string>();
    let u: Upstream | null = null;
    let reader = new ChunkReader(n);
    let accepted = false;
    let first: number | null = null;
    const done = async (): Promise<Done> => {
      const usage = usageOf(reader.usage) ?? (await deps.count(model.id, request, { text: reader.text, pieces: reader.pieces }, accepted));
      const end = performance.now();
      const promptMs = (first ?? end) - t0;
      const generationMs = first === null ? 0 : end - first;
      return {
        type: "done",
        usage,
        timings: {
          queueMs: 0,
          promptMs,
          generationMs,
          promptTokensPerSecond: promptMs > 0 ? ((usage.promptTokens - usage.cachedTokens) * 1000) / promptMs : 0,
          tokensPerSecond: generationMs > 0 ? (usage.completionTokens * 1000) / generationMs : 0,
        },
        slot: -1,
        reasons: reader.reasons(),
      };
    };
    const finishOwn = async function* (): AsyncGenerator<EngineEvent> {
      // Cancelled or timed out by us: the choices still open end so, billed for what they produced.
      yield* reader.close(ending ?? "cancelled");
      const d = await done();
      resolveFinal(d);
      yield d;
    };
    try {
      let stream: AsyncGenerator<unknown, boolean> | null = null;
      while (!stream) {
        if (ac.signal.aborted) {
          yield* finishOwn();
          return;
        }
        const picked = deps.pool.pick(model.id, { ...route, exclude: tried });
        u = picked;
        tried.add(picked.name);
        reader = new ChunkReader(n);
        try {
          const a = await attempt(picked, path, body, ac.signal, deps.firstByteTimeoutMs, reader, request.cacheScope, picked.free(model.id) >= 0);
          accepted = true;
          deps.pool.succeeded(picked);
          stream = a.stream;
          if (a.head.length) first = performance.now();
          yield* a.head;
        } catch (err) {
          deps.pool.release(picked, model.id);
          u = null;
          if (err instanceof AttemptFailure) {
            if (err.eject) deps.pool.eject(picked, err.message);
            deps.log?.("warn", `upstream ${picked.name}: ${err.message}; trying another worker for ${model.id}`);
            continue;
          }
          if (ac.signal.aborted) continue;
          throw err;
        }
      }
      let clean = false;
      try {
        for (;;) {
          const r = await stream.next();
          if (r.done) {
            clean = r.value || reader.finished.size === n;
            break;
          }
          for (const e of reader.events(r.value as Parameters<ChunkReader["events"]>[0])) {
            if (e.type === "delta") first ??= performance.now();
            yield e;
          }
        }
      } catch (err) {
        if (!ac.signal.aborted) throw new EngineError("upstream_failed", `the worker ${u!.name} failed mid-response (${(err as Error).message}); the request was lost, retry it`);
      }
      if (ac.signal.aborted) {
        yield* finishOwn();
        return;
      }
      if (!clean) {
        deps.pool.eject(u!, "stream cut mid-response");
        throw new EngineError("upstream_failed", `the worker ${u!.name} closed the stream mid-response; the request was lost, retry it`);
      }
      yield* reader.close("stop");
      const d = await done();
      resolveFinal(d);
      yield d;
    } finally {
      if (u) deps.pool.release(u, model.id);
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      ac.abort();
      resolveFinal(null);
    }
  }

  // Read eagerly into a buffer, as the engine does: the run ends (its done event settling the bill,
  // its worker slot released) however the consumer behaves, even one that neither reads on nor
  // calls return() after a cancel.
  const buffered: EngineEvent[] = [];
  let failure: unknown = null;
  let ended = false;
  let wakeup: (() => void) | null = null;
  const notify = () => {
    const w = wakeup;
    wakeup = null;
    w?.();
  };
  void (async () => {
    try {
      for await (const e of run()) {
        buffered.push(e);
        notify();
      }
    } catch (err) {
      failure = err;
    } finally {
      ended = true;
      notify();
    }
  })();
  const gen: Generation = {
    final,
    // A worker reports no progress before its usage at the end: no checkpoints for remote requests.
    processed: null,
    async next(): Promise<IteratorResult<EngineEvent>> {
      for (;;) {
        const e = buffered.shift();
        if (e) return { value: e, done: false };
        if (failure) {
          const err = failure;
          failure = null;
          throw err;
        }
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((r) => (wakeup = r));
      }
    },
    async return(): Promise<IteratorResult<EngineEvent>> {
      // A consumer that stops reading cancels upstream; the run still ends with its done event so
      // that billing settles for what was produced.
      stop("cancelled");
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return gen;
    },
  };
  return gen;
}

/** Embeddings on a worker, failed over like generations; the upstream's usage or our count. */
export async function forwardEmbed(
  deps: ForwardDeps,
  model: string,
  inputs: (string | number[])[],
  route: RouteOptions,
): Promise<{ vectors: Float32Array[]; promptTokens: number }> {
  const tried = new Set<string>();
  for (;;) {
    const u = deps.pool.pick(model, { ...route, exclude: tried });
    tried.add(u.name);
    try {
      let res: Response;
      try {
        res = await fetch(`${u.spec.url}/v1/embeddings`, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...u.headers() },
          body: JSON.stringify({ model, input: inputs, encoding_format: "float" }),
          signal: AbortSignal.timeout(deps.firstByteTimeoutMs),
        });
      } catch (err) {
        deps.pool.eject(u, `unreachable (${(err as Error).message})`);
        continue;
      }
      if (!res.ok) {
        if (res.status >= 500 || res.status === 429 || res.status === 401 || res.status === 403 || res.status === 404) {
          await res.arrayBuffer().catch(() => {});
          if (res.status !== 503 && res.status !== 429 && res.status !== 404) deps.pool.eject(u, `answered ${res.status}`);
          continue;
        }
        throw await clientError(res);
      }
      const body = (await res.json()) as { data?: { index?: number; embedding?: number[] }[]; usage?: { prompt_tokens?: number } };
      const data = [...(body.data ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
      if (data.length !== inputs.length || data.some((d) => !Array.isArray(d.embedding))) {
        deps.pool.eject(u, "answered embeddings of the wrong shape");
        continue;
      }
      const counted = typeof body.usage?.prompt_tokens === "number" ? body.usage.prompt_tokens : (await deps.count(model, { prompt: inputs.map((x) => (typeof x === "string" ? x : "")).join("\n") }, { text: [], pieces: [] }, true)).promptTokens + inputs.reduce((k, x) => k + (typeof x === "string" ? 0 : x.length), 0);
      return { vectors: data.map((d) => Float32Array.from(d.embedding!)), promptTokens: Math.max(0, Math.floor(counted)) };
    } finally {
      deps.pool.release(u, model);
    }
  }
}

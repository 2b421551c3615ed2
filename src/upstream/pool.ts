// The upstream workers a gateway routes to: each polled for health and load (GET /v1/models, whose
// Cocoon `workers[]` give running/max requests), ejected on failure and re-probed with exponential
// backoff (as LiteLLM's cooldowns), and picked per request by free capacity and price coefficient.
import { ApiError } from "../http/errors.ts";
import type { ModelInfo } from "../inference/types.ts";
import type { UpstreamSpec } from "./spec.ts";

/** One model as one upstream serves it, from its last successful poll. */
export interface RemoteModel {
  id: string;
  type: ModelInfo["type"];
  contextWindow: number;
  /** Requests it reports running, and the most it runs at once. */
  running: number;
  max: number;
  supportsTools: boolean;
  supportsThinking: boolean;
  description: string;
}

export interface PoolOptions {
  /** Between polls of a healthy upstream. Defaults to 5000. */
  pollMs?: number;
  /** One poll may take this long. Defaults to min(5000, 4 × pollMs), at least 500. */
  probeTimeoutMs?: number;
  /** Longest wait before re-probing an ejected upstream. Defaults to 60000. */
  maxBackoffMs?: number;
  log?: (level: "debug" | "info" | "warn" | "error", line: string) => void;
}

/** How long a sticky binding (session, response chain) is remembered, and how many at most. */
const STICKY_MAX = 10_000;

export class Upstream {
  healthy = false;
  models = new Map<string, RemoteModel>();
  /** Requests this gateway has in flight on it, per model (exact, unlike the polled figures). */
  readonly inflight = new Map<string, number>();
  failures = 0;
  nextProbeAt = 0;
  lastError: string | null = null;
  /** Requests routed to it since start, for /jsonstats and tests. */
  routed = 0;

  constructor(readonly spec: UpstreamSpec) {}

  get name(): string {
    return this.spec.name;
  }

  serves(model: string): boolean {
    return this.models.has(model);
  }

  /** Slots it has free for a model: its capacity less what runs there (polled, or ours if more). */
  free(model: string): number {
    const m = this.models.get(model);
    if (!m) return 0;
    return m.max - Math.max(m.running, this.inflight.get(model) ?? 0);
  }

  headers(): Record<string, string> {
    return this.spec.key ? { Authorization: `Bearer ${this.spec.key}` } : {};
  }
}

export interface RouteOptions {
  /** Cocoon's max_coefficient: workers dearer than this are not used (0 = no limit). */
  maxCoefficient?: number;
  /** A conversation's key (session, response chain): its next turn goes where its KV cache is. */
  sticky?: string;
  /** Workers already tried for this request (failover). */
  exclude?: Set<string>;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** A /v1/models entry of cocoon-server, llama-server or vLLM, as one model of an upstream. */
export function remoteModel(entry: Record<string, unknown>, spec: UpstreamSpec): RemoteModel | null {
  const id = typeof entry.id === "string" ? entry.id : null;
  if (!id) return null;
  const meta = (entry.meta ?? {}) as Record<string, unknown>;
  const workers = Array.isArray(entry.workers) ? (entry.workers as Record<string, unknown>[]) : null;
  const type = entry.type === "chat" || entry.type === "completion" || entry.type === "embedding" ? entry.type : (spec.type ?? "chat");
  // cocoon-server: context_window; vLLM: max_model_len; llama-server: meta.n_ctx_train (a bound).
  const ctx = num(entry.context_window) ?? num(entry.max_model_len) ?? spec.ctxSize ?? num(meta.n_ctx_train) ?? 4096;
  return {
    id,
    type,
    contextWindow: Math.max(16, Math.floor(ctx)),
    running: workers ? workers.reduce((n, w) => n + (num(w.running_requests) ?? 0), 0) : 0,
    max: workers && workers.length ? workers.reduce((n, w) => n + (num(w.max_running_requests) ?? 0), 0) : (spec.slots ?? 4),
    supportsTools: meta.supports_tools !== false,
    supportsThinking: meta.supports_reasoning === true,
    description: typeof meta.description === "string" ? meta.description : "",
  };
}

/** A number in (0, 1) from a string: FNV-1a (32 bits), then a murmur3 finalizer to spread it. */
function unitHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) + 0.5) / 2 ** 32;
}

/**
 * The worker a sticky key starts on, the same on every gateway with the same view: among the
 * eligible workers with room (all of them when none has), the cheapest coefficient's, then weighted
 * rendezvous hashing of the key over their names (highest -weight / ln(hash) wins; a worker leaving
 * moves only the keys it held).
 */
export function rendezvous(key: string, model: string, eligible: Upstream[]): Upstream {
  const roomy = eligible.filter((u) => u.free(model) > 0);
  const pool = roomy.length ? roomy : eligible;
  const cheapest = Math.min(...pool.map((u) => u.spec.coefficient));
  let best: Upstream | null = null;
  let bestScore = -Infinity;
  for (const u of pool) {
    if (u.spec.coefficient !== cheapest) continue;
    const score = -Math.max(u.spec.weight, 1e-9) / Math.log(unitHash(`${u.name}\u0000${key}`));
    if (score > bestScore || (score === bestScore && best !== null && u.name < best.name)) {
      best = u;
      bestScore = score;
    }
  }
  return best!;
}

export class UpstreamPool {
  readonly upstreams: Upstream[];
  private readonly pollMs: number;
  private readonly probeTimeoutMs: number;
  private readonly maxBackoffMs: number;
  private readonly log: NonNullable<PoolOptions["log"]>;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private polling: Promise<void> | null = null;
  private readonly sticky = new Map<string, string>();
  private turn = 0;
  private stopped = false;

  constructor(specs: UpstreamSpec[], o: PoolOptions = {}) {
    this.upstreams = specs.map((s) => new Upstream(s));
    this.pollMs = o.pollMs ?? 5000;
    this.probeTimeoutMs = o.probeTimeoutMs ?? Math.max(500, Math.min(5000, 4 * this.pollMs));
    this.maxBackoffMs = o.maxBackoffMs ?? 60_000;
    this.log = o.log ?? (() => {});
  }

  /** Polls every upstream once (waiting for the answers), then keeps polling on a timer. */
  async start(): Promise<void> {
    await this.pollDue();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.pollDue().finally(() => {
        this.polling = null;
        this.schedule();
      });
    }, this.pollMs);
    // A gateway's timer must not keep a finished process (or a test) alive.
    (this.timer as { unref?: () => void }).unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }

  /** Polls the upstreams whose next probe is due (all healthy ones, ejected ones after their backoff). */
  async pollDue(): Promise<void> {
    const now = Date.now();
    await Promise.all(this.upstreams.filter((u) => u.nextProbeAt <= now).map((u) => this.probe(u)));
  }

  /** One health and load check of an upstream: its model list, with workers[] where it reports them. */
  async probe(u: Upstream): Promise<void> {
    try {
      const r = await fetch(`${u.spec.url}/v1/models`, { headers: u.headers(), signal: AbortSignal.timeout(this.probeTimeoutMs) });
      if (!r.ok) {
        await r.arrayBuffer().catch(() => {});
        throw new Error(`GET /v1/models answered ${r.status}`);
      }
      const body = (await r.json()) as { data?: unknown };
      if (!Array.isArray(body.data)) throw new Error("GET /v1/models has no data[]");
      const models = new Map<string, RemoteModel>();
      for (const e of body.data as Record<string, unknown>[]) {
        const m = e && typeof e === "object" ? remoteModel(e, u.spec) : null;
        if (m && (!u.spec.models || u.spec.models.includes(m.id))) models.set(m.id, m);
      }
      u.models = models;
      if (!u.healthy) this.log("info", `upstream ${u.name} (${u.spec.url}) is up: ${[...models.keys()].join(", ") || "no models"}`);
      // Re-admitted; its failure count stays until a request succeeds there, so a worker that passes
      // the poll but fails requests is ejected for longer each time.
      u.healthy = true;
      u.lastError = null;
      u.nextProbeAt = 0;
    } catch (err) {
      this.eject(u, err instanceof Error ? err.message : String(err));
    }
  }

  /**
   * Takes an upstream out of routing (a failed poll, or a request that failed before its first
   * byte); it is probed again after a backoff that doubles per consecutive failure.
   */
  eject(u: Upstream, reason: string): void {
    u.failures++;
    const backoff = Math.min(this.maxBackoffMs, this.pollMs * 2 ** Math.min(16, u.failures - 1));
    u.nextProbeAt = Date.now() + backoff;
    u.lastError = reason;
    if (u.healthy || u.failures === 1) this.log("warn", `upstream ${u.name} ejected (${reason}); next probe in ${(backoff / 1000).toFixed(1)} s`);
    u.healthy = false;
  }

  /** Every model id an upstream serves now (healthy or not, as last seen). */
  modelIds(): string[] {
    const ids = new Set<string>();
    for (const u of this.upstreams) for (const id of u.models.keys()) ids.add(id);
    return [...ids];
  }

  serving(model: string): Upstream[] {
    return this.upstreams.filter((u) => u.serves(model));
  }

  /** The model as the gateway presents it: the smallest context any worker has, their slots summed. */
  info(model: string): ModelInfo | null {
    const all = this.serving(model);
    if (all.length === 0) return null;
    const live = all.filter((u) => u.healthy);
    const ms = (live.length ? live : all).map((u) => u.models.get(model)!);
    const first = ms[0]!;
    return {
      id: model,
      path: "",
      type: first.type,
      contextWindow: Math.min(...ms.map((m) => m.contextWindow)),
      trainContext: Math.min(...ms.map((m) => m.contextWindow)),
      // The workers' vocabularies are unknown here: a generous bound, so only text that surely
      // cannot fit is refused by its byte count (the worker refuses the rest).
      longestTokenBytes: 1024,
      slots: live.reduce((n, u) => n + u.models.get(model)!.max, 0),
      embeddingDims: 0,
      vocabSize: 0,
      description: first.description || `remote, on ${live.length} of ${all.length} workers`,
      sizeBytes: 0,
      parameters: 0,
      chatTemplate: first.type === "chat",
      infill: false,
      supportsTools: ms.every((m) => m.supportsTools),
      supportsThinking: ms.some((m) => m.supportsThinking),
      // The workers render and parse chat themselves: the gateway detects no format.
      chatFormat: null,
      backend: "upstream",
      gpuLayers: 0,
    };
  }

  /** The cheapest coefficient among live workers of a model (what max_coefficient is checked against). */
  coefficient(model: string): number | null {
    const live = this.serving(model).filter((u) => u.healthy);
    return live.length ? Math.min(...live.map((u) => u.spec.coefficient)) : null;
  }

  /** Live load of each worker of a model, for /v1/models' workers[]. */
  workers(model: string): { running_requests: number; max_running_requests: number }[] {
    return this.serving(model)
      .filter((u) => u.healthy)
      .map((u) => {
        const m = u.models.get(model)!;
        return { running_requests: Math.max(m.running, u.inflight.get(model) ?? 0), max_running_requests: m.max };
      });
  }

  /**
   * The worker for a request: live, serving the model, within max_coefficient, not yet tried. A
   * conversation stays on its worker while that one has room, and starts (or moves) where
   * rendezvous() puts its key; otherwise the cheapest coefficient with free slots wins, then the
   * most free slots per weight, then the one less often picked.
   * Throws 504 no_eligible_worker when none is left (seed 000).
   */
  pick(model: string, o: RouteOptions = {}): Upstream {
    const serving = this.serving(model);
    const live = serving.filter((u) => u.healthy && !o.exclude?.has(u.name));
    const max = o.maxCoefficient ?? 0;
    const eligible = max > 0 ? live.filter((u) => u.spec.coefficient <= max) : live;
    if (eligible.length === 0) {
      if (live.length > 0) {
        throw new ApiError("no_eligible_worker", `no worker for '${model}' within max_coefficient ${max} (the cheapest live one has ${Math.min(...live.map((u) => u.spec.coefficient))})`, "max_coefficient");
      }
      const why = serving.map((u) => `${u.name}: ${o.exclude?.has(u.name) ? "failed for this request" : (u.lastError ?? "down")}`).join("; ");
      throw new ApiError("no_eligible_worker", `no worker for '${model}' is available${why ? ` (${why})` : ""}; retry shortly`);
    }
    if (o.sticky) {
      const bound = eligible.find((u) => u.name === this.sticky.get(o.sticky!));
      // Its KV cache is warm there: stay unless it is full while another has room.
      if (bound && (bound.free(model) > 0 || !eligible.some((u) => u.free(model) > 0))) return this.chose(bound, model, o.sticky);
      // Unbound here (a new conversation, or one begun on another gateway): every gateway that sees
      // the same workers with room picks the same one, so the conversation finds its cache there.
      return this.chose(rendezvous(o.sticky, model, eligible), model, o.sticky);
    }
    const turn = this.turn++;
    const ranked = eligible
      .map((u, i) => ({ u, free: u.free(model), order: (i + turn) % eligible.length }))
      .sort((a, b) => {
        const roomA = a.free > 0 ? 1 : 0;
        const roomB = b.free > 0 ? 1 : 0;
        if (roomA !== roomB) return roomB - roomA;
        if (a.u.spec.coefficient !== b.u.spec.coefficient) return a.u.spec.coefficient - b.u.spec.coefficient;
        const fa = a.free * a.u.spec.weight;
        const fb = b.free * b.u.spec.weight;
        if (fa !== fb) return fb - fa;
        return a.order - b.order;
      });
    return this.chose(ranked[0]!.u, model, o.sticky);
  }

  private chose(u: Upstream, model: string, sticky: string | undefined): Upstream {
    if (sticky) {
      this.sticky.delete(sticky);
      this.sticky.set(sticky, u.name);
      // Oldest bindings go first (a Map iterates in insertion order).
      if (this.sticky.size > STICKY_MAX) this.sticky.delete(this.sticky.keys().next().value!);
    }
    u.routed++;
    u.inflight.set(model, (u.inflight.get(model) ?? 0) + 1);
    return u;
  }

  /** A request got its first output from a worker: its failures are forgiven. */
  succeeded(u: Upstream): void {
    u.failures = 0;
  }

  /** A request routed by pick() has ended (however it ended). */
  release(u: Upstream, model: string): void {
    u.inflight.set(model, Math.max(0, (u.inflight.get(model) ?? 0) - 1));
  }

  /** The worker a conversation is bound to, if any. */
  stickyOf(key: string): string | null {
    return this.sticky.get(key) ?? null;
  }

  state() {
    return this.upstreams.map((u) => ({
      name: u.name,
      url: u.spec.url,
      healthy: u.healthy,
      coefficient: u.spec.coefficient,
      weight: u.spec.weight,
      models: [...u.models.keys()],
      inflight: [...u.inflight.values()].reduce((a, b) => a + b, 0),
      routed: u.routed,
      failures: u.failures,
      last_error: u.lastError,
    }));
  }
}

// Process-wide metrics in Prometheus text format (exposition format 0.0.4): HTTP requests, tokens,
// time to first token, inter-token latency, errors. Gauges that mirror live state (queue, slots, KV)
// are read from a callback at scrape time, never stored twice; so is the TON deposit watcher's state.
import type { Usage } from "../inference/types.ts";
import type { WatcherState } from "../ton/watcher.ts";

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (l: Labels) => {
  const keys = Object.keys(l);
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(l[k]!)}"`).join(",")}}` : "";
};
const keyOf = (l: Labels) => JSON.stringify(Object.entries(l).sort());
const num = (x: number) => (Number.isFinite(x) ? String(x) : x > 0 ? "+Inf" : x < 0 ? "-Inf" : "NaN");

class Counter {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels);
    const cur = this.values.get(k);
    if (cur) cur.value += by;
    else this.values.set(k, { labels, value: by });
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join("\n");
  }
}

class Histogram {
  readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {}
  observe(value: number, labels: Labels = {}): void {
    const k = keyOf(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: num(b) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

/** Live per-model state, read at scrape time. */
export interface GaugeSource {
  models(): { model: string; slotsBusy: number; slotsTotal: number; queued: number; kvUsedCells?: number; kvTotalCells?: number; restarts: number; speculative?: SpeculativeCounts | null }[];
}

/** A model's speculative decoding counters (ModelStats), by method. */
export interface SpeculativeCounts {
  method: "ngram" | "draft";
  drafted: number;
  accepted: number;
  steps: number;
  draftMs: number;
}

export interface GenerationRecord extends Usage {
  model: string;
  endpoint: string;
  /** Seconds from submit to the first output, when there was output. */
  ttft: number | null;
  /** Seconds between consecutive outputs. */
  interTokenLatencies: number[];
  /** Seconds from submit to the end. */
  duration: number;
  finishReason: string;
}

const COMPLETION_ROUTES = new Set(["/completions", "/v1/completions"]);
const CHAT_ROUTES = new Set(["/chat/completions", "/v1/chat/completions"]);

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28];

export class Metrics {
  readonly httpRequests = new Counter("cocoon_http_requests_total", "HTTP requests by route, method and status.");
  readonly httpDuration = new Histogram("cocoon_http_request_duration_seconds", "Time to the response headers, by route.", LATENCY_BUCKETS);
  readonly errors = new Counter("cocoon_errors_total", "Error responses by OpenAI error code.");
  readonly generations = new Counter("cocoon_generations_total", "Finished generations by model, endpoint and finish reason.");
  readonly promptTokens = new Counter("cocoon_prompt_tokens_total", "Prompt tokens by model (cached ones included).");
  readonly cachedTokens = new Counter("cocoon_cached_prompt_tokens_total", "Prompt tokens served from the KV cache, by model.");
  readonly completionTokens = new Counter("cocoon_completion_tokens_total", "Generated tokens by model.");
  readonly reasoningTokens = new Counter("cocoon_reasoning_tokens_total", "Generated tokens inside reasoning, by model.");
  readonly ttft = new Histogram("cocoon_time_to_first_token_seconds", "Time from submit to the first output, by model.", LATENCY_BUCKETS);
  readonly itl = new Histogram("cocoon_inter_token_latency_seconds", "Time between consecutive outputs of one generation, by model.", ITL_BUCKETS);
  readonly generationDuration = new Histogram("cocoon_generation_duration_seconds", "Time from submit to the end of a generation, by model.", LATENCY_BUCKETS);
  // Seed 003's metric names, so dashboards built on that service keep working.
  readonly seedHealth = new Counter("health_check_requests_total", "GET /health requests (seed 003).");
  readonly seedCompletions = new Counter("completions_requests_total", "Requests to /completions and /v1/completions (seed 003).");
  readonly seedChat = new Counter("chat_completions_requests_total", "Requests to /chat/completions and /v1/chat/completions (seed 003).");
  readonly seedDuration = new Histogram("completions_duration_seconds", "Inference latency: submit to the end of a generation (seed 003).", LATENCY_BUCKETS);
  readonly seedTokens = new Counter("completions_tokens_total", "Tokens generated (seed 003).");
  readonly seedErrors = new Counter("completions_errors_total", "Error responses of the completion and chat routes (seed 003).");
  readonly startedAt = Date.now();
  /** seed 002's counters, kept alongside. */
  served = 0;
  responseSecondsTotal = 0;
  active = 0;
  /** The TON deposit watcher's state, read at scrape time; null while it does not run. */
  tonWatcher: (() => WatcherState | null) | null = null;

  constructor(private readonly gauges?: GaugeSource) {
    // Unlabelled counters start at 0 so they are scraped before the first event.
    for (const c of [this.seedHealth, this.seedCompletions, this.seedChat, this.seedTokens, this.seedErrors]) c.inc({}, 0);
  }

  observeHttp(route: string, method: string, status: number, seconds: number): void {
    this.httpRequests.inc({ route, method, status: String(status) });
    this.httpDuration.observe(seconds, { route });
    const seed = route === "/health" ? this.seedHealth : COMPLETION_ROUTES.has(route) ? this.seedCompletions : CHAT_ROUTES.has(route) ? this.seedChat : null;
    seed?.inc();
    if (seed && seed !== this.seedHealth && status >= 400) this.seedErrors.inc();
  }

  observeError(code: string | null, status: number): void {
    this.errors.inc({ code: code ?? "none", status: String(status) });
  }

  observeGeneration(g: GenerationRecord): void {
    const model = { model: g.model };
    this.generations.inc({ model: g.model, endpoint: g.endpoint, finish_reason: g.finishReason });
    this.promptTokens.inc(model, g.promptTokens);
    this.cachedTokens.inc(model, g.cachedTokens);
    this.completionTokens.inc(model, g.completionTokens);
    this.reasoningTokens.inc(model, g.reasoningTokens);
    if (g.ttft !== null) this.ttft.observe(g.ttft, model);
    for (const x of g.interTokenLatencies) this.itl.observe(x, model);
    this.generationDuration.observe(g.duration, model);
    this.seedDuration.observe(g.duration);
    this.seedTokens.inc({}, g.completionTokens);
    this.served++;
    this.responseSecondsTotal += g.duration;
  }

  render(): string {
    const parts = [
      this.httpRequests,
      this.httpDuration,
      this.errors,
      this.generations,
      this.promptTokens,
      this.cachedTokens,
      this.completionTokens,
      this.reasoningTokens,
      this.ttft,
      this.itl,
      this.generationDuration,
      this.seedHealth,
      this.seedCompletions,
      this.seedChat,
      this.seedDuration,
      this.seedTokens,
      this.seedErrors,
    ].map((m) => m.render());
    const gauge = (name: string, help: string, rows: [Labels, number][]) =>
      [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...rows.map(([l, v]) => `${name}${labelText(l)} ${num(v)}`)].join("\n");
    const models = this.gauges?.models() ?? [];
    parts.push(
      gauge("cocoon_active_requests", "Requests being answered right now.", [[{}, this.active]]),
      gauge("cocoon_queue_length", "Requests waiting for a slot, by model.", models.map((m) => [{ model: m.model }, m.queued])),
      gauge("cocoon_slots_busy", "Slots generating or processing a prompt, by model.", models.map((m) => [{ model: m.model }, m.slotsBusy])),
      gauge("cocoon_slots", "Parallel slots, by model.", models.map((m) => [{ model: m.model }, m.slotsTotal])),
      gauge(
        "cocoon_kv_cache_usage_ratio",
        "Share of the KV cache holding tokens, by model.",
        models.filter((m) => m.kvTotalCells).map((m) => [{ model: m.model }, (m.kvUsedCells ?? 0) / m.kvTotalCells!]),
      ),
      gauge("cocoon_worker_restarts", "Times a model's inference worker was restarted.", models.map((m) => [{ model: m.model }, m.restarts])),
      gauge("cocoon_uptime_seconds", "Seconds since the server started.", [[{}, (Date.now() - this.startedAt) / 1000]]),
    );
    const counter = (name: string, help: string, rows: [Labels, number][]) =>
      [`# HELP ${name} ${help}`, `# TYPE ${name} counter`, ...rows.map(([l, v]) => `${name}${labelText(l)} ${num(v)}`)].join("\n");
    const spec = models.flatMap((m) => (m.speculative ? [{ labels: { model: m.model, method: m.speculative.method }, ...m.speculative }] : []));
    if (spec.length) {
      parts.push(
        counter("cocoon_speculative_drafted_tokens_total", "Tokens guessed by speculative decoding (method ngram: n-gram lookup; draft: a draft model), by model.", spec.map((x) => [x.labels, x.drafted])),
        counter("cocoon_speculative_accepted_tokens_total", "Guessed tokens the target's sampling kept (each one a decode step saved), by model.", spec.map((x) => [x.labels, x.accepted])),
        counter("cocoon_speculative_verify_steps_total", "Slot steps that verified a draft, by model.", spec.map((x) => [x.labels, x.steps])),
        counter("cocoon_speculative_draft_seconds_total", "Time spent drafting (the draft model's decodes), by model.", spec.map((x) => [x.labels, x.draftMs / 1000])),
        gauge("cocoon_speculative_acceptance_ratio", "Accepted over drafted tokens since start, by model.", spec.map((x) => [x.labels, x.drafted ? x.accepted / x.drafted : 0])),
        gauge(
          "cocoon_speculative_tokens_per_step",
          "Tokens a verifying step produced on average (1 + accepted / steps): the speed-up over one token a step before the cost of drafting, by model.",
          spec.map((x) => [x.labels, x.steps ? 1 + x.accepted / x.steps : 1]),
        ),
      );
    }
    const ton = this.tonWatcher?.() ?? null;
    if (ton) {
      const seconds = (ms: number | null): [Labels, number][] => (ms === null ? [] : [[{}, ms / 1000]]);
      parts.push(
        gauge("cocoon_ton_watcher_running", "1 while the TON deposit watcher polls.", [[{ wallet: ton.wallet, network: ton.network }, ton.running ? 1 : 0]]),
        gauge("cocoon_ton_cursor_lt", "Logical time of the newest wallet transaction processed.", ton.cursor ? [[{}, Number(ton.cursor.lt)]] : []),
        gauge("cocoon_ton_cursor_info", "The newest wallet transaction processed, as labels.", ton.cursor ? [[{ lt: ton.cursor.lt, hash: ton.cursor.hash }, 1]] : []),
        gauge("cocoon_ton_backfill_in_progress", "1 while a backlog longer than one page is being paged through.", [[{}, ton.backfill ? 1 : 0]]),
        gauge("cocoon_ton_backfill_staged_transactions", "Transactions of the backlog fetched and kept, not yet recorded.", [[{}, ton.backfill?.staged ?? 0]]),
        gauge("cocoon_ton_backfill_anchor_lt", "Logical time paging of the backlog goes on from.", ton.backfill ? [[{}, Number(ton.backfill.anchor.lt)]] : []),
        gauge("cocoon_ton_last_poll_timestamp_seconds", "Unix time the last poll ended, successful or not.", seconds(ton.lastPollAt)),
        gauge("cocoon_ton_last_success_timestamp_seconds", "Unix time of the last successful poll.", seconds(ton.lastSuccessAt)),
        gauge("cocoon_ton_last_error_timestamp_seconds", "Unix time of the last failed poll.", seconds(ton.lastErrorAt)),
        gauge("cocoon_ton_consecutive_poll_errors", "Polls failed in a row (0 while healthy).", [[{}, ton.consecutiveErrors]]),
        counter("cocoon_ton_polls_total", "Successful polls of the deposit wallet.", [[{}, ton.polls]]),
        counter(
          "cocoon_ton_poll_errors_total",
          "Failed TON API calls by kind (rate-limited calls retried within a poll count too).",
          Object.entries(ton.pollErrors).map(([kind, n]): [Labels, number] => [{ kind }, n]),
        ),
        counter("cocoon_ton_transactions_total", "Wallet transactions recorded by this process, by outcome.", [
          [{ status: "credited" }, ton.credited],
          [{ status: "unmatched" }, ton.unmatched],
          [{ status: "ignored" }, ton.ignored],
        ]),
        counter("cocoon_ton_credited_nanoton_total", "Nanoton this process credited from deposits.", [[{}, Number(ton.creditedNanoton)]]),
      );
    }
    return `${parts.join("\n")}\n`;
  }
}

// Operations endpoints: /health (always 200 while the process runs), /readiness (503 until models are
// loaded), /stats (text, or JSON on request), /jsonstats (seed 002's counters and per-model load) and
// /metrics (Prometheus text format).
import { Elysia, t } from "elysia";
import type { Backend } from "../generation/backend.ts";
import type { Metrics } from "./metrics.ts";
import type { WatcherState } from "../ton/watcher.ts";

export interface OpsDeps {
  metrics: Metrics;
  version: string;
  /** The engine once models are loaded, else null (the server answers /health while loading). */
  loadedEngine(): Backend | null;
  /** The TON deposit watcher's state; absent or null when it does not run. */
  tonWatcher?: () => WatcherState | null;
}

const HealthResponse = t.Object(
  {
    status: t.Literal("ok"),
    version: t.String(),
    service: t.String(),
    uptime: t.Number({ description: "Seconds since start." }),
    timestamp: t.String({ description: "ISO 8601." }),
    model_info: t.Object({
      model_name: t.Union([t.String(), t.Null()]),
      device: t.Union([t.String(), t.Null()]),
      dtype: t.Union([t.String(), t.Null()]),
      models: t.Array(t.String()),
      loaded: t.Boolean(),
    }),
  },
  { $id: "#/components/schemas/Health" },
);

const Readiness = t.Object({
  status: t.String({ description: "ready, or loading (503)." }),
  models_available: t.Integer(),
  timestamp: t.String({ description: "ISO 8601." }),
  models: t.Array(t.String()),
});

const JsonStats = t.Object(
  {
    requests_served: t.Integer(),
    total_tokens_generated: t.Integer(),
    total_prompt_tokens: t.Integer(),
    average_response_time: t.Number({ description: "Seconds per finished generation." }),
    queue_length: t.Integer(),
    active_requests: t.Integer(),
    uptime: t.Number(),
    models: t.Array(
      t.Object({
        id: t.String(),
        slots_busy: t.Integer(),
        slots_total: t.Integer(),
        queue_length: t.Integer(),
        load_pct: t.Number(),
        kv_cache_usage: t.Number(),
        requests: t.Integer(),
        prompt_tokens: t.Integer(),
        generated_tokens: t.Integer(),
        cached_tokens: t.Integer(),
        speculative: t.Optional(t.Union([t.Literal("ngram"), t.Literal("draft"), t.Null()], { description: "Speculative decoding: n-gram lookup (--ngram-draft), a draft model (#draft=PATH), or off." })),
        speculative_drafted_tokens: t.Optional(t.Integer()),
        speculative_accepted_tokens: t.Optional(t.Integer()),
        speculative_acceptance: t.Optional(t.Number({ description: "Accepted over drafted tokens." })),
        speculative_verify_steps: t.Optional(t.Integer({ description: "Slot steps that verified a draft." })),
        speculative_tokens_per_step: t.Optional(t.Number({ description: "1 + accepted / verify steps: tokens a verifying step produced on average." })),
        speculative_draft_ms: t.Optional(t.Integer({ description: "Time spent running the draft model." })),
        draft_kv_cells: t.Optional(t.Integer({ description: "KV cells the draft model's context holds." })),
        worker_restarts: t.Integer(),
      }),
    ),
    ton_watcher: t.Union(
      [
        t.Object({
          wallet: t.String(),
          network: t.String(),
          running: t.Boolean(),
          cursor: t.Union([t.Object({ lt: t.String(), hash: t.String() }), t.Null()], { description: "The newest transaction processed (it and all older ones are done)." }),
          backfill: t.Union(
            [
              t.Object({
                staged: t.Integer({ description: "Transactions fetched and kept in the database, not yet recorded." }),
                anchor: t.Object({ lt: t.String(), hash: t.String() }, { description: "Paging goes on from this transaction (the oldest staged)." }),
                top: t.Object({ lt: t.String(), hash: t.String() }, { description: "The run's newest transaction: the cursor once it is recorded." }),
                target: t.Union([t.Object({ lt: t.String(), hash: t.String() }), t.Null()], { description: "The cursor the run heads for; null: the wallet's first transaction." }),
                complete: t.Boolean({ description: "Paging is done; the run is being recorded." }),
                started_at: t.String(),
              }),
              t.Null(),
            ],
            { description: "A backlog longer than one page being paged through across polls; null when there is none." },
          ),
          last_poll_at: t.Union([t.String(), t.Null()]),
          last_success_at: t.Union([t.String(), t.Null()]),
          last_error: t.Union([t.String(), t.Null()]),
          last_error_at: t.Union([t.String(), t.Null()]),
          consecutive_errors: t.Integer(),
          polls: t.Integer(),
          poll_errors: t.Record(t.String(), t.Integer()),
          credited: t.Integer({ description: "Deposits this process credited." }),
          credited_nanoton: t.Integer(),
          unmatched: t.Integer({ description: "Transfers this process recorded as unmatched." }),
          ignored: t.Integer(),
        }),
        t.Null(),
      ],
      { description: "The TON deposit watcher; null when it does not run (no wallet, or --no-auth)." },
    ),
  },
  { $id: "#/components/schemas/JsonStats" },
);

export function jsonStats(deps: OpsDeps) {
  const engine = deps.loadedEngine();
  const stats = engine?.stats() ?? [];
  const m = deps.metrics;
  const sum = (f: (s: (typeof stats)[number]) => number) => stats.reduce((n, s) => n + f(s), 0);
  const ton = deps.tonWatcher?.() ?? null;
  const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    requests_served: m.served,
    total_tokens_generated: sum((s) => s.generatedTokens),
    total_prompt_tokens: sum((s) => s.promptTokens),
    average_response_time: m.served ? Math.round((m.responseSecondsTotal / m.served) * 1000) / 1000 : 0,
    queue_length: sum((s) => s.queued),
    active_requests: m.active,
    uptime: Math.round((Date.now() - m.startedAt) / 10) / 100,
    models: stats.map((s) => ({
      id: s.id,
      slots_busy: s.slotsBusy,
      slots_total: s.slotsTotal,
      queue_length: s.queued,
      load_pct: s.slotsTotal ? Math.round((s.slotsBusy / s.slotsTotal) * 1000) / 10 : 0,
      kv_cache_usage: s.kvTotalCells ? Math.round((s.kvUsedCells / s.kvTotalCells) * 1000) / 1000 : 0,
      requests: s.requests,
      prompt_tokens: s.promptTokens,
      generated_tokens: s.generatedTokens,
      cached_tokens: s.cachedTokens,
      resident_sequences: s.residentSequences,
      kv_evictions: s.evictions,
      kv_compactions: s.kvCompactions,
      kv_compact_ms: Math.round(s.kvCompactMs),
      speculative: s.speculative,
      speculative_drafted_tokens: s.draftedTokens,
      speculative_accepted_tokens: s.acceptedTokens,
      speculative_acceptance: s.draftedTokens ? Math.round((s.acceptedTokens / s.draftedTokens) * 1000) / 1000 : 0,
      speculative_verify_steps: s.draftSteps,
      speculative_tokens_per_step: s.draftSteps ? Math.round((1 + s.acceptedTokens / s.draftSteps) * 1000) / 1000 : 0,
      speculative_draft_ms: Math.round(s.draftMs),
      draft_kv_cells: s.draftKvCells,
      worker_restarts: s.restarts,
    })),
    ton_watcher: ton && {
      wallet: ton.wallet,
      network: ton.network,
      running: ton.running,
      cursor: ton.cursor,
      backfill: ton.backfill && {
        staged: ton.backfill.staged,
        anchor: ton.backfill.anchor,
        top: ton.backfill.top,
        target: ton.backfill.target,
        complete: ton.backfill.complete,
        started_at: new Date(ton.backfill.startedAt).toISOString(),
      },
      last_poll_at: isoOrNull(ton.lastPollAt),
      last_success_at: isoOrNull(ton.lastSuccessAt),
      last_error: ton.lastError,
      last_error_at: isoOrNull(ton.lastErrorAt),
      consecutive_errors: ton.consecutiveErrors,
      polls: ton.polls,
      poll_errors: ton.pollErrors,
      credited: ton.credited,
      credited_nanoton: Number(ton.creditedNanoton),
      unmatched: ton.unmatched,
      ignored: ton.ignored,
    },
  };
}

function statsText(deps: OpsDeps): string {
  const s = jsonStats(deps);
  const lines = [
    `cocoon-server ${deps.version}`,
    `uptime: ${s.uptime.toFixed(0)} s`,
    `requests served: ${s.requests_served}`,
    `active requests: ${s.active_requests}`,
    `queued requests: ${s.queue_length}`,
    `tokens generated: ${s.total_tokens_generated}`,
    `prompt tokens: ${s.total_prompt_tokens}`,
    `average response time: ${s.average_response_time.toFixed(3)} s`,
    "",
    "models:",
    ...s.models.map(
      (m) =>
        `  ${m.id}: ${m.slots_busy}/${m.slots_total} slots busy (${m.load_pct}%), ${m.queue_length} queued, ` +
        `KV cache ${(m.kv_cache_usage * 100).toFixed(1)}%, ${m.requests} requests, ${m.generated_tokens} tokens generated, ${m.cached_tokens} prompt tokens from cache`,
    ),
  ];
  if (s.models.length === 0) lines.push("  (loading)");
  return `${lines.join("\n")}\n`;
}

export function opsRoutes(deps: OpsDeps) {
  const tags = ["Operations"];
  return new Elysia({ name: "ops" })
    .get(
      "/health",
      () => {
        const engine = deps.loadedEngine();
        const models = engine?.models() ?? [];
        const first = models[0];
        return {
          status: "ok" as const,
          version: deps.version,
          service: "cocoon-server",
          uptime: Math.round((Date.now() - deps.metrics.startedAt) / 10) / 100,
          timestamp: new Date().toISOString(),
          model_info: {
            model_name: first?.id ?? null,
            device: first?.backend ?? null,
            dtype: first ? (first.description.split(" ").at(-1) ?? null) : null,
            models: models.map((m) => m.id),
            loaded: engine !== null,
          },
        };
      },
      { response: { 200: HealthResponse }, detail: { tags, summary: "Health check", description: "Always 200 while the process runs." } },
    )
    .get(
      "/readiness",
      ({ set }) => {
        const engine = deps.loadedEngine();
        const timestamp = new Date().toISOString();
        // Seed 003's fields (status, models_available, timestamp) plus the ids.
        if (!engine) {
          set.status = 503;
          set.headers["Retry-After"] = "2";
          return { status: "loading", models_available: 0, timestamp, models: [] };
        }
        const models = engine.models().map((m) => m.id);
        return { status: "ready", models_available: models.length, timestamp, models };
      },
      {
        response: { 200: Readiness, 503: Readiness },
        detail: { tags, summary: "Readiness", description: "200 once every model is loaded, 503 before." },
      },
    )
    .get(
      "/stats",
      ({ request }) => {
        if ((request.headers.get("accept") ?? "").includes("application/json")) return jsonStats(deps);
        return new Response(statsText(deps), { headers: { "Content-Type": "text/plain; charset=utf-8" } });
      },
      { detail: { tags, summary: "Statistics", description: "Human-readable text; JSON (as /jsonstats) when the request accepts application/json." } },
    )
    .get("/jsonstats", () => jsonStats(deps), { response: { 200: JsonStats }, detail: { tags, summary: "Statistics as JSON" } })
    .get("/metrics", () => new Response(deps.metrics.render(), { headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" } }), {
      detail: { tags, summary: "Prometheus metrics", description: "Prometheus text exposition format 0.0.4." },
    });
}

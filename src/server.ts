// Starts the HTTP server at once (so /health answers and /readiness says 503 while models load),
// then the engine; stops gracefully: no new connections, in-flight requests get a grace period.
import pkg from "../package.json" with { type: "json" };
import type { Config } from "./config/config.ts";
import { modelAliases, modelPrices, resolveModels, DEMO_MODEL, type ModelEntry } from "./config/models.ts";
import { Engine, type EngineOptions } from "./inference/engine.ts";
import { createApp, engineMetrics, openServices } from "./app.ts";
import { parseCorsOrigins } from "./http/cors.ts";
import { ApiError } from "./http/errors.ts";
import { hostGuard, isLoopback } from "./http/host.ts";
import { raiseParserHeaderLimit } from "./http/header-size.ts";
import { Cluster } from "./upstream/cluster.ts";
import { UpstreamPool } from "./upstream/pool.ts";
import { parseUpstreams } from "./upstream/spec.ts";
import { checkWorkerConfig, currentCacheScope, enterCacheScope, workerGuard } from "./upstream/worker-role.ts";

export interface RunningServer {
  url: string;
  /** The local engine once loaded (null on a gateway that serves no model itself). */
  engine: Promise<Engine | null>;
  stop(reason?: string): Promise<void>;
}

export type Logger = (level: "debug" | "info" | "warn" | "error", line: string) => void;

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

/** One-line logs to stderr (the journal under systemd), filtered by --log-level. */
export function makeLogger(min: string): Logger {
  const floor = LEVELS[min as keyof typeof LEVELS] ?? LEVELS.info;
  return (level, line) => {
    if (LEVELS[level] >= floor) console.error(`${level.toUpperCase().padEnd(5)} ${line}`);
  };
}

/** The warning for --no-auth on an address beyond loopback, or null on loopback. */
export function noAuthExposure(host: string): string | null {
  if (isLoopback(host)) return null;
  return `--no-auth on ${host || "every address"}, beyond loopback: anyone who can reach it uses the models and reads the sessions, with no key. Listen on 127.0.0.1, or turn keys on.`;
}

/** Engine settings from the config; models carry their own overrides. */
export function engineOptions(config: Config, models: ModelEntry[]): EngineOptions {
  return {
    models: models.map((m) => ({ id: m.id, path: m.path, type: m.type, slots: m.slots, ctxSize: m.ctxSize, gpuLayers: m.gpuLayers, draft: m.draft })),
    slots: config.parallel,
    ctxSize: config.ctxSize,
    batchSize: config.batchSize,
    promptBudget: config.promptBudget,
    ngramDraft: config.ngramDraft,
    threads: config.threads,
    gpuLayers: config.gpuLayers,
    maxQueue: config.maxQueue,
    cacheRamMiB: config.cacheRam,
    libDir: config.libDir || undefined,
    llamaLogLevel: config.llamaLogLevel as EngineOptions["llamaLogLevel"],
  };
}

export async function startServer(config: Config, log: Logger = makeLogger(config.logLevel)): Promise<RunningServer> {
  checkWorkerConfig(config);
  const upstreams = parseUpstreams(config.upstream);
  // A gateway serves only its workers' models unless it is given models of its own.
  const models: ModelEntry[] = upstreams.length && config.model.length === 0 && !config.modelsDir ? [] : resolveModels(config);
  if (models.length && config.model.length === 0 && !config.modelsDir) {
    log("info", `no --model given: serving the built-in demo model "${models[0]!.id}" (random weights, for trying the API)${models[0]!.path === DEMO_MODEL ? "" : ` from ${models[0]!.path}`}`);
  }
  let engine: Engine | null = null;
  let shuttingDown = false;
  // A model's coefficient (what max_coefficient compares) is its own, else its price relative to the
  // base price (1000 = the base price; a model at twice the price is 2000).
  const prices = modelPrices(config);
  const base = BigInt(config.priceNanoton);
  const coefficients = new Map(
    models.map((m) => {
      const price = prices.get(m.id);
      const derived = price === undefined || base === 0n ? 1000 : Math.max(1, Number((price * 1000n + base / 2n) / base));
      return [m.id, m.coefficient ?? derived];
    }),
  );
  const aliases = modelAliases(models, config.modelAlias);
  const pool = upstreams.length ? new UpstreamPool(upstreams, { pollMs: config.upstreamPoll * 1000, log }) : null;
  const cluster = pool ? new Cluster({ pool, local: () => engine, localExpected: models.length > 0, firstByteTimeoutMs: config.upstreamTimeout * 1000, log }) : null;
  let loaded = false;
  // What the routes run on: the cluster on a gateway, else the engine once loaded.
  const backend = () => (cluster ? (loaded ? cluster : null) : engine);
  const metrics = engineMetrics(backend);
  const services = await openServices(config, { forget: (key) => engine?.forgetSession(key), log });
  const { platform, sessions, ton } = services;
  // Before serving: this server's lease, and the holds of processes that are gone released.
  await platform?.startLease((level, line) => log(level, line));
  const app = createApp({
    get engine() {
      if (shuttingDown) throw new ApiError("not_ready", "the server is shutting down", null, { "Retry-After": "5" });
      // A gateway routes to its workers while its own models (if any) still load.
      if (cluster) return cluster;
      if (!engine) throw new ApiError("not_ready", "models are still loading; see /readiness", null, { "Retry-After": "2" });
      return engine;
    },
    metrics,
    platform,
    sessions,
    ton,
    version: pkg.version,
    loadedEngine: backend,
    coefficient: (id) => cluster?.coefficient(id) ?? coefficients.get(id) ?? 1000,
    aliases,
    // Only a worker that checks the gateway's secret trusts the gateway's cache scopes.
    cacheScope: config.role === "worker" && config.workerSecret ? currentCacheScope : undefined,
    maxBodyBytes: config.maxBodyBytes,
    strictFields: config.strictFields,
    cors: parseCorsOrigins(config.corsOrigins),
    log: (line) => log("error", line),
    access: (line) => log("info", line),
  });
  if (config.role === "worker" && config.workerSecret) {
    // Authenticated by the shared secret: any Host the gateway uses is fine.
    const guard = workerGuard(config.workerSecret);
    app.onRequest(({ request }) => {
      guard(request);
      enterCacheScope(request);
    });
  } else if (config.noAuth || config.role === "worker") {
    // The address it listens on is a name it answers to, besides loopback and --allowed-hosts.
    const bound = ["0.0.0.0", "::", "[::]", ""].includes(config.host) ? [] : [config.host.includes(":") && !config.host.startsWith("[") ? `[${config.host}]` : config.host];
    // Origins the operator listed for CORS are configured origins too (not "any": that is the default).
    const cors = parseCorsOrigins(config.corsOrigins);
    const corsListed = cors.kind === "list" ? [...cors.origins] : [];
    const guard = hostGuard({ hosts: [...bound, ...config.allowedHosts], origins: [...config.allowedOrigins, ...corsListed] });
    app.onRequest(({ request }) => guard(request));
    const exposed = noAuthExposure(config.host);
    if (exposed) log("warn", exposed);
  }
  // Bun's own 431 for large headers has no body: its limit goes up, the app refuses them in our shape.
  raiseParserHeaderLimit();
  app.listen({
    hostname: config.host,
    port: config.port,
    // Above our own limit, so the app answers oversized bodies with a proper 413 first.
    maxRequestBodySize: config.maxBodyBytes + 1024 * 1024,
    // Streams can be quiet for long while a prompt is processed.
    idleTimeout: 255,
    // Never Bun's development error page (it shows paths, source and the URL with any ?api_key=):
    // whatever escapes the app's own error handling is a plain 500 in OpenAI's shape.
    development: false,
    error(err: Error) {
      log("error", `unhandled: ${err.stack ?? err.message}`);
      return new ApiError("server_error", "The server had an error while processing your request.").response();
    },
  });
  const server = app.server!;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  log("info", `listening on ${url} (OpenAI API at ${url}/v1, docs at ${url}/swagger)`);
  ton?.watcher?.start();

  const t0 = performance.now();
  for (const m of models) log("info", `loading model ${m.id} from ${m.path} ...`);
  if (pool) for (const u of upstreams) log("info", `upstream ${u.name}: ${u.url} (coefficient ${u.coefficient}, weight ${u.weight}${u.models ? `, models ${u.models.join(", ")}` : ""})`);
  const local = models.length ? Engine.start(engineOptions(config, models)) : Promise.resolve(null);
  // A gateway is ready once its own models are loaded and each upstream has been polled once.
  const ready = Promise.all([local, pool?.start()]).then(([e]) => {
    engine = e;
    loaded = true;
    for (const info of e?.models() ?? []) {
      log("info", `model ${info.id} ready: ${info.type}, ${info.description}, context ${info.contextWindow} tokens x ${info.slots} slots, ${info.backend}`);
    }
    if (pool) log("info", `upstreams: ${pool.upstreams.filter((u) => u.healthy).length} of ${pool.upstreams.length} up, serving ${pool.modelIds().join(", ") || "no models yet"}`);
    log("info", `ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return e;
  });

  return {
    url,
    engine: ready,
    async stop(reason = "shutdown") {
      if (shuttingDown) return;
      shuttingDown = true;
      log("info", `${reason}: no new requests; waiting up to ${config.shutdownGrace} s for ${metrics.active} in flight`);
      server.stop(false);
      await ton?.watcher?.stop();
      await pool?.stop();
      const deadline = Date.now() + config.shutdownGrace * 1000;
      while (metrics.active > 0 && Date.now() < deadline) await Bun.sleep(50);
      if (metrics.active > 0) {
        log("warn", `cancelling ${metrics.active} requests still running`);
        // Cut in the worker, so each is billed what it processed, and each stream ends with a
        // "shutting_down" error event; the responses get a moment to go out before connections close.
        await engine?.stopAll(5_000);
        const flushed = Date.now() + 2_000;
        while ((metrics.active > 0 || server.pendingRequests > 0) && Date.now() < flushed) await Bun.sleep(20);
      }
      engine?.close();
      server.stop(true);
      await platform?.endLease();
      services.close();
      log("info", "stopped");
    },
  };
}

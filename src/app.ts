// The composition root: builds every service from the config (platform, sessions, TON) and mounts
// every front door on one Elysia app with the plumbing around it (body parser, errors, metrics, docs).
import { Elysia } from "elysia";
import { openapi } from "@elysiajs/openapi";
import type { Config } from "./config/config.ts";
import { compatRoutes } from "./compat/index.ts";
import type { Backend } from "./generation/backend.ts";
import type { GenerationDeps } from "./generation/deps.ts";
import { checkDeclaredLength, parseJsonBody } from "./http/body.ts";
import { anthropicRoutes } from "./anthropic/index.ts";
import { corsPlugin, type CorsPolicy } from "./http/cors.ts";
import { ApiError, anthropicErrorShape, shapedErrorResponse, toApiError, type ErrorShapes } from "./http/errors.ts";
import { hasValidUrl, pathOf } from "./http/request-url.ts";
import { swaggerRoutes } from "./http/swagger.ts";
import { checkHeaderSize } from "./http/header-size.ts";
import { validationMessage, validationParam } from "./http/validation.ts";
import { openaiRoutes } from "./openai/index.ts";
import { opsRoutes } from "./ops/index.ts";
import { Metrics } from "./ops/metrics.ts";
import { platformRoutes } from "./platform/index.ts";
import { responsesRoutes } from "./responses/index.ts";
import { ResponseStore } from "./responses/store.ts";
import { openPlatformStore, storeLocation, storeLocationLines, storePath } from "./platform/open.ts";
import type { Platform } from "./platform/service.ts";
import { SessionService } from "./sessions/service.ts";
import { sessionRoutes } from "./sessions/index.ts";
import { openStore } from "./store/db.ts";
import { isPg } from "./store/query.ts";
import { tokenizeRoutes } from "./tokenize/index.ts";
import { tonRoutes } from "./ton/index.ts";
import { openTon, type TonSetup } from "./ton/open.ts";
import { webRoutes } from "./web/index.ts";

export interface AppDeps {
  /**
   * The engine (on a gateway: the cluster of it and the upstream workers); may be a getter that
   * throws 503 while models load or during shutdown.
   */
  readonly engine: Backend;
  /** The engine once models are loaded, else null (the server answers /health while loading). */
  loadedEngine(): Backend | null;
  version: string;
  /** Keys, rate limits and billing; null with --no-auth. */
  platform: Platform | null;
  /** Server-side sessions. Defaults to the platform's database, or a private in-memory one. */
  sessions?: SessionService;
  /** TON deposits (wallet, watcher, TON/USD rate); absent or null: deposits off, no rate. */
  ton?: TonSetup | null;
  /** Defaults to metrics over the loaded engine's stats. */
  metrics?: Metrics;
  /** Price coefficient of each model. Defaults to 1000 for every model. */
  coefficient?(model: string): number;
  /** Other names of the served models (alias → model id). Defaults to none. */
  aliases?: ReadonlyMap<string, string>;
  /** A worker's prompt-cache scope for the current request, named by its gateway. Defaults to none. */
  cacheScope?(): string | undefined;
  /** Largest accepted request body in bytes. Defaults to 8 MiB. */
  maxBodyBytes?: number;
  /** Server-side failures (500s), with their stack. */
  log?: (line: string) => void;
  /** One line per request (method, path, status, milliseconds). */
  access?: (line: string) => void;
  /**
   * A body that does not match its route's declared schema is a 500 (tests), or is sent as it is
   * after logging the mismatch (production: the request may already be billed). Defaults to true
   * under `bun test` (NODE_ENV=test), false otherwise.
   */
  strictResponses?: boolean;
  /** Unknown request fields are a 400 instead of ignored (`--strict-fields`). Defaults to false. */
  strictFields?: boolean;
  /** Which browser origins may call the API (`--cors-origins`). Defaults to any origin. */
  cors?: CorsPolicy;
}

// The advisory lock key of the TON deposit watcher on a shared Postgres ("cocoon-t" as a number).
const TON_WATCHER_LOCK = 0x636f636f6f6e2d74n;

// The balance waits this long at most for a due TON/USD refresh; after that it answers with what it has.
const RATE_WAIT_MS = 1_000;

/** Metrics whose per-model gauges read the loaded engine's stats (none while loading). */
export function engineMetrics(loadedEngine: () => Backend | null): Metrics {
  return new Metrics({
    models: () =>
      (loadedEngine()?.stats() ?? []).map((s) => ({
        model: s.id,
        slotsBusy: s.slotsBusy,
        slotsTotal: s.slotsTotal,
        queued: s.queued,
        kvUsedCells: s.kvUsedCells,
        kvTotalCells: s.kvTotalCells,
        restarts: s.restarts,
        speculative: s.speculative && { method: s.speculative, drafted: s.draftedTokens, accepted: s.acceptedTokens, steps: s.draftSteps, draftMs: s.draftMs },
      })),
  });
}

/** The stateful services a server runs on, opened from the config; close() closes their database. */
export interface Services {
  platform: Platform | null;
  /** Where the platform's database is (or the sessions' database with --no-auth). */
  storePath: string;
  sessions: SessionService;
  ton: TonSetup | null;
  close(): void;
}

export async function openServices(config: Config, o: { forget: (key: string) => unknown; log: (level: "debug" | "info" | "warn" | "error", line: string) => void }): Promise<Services> {
  // A worker bills nothing itself: the gateway in front of it does.
  const opened = config.noAuth || config.role === "worker" ? null : await openPlatformStore(config);
  const pg = opened && isPg(opened.store) ? opened.store : null;
  const platform = opened?.service ?? null;
  // Without auth there is no platform, but chat sessions still persist: in the same database file,
  // all owned by the one local user.
  const path = opened?.path ?? storePath(config);
  // On Postgres everything is in it; no SQLite file is opened to name.
  if (!pg) for (const line of storeLocationLines(storeLocation(config))) o.log(line.startsWith("using the existing") ? "warn" : "info", line);
  o.log("info", platform ? "API keys and billing on" : config.role === "worker" ? "--role worker: billing is the gateway's; API keys are off" : "--no-auth: API keys and billing are off");
  if (pg) o.log("info", `ledger on Postgres ${pg.where}: several gateways may share it`);
  // Chat sessions and stored responses live with the ledger: on Postgres every gateway reads the same
  // ones, and a turn's lock is a row there held under this gateway's lease owner (a gateway that dies
  // mid-turn frees it once its lease expires). Without the platform: a local file.
  const local = platform ? null : openStore(path);
  const sessionsDb = opened?.store ?? local!;
  const sessions = new SessionService(sessionsDb, {
    forget: (key) => void o.forget(key),
    maxSessions: config.maxSessions,
    ttlMs: config.sessionTtlHours * 3_600_000,
    sharedLock: pg && platform ? { holder: platform.owner } : null,
  });
  if (pg) o.log("info", "chat sessions and stored responses on Postgres: any gateway continues a conversation");
  const closeLocal = () => {
    local?.close();
    if (opened && !isPg(opened.store)) opened.store.close();
  };
  // Deposits credit accounts, so they exist only with the platform; a bad TON setting stops the start.
  let ton: TonSetup | null = null;
  try {
    // On Postgres every gateway may watch: the one holding the advisory lock polls, the others stand by.
    ton = platform && opened ? (pg ? openTon(config, pg, o.log, () => pg.tryLock(TON_WATCHER_LOCK)) : openTon(config, opened.store, o.log)) : null;
  } catch (err) {
    closeLocal();
    throw err;
  }
  if (platform && !ton?.wallet) o.log("info", "no --ton-wallet: TON deposits are off (/v1/deposit says so)");
  if (!platform && config.tonWallet) o.log("warn", "--ton-wallet is ignored with --no-auth: without accounts there is nobody to credit");
  return {
    platform,
    storePath: path,
    sessions,
    ton,
    close: () => {
      closeLocal();
      void pg?.close();
    },
  };
}

/** Route label for metrics: the matched route pattern, never the raw path (bounded cardinality). */
function routeOf(route: string | undefined): string {
  return route && route !== "*" ? route : "unmatched";
}

// Routes that answer errors in another API's shape than OpenAI's (auth and validation failures included).
const ERROR_SHAPES: ErrorShapes = [{ prefix: "/v1/messages", shape: anthropicErrorShape }];

type ValidationFailure = { all?: { path: string; message: string; value?: unknown; schema?: unknown; type?: number }[]; type?: string; value?: unknown };

export function createApp(deps: AppDeps) {
  const metrics = deps.metrics ?? engineMetrics(() => deps.loadedEngine());
  const sessions =
    deps.sessions ??
    new SessionService(deps.platform?.store ?? openStore(":memory:"), {
      forget: (key) => deps.loadedEngine()?.forgetSession(key),
      ...(deps.platform?.shared ? { sharedLock: { holder: deps.platform.owner } } : {}),
    });
  // The watcher's state, read by both /jsonstats and /metrics: derived here from the one TON setup.
  const tonWatcher = () => deps.ton?.watcher?.state() ?? null;
  metrics.tonWatcher = tonWatcher;
  // Not a spread copy: `engine` may be a getter that throws while models load.
  const generation: GenerationDeps = {
    get engine() {
      return deps.engine;
    },
    metrics,
    platform: deps.platform,
    sessions,
    coefficient: deps.coefficient ?? (() => 1000),
    aliases: deps.aliases ?? new Map(),
    cacheScope: deps.cacheScope,
  };
  const maxBody = deps.maxBodyBytes ?? 8 * 2 ** 20;
  const log = deps.log ?? (() => {});
  const access = deps.access ?? (() => {});
  const started = new WeakMap<Request, number>();
  // The status a handler chose, read back when its body fails the schema (Elysia then sets 422).
  const handled = new WeakMap<Request, number>();
  const recorded = new WeakSet<Request>();
  const record = (request: Request, route: string | undefined, status: number) => {
    if (recorded.has(request)) return;
    recorded.add(request);
    const ms = performance.now() - (started.get(request) ?? performance.now());
    metrics.observeHttp(routeOf(route), request.method, status, ms / 1000);
    access(`${request.method} ${pathOf(request)} ${status} ${ms.toFixed(1)}ms`);
  };
  const platform = deps.platform;
  const strict = deps.strictResponses ?? process.env.NODE_ENV === "test";
  const fields = { strict: deps.strictFields ?? false };
  return new Elysia({ normalize: false })
    // First: a preflight is answered before anything else runs, and every response gets the headers.
    .use(corsPlugin(deps.cors ?? { kind: "any" }))
    .onRequest(({ request }) => {
      started.set(request, performance.now());
      if (!hasValidUrl(request)) throw new ApiError("invalid_request", "The request has no valid Host header.");
      checkDeclaredLength(request, maxBody);
      checkHeaderSize(request);
    })
    .onParse(({ request }) => parseJsonBody(request, maxBody))
    .onError(({ code, error, request, route, set }) => {
      let api: ApiError;
      const cause = (error as { cause?: unknown }).cause;
      if (error instanceof ApiError) api = error;
      // Elysia wraps what a parse hook throws in a ParseError; ours carry the real kind (413, invalid UTF-8, ...).
      else if (code === "PARSE" && cause instanceof ApiError) api = cause;
      else if (code === "VALIDATION" && (error as ValidationFailure).type === "response") {
        // A handler returned a body its declared schema refuses: our bug, never the client's.
        const first = (error as ValidationFailure).all?.[0];
        log(`error ${request.method} ${pathOf(request)}: the response does not match its schema at '${first?.path ?? ""}': ${first?.message ?? "invalid"}`);
        if (!strict) {
          const status = handled.get(request) ?? 200;
          // Elysia set 422 for the failed check; the status sent is the one on the context.
          set.status = status;
          record(request, route, status);
          return Response.json((error as ValidationFailure).value, { status });
        }
        api = new ApiError("server_error", "The server had an error while processing your request.");
      } else if (code === "VALIDATION") {
        const e = error as ValidationFailure;
        const first = e.all?.[0];
        const param = first ? validationParam(first.path) : null;
        api = new ApiError("invalid_request", validationMessage(param, first?.message ?? "invalid", first?.value, first?.schema, first?.type, e.type), param);
      } else if (code === "PARSE") api = new ApiError("invalid_json", "We could not parse the JSON body of your request.");
      else if (code === "NOT_FOUND") api = new ApiError("not_found", `No route for ${request.method} ${pathOf(request)}.`);
      else {
        api = toApiError(error);
        if (api.status >= 500) log(`error ${request.method} ${pathOf(request)}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
      metrics.observeError(api.code, api.status);
      record(request, route, api.status);
      // Headers set on the context before the failure (the rate-limit headers) are added by Elysia.
      return shapedErrorResponse(api, pathOf(request), ERROR_SHAPES);
    })
    .onAfterHandle(({ request, set }) => {
      if (!strict && typeof set.status === "number") handled.set(request, set.status);
    })
    .onAfterResponse(({ request, route, set, responseValue }) => {
      const status = responseValue instanceof Response ? responseValue.status : typeof set.status === "number" ? set.status : 200;
      record(request, route, status);
    })
    .use(
      openapi({
        path: "/swagger",
        specPath: "/swagger/json",
        provider: null,
        documentation: {
          info: {
            title: "cocoon-server",
            version: deps.version,
            description: "A paid, OpenAI-compatible LLM API on llama.cpp: the OpenAI API, the Cocoon client and platform APIs, sessions and operations endpoints.",
          },
          tags: [
            { name: "OpenAI", description: "OpenAI-compatible inference" },
            { name: "Anthropic", description: "Anthropic Messages API (errors in Anthropic's shape)" },
            { name: "Responses", description: "OpenAI's Responses API, with stored responses per account" },
            { name: "Operations", description: "Health, readiness, statistics and metrics" },
            { name: "Authentication", description: "Accounts and API keys" },
            { name: "Billing", description: "Balance, deposits, pricing and usage, in nanoton" },
            { name: "Network", description: "Models and load, as the Cocoon platform reports them" },
            { name: "Admin", description: "Operator routes (admin token)" },
            { name: "Sessions", description: "Server-side chat sessions (our extension; turns via session_id on /v1/chat/completions)" },
            { name: "llama-server", description: "llama-server's tokenizer routes (key required, not billed)" },
            { name: "Seed 003", description: "The seed 003 service's API, field names and framings kept exactly (errors in OpenAI's shape)" },
          ],
          components: { securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "API key with the `ck_` prefix." } } },
        },
      }),
    )
    .use(swaggerRoutes())
    .use(webRoutes({ adminEnabled: () => platform?.adminConfigured ?? false }))
    .use(opsRoutes({ metrics, version: deps.version, loadedEngine: () => deps.loadedEngine(), tonWatcher }))
    .use(openaiRoutes(generation, fields))
    .use(anthropicRoutes(generation))
    .use(tokenizeRoutes({ get engine() { return deps.engine; }, platform }, fields))
    .use(responsesRoutes({ generation, store: new ResponseStore(sessions.db), platform }))
    .use(sessionRoutes({ sessions, platform }))
    .use(compatRoutes(generation))
    .use(
      platform
        ? platformRoutes({
            platform,
            modelIds: () => deps.loadedEngine()?.models().map((m) => m.id) ?? [],
            stats: () => {
              const backend = deps.loadedEngine();
              return (backend?.stats() ?? []).map((s) => ({ ...s, workers: backend?.workers?.(s.id).length }));
            },
            depositWallet: () => deps.ton?.wallet?.display ?? null,
            tonUsdRate: () => deps.ton?.rate?.get(RATE_WAIT_MS) ?? null,
            minimumDeposit: () => deps.ton?.minimum ?? 0n,
          })
        : new Elysia({ name: "platform-off" }),
    )
    .use(platform ? tonRoutes({ platform }) : new Elysia({ name: "ton-off" }));
}

export type App = ReturnType<typeof createApp>;

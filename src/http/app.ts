// The whole HTTP surface in one place: our JSON body parser (size limit, strict UTF-8, nesting), the
// closed error mapping, the OpenAPI document and Swagger UI, and every feature's routes. POST routes
// also declare `parse: "json"` so the document shows their JSON bodies.
import { Elysia } from "elysia";
import { openapi } from "@elysiajs/openapi";
import { ApiError, stickyHeaders, toApiError } from "./errors.ts";
import { validationMessage, validationParam } from "./validation.ts";
import { openaiRoutes } from "../openai/index.ts";
import { opsRoutes, type OpsDeps } from "../ops/index.ts";
import { swaggerRoutes } from "./swagger.ts";
import { webRoutes } from "../web/index.ts";
import { platformRoutes } from "../platform/index.ts";
import { tonRoutes } from "../ton/index.ts";
import type { TonSetup } from "../ton/open.ts";
import type { InferenceDeps } from "../openai/service.ts";
import { sessionRoutes } from "../sessions/index.ts";
import { SessionService } from "../sessions/service.ts";
import { compatRoutes } from "../compat/index.ts";
import { openStore } from "../store/db.ts";

export interface AppDeps extends InferenceDeps, OpsDeps {
  /** Largest accepted request body in bytes. Defaults to 8 MiB. */
  maxBodyBytes?: number;
  log?: (line: string) => void;
  /** One line per request (method, path, status, milliseconds). */
  access?: (line: string) => void;
  /** TON deposits (wallet, watcher, TON/USD rate); absent or null: deposits off, no rate. */
  ton?: TonSetup | null;
}

// The balance waits this long at most for a due TON/USD refresh; after that it answers with what it has.
const RATE_WAIT_MS = 1_000;

/** Route label for metrics: the matched route pattern, never the raw path (bounded cardinality). */
function routeOf(route: string | undefined): string {
  return route && route !== "*" ? route : "unmatched";
}

/** Deepest bracket nesting outside strings, in one pass. */
function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) max = Math.max(max, ++depth);
    else if (c === 93 || c === 125) depth--;
  }
  return max;
}

export function createApp(deps: AppDeps) {
  // Sessions live in the platform's database, or (an app built without one, e.g. in tests) in a
  // private in-memory store. Set on deps so every route module sees the same service.
  const sessions = (deps.sessions ??= new SessionService(deps.platform?.db ?? openStore(":memory:"), { forget: (key) => deps.loadedEngine()?.forgetSession(key) }));
  // The watcher's state, read by both /jsonstats and /metrics: derived here from the one TON setup.
  // Set on deps (not spread into a copy: `engine` may be a getter that throws while models load).
  deps.tonWatcher ??= () => deps.ton?.watcher?.state() ?? null;
  deps.metrics.tonWatcher = deps.tonWatcher;
  const maxBody = deps.maxBodyBytes ?? 8 * 2 ** 20;
  const log = deps.log ?? (() => {});
  const access = deps.access ?? (() => {});
  const started = new WeakMap<Request, number>();
  const recorded = new WeakSet<Request>();
  const record = (request: Request, route: string | undefined, status: number) => {
    if (recorded.has(request)) return;
    recorded.add(request);
    const ms = performance.now() - (started.get(request) ?? performance.now());
    deps.metrics.observeHttp(routeOf(route), request.method, status, ms / 1000);
    access(`${request.method} ${new URL(request.url).pathname} ${status} ${ms.toFixed(1)}ms`);
  };
  return new Elysia({ normalize: false })
    .onRequest(({ request }) => {
      started.set(request, performance.now());
      const length = Number(request.headers.get("content-length") ?? 0);
      if (length > maxBody) throw new ApiError("payload_too_large", `The request body is ${length} bytes; the limit is ${maxBody}.`);
    })
    .onParse(async ({ request }) => {
      if (request.method === "GET" || request.method === "HEAD") return;
      const buf = await request.arrayBuffer();
      // No body at all: routes whose body is optional (e.g. POST /v1/keys) take it as absent.
      if (buf.byteLength === 0) return;
      // A chunked body has no Content-Length for onRequest to check.
      if (buf.byteLength > maxBody) throw new ApiError("payload_too_large", `The request body is ${buf.byteLength} bytes; the limit is ${maxBody}.`);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
      } catch {
        throw new ApiError("invalid_json", "The request body is not valid UTF-8.");
      }
      if (nestingDepth(text) > 128) throw new ApiError("invalid_json", "The JSON body is nested more than 128 levels deep.");
      try {
        return JSON.parse(text);
      } catch {
        throw new ApiError("invalid_json", "We could not parse the JSON body of your request.");
      }
    })
    .onError(({ code, error, request, route }) => {
      let api: ApiError;
      const cause = (error as { cause?: unknown }).cause;
      if (error instanceof ApiError) api = error;
      // Elysia wraps what a parse hook throws in a ParseError; ours carry the real kind (413, invalid UTF-8, ...).
      else if (code === "PARSE" && cause instanceof ApiError) api = cause;
      else if (code === "VALIDATION") {
        const e = error as unknown as { all?: { path: string; message: string; value?: unknown; schema?: unknown; type?: number }[]; type?: string };
        const first = e.all?.[0];
        const param = first ? validationParam(first.path) : null;
        api = new ApiError("invalid_request", validationMessage(param, first?.message ?? "invalid", first?.value, first?.schema, first?.type, e.type), param);
      } else if (code === "PARSE") api = new ApiError("invalid_json", "We could not parse the JSON body of your request.");
      else if (code === "NOT_FOUND") api = new ApiError("not_found", `No route for ${request.method} ${new URL(request.url).pathname}.`);
      else {
        api = toApiError(error);
        if (api.status >= 500) log(`error ${request.method} ${new URL(request.url).pathname}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
      deps.metrics.observeError(api.code, api.status);
      record(request, route, api.status);
      return api.response(stickyHeaders.get(request));
    })
    .onAfterResponse(({ request, route, set, responseValue }) => {
      // Handlers return Response objects; their status is the one that went out.
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
            { name: "Operations", description: "Health, readiness, statistics and metrics" },
            { name: "Authentication", description: "Accounts and API keys" },
            { name: "Billing", description: "Balance, deposits, pricing and usage, in nanoton" },
            { name: "Network", description: "Models and load, as the Cocoon platform reports them" },
            { name: "Admin", description: "Operator routes (admin token)" },
            { name: "Sessions", description: "Server-side chat sessions (our extension; turns via session_id on /v1/chat/completions)" },
            { name: "Seed 003", description: "The seed 003 service's API, field names and framings kept exactly (errors in OpenAI's shape)" },
          ],
          components: { securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "API key with the `ck_` prefix." } } },
        },
      }),
    )
    .use(swaggerRoutes())
    .use(webRoutes())
    .use(opsRoutes(deps))
    .use(openaiRoutes(deps))
    .use(sessionRoutes({ sessions, platform: deps.platform }))
    .use(compatRoutes(deps, sessions))
    .use(
      deps.platform
        ? platformRoutes({
            platform: deps.platform,
            modelIds: () => deps.loadedEngine()?.models().map((m) => m.id) ?? [],
            stats: () => deps.loadedEngine()?.stats() ?? [],
            depositWallet: () => deps.ton?.wallet?.display ?? null,
            tonUsdRate: () => deps.ton?.rate?.get(RATE_WAIT_MS) ?? null,
            minimumDeposit: () => deps.ton?.minimum ?? 0n,
          })
        : new Elysia({ name: "platform-off" }),
    )
    .use(deps.platform ? tonRoutes({ platform: deps.platform }) : new Elysia({ name: "ton-off" }));
}

export type App = ReturnType<typeof createApp>;

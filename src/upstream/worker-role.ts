// `--role worker`: cocoon-server as a gateway's upstream. No keys or billing of its own (the gateway
// bills), one shared bearer secret on every route but the probes, and its load on /v1/models.
import { AsyncLocalStorage } from "node:async_hooks";
import { timingSafeEqual } from "node:crypto";
import { ConfigError } from "../config/config.ts";
import { ApiError } from "../http/errors.ts";
import { pathOf } from "../http/request-url.ts";
import { isLoopback } from "../http/host.ts";

/** Paths a load balancer or orchestrator probes without the secret. */
const OPEN_PATHS = new Set(["/health", "/readiness"]);

/** Refuses a worker that anyone on the network could use for free. */
export function checkWorkerConfig(o: { role: string; workerSecret: string; host: string }): void {
  if (o.role !== "worker") return;
  if (!o.workerSecret && !isLoopback(o.host)) {
    throw new ConfigError(`--role worker on ${o.host || "every address"} needs --worker-secret (or COCOON_WORKER_SECRET): without it anyone who reaches the port uses the models unbilled`);
  }
  if (o.workerSecret && o.workerSecret.length < 16) throw new ConfigError("--worker-secret must be at least 16 characters");
}

/** The onRequest check: `Authorization: Bearer <secret>` on every path but /health and /readiness. */
export function workerGuard(secret: string): (request: Request) => void {
  const want = Buffer.from(secret);
  return (request) => {
    if (request.method === "OPTIONS" || OPEN_PATHS.has(pathOf(request))) return;
    const auth = request.headers.get("authorization") ?? "";
    const got = Buffer.from(auth.startsWith("Bearer ") ? auth.slice(7).trim() : "");
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new ApiError("unauthorized", "This is a cocoon-server worker: requests need the gateway's worker secret as a bearer token.");
    }
  };
}

/** The header a gateway names a request's prompt-cache scope in (its account), trusted on a worker only. */
export const CACHE_SCOPE_HEADER = "X-Cocoon-Cache-Scope";

const scopes = new AsyncLocalStorage<string>();

/**
 * On a worker with a secret (so the header comes from the gateway): the request's cache scope, kept
 * for the rest of its handling. Every request sets it, so none inherits another's.
 */
export function enterCacheScope(request: Request): void {
  const scope = request.headers.get(CACHE_SCOPE_HEADER);
  scopes.enterWith(scope ? `gateway:${scope.slice(0, 200)}` : "");
}

/** The current request's gateway-named cache scope, if any. */
export function currentCacheScope(): string | undefined {
  return scopes.getStore() || undefined;
}

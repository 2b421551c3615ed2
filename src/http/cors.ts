// CORS: browser apps on other origins may call the API. Keys are bearer tokens (no cookies), so by
// default any origin may; `--cors-origins` narrows it to a list or turns it off.
import { Elysia } from "elysia";

/** What `--cors-origins` says: every origin, a list of exact origins, or CORS off. */
export type CorsPolicy = { kind: "any" } | { kind: "list"; origins: ReadonlySet<string> } | { kind: "off" };

/** "*" (or empty): any origin; "off": none; else a comma-separated list of origins. */
export function parseCorsOrigins(setting: string): CorsPolicy {
  const value = setting.trim();
  if (value === "" || value === "*") return { kind: "any" };
  if (value.toLowerCase() === "off") return { kind: "off" };
  const origins = value.split(",").map((o) => o.trim().replace(/\/+$/, "")).filter(Boolean);
  return origins.includes("*") ? { kind: "any" } : { kind: "list", origins: new Set(origins) };
}

// What the SDKs send: the OpenAI SDK's openai-* and x-stainless-* headers, Anthropic's x-api-key,
// anthropic-version and anthropic-beta. A preflight's own list is echoed when it names more.
const ALLOW_HEADERS = [
  "authorization",
  "content-type",
  "x-api-key",
  "anthropic-version",
  "anthropic-beta",
  "anthropic-dangerous-direct-browser-access",
  "openai-organization",
  "openai-project",
  "openai-beta",
  "x-stainless-arch",
  "x-stainless-lang",
  "x-stainless-os",
  "x-stainless-package-version",
  "x-stainless-retry-count",
  "x-stainless-runtime",
  "x-stainless-runtime-version",
  "x-stainless-timeout",
  "x-stainless-helper-method",
  "x-stainless-async",
  "idempotency-key",
].join(", ");

const ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

// Our headers a script may read: rate limits, Retry-After, and every X-Cocoon-* the routes send.
const EXPOSE_HEADERS = [
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "Retry-After",
  "X-Cocoon-Client-Start",
  "X-Cocoon-Client-End",
  "X-Cocoon-Cost-Nanoton",
  "X-Cocoon-Session-Id",
  "X-Cocoon-Ignored-Fields",
  "X-Request-Id",
].join(", ");

const MAX_AGE = "86400";

/** The origin to allow for this request, or null (no CORS headers). */
function allowedOrigin(policy: CorsPolicy, origin: string | null): string | null {
  if (policy.kind === "any") return "*";
  if (policy.kind === "off" || !origin) return null;
  return policy.origins.has(origin) ? origin : null;
}

/** The CORS headers of an ordinary (not preflight) response. */
export function corsHeaders(policy: CorsPolicy, origin: string | null): Record<string, string> {
  const allow = allowedOrigin(policy, origin);
  const headers: Record<string, string> = policy.kind === "list" ? { Vary: "Origin" } : {};
  if (allow) Object.assign(headers, { "Access-Control-Allow-Origin": allow, "Access-Control-Expose-Headers": EXPOSE_HEADERS });
  return headers;
}

/** The answer to a preflight: 204, with what the actual request may use when its origin is allowed. */
export function preflight(policy: CorsPolicy, request: Request): Response {
  const origin = request.headers.get("origin");
  const allow = allowedOrigin(policy, origin);
  const headers: Record<string, string> = policy.kind === "list" ? { Vary: "Origin" } : {};
  if (allow) {
    const asked = request.headers.get("access-control-request-headers");
    Object.assign(headers, {
      "Access-Control-Allow-Origin": allow,
      "Access-Control-Allow-Methods": ALLOW_METHODS,
      "Access-Control-Allow-Headers": asked && asked.length <= 4096 ? `${ALLOW_HEADERS}, ${asked}` : ALLOW_HEADERS,
      "Access-Control-Max-Age": MAX_AGE,
    });
    if (policy.kind === "list") headers.Vary = "Origin, Access-Control-Request-Headers";
  }
  return new Response(null, { status: 204, headers });
}

/**
 * The plugin, mounted globally before every route: OPTIONS on any path is a preflight (answered
 * before routing and auth), and every other response, errors and streams included, carries the
 * CORS headers through the context's headers. `off`: nothing at all.
 */
export function corsPlugin(policy: CorsPolicy) {
  const app = new Elysia({ name: "cors", seed: policy });
  if (policy.kind === "off") return app;
  // onRequest runs before routing, for every request of the app that mounts the plugin.
  return app.onRequest(({ request, set }) => {
    if (request.method === "OPTIONS") return preflight(policy, request);
    Object.assign(set.headers, corsHeaders(policy, request.headers.get("origin")));
  });
}

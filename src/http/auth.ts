// Who may call a route, stated on the route: `auth: "key" | "account" | "admin" | "admin-if-configured" | "public"`.
// The key is checked and the rate limits applied once per request, before body validation, and the
// X-RateLimit-* headers go on whatever the request ends with, errors included.
import { Elysia } from "elysia";
import { ApiError } from "./errors.ts";

/**
 * What the plugin needs from the platform (keys, limits, the admin token), so that this plumbing
 * imports no feature: the platform's service implements it.
 */
export interface Authenticator<P> {
  /** The caller of a key route; rejects with 401. */
  authenticate(request: Request): Promise<P>;
  /**
   * Counts the request against the caller's limits: inference routes' rpm / tpm / rpd, or the account
   * routes' own limit; the X-RateLimit-* headers, or throws 429.
   */
  admit(principal: P, scope?: "inference" | "account"): Promise<Record<string, string>>;
  /** Admin routes: throws 403 unless the request carries the admin token. */
  requireAdmin(request: Request): void;
  /** Whether an admin token is configured (for "admin-if-configured"). */
  readonly adminConfigured: boolean;
}

/**
 * - `key`: an API key, counted against its inference rate limits (with --no-auth: anyone, principal null).
 * - `account`: an API key on an account route (balance, usage, keys, listings), counted against the
 *   account routes' own limit, so a caller at its inference limit can still read its balance.
 * - `admin`: the admin token.
 * - `admin-if-configured`: the admin token when one is configured, else anyone.
 * - `public`: anyone; no principal.
 */
export type AuthKind = "key" | "account" | "admin" | "admin-if-configured" | "public";

export type Caller<P> = {
  /** Null on public and admin routes, and with --no-auth. */
  principal: P | null;
  /** The rate-limit headers of this request (already on the response). */
  rateHeaders: Record<string, string>;
};

/**
 * The plugin: `.use(authPlugin(platform))`, then `{ auth: "key" }` on a route gives its handler
 * `principal`. Null authenticator: --no-auth, every key route is open and admin routes are closed.
 */
export function authPlugin<P>(authenticator: Authenticator<P> | null) {
  // Transform authenticates (before validation); resolve hands the result to the handler.
  const callers = new WeakMap<Request, Caller<P>>();
  const none: Caller<P> = { principal: null, rateHeaders: {} };
  return new Elysia({ name: "auth" }).macro({
    auth: (kind: AuthKind) => ({
      async transform({ request, set }: { request: Request; set: { headers: Record<string, string | number> } }) {
        if (callers.has(request)) return;
        callers.set(request, await admitted(authenticator, kind, request, set.headers));
      },
      resolve({ request }: { request: Request }): Caller<P> {
        return callers.get(request) ?? none;
      },
    }),
  });
}

async function admitted<P>(a: Authenticator<P> | null, kind: AuthKind, request: Request, headers: Record<string, string | number>): Promise<Caller<P>> {
  if (kind === "public") return { principal: null, rateHeaders: {} };
  if (kind === "admin" || (kind === "admin-if-configured" && a?.adminConfigured)) {
    if (!a) throw new ApiError("forbidden", "Admin routes are disabled: no admin token is configured");
    a.requireAdmin(request);
    return { principal: null, rateHeaders: {} };
  }
  if (kind === "admin-if-configured" || !a) return { principal: null, rateHeaders: {} };
  const principal = await a.authenticate(request);
  const rateHeaders = await a.admit(principal, kind === "account" ? "account" : "inference");
  // On the request's context: Elysia puts them on the response, errors thrown later included.
  Object.assign(headers, rateHeaders);
  return { principal, rateHeaders };
}

// Who is calling: the key checked and the rate limits applied once per HTTP request, however many
// hooks and handlers ask. The rate-limit headers also go on the request's errors (stickyHeaders).
import type { Platform, Principal } from "../platform/service.ts";
import { stickyHeaders } from "./errors.ts";

export interface Caller {
  /** Null with --no-auth. */
  principal: Principal | null;
  /** The rate-limit headers for the response. */
  headers: Record<string, string>;
}

/** Authenticates and admits the request; throws 401 / 429. */
export function authorizeCaller(platform: Platform | null, request: Request): Caller {
  if (!platform) return { principal: null, headers: {} };
  const principal = platform.authenticate(request);
  const headers = platform.admit(principal);
  stickyHeaders.set(request, headers);
  return { principal, headers };
}

/**
 * A route module's caller lookup: the first call for a request (usually in onTransform, so that a
 * caller without a valid key learns that before body validation) authorizes it, later ones reuse it.
 */
export function requestCallers(platform: Platform | null): (request: Request) => Caller {
  const callers = new WeakMap<Request, Caller>();
  return (request) => {
    let c = callers.get(request);
    if (!c) {
      c = authorizeCaller(platform, request);
      callers.set(request, c);
    }
    return c;
  };
}

// Without API keys only the network guards a server: a web page may reach it through DNS rebinding
// (its own domain resolving to 127.0.0.1) or open a cross-site WebSocket. This check serves only
// requests naming the server by a loopback name or a configured one, and upgrades from its own origin.
import { ApiError } from "./errors.ts";

export interface HostPolicy {
  /** Extra host names (no port) the server answers to, e.g. a LAN name. */
  hosts: readonly string[];
  /** Extra origins (scheme://host[:port]) allowed to open WebSockets. */
  origins: readonly string[];
}

/** Whether an address to listen on is loopback only (no other machine can connect). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The host name of a Host header value ("Example.com:80" -> "example.com", "[::1]:80" -> "[::1]"). */
export function hostName(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.indexOf(":");
  return colon === -1 ? h : h.slice(0, colon);
}

const normalOrigin = (o: string) => o.trim().toLowerCase().replace(/\/+$/, "");

/** The check, as an onRequest hook: throws 403 for a host or a WebSocket origin the policy refuses. */
export function hostGuard(policy: HostPolicy) {
  const hosts = new Set(policy.hosts.map((h) => hostName(h)));
  const origins = new Set(policy.origins.map(normalOrigin));
  return (request: Request): void => {
    const host = request.headers.get("host") ?? "";
    const name = hostName(host);
    if (!hosts.has(name) && !isLoopback(name)) {
      throw new ApiError(
        "forbidden",
        `Host '${host.slice(0, 100)}' is not served: without API keys (--no-auth) this server answers only to localhost, 127.0.0.1, [::1] and --allowed-hosts.`,
      );
    }
    if ((request.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") return;
    const origin = request.headers.get("origin");
    // Clients other than browsers send no Origin; a browser always does, and cannot forge it.
    if (origin === null) return;
    const o = normalOrigin(origin);
    const sameOrigin = o === `http://${host.toLowerCase()}` || o === `https://${host.toLowerCase()}`;
    if (!sameOrigin && !origins.has(o)) {
      throw new ApiError("forbidden", `WebSocket connections from origin '${origin.slice(0, 100)}' are refused: without API keys (--no-auth) only this server's own pages and --allowed-origins may connect.`);
    }
  };
}

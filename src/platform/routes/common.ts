// What every platform route file shares: its dependencies, one auth plugin for all of them (so a
// request is admitted once), the error responses and the notes its OpenAPI descriptions end with.
import { Elysia } from "elysia";
import { authPlugin } from "../../http/auth.ts";
import { ApiError, ErrorResponse } from "../../http/errors.ts";
import { MISSING_KEY, type Platform, type Principal } from "../service.ts";

export interface PlatformRouteDeps {
  platform: Platform;
  /** Ids of the served models (listed by /v1/pricing). */
  modelIds(): string[];
  /** Per-model load for /api/stats; empty while no model is loaded. */
  stats(): { id: string; slotsBusy: number; slotsTotal: number; queued: number; workers?: number }[];
  /** The TON address deposits go to; null when this server accepts no deposits. */
  depositWallet(): string | null;
  /** USD per TON; null while no rate is known. May wait briefly for a due refresh. */
  tonUsdRate(): number | null | Promise<number | null>;
  /** Smallest transfer credited automatically, nanoton. Defaults to none mentioned. */
  minimumDeposit?(): bigint;
}

export type PlatformAuth = ReturnType<typeof authPlugin<Principal>>;

/** A route file's Elysia: the shared auth macro and the error model its responses refer to. */
export const routeFile = (name: string, auth: PlatformAuth) => new Elysia({ name }).use(auth).model({ ErrorResponse });

/**
 * The caller of a key route. The platform routes are mounted only with keys on, where the auth
 * plugin always yields a principal; null would be a wiring mistake, answered like a missing key.
 */
export function callerOf(principal: Principal | null): Principal {
  if (!principal) throw new ApiError("unauthorized", MISSING_KEY);
  return principal;
}

/** The caller's balance and reservations. */
export async function accountOf(platform: Platform, p: Principal) {
  const b = await platform.balanceOf(p.accountId);
  // A key verifies only while its account exists; this is a race with nothing that deletes accounts.
  if (!b) throw new ApiError("unauthorized", "Invalid API key");
  return b;
}

export const minimumOf = (deps: PlatformRouteDeps) => deps.minimumDeposit?.() ?? 0n;

export const keyErrors = { 401: "ErrorResponse", 429: "ErrorResponse" } as const;
export const adminErrors = { 403: "ErrorResponse" } as const;
export const AUTH_NOTE = "Authenticated with `Authorization: Bearer ck_...`; the response carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`.";
export const ADMIN_NOTE =
  "Admin route: send the admin token (`--admin-token` / `COCOON_ADMIN_TOKEN`) as `Authorization: Bearer <token>`; 403 otherwise, and always when no admin token is configured.";

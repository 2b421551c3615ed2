// The paid platform as one service over the store: who is calling (API keys, admin token), whether
// they may (rate limits), and what a request costs (reserve before, settle after, in nanoton).
import type { Usage } from "../inference/types.ts";
import { isPg, type Db } from "../store/query.ts";
import { addSharedTokens, admitShared } from "./shared-ratelimit.ts";
import { timingSafeEqual } from "node:crypto";
import { ApiError, isStorageFailure } from "../http/errors.ts";
import { verifyKey } from "./keys.ts";
import { keyRateLimits, type KeyLimits } from "./limits.ts";
import { RateLimiter, limitsFor, type Admission, type Counter, type RateLimits } from "./ratelimit.ts";
import { balanceOf, checkpoint, reserve, settle, type Balance, type UsageRecord, type UsageStatus } from "./ledger.ts";
import { Lease } from "./leases.ts";
import { completionBudget, costOf, formatTon, maxCostOf, ratesFor, type PricingConfig } from "./pricing.ts";

export interface Principal {
  accountId: number;
  keyId: number;
  /** The rate limits of the key: its own where set, else its account's. */
  limits: RateLimits;
  /** The account's rate limits, binding all its keys together (many keys never multiply them). Defaults to `limits`. */
  accountLimits?: RateLimits;
  /** The key's own limits (budgets, expiry, concurrency). Defaults to none. */
  keyLimits?: KeyLimits;
}

/** Which limit a route counts against: inference (rpm/tpm/rpd) or the account routes' own, generous one. */
export type RateScope = "inference" | "account";

/** What made a reservation cap max_tokens: the account's balance or the key's budget. */
export type CappedBy = "balance" | "key_budget";

const LIMIT_NAMES = { rpm: "requests per minute (RPM)", tpm: "tokens per minute (TPM)", rpd: "requests per day (RPD)" } as const;
const LIMIT_KINDS = { rpm: "rpm_limited", tpm: "tpm_limited", rpd: "rpd_limited" } as const;

export interface PlatformOptions {
  /** Without auth there is no billing either: a private single-user server. */
  auth: boolean;
  /** Bearer token for admin routes; empty means admin routes are closed. */
  adminToken: string;
  pricing: PricingConfig;
  rateLimits: RateLimits;
  /** Requests per minute on account routes (balance, usage, keys, listings), per key and per account. Defaults to 600. */
  accountRouteRpm?: number;
  /** Credit for every new account, in nanoton (0 = none). */
  signupCredit: bigint;
  /** Who may use /api/register: anyone, the admin token only, or nobody. Defaults to "open". */
  register?: "open" | "admin" | "off";
  /** Sign-ups per client address per UTC day (0 = no limit). Defaults to 0 (the server's config: 5). */
  registerLimit?: number;
  /** Behind a reverse proxy: the client address is the last X-Forwarded-For entry. Defaults to false. */
  trustProxy?: boolean;
}

export interface BillingTicket {
  requestId: string;
  principal: Principal;
  model: string;
  endpoint: string;
  requestGuid: string | null;
  reserved: bigint;
  startedAt: number;
  /** Set when the reservation lowered max_tokens: by what, and to how many tokens per choice. */
  capped: { by: CappedBy; maxTokens: number } | null;
}

/** Token counts are the engine's: one Usage type from the engine to the ledger. */
export type TokenUsage = Usage;

export interface Cost {
  nanoton: bigint;
  ton: string;
  /** Set when the reservation capped max_tokens (the reply may have stopped there): what capped it. */
  capped?: { by: CappedBy; maxTokens: number } | null;
}

/** `usage.cost` as it goes on the wire: an integer nanoton amount and the same in TON, exact. */
export function costField(cost: Cost): { nanoton: number; ton: string } {
  return { nanoton: Number(cost.nanoton), ton: cost.ton };
}

export const MISSING_KEY = "Missing API key: send it as `Authorization: Bearer ck_...`.";

function queryKey(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? "" : (new URLSearchParams(url.slice(q + 1)).get("api_key") ?? "");
}

let seq = 0;

export class Platform {
  readonly limiter = new RateLimiter();
  /** Sign-ups per client address (in memory, like the rate limits). */
  private readonly signups = new RateLimiter({ maxKeys: 100_000 });

  /** This process as the owner of the reservations it makes (see leases.ts). */
  readonly owner = `proc_${crypto.randomUUID()}`;
  private lease: Lease | null = null;
  /**
   * Settlements the database refused (disk full, read-only): kept with their holds open and retried
   * until storage is back, so what was processed is charged then (a crash meanwhile: the checkpoint).
   */
  private readonly deferred = new Map<string, { t: BillingTicket; usage: TokenUsage; status: UsageStatus }>();
  private retryTimer: ReturnType<typeof setInterval> | null = null;

  // Opening the platform releases nothing: a CLI command on a live database must leave the server's
  // holds alone. A server takes a lease (startLease), which releases only the holds of dead owners.
  constructor(
    /** The store: a SQLite file (one process) or Postgres (several gateways on one ledger). */
    readonly store: Db,
    readonly opts: PlatformOptions,
  ) {}

  /** Whether several gateways may share this store (Postgres): rate limits are then counted in it. */
  get shared(): boolean {
    return isPg(this.store);
  }

  /**
   * For a server: takes this process's lease and keeps it renewed; releases the reservations of
   * owners that are gone (an earlier crash, a gateway whose lease expired). Returns how many.
   */
  startLease(log: (level: "warn" | "error", line: string) => void): Promise<number> {
    this.lease ??= new Lease(this.store, this.owner, log);
    return this.lease.start();
  }

  /** At a clean stop, before the database closes: settles what it can, releases this server's unsettled holds and ends its lease. */
  async endLease(): Promise<void> {
    await this.retryDeferred();
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = null;
    await this.lease?.stop();
    this.lease = null;
  }

  /** Settlements waiting for storage to come back. */
  get deferredSettlements(): number {
    return this.deferred.size;
  }

  /** Retries the deferred settlements (on a timer while any wait); returns how many are still waiting. */
  async retryDeferred(): Promise<number> {
    for (const [id, d] of this.deferred) {
      try {
        // Succeeds and forgets it, or (storage still refusing) keeps it for the next round.
        await this.finish(d.t, d.usage, d.status);
      } catch {
        // Not a storage failure: it can never be written (e.g. released meanwhile); nothing to retry.
        this.deferred.delete(id);
      }
    }
    if (this.deferred.size === 0 && this.retryTimer) {
      clearInterval(this.retryTimer);
      this.retryTimer = null;
    }
    return this.deferred.size;
  }

  get authEnabled(): boolean {
    return this.opts.auth;
  }

  /** Whether admin routes can be opened at all (an admin token is configured). */
  get adminConfigured(): boolean {
    return this.opts.adminToken !== "";
  }

  /** The caller of an authenticated route, or a 401 in the seed's shape. */
  async authenticate(request: Request): Promise<Principal> {
    const header = request.headers.get("authorization") ?? "";
    // x-api-key: how Anthropic's clients send it. ?api_key= only on WebSocket upgrades (a browser
    // cannot set headers there): on any other route a query key would let a cross-site form or <img>
    // spend the key's balance.
    const upgrade = (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
    const token = header.startsWith("Bearer ") ? header.slice(7).trim() : request.headers.get("x-api-key")?.trim() || (upgrade ? queryKey(request.url) : "");
    if (!token) throw new ApiError("unauthorized", MISSING_KEY);
    return this.principalOf(token);
  }

  /** The owner of an API key given in full (a header's or, for /api/login, a body's), or a 401. */
  async principalOf(apiKey: string): Promise<Principal> {
    const key = await verifyKey(this.store, apiKey);
    if (!key) throw new ApiError("unauthorized", "Invalid API key");
    if (key.expired) throw new ApiError("key_expired", `This API key expired at ${new Date(key.limits.expiresAt!).toISOString()}; create a new one.`);
    const accountLimits = limitsFor(key.accountLimits, this.opts.rateLimits);
    return { accountId: key.accountId, keyId: key.keyId, limits: keyRateLimits(key.limits, accountLimits), accountLimits, keyLimits: key.limits };
  }

  /** Admin routes: the configured admin token, compared in constant time. */
  requireAdmin(request: Request): void {
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer\s+/, "");
    const expected = this.opts.adminToken;
    const a = Buffer.from(token);
    const b = Buffer.from(expected);
    if (!expected || a.length !== b.length || !timingSafeEqual(a, b)) {
      throw new ApiError("forbidden", expected ? "Admin token required" : "Admin routes are disabled: no admin token is configured");
    }
  }

  /**
   * Counts the request against the key's and its account's limits (inference routes: rpm / tpm / rpd;
   * account routes: their own requests per minute); returns the X-RateLimit-* headers of the binding
   * limit, or throws 429 naming the limit that was hit.
   */
  async admit(p: Principal, scope: RateScope = "inference"): Promise<Record<string, string>> {
    // Several gateways on one Postgres count together in it; one process counts in memory.
    const admitAll = (counters: Counter[]): Admission | Promise<Admission> => (isPg(this.store) ? admitShared(this.store, counters) : this.limiter.admitAll(counters));
    if (scope === "account") {
      const rpm = this.opts.accountRouteRpm ?? 600;
      const limits = { rpm, tpm: Infinity, rpd: Infinity };
      const r = await admitAll([{ id: `r:k${p.keyId}`, limits }, { id: `r:a${p.accountId}`, limits }]);
      if (!r.ok) {
        throw new ApiError("rpm_limited", `Rate limit reached for account routes: ${rpm} requests per minute; retry in ${r.retryAfterSeconds} s.`, null, r.headers);
      }
      return r.headers;
    }
    const r = await admitAll([
      { id: p.keyId, limits: p.limits },
      { id: `a${p.accountId}`, limits: p.accountLimits ?? p.limits },
    ]);
    if (!r.ok) {
      const whose = r.counter === 0 ? "this API key" : "this account (all its keys together)";
      const limit = (r.counter === 0 ? p.limits : (p.accountLimits ?? p.limits))[r.limit];
      throw new ApiError(LIMIT_KINDS[r.limit], `Rate limit reached for ${whose}: ${LIMIT_NAMES[r.limit]}, limit ${limit}; retry in ${r.retryAfterSeconds} s.`, null, r.headers);
    }
    return r.headers;
  }

  /**
   * Reserves the worst-case cost of a request (bounded by what the account may spend) and returns
   * how many tokens each choice may generate within it. Throws 402 below the minimum balance.
   */
  async begin(
    p: Principal,
    o: { model: string; endpoint: string; promptTokensUpperBound: number; maxTokens: number; n: number; requestGuid: string | null; generates?: boolean },
  ): Promise<{ ticket: BillingTicket; maxTokens: number }> {
    // Billing's token counts are exact integers: a limit × choices past 2^53 is refused, never rounded.
    if (!Number.isSafeInteger(o.maxTokens * o.n) || !Number.isSafeInteger(o.promptTokensUpperBound)) {
      throw new ApiError("invalid_request", "max_tokens × n is too large: at most 2^53 − 1 tokens in all", "max_tokens");
    }
    const rates = ratesFor(this.opts.pricing, o.model);
    const requestId = `req_${Date.now().toString(36)}_${(++seq).toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
    const want = maxCostOf(rates, o.promptTokensUpperBound, o.maxTokens * o.n);
    const r = await reserve(this.store, {
      requestId,
      accountId: p.accountId,
      // Key 0: a principal built without a stored key (tests, internal callers).
      keyId: p.keyId > 0 ? p.keyId : null,
      want,
      minimumBalance: this.opts.pricing.minimumBalance,
      maxOverdraft: this.opts.pricing.maxOverdraft,
      owner: this.owner,
    });
    if (!r.ok) {
      if (r.reason === "key_parallel") {
        throw new ApiError("parallel_limited", `This API key already has ${r.limit} requests in flight (its max_parallel_requests); retry when one ends.`, null, { "Retry-After": "1" });
      }
      if (r.reason === "key_budget") {
        const what = r.period ? `budget per ${r.period}` : "max_budget";
        const reset = r.resetAt ? ` It resets at ${new Date(r.resetAt).toISOString()}.` : "";
        throw new ApiError("budget_exceeded", `This API key reached its ${what}: ${formatTon(r.spent)} of ${formatTon(r.limit)} TON spent or held.${reset}`);
      }
      throw new ApiError(
        "insufficient_balance",
        `Insufficient balance: ${Number(formatTon(r.balance)).toFixed(4)} TON. Minimum: ${Number(formatTon(this.opts.pricing.minimumBalance))} TON. Top up via /v1/deposit.`,
      );
    }
    const ticket: BillingTicket = { requestId, principal: p, model: o.model, endpoint: o.endpoint, requestGuid: o.requestGuid, reserved: r.amount, startedAt: Date.now(), capped: null };
    const byKey = r.cappedBy === "key_budget";
    // Nothing caps a prompt-only request (embeddings): it needs its whole worst case reserved.
    if (!(o.generates ?? true) && r.amount < want) {
      await this.finish(ticket, null, "error");
      if (byKey) throw new ApiError("budget_exceeded", "This API key's budget has too little left for this request (other requests in flight hold part of it).");
      throw new ApiError("insufficient_balance", "Insufficient balance for this request; other requests in flight hold the rest. Top up via /v1/deposit.");
    }
    // A reservation smaller than the worst case caps generation so the account cannot overspend.
    const budget = Math.floor(completionBudget(rates, r.amount, o.promptTokensUpperBound) / o.n);
    if (budget < 1 && (o.generates ?? true)) {
      await this.finish(ticket, null, "error");
      if (byKey) throw new ApiError("budget_exceeded", "This API key's budget has too little left for this request: not enough for one token.");
      throw new ApiError("insufficient_balance", "Insufficient balance for this request: not enough for one token. Top up via /v1/deposit.");
    }
    if ((o.generates ?? true) && budget < o.maxTokens) ticket.capped = { by: r.cappedBy ?? "balance", maxTokens: budget };
    return { ticket, maxTokens: Math.min(o.maxTokens, budget) };
  }

  private record(t: BillingTicket, u: TokenUsage, status: UsageStatus): UsageRecord {
    return { keyId: t.principal.keyId, model: t.model, endpoint: t.endpoint, requestGuid: t.requestGuid, ...u, status, startedAt: t.startedAt, durationMs: Date.now() - t.startedAt };
  }

  /** Writes what a running request has processed so far onto its hold (see ledger.checkpoint). */
  checkpoint(t: BillingTicket, usage: TokenUsage): void | Promise<void> {
    return checkpoint(this.store, t.requestId, costOf(ratesFor(this.opts.pricing, t.model), usage), this.record(t, usage, "error"));
  }

  /** Charges exactly the tokens processed and releases the rest; safe to call more than once. */
  async finish(t: BillingTicket, usage: TokenUsage | null, status: UsageStatus): Promise<Cost> {
    const u = usage ?? { promptTokens: 0, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 };
    const cost = costOf(ratesFor(this.opts.pricing, t.model), u);
    let r: ReturnType<typeof settle>;
    try {
      r = await settle(this.store, { requestId: t.requestId, cost, usage: this.record(t, u, status) });
    } catch (err) {
      if (!isStorageFailure(err)) throw err;
      // The hold stays open and ours; it is charged exactly this once the database takes writes again.
      this.deferred.set(t.requestId, { t, usage: u, status });
      this.retryTimer ??= setInterval(() => void this.retryDeferred(), 1000);
      this.retryTimer.unref?.();
      const charged = cost > t.reserved ? t.reserved : cost;
      return { nanoton: charged, ton: formatTon(charged) };
    }
    this.deferred.delete(t.requestId);
    const tokens = u.promptTokens + u.completionTokens;
    if (isPg(this.store)) {
      // Counted after the charge: a failure here costs a token count, never the settlement.
      await addSharedTokens(this.store, t.principal.keyId, tokens).catch(() => {});
      await addSharedTokens(this.store, `a${t.principal.accountId}`, tokens).catch(() => {});
    } else {
      this.limiter.addTokens(t.principal.keyId, tokens);
      this.limiter.addTokens(`a${t.principal.accountId}`, tokens);
    }
    return { nanoton: r.charged, ton: formatTon(r.charged), capped: t.capped };
  }

  /**
   * Whether `address` may sign up now (/api/register): refuses when sign-up is off, asks for the admin
   * token when it is admin-only, and counts the address against --register-limit (429 past it, so a
   * sign-up credit is only ever granted within the limit). An admin's sign-ups are not counted.
   */
  admitSignup(request: Request, peer: string): void {
    const mode = this.opts.register ?? "open";
    if (mode === "off") throw new ApiError("forbidden", "Sign-up is closed on this server; ask the operator for a key.");
    if (mode === "admin") {
      this.requireAdmin(request);
      return;
    }
    const limit = this.opts.registerLimit ?? 0;
    if (limit <= 0) return;
    // The proxy appends the address it saw last: earlier entries are the client's to invent.
    const forwarded = this.opts.trustProxy ? request.headers.get("x-forwarded-for")?.split(",").at(-1)?.trim() : undefined;
    const address = forwarded || peer;
    const r = this.signups.admit(`ip:${address}`, { rpm: Infinity, tpm: Infinity, rpd: limit });
    if (!r.ok) {
      throw new ApiError("signup_limited", `Too many sign-ups from this address: at most ${limit} a day; retry in ${r.retryAfterSeconds} s.`, null, { "Retry-After": r.headers["Retry-After"]! });
    }
  }

  /** The account's balance at once, on a SQLite store (tests, tools); Postgres answers only as a promise: {@link balanceOf}. */
  balance(accountId: number): Balance | null {
    if (isPg(this.store)) throw new Error("Platform.balance() reads SQLite synchronously; on Postgres use balanceOf()");
    return balanceOf(this.store, accountId);
  }

  /** The account's balance, on either store. */
  balanceOf(accountId: number): Promise<Balance | null> {
    return Promise.resolve(balanceOf(this.store, accountId));
  }
}

// Rate limits (requests/minute, tokens/minute, requests/day) kept in memory, per key and per account
// at once. Check and count happen in one synchronous call on the single JS thread, so concurrent
// requests are admitted exactly.

export interface RateLimits {
  /** Requests per minute. */
  rpm: number;
  /** Tokens (prompt + completion) per minute. */
  tpm: number;
  /** Requests per day (UTC). */
  rpd: number;
}

/** Per-key overrides as stored on the key; null means "use the server default". */
export interface RateLimitOverrides {
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
}

export const DEFAULT_RATE_LIMITS: Readonly<RateLimits> = Object.freeze({ rpm: 60, tpm: 150_000, rpd: 3_500 });

export function limitsFor(overrides: Partial<RateLimitOverrides> | null | undefined, defaults: RateLimits = DEFAULT_RATE_LIMITS): RateLimits {
  return { rpm: overrides?.rpm ?? defaults.rpm, tpm: overrides?.tpm ?? defaults.tpm, rpd: overrides?.rpd ?? defaults.rpd };
}

export type RateLimitHeaders = Record<string, string>;
/** Which limit of which counter refused: `rpm`, `tpm` or `rpd`, and the index of the counter in the call. */
export type Admission =
  | { ok: true; headers: RateLimitHeaders }
  | { ok: false; retryAfterSeconds: number; headers: RateLimitHeaders; limit: keyof RateLimits; counter: number };

/** One counter an admission checks: a key's, an account's (an id namespaced by the caller) and its limits. */
export interface Counter {
  id: CounterId;
  limits: RateLimits;
}

/** A counter's id: a key id, or any string the caller namespaces ("a:12" for account 12). */
export type CounterId = number | string;

/** Options for {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Most keys tracked at once; beyond it the least recently seen is forgotten. Defaults to 100,000. */
  maxKeys?: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/** One counter's current windows (the minute's requests and tokens, the day's requests). */
export interface KeyState {
  minuteStart: number;
  minuteRequests: number;
  minuteTokens: number;
  dayStart: number;
  dayRequests: number;
}

interface Window {
  name: keyof RateLimits;
  counter: number;
  limit: number;
  used: number;
  resetMs: number;
}

/**
 * Fixed windows aligned to the UTC minute (xx:xx:00) and UTC day (00:00:00): a window's count resets
 * at its boundary, which is what `X-RateLimit-Reset` announces. Fixed windows allow a burst of up to
 * twice a limit across a boundary; in exchange the state is three counters per key and the reset time
 * is exact and the same for every client. Counters live in memory: a restart forgets them.
 */
export class RateLimiter {
  private readonly keys = new Map<CounterId, KeyState>();
  private readonly maxKeys: number;
  private lastSweep = 0;

  constructor(options: RateLimiterOptions = {}) {
    this.maxKeys = options.maxKeys ?? 100_000;
  }

  /**
   * Counts one request for `keyId` when every limit allows it. Refuses when the minute's requests or
   * tokens, or the day's requests, already reached their limit. The headers describe the binding
   * limit (least remaining, as a share of its limit); a refusal also carries `Retry-After`.
   */
  admit(keyId: CounterId, limits: RateLimits, now: number = Date.now()): Admission {
    return this.admitAll([{ id: keyId, limits }], now);
  }

  /**
   * Counts one request on every counter when every limit of every counter allows it (a key's and its
   * account's: many keys never multiply an account's limits), else on none. The headers describe the
   * binding limit across all of them. A limit that is not a finite number is no limit.
   */
  admitAll(counters: readonly Counter[], now: number = Date.now()): Admission {
    this.sweep(now);
    const states = counters.map((c) => this.state(c.id, now));
    const refused = refusal(counters, states, now);
    if (refused) return refused;
    for (const s of states) {
      s.minuteRequests++;
      s.dayRequests++;
    }
    return admitted(counters, states);
  }

  /** Adds tokens processed for `keyId` to the current minute (call as they are known, or at the end). */
  addTokens(keyId: CounterId, n: number, now: number = Date.now()): void {
    if (!Number.isFinite(n) || n <= 0) return;
    this.state(keyId, now).minuteTokens += n;
  }

  /** The headers for `keyId` without counting a request (e.g. for a response sent later). */
  headers(keyId: CounterId, limits: RateLimits, now: number = Date.now()): RateLimitHeaders {
    return headersOfAll(windowsOf(this.state(keyId, now), limits, 0));
  }

  /** Keys currently tracked (for tests and metrics). */
  get size(): number {
    return this.keys.size;
  }

  private state(keyId: CounterId, now: number): KeyState {
    const minuteStart = now - (now % MINUTE);
    const dayStart = now - (now % DAY);
    let s = this.keys.get(keyId);
    if (!s) {
      s = { minuteStart, minuteRequests: 0, minuteTokens: 0, dayStart, dayRequests: 0 };
      if (this.keys.size >= this.maxKeys) {
        const oldest = this.keys.keys().next();
        if (!oldest.done) this.keys.delete(oldest.value);
      }
    } else {
      // Re-insert so the Map's order is least recently seen first.
      this.keys.delete(keyId);
      if (minuteStart > s.minuteStart) Object.assign(s, { minuteStart, minuteRequests: 0, minuteTokens: 0 });
      if (dayStart > s.dayStart) Object.assign(s, { dayStart, dayRequests: 0 });
    }
    this.keys.set(keyId, s);
    return s;
  }

  // At most once a minute, forget keys whose minute and day windows have both ended: their state is
  // then identical to a fresh one, so dropping them changes no decision.
  private sweep(now: number): void {
    if (now - this.lastSweep < MINUTE) return;
    this.lastSweep = now;
    const dayStart = now - (now % DAY);
    const minuteStart = now - (now % MINUTE);
    for (const [id, s] of this.keys) {
      if (s.dayStart < dayStart && s.minuteStart < minuteStart) this.keys.delete(id);
    }
  }
}

function windowsOf(s: KeyState, limits: RateLimits, counter: number): Window[] {
  const all: Window[] = [
    { name: "rpm", counter, limit: limits.rpm, used: s.minuteRequests, resetMs: s.minuteStart + MINUTE },
    { name: "tpm", counter, limit: limits.tpm, used: s.minuteTokens, resetMs: s.minuteStart + MINUTE },
    { name: "rpd", counter, limit: limits.rpd, used: s.dayRequests, resetMs: s.dayStart + DAY },
  ];
  return all.filter((w) => Number.isFinite(w.limit));
}

/** The refusal when any window of any counter is used up (every exhausted one must roll over first), else null. */
export function refusal(counters: readonly Counter[], states: readonly KeyState[], now: number): Admission | null {
  const windows = states.flatMap((s, i) => windowsOf(s, counters[i]!.limits, i));
  const blocked = windows.filter((w) => w.used >= w.limit);
  if (blocked.length === 0) return null;
  const resetMs = Math.max(...blocked.map((w) => w.resetMs));
  const retryAfterSeconds = Math.max(1, Math.ceil((resetMs - now) / 1000));
  const binding = blocked.reduce((a, b) => (b.resetMs > a.resetMs ? b : a));
  return { ok: false, retryAfterSeconds, headers: { ...headersOf(binding), "Retry-After": String(retryAfterSeconds) }, limit: binding.name, counter: binding.counter };
}

/** The admission of a request already counted in `states`: the headers of the binding limit. */
export function admitted(counters: readonly Counter[], states: readonly KeyState[]): Admission {
  return { ok: true, headers: headersOfAll(states.flatMap((s, i) => windowsOf(s, counters[i]!.limits, i))) };
}

export { MINUTE as RATE_MINUTE_MS, DAY as RATE_DAY_MS };

function binding(windows: Window[]): Window {
  // Least remaining as a share of the limit; ties keep the earlier (requests/minute first).
  const share = (w: Window) => (w.limit <= 0 ? 0 : Math.max(0, w.limit - w.used) / w.limit);
  return windows.reduce((a, b) => (share(b) < share(a) ? b : a));
}

function headersOfAll(windows: Window[]): RateLimitHeaders {
  return windows.length ? headersOf(binding(windows)) : {};
}

function headersOf(w: Window): RateLimitHeaders {
  return {
    "X-RateLimit-Limit": String(w.limit),
    "X-RateLimit-Remaining": String(Math.max(0, w.limit - w.used)),
    "X-RateLimit-Reset": String(Math.floor(w.resetMs / 1000)),
  };
}

// The TON/USD rate for /v1/balance: fetched from a configurable JSON price URL, cached for a minute,
// and null whenever it is unknown or stale, so the balance call never fails or waits long for it.

/** Options for {@link TonUsdRate}. */
export interface RateOptions {
  /** The price URL; see {@link parseRate} for the shapes it may answer. */
  url: string;
  /** How long a fetched rate is used before it is fetched again. Defaults to 60 000 ms. */
  ttlMs?: number;
  /** How long a rate is still shown while refreshing fails. Defaults to 2 × ttlMs. */
  maxAgeMs?: number;
  /** Milliseconds a fetch may take. Defaults to 3 000. */
  timeoutMs?: number;
  /** How long after a failure no new fetch is tried. Defaults to 30 000 ms. */
  retryMs?: number;
  now?: () => number;
}

/**
 * USD per TON from a price API's JSON. Two shapes are accepted, nothing else:
 * CoinGecko's simple price, `{"the-open-network":{"usd":1.23}}` (the default --ton-usd-rate-url), and a plain
 * `{"usd":1.23}` for an operator's own source. The value must be a finite positive number.
 */
export function parseRate(body: unknown): number | null {
  if (typeof body !== "object" || body === null) return null;
  const b = body as Record<string, unknown>;
  const nested = b["the-open-network"];
  const value = typeof nested === "object" && nested !== null ? (nested as Record<string, unknown>).usd : b.usd;
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : null;
}

export class TonUsdRate {
  private value: number | null = null;
  private fetchedAt = -Infinity;
  private failedAt = -Infinity;
  private inflight: Promise<void> | null = null;
  private readonly ttl: number;
  private readonly maxAge: number;
  private readonly now: () => number;
  lastError: string | null = null;

  constructor(private readonly o: RateOptions) {
    this.ttl = o.ttlMs ?? 60_000;
    this.maxAge = o.maxAgeMs ?? 2 * this.ttl;
    this.now = o.now ?? Date.now;
  }

  /** The rate if it is fresh enough, else null; starts a refresh when it is due (never blocks). */
  peek(): number | null {
    this.refreshIfDue();
    return this.now() - this.fetchedAt <= this.maxAge ? this.value : null;
  }

  /**
   * Like peek, but when a refresh is due waits for it, at most `waitMs` (and the fetch timeout);
   * a fresh rate is answered without waiting at all.
   */
  async get(waitMs = Infinity): Promise<number | null> {
    const p = this.refreshIfDue();
    if (p) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = Number.isFinite(waitMs) ? new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))) : p;
      await Promise.race([p, waited]);
      clearTimeout(timer);
    }
    return this.now() - this.fetchedAt <= this.maxAge ? this.value : null;
  }

  private refreshIfDue(): Promise<void> | null {
    if (this.inflight) return this.inflight;
    const now = this.now();
    if (now - this.fetchedAt < this.ttl || now - this.failedAt < (this.o.retryMs ?? 30_000)) return null;
    this.inflight = this.fetchRate().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetchRate(): Promise<void> {
    try {
      const res = await fetch(this.o.url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(this.o.timeoutMs ?? 3_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const rate = parseRate(await res.json());
      if (rate === null) throw new Error("the answer has no positive usd price in a known shape");
      this.value = rate;
      this.fetchedAt = this.now();
      this.lastError = null;
    } catch (err) {
      this.failedAt = this.now();
      this.lastError = `TON/USD rate from ${this.o.url}: ${(err as Error).message}`;
    }
  }
}

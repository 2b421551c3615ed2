// The deposit watcher: polls the service wallet's transactions, newest first, paging back by
// (lt, hash) until it reaches the last one it processed, then records them oldest first with the
// cursor in the same SQLite transaction. Errors back off exponentially; nothing here may crash the process.
import type { Database } from "bun:sqlite";
import { TonApiError, type ChainTransaction, type ToncenterClient, type TonApiErrorKind } from "./client.ts";
import type { WalletAddress } from "./address.ts";
import { getCursor, recordBatch, type Cursor } from "./service.ts";

/** Options for {@link TonWatcher}. */
export interface WatcherOptions {
  db: Database;
  client: Pick<ToncenterClient, "getTransactions">;
  wallet: WalletAddress;
  /** Smallest amount credited automatically, nanoton. */
  minimum: bigint;
  /** Milliseconds between polls. */
  intervalMs: number;
  /** Transactions per getTransactions call (2..100). Defaults to 50. */
  pageSize?: number;
  /** Longest wait between failing polls. Defaults to min(60 s, 32 × interval), at least the interval. */
  maxBackoffMs?: number;
  log?: (level: "info" | "warn" | "error", line: string) => void;
}

export type PollErrorKind = TonApiErrorKind | "internal";

export interface WatcherState {
  wallet: string;
  network: string;
  running: boolean;
  cursor: { lt: string; hash: string } | null;
  /** Unix ms of the last poll's end (success or not), the last success, the last error. */
  lastPollAt: number | null;
  lastSuccessAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  consecutiveErrors: number;
  polls: number;
  pollErrors: Record<PollErrorKind, number>;
  /** Transactions this process recorded, by outcome. */
  credited: number;
  creditedNanoton: bigint;
  unmatched: number;
  ignored: number;
}

export interface PollResult {
  pages: number;
  /** New transactions recorded in this poll, oldest first. */
  recorded: number;
  credited: number;
}

// Rate limits (429) are retried within a poll so the pages collected so far are not thrown away.
const RATE_LIMIT_RETRIES = 3;
// Each batch of transactions is one SQLite transaction that also moves the cursor.
const BATCH = 100;

class Stopped extends Error {}

/**
 * Each transaction names its predecessor (prev_trans_lt, prev_trans_hash). The run about to be
 * recorded must link up without a gap, back to the cursor (or to the account's first transaction):
 * otherwise the API skipped something, and moving the cursor past it would lose a deposit for good.
 */
function checkChain(oldestFirst: ChainTransaction[], cursor: Cursor | null): void {
  let prev: Cursor = cursor ?? { lt: 0n, hash: "0".repeat(64) };
  for (const t of oldestFirst) {
    const lt = t.tx.prevTransactionLt;
    const hash = t.tx.prevTransactionHash.toString(16).padStart(64, "0");
    if (lt !== prev.lt || hash !== prev.hash) {
      throw new TonApiError(
        "invalid_response",
        `the wallet's history has a gap: transaction ${t.lt} follows ${lt}:${hash.slice(0, 16)}..., but the one before it is ${prev.lt}:${prev.hash.slice(0, 16)}...; nothing recorded, retrying`,
      );
    }
    prev = { lt: t.lt, hash: t.hash };
  }
}

export class TonWatcher {
  private readonly pageSize: number;
  private readonly maxBackoffMs: number;
  private readonly log: NonNullable<WatcherOptions["log"]>;
  private stopping = false;
  private abort = new AbortController();
  private loopDone: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly s: Omit<WatcherState, "cursor" | "running" | "wallet" | "network">;

  constructor(private readonly o: WatcherOptions) {
    this.pageSize = Math.min(100, Math.max(2, Math.floor(o.pageSize ?? 50)));
    this.maxBackoffMs = Math.max(o.intervalMs, o.maxBackoffMs ?? Math.min(60_000, 32 * o.intervalMs));
    this.log = o.log ?? (() => {});
    this.s = {
      lastPollAt: null,
      lastSuccessAt: null,
      lastError: null,
      lastErrorAt: null,
      consecutiveErrors: 0,
      polls: 0,
      pollErrors: { http: 0, rate_limited: 0, timeout: 0, network: 0, invalid_response: 0, aborted: 0, internal: 0 },
      credited: 0,
      creditedNanoton: 0n,
      unmatched: 0,
      ignored: 0,
    };
  }

  state(): WatcherState {
    let cursor: Cursor | null = null;
    try {
      cursor = getCursor(this.o.db, this.o.wallet.raw);
    } catch {
      cursor = null; // the database is closing; the state is still worth showing
    }
    return {
      ...this.s,
      pollErrors: { ...this.s.pollErrors },
      wallet: this.o.wallet.display,
      network: this.o.wallet.network,
      running: this.loopDone !== null && !this.stopping,
      cursor: cursor ? { lt: cursor.lt.toString(), hash: cursor.hash } : null,
    };
  }

  /** Starts polling at once and then every interval; a second call does nothing. */
  start(): void {
    if (this.loopDone || this.stopping) return;
    // The loop catches every poll's failure itself; this is the last line against a crash of the process.
    this.loopDone = this.loop().catch((err) => this.log("error", `TON watcher stopped by an unexpected error: ${(err as Error)?.stack ?? String(err)}`));
  }

  /** Stops polling: aborts a request in flight and resolves once the loop has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    this.log("info", `TON watcher: polling ${this.o.wallet.display} (${this.o.wallet.network}) every ${this.o.intervalMs / 1000} s`);
    while (!this.stopping) {
      let delay = this.o.intervalMs;
      try {
        await this.pollOnce();
      } catch (err) {
        if (this.stopping) break;
        delay = this.failed(err);
      }
      if (this.stopping) break;
      await this.sleep(delay);
    }
  }

  /** Books a failed poll; returns how long to wait before the next one. */
  private failed(err: unknown): number {
    const kind: PollErrorKind = err instanceof TonApiError ? err.kind : "internal";
    const message = err instanceof Error ? err.message : String(err);
    this.s.pollErrors[kind]++;
    this.s.consecutiveErrors++;
    this.s.lastError = message;
    this.s.lastErrorAt = this.s.lastPollAt = Date.now();
    let delay = Math.min(this.maxBackoffMs, this.o.intervalMs * 2 ** Math.min(this.s.consecutiveErrors, 20));
    if (err instanceof TonApiError && err.retryAfter !== null) delay = Math.min(this.maxBackoffMs, Math.max(delay, err.retryAfter * 1000));
    // The first failure of a run is a warning; while it keeps failing, one line per doubling is plenty.
    const n = this.s.consecutiveErrors;
    if ((n & (n - 1)) === 0) this.log(kind === "internal" ? "error" : "warn", `TON watcher: poll failed (${n} in a row, next in ${(delay / 1000).toFixed(1)} s): ${message}`);
    return delay;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async page(anchor: Cursor | undefined): Promise<ChainTransaction[]> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopping) throw new Stopped();
      try {
        return await this.o.client.getTransactions(
          { address: this.o.wallet.raw, limit: this.pageSize, lt: anchor?.lt, hash: anchor?.hash },
          this.abort.signal,
        );
      } catch (err) {
        if (!(err instanceof TonApiError) || err.kind !== "rate_limited" || attempt >= RATE_LIMIT_RETRIES) throw err;
        this.s.pollErrors.rate_limited++;
        await this.sleep(Math.min(this.maxBackoffMs, err.retryAfter !== null ? err.retryAfter * 1000 : this.o.intervalMs * 2 ** (attempt + 1)));
      }
    }
  }

  /**
   * One poll: collects every transaction newer than the cursor (all of them on the first run), then
   * records them oldest first. Throws on any API failure before recording anything of this poll.
   */
  async pollOnce(): Promise<PollResult> {
    const { db, wallet, minimum } = this.o;
    const cursor = getCursor(db, wallet.raw);
    const fresh: ChainTransaction[] = [];
    const seen = new Set<string>();
    let anchor: Cursor | undefined;
    let pages = 0;
    for (;;) {
      const page = await this.page(anchor);
      pages++;
      let added = 0;
      let reached = false;
      for (const t of page) {
        // Paging is inclusive of the anchor, and pages may overlap: a hash is taken once.
        if (seen.has(t.hash)) continue;
        if (cursor && t.lt <= cursor.lt) {
          reached = true;
          break;
        }
        // Newer than the anchor cannot be on a page that starts at it, unless already collected.
        if (anchor && t.lt > anchor.lt) throw new TonApiError("invalid_response", `getTransactions from lt ${anchor.lt} returned the newer lt ${t.lt}`);
        seen.add(t.hash);
        fresh.push(t);
        added++;
      }
      if (reached) break;
      const oldest = fresh.at(-1);
      // The account's first transaction has no predecessor: the whole history is collected.
      if (oldest && oldest.tx.prevTransactionLt === 0n) break;
      if (added === 0) {
        if (!oldest) break; // an account without transactions
        throw new TonApiError("invalid_response", `getTransactions from lt ${anchor?.lt ?? "newest"} returned nothing older: paging made no progress`);
      }
      anchor = { lt: oldest!.lt, hash: oldest!.hash };
    }
    fresh.sort((a, b) => (a.lt < b.lt ? -1 : a.lt > b.lt ? 1 : 0));
    checkChain(fresh, cursor);
    let credited = 0;
    let recorded = 0;
    for (let i = 0; i < fresh.length; i += BATCH) {
      for (const r of recordBatch(db, wallet.address, fresh.slice(i, i + BATCH), minimum)) {
        if (r.outcome !== "recorded") continue;
        recorded++;
        const d = r.decision;
        if (d.status === "credit") {
          credited++;
          this.s.credited++;
          this.s.creditedNanoton += d.amount;
          this.log("info", `TON deposit credited: ${d.amount} nanoton to account ${d.accountId} from ${d.sender}`);
        } else if (d.status === "unmatched") {
          this.s.unmatched++;
          this.log("warn", `TON transfer not credited (${d.reason}): ${d.amount} nanoton from ${d.sender}, comment ${JSON.stringify(d.comment)}`);
        } else {
          this.s.ignored++;
        }
      }
    }
    this.s.polls++;
    this.s.consecutiveErrors = 0;
    this.s.lastPollAt = this.s.lastSuccessAt = Date.now();
    return { pages, recorded, credited };
  }
}

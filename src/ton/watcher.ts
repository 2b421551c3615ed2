// The deposit watcher: polls the service wallet's transactions, newest first, paging back by
// (lt, hash) until it reaches the last one it processed, then records them oldest first with the
// cursor in the same SQLite transaction; a longer backlog is staged page by page so it survives
// failures and restarts. Errors back off exponentially; nothing here may crash the process.
import { isPg, type Db, type HeldLock } from "../store/query.ts";
import { TonApiError, type ChainTransaction, type ToncenterClient, type TonApiErrorKind } from "./client.ts";
import type { WalletAddress } from "./address.ts";
import { getCursor, recordBatch, type Cursor, type RecordOutcome } from "./service.ts";
import { discardRun, getRun, isStaged, predecessor, recordStagedBatch, sameCursor, stagedCount, stagedGap, stagedPredecessor, stagePage, startRun } from "./backfill.ts";

/** Options for {@link TonWatcher}. */
export interface WatcherOptions {
  db: Db;
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
  /**
   * Several gateways on one database: polls only while this returns a held lock (an advisory lock on
   * Postgres), trying again every interval, so one gateway watches at a time and another takes over
   * within an interval when it dies. Defaults to none: always poll.
   */
  lock?: () => Promise<HeldLock | null>;
}

export type PollErrorKind = TonApiErrorKind | "internal";

export interface WatcherState {
  wallet: string;
  network: string;
  running: boolean;
  cursor: { lt: string; hash: string } | null;
  /** The catch-up run being paged through (a backlog longer than one page); null when there is none. */
  backfill: BackfillState | null;
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

export interface BackfillState {
  /** Transactions fetched and kept so far, not yet recorded. */
  staged: number;
  /** Paging goes on from this transaction (the oldest staged). */
  anchor: { lt: string; hash: string };
  /** The newest transaction of the run: the cursor once it is recorded. */
  top: { lt: string; hash: string };
  /** The cursor the run heads for; null when it reads back to the wallet's first transaction. */
  target: { lt: string; hash: string } | null;
  /** Paging is done; the run is being recorded. */
  complete: boolean;
  /** Unix ms the run began. */
  startedAt: number;
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
    const { lt, hash } = predecessor(t);
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
  /** Pages staged and batches recorded by this process: a failing poll that moved these made progress. */
  private progress = 0;
  private abort = new AbortController();
  private loopDone: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly s: Omit<WatcherState, "cursor" | "backfill" | "running" | "wallet" | "network">;
  /** The watcher lock while this process holds it (several gateways on one database). */
  private held: HeldLock | null = null;
  /** On Postgres: the cursor and catch-up run as of the last poll, for state(). */
  private seen: { cursor: Cursor | null; run: Awaited<ReturnType<typeof getRun>>; staged: number } = { cursor: null, run: null, staged: 0 };

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
    let backfill: BackfillState | null = null;
    const text = (c: Cursor) => ({ lt: c.lt.toString(), hash: c.hash });
    const db = this.o.db;
    try {
      // On Postgres the state is read between polls (it cannot be read synchronously here).
      cursor = isPg(db) ? this.seen.cursor : getCursor(db, this.o.wallet.raw);
      const run = isPg(db) ? this.seen.run : getRun(db, this.o.wallet.raw);
      backfill = run && {
        staged: isPg(db) ? this.seen.staged : stagedCount(db, this.o.wallet.raw),
        anchor: text(run.anchor),
        top: text(run.top),
        target: run.base && text(run.base),
        complete: run.complete,
        startedAt: run.startedAt,
      };
    } catch {
      cursor = null; // the database is closing; the state is still worth showing
      backfill = null;
    }
    return {
      ...this.s,
      pollErrors: { ...this.s.pollErrors },
      wallet: this.o.wallet.display,
      network: this.o.wallet.network,
      running: this.loopDone !== null && !this.stopping,
      cursor: cursor ? text(cursor) : null,
      backfill,
    };
  }

  private async remember(db: Db): Promise<void> {
    const raw = this.o.wallet.raw;
    this.seen = { cursor: await getCursor(db, raw), run: await getRun(db, raw), staged: await stagedCount(db, raw) };
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
    this.log("info", `TON watcher: polling ${this.o.wallet.display} (${this.o.wallet.network}) every ${this.o.intervalMs / 1000} s${this.o.lock ? " while this gateway holds the watcher lock" : ""}`);
    try {
      await this.watch();
    } finally {
      await this.held?.release().catch(() => {});
      this.held = null;
    }
  }

  private async watch(): Promise<void> {
    let standby = false;
    while (!this.stopping) {
      let delay = this.o.intervalMs;
      const progressBefore = this.progress;
      try {
        // A lock whose connection dropped is gone (another gateway may watch now): stand by and take it again.
        if (this.held && !(await this.held.held())) {
          this.log("warn", "TON watcher: lost the watcher lock (its database connection dropped); standing by until it is free");
          await this.held.release().catch(() => {});
          this.held = null;
          standby = true;
        }
        if (this.o.lock && !this.held) {
          this.held = await this.o.lock();
          if (!this.held) {
            if (!standby) this.log("info", "TON watcher: another gateway holds the watcher lock; standing by");
            standby = true;
            await this.sleep(delay);
            continue;
          }
          if (standby) this.log("info", "TON watcher: took over the watcher lock");
          standby = false;
        }
        await this.pollOnce();
        if (isPg(this.o.db)) await this.remember(this.o.db);
      } catch (err) {
        if (this.stopping) break;
        // A catch-up run that kept pages before failing is getting somewhere: the backoff starts over
        // instead of growing, so a flaky API slows a long backlog by one short wait per failure.
        if (this.progress !== progressBefore) this.s.consecutiveErrors = 0;
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
   * One poll. The usual case, the newest page reaching the cursor, is recorded straight from memory.
   * A longer backlog becomes a staged run (see backfill.ts): each page is kept in the database with
   * the anchor to page on from, so a failure costs one page and the next poll (or a restart) goes on
   * from there; once paging reaches the cursor (or the wallet's first transaction) the run's chain is
   * checked and it is recorded oldest first from the database, 100 at a time. Throws on an API
   * failure or a gap, having recorded nothing of the unfinished run.
   */
  async pollOnce(): Promise<PollResult> {
    const { db, wallet } = this.o;
    const cursor = await getCursor(db, wallet.raw);
    let run = await getRun(db, wallet.raw);
    if (run && !sameCursor(run.base, cursor)) {
      // The cursor moved (or was reset) under the run: what it staged no longer joins up with it.
      this.log("warn", `TON watcher: the staged catch-up run heads for ${run.base?.lt ?? "the first transaction"}, but the cursor is ${cursor?.lt ?? "unset"}; starting it again`);
      await discardRun(db, wallet.raw);
      run = null;
    }
    let pages = 0;
    const tally = { recorded: 0, credited: 0 };
    if (!run) {
      const page = await this.page(undefined);
      pages++;
      const { fresh, end } = await this.take(page, undefined, cursor);
      if (end) {
        // Oldest first; the cursor check and the chain check as for a staged run, all in memory (≤ one page).
        const oldestFirst = fresh.reverse();
        checkChain(oldestFirst, cursor);
        this.book(await recordBatch(db, wallet.address, oldestFirst, this.o.minimum), tally);
        return this.succeeded({ pages, ...tally });
      }
      await this.linkPage(undefined, fresh);
      run = await startRun(db, wallet.raw, cursor, fresh, false);
      this.progress++;
    }
    while (!run.complete) {
      const page = await this.page(run.anchor);
      pages++;
      const { fresh, end } = await this.take(page, run.anchor, run.base);
      if (!end && fresh.length === 0) throw new TonApiError("invalid_response", `getTransactions from lt ${run.anchor.lt} returned nothing older: paging made no progress`);
      await this.linkPage(run.anchor, fresh);
      run = await stagePage(db, wallet.raw, fresh, end);
      this.progress++;
    }
    const gap = await stagedGap(db, wallet.raw, run);
    if (gap) {
      await discardRun(db, wallet.raw);
      throw new TonApiError("invalid_response", `the wallet's history has a gap: ${gap}; the staged run is discarded, nothing recorded, retrying`);
    }
    for (;;) {
      const { outcomes, done } = await recordStagedBatch(db, wallet.address, this.o.minimum, BATCH);
      this.progress++;
      this.book(outcomes, tally);
      if (done) break;
    }
    return this.succeeded({ pages, ...tally });
  }

  /**
   * The transactions of `page` not yet taken, newest first, down to `base` (exclusive) or the wallet's
   * first transaction; `end` when the page got there (or the wallet has no transactions).
   */
  private async take(page: ChainTransaction[], anchor: Cursor | undefined, base: Cursor | null): Promise<{ fresh: ChainTransaction[]; end: boolean }> {
    const raw = this.o.wallet.raw;
    const fresh: ChainTransaction[] = [];
    const seen = new Set<string>();
    // Newest first whatever order the API used: the base check and the chain links read in that order.
    const newestFirst = [...page].sort((a, b) => (a.lt > b.lt ? -1 : a.lt < b.lt ? 1 : 0));
    for (const t of newestFirst) {
      // Paging is inclusive of the anchor, and pages may overlap: a hash is taken once.
      if (seen.has(t.hash) || (anchor && (t.hash === anchor.hash || (await isStaged(this.o.db, raw, t.hash))))) continue;
      if (base && t.lt <= base.lt) return { fresh, end: true };
      // Newer than the anchor cannot be on a page that starts at it, unless already staged.
      if (anchor && t.lt > anchor.lt) throw new TonApiError("invalid_response", `getTransactions from lt ${anchor.lt} returned the newer lt ${t.lt}`);
      seen.add(t.hash);
      fresh.push(t);
    }
    const oldest = fresh.at(-1);
    // The account's first transaction has no predecessor: the whole history is collected.
    if (oldest) return { fresh, end: oldest.tx.prevTransactionLt === 0n };
    return { fresh, end: !anchor };
  }

  /**
   * A page about to be staged must link up inside itself and to the anchor above it: a gap found
   * here discards the run at once rather than after paging through the rest of the history.
   */
  private async linkPage(anchor: Cursor | undefined, newestFirst: ChainTransaction[]): Promise<void> {
    const raw = this.o.wallet.raw;
    let expected: Cursor | null = anchor ? await stagedPredecessor(this.o.db, raw, anchor.hash) : null;
    for (const t of newestFirst) {
      if (expected && !sameCursor(expected, { lt: t.lt, hash: t.hash })) {
        await discardRun(this.o.db, raw);
        throw new TonApiError(
          "invalid_response",
          `the wallet's history has a gap: the transaction before ${expected.lt}:${expected.hash.slice(0, 16)}... is missing (the API sent ${t.lt} next); the staged run is discarded, nothing recorded, retrying`,
        );
      }
      expected = predecessor(t);
    }
  }

  /** Counts and logs what recorded transactions came to. */
  private book(outcomes: RecordOutcome[], tally: { recorded: number; credited: number }): void {
    for (const r of outcomes) {
      if (r.outcome !== "recorded") continue;
      tally.recorded++;
      const d = r.decision;
      if (d.status === "credit") {
        tally.credited++;
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

  private succeeded(r: PollResult): PollResult {
    this.s.polls++;
    this.s.consecutiveErrors = 0;
    this.s.lastPollAt = this.s.lastSuccessAt = Date.now();
    return r;
  }
}

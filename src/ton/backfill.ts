// The deposit watcher's staged catch-up run: pages of a backlog kept in SQLite with the anchor to
// page on from, so a long history is fetched across polls and restarts in bounded memory, and is
// recorded only once the whole run links up to the cursor it heads for.
import type { Address } from "@ton/core";
import { all, dual, get, run, tx, type Q } from "../store/query.ts";
import { decodeTransaction, type ChainTransaction } from "./client.ts";
import { recordBatch, type Cursor, type RecordOutcome } from "./service.ts";

/** A catch-up run in progress for one wallet. */
export interface BackfillRun {
  /** The cursor the run heads for; null when it goes back to the wallet's first transaction. */
  base: Cursor | null;
  /** The newest transaction of the run: the cursor once it is all recorded. */
  top: Cursor;
  /** The oldest transaction staged so far: paging continues from it (inclusive). */
  anchor: Cursor;
  /** Paging reached the base: what is left is to check the chain and record. */
  complete: boolean;
  startedAt: number;
}

interface RunRow {
  base_lt: bigint | null;
  base_hash: string | null;
  top_lt: bigint;
  top_hash: string;
  anchor_lt: bigint;
  anchor_hash: string;
  complete: bigint;
  started_at: bigint;
}

/** The predecessor a transaction names, as a cursor (lt 0 and a zero hash for the first one). */
export const predecessor = (t: ChainTransaction): Cursor => ({ lt: t.tx.prevTransactionLt, hash: t.tx.prevTransactionHash.toString(16).padStart(64, "0") });

export const sameCursor = (a: Cursor | null, b: Cursor | null) => (a === null || b === null ? a === b : a.lt === b.lt && a.hash === b.hash);

export const getRun = dual(function* (wallet: string): Q<BackfillRun | null> {
  const r = yield* get<RunRow>("SELECT * FROM ton_backfill WHERE wallet = ?", wallet);
  if (!r) return null;
  return {
    base: r.base_lt === null ? null : { lt: r.base_lt, hash: r.base_hash! },
    top: { lt: r.top_lt, hash: r.top_hash },
    anchor: { lt: r.anchor_lt, hash: r.anchor_hash },
    complete: r.complete === 1n,
    startedAt: Number(r.started_at),
  };
});

export const stagedCount = dual(function* (wallet: string): Q<number> {
  return Number((yield* get<{ n: bigint }>("SELECT count(*) AS n FROM ton_backfill_txs WHERE wallet = ?", wallet))!.n);
});

/** Whether `hash` is staged in the wallet's run. */
export const isStaged = dual(function* (wallet: string, hash: string): Q<boolean> {
  return (yield* get("SELECT 1 AS one FROM ton_backfill_txs WHERE wallet = ? AND hash = ?", wallet, hash)) !== null;
});

/** The staged row's predecessor, or null when `hash` is not staged. */
export const stagedPredecessor = dual(function* (wallet: string, hash: string): Q<Cursor | null> {
  const r = yield* get<{ prev_lt: bigint; prev_hash: string }>("SELECT prev_lt, prev_hash FROM ton_backfill_txs WHERE wallet = ? AND hash = ?", wallet, hash);
  return r ? { lt: r.prev_lt, hash: r.prev_hash } : null;
});

/** Drops the wallet's run and everything staged for it. */
export const discardRun = dual(function* (wallet: string): Q<void> {
  yield* tx(function* () {
    yield* run("DELETE FROM ton_backfill_txs WHERE wallet = ?", wallet);
    yield* run("DELETE FROM ton_backfill WHERE wallet = ?", wallet);
  });
});

function* insertStaged(wallet: string, newestFirst: ChainTransaction[]): Q<void> {
  for (const t of newestFirst) {
    const p = predecessor(t);
    yield* run("INSERT INTO ton_backfill_txs (wallet, lt, hash, prev_lt, prev_hash, boc) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", wallet, t.lt, t.hash, p.lt, p.hash, t.tx.raw.toBoc());
  }
}

/**
 * Starts a run with its first (newest) page, newest first, heading for `base`: the run row and the
 * page in one transaction.
 */
export const startRun = dual(function* (wallet: string, base: Cursor | null, newestFirst: ChainTransaction[], complete: boolean): Q<BackfillRun> {
  const top = newestFirst[0]!;
  const oldest = newestFirst.at(-1)!;
  const now = Date.now();
  yield* tx(function* () {
    // A leftover run (its base no longer the cursor) must not mix with this one.
    yield* run("DELETE FROM ton_backfill_txs WHERE wallet = ?", wallet);
    yield* run("DELETE FROM ton_backfill WHERE wallet = ?", wallet);
    yield* run(
      `INSERT INTO ton_backfill (wallet, base_lt, base_hash, top_lt, top_hash, anchor_lt, anchor_hash, complete, started_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      wallet, base?.lt ?? null, base?.hash ?? null, top.lt, top.hash, oldest.lt, oldest.hash, complete ? 1 : 0, now, now,
    );
    yield* insertStaged(wallet, newestFirst);
  });
  return (yield* getRun.q(wallet))!;
});

/** Stages the next page (newest first, all older than the anchor) and moves the anchor, in one transaction. */
export const stagePage = dual(function* (wallet: string, newestFirst: ChainTransaction[], complete: boolean): Q<BackfillRun> {
  yield* tx(function* () {
    yield* insertStaged(wallet, newestFirst);
    const oldest = newestFirst.at(-1);
    if (oldest) yield* run("UPDATE ton_backfill SET anchor_lt = ?, anchor_hash = ?, updated_at = ? WHERE wallet = ?", oldest.lt, oldest.hash, Date.now(), wallet);
    if (complete) yield* run("UPDATE ton_backfill SET complete = 1, updated_at = ? WHERE wallet = ?", Date.now(), wallet);
  });
  return (yield* getRun.q(wallet))!;
});

/**
 * The gap check over the staged run, oldest first: each transaction must name the one before it as
 * its predecessor, from the base up to the top. Returns why it does not hold, or null.
 */
export const stagedGap = dual(function* (wallet: string, backfill: BackfillRun): Q<string | null> {
  let prev: Cursor = backfill.base ?? { lt: 0n, hash: "0".repeat(64) };
  const rows = yield* all<{ lt: bigint; hash: string; prev_lt: bigint; prev_hash: string }>("SELECT lt, hash, prev_lt, prev_hash FROM ton_backfill_txs WHERE wallet = ? ORDER BY lt", wallet);
  for (const r of rows) {
    if (r.prev_lt !== prev.lt || r.prev_hash !== prev.hash) {
      return `transaction ${r.lt} follows ${r.prev_lt}:${r.prev_hash.slice(0, 16)}..., but the one before it is ${prev.lt}:${prev.hash.slice(0, 16)}...`;
    }
    prev = { lt: r.lt, hash: r.hash };
  }
  if (!sameCursor(prev, backfill.top)) return `the run ends at ${prev.lt}, not at its top ${backfill.top.lt}`;
  return null;
});

/**
 * Records the oldest `limit` staged transactions (decoded again from their BOC: the deposit decision
 * comes from the chain's data) and, in the same transaction, moves the cursor, deletes them from the
 * stage and moves the run's base up to them; the run ends with its last batch. Returns what each
 * came to, oldest first, and whether the run is done.
 */
export const recordStagedBatch = dual(function* (wallet: Address, minimum: bigint, limit: number): Q<{ outcomes: RecordOutcome[]; done: boolean }> {
  const raw = wallet.toRawString();
  return yield* tx(function* () {
    const rows = yield* all<{ lt: bigint; hash: string; boc: Uint8Array }>("SELECT lt, hash, boc FROM ton_backfill_txs WHERE wallet = ? ORDER BY lt LIMIT ?", raw, limit);
    const txs = rows.map((r) => decodeTransaction({ data: Buffer.from(r.boc).toString("base64"), transaction_id: { lt: r.lt.toString(), hash: r.hash } }));
    const outcomes = yield* recordBatch.q(wallet, txs, minimum);
    const newest = txs.at(-1);
    if (newest) {
      yield* run("DELETE FROM ton_backfill_txs WHERE wallet = ? AND lt <= ?", raw, newest.lt);
      yield* run("UPDATE ton_backfill SET base_lt = ?, base_hash = ?, updated_at = ? WHERE wallet = ?", newest.lt, newest.hash, Date.now(), raw);
    }
    const left = (yield* get("SELECT 1 AS one FROM ton_backfill_txs WHERE wallet = ? LIMIT 1", raw)) !== null;
    if (!left) yield* run("DELETE FROM ton_backfill WHERE wallet = ?", raw);
    return { outcomes, done: !left };
  });
});

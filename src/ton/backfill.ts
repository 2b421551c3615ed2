// The deposit watcher's staged catch-up run: pages of a backlog kept in SQLite with the anchor to
// page on from, so a long history is fetched across polls and restarts in bounded memory, and is
// recorded only once the whole run links up to the cursor it heads for.
import type { Database } from "bun:sqlite";
import type { Address } from "@ton/core";
import { inTransaction } from "../store/db.ts";
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

export function getRun(db: Database, wallet: string): BackfillRun | null {
  const r = db.query<RunRow, [string]>("SELECT * FROM ton_backfill WHERE wallet = ?").get(wallet);
  if (!r) return null;
  return {
    base: r.base_lt === null ? null : { lt: r.base_lt, hash: r.base_hash! },
    top: { lt: r.top_lt, hash: r.top_hash },
    anchor: { lt: r.anchor_lt, hash: r.anchor_hash },
    complete: r.complete === 1n,
    startedAt: Number(r.started_at),
  };
}

export function stagedCount(db: Database, wallet: string): number {
  return Number(db.query<{ n: bigint }, [string]>("SELECT count(*) AS n FROM ton_backfill_txs WHERE wallet = ?").get(wallet)!.n);
}

/** Whether `hash` is staged in the wallet's run. */
export function isStaged(db: Database, wallet: string, hash: string): boolean {
  return db.query("SELECT 1 FROM ton_backfill_txs WHERE wallet = ? AND hash = ?").get(wallet, hash) !== null;
}

/** The staged row's predecessor, or null when `hash` is not staged. */
export function stagedPredecessor(db: Database, wallet: string, hash: string): Cursor | null {
  const r = db.query<{ prev_lt: bigint; prev_hash: string }, [string, string]>("SELECT prev_lt, prev_hash FROM ton_backfill_txs WHERE wallet = ? AND hash = ?").get(wallet, hash);
  return r ? { lt: r.prev_lt, hash: r.prev_hash } : null;
}

/** Drops the wallet's run and everything staged for it. */
export function discardRun(db: Database, wallet: string): void {
  inTransaction(db, () => {
    db.query("DELETE FROM ton_backfill_txs WHERE wallet = ?").run(wallet);
    db.query("DELETE FROM ton_backfill WHERE wallet = ?").run(wallet);
  });
}

function insertStaged(db: Database, wallet: string, newestFirst: ChainTransaction[]): void {
  const ins = db.query("INSERT OR IGNORE INTO ton_backfill_txs (wallet, lt, hash, prev_lt, prev_hash, boc) VALUES (?, ?, ?, ?, ?, ?)");
  for (const t of newestFirst) {
    const p = predecessor(t);
    ins.run(wallet, t.lt, t.hash, p.lt, p.hash, t.tx.raw.toBoc());
  }
}

/**
 * Starts a run with its first (newest) page, newest first, heading for `base`: the run row and the
 * page in one transaction.
 */
export function startRun(db: Database, wallet: string, base: Cursor | null, newestFirst: ChainTransaction[], complete: boolean): BackfillRun {
  const top = newestFirst[0]!;
  const oldest = newestFirst.at(-1)!;
  const now = Date.now();
  inTransaction(db, () => {
    // A leftover run (its base no longer the cursor) must not mix with this one.
    db.query("DELETE FROM ton_backfill_txs WHERE wallet = ?").run(wallet);
    db.query("DELETE FROM ton_backfill WHERE wallet = ?").run(wallet);
    db.query(
      `INSERT INTO ton_backfill (wallet, base_lt, base_hash, top_lt, top_hash, anchor_lt, anchor_hash, complete, started_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(wallet, base?.lt ?? null, base?.hash ?? null, top.lt, top.hash, oldest.lt, oldest.hash, complete ? 1 : 0, now, now);
    insertStaged(db, wallet, newestFirst);
  });
  return getRun(db, wallet)!;
}

/** Stages the next page (newest first, all older than the anchor) and moves the anchor, in one transaction. */
export function stagePage(db: Database, wallet: string, newestFirst: ChainTransaction[], complete: boolean): BackfillRun {
  inTransaction(db, () => {
    insertStaged(db, wallet, newestFirst);
    const oldest = newestFirst.at(-1);
    if (oldest) db.query("UPDATE ton_backfill SET anchor_lt = ?, anchor_hash = ?, updated_at = ? WHERE wallet = ?").run(oldest.lt, oldest.hash, Date.now(), wallet);
    if (complete) db.query("UPDATE ton_backfill SET complete = 1, updated_at = ? WHERE wallet = ?").run(Date.now(), wallet);
  });
  return getRun(db, wallet)!;
}

/**
 * The gap check over the staged run, oldest first, streamed from the database (nothing held but one
 * row): each transaction must name the one before it as its predecessor, from the base up to the
 * top. Returns why it does not hold, or null.
 */
export function stagedGap(db: Database, wallet: string, run: BackfillRun): string | null {
  let prev: Cursor = run.base ?? { lt: 0n, hash: "0".repeat(64) };
  const rows = db
    .query<{ lt: bigint; hash: string; prev_lt: bigint; prev_hash: string }, [string]>("SELECT lt, hash, prev_lt, prev_hash FROM ton_backfill_txs WHERE wallet = ? ORDER BY lt")
    .iterate(wallet);
  for (const r of rows) {
    if (r.prev_lt !== prev.lt || r.prev_hash !== prev.hash) {
      return `transaction ${r.lt} follows ${r.prev_lt}:${r.prev_hash.slice(0, 16)}..., but the one before it is ${prev.lt}:${prev.hash.slice(0, 16)}...`;
    }
    prev = { lt: r.lt, hash: r.hash };
  }
  if (!sameCursor(prev, run.top)) return `the run ends at ${prev.lt}, not at its top ${run.top.lt}`;
  return null;
}

/**
 * Records the oldest `limit` staged transactions (decoded again from their BOC: the deposit decision
 * comes from the chain's data) and, in the same transaction, moves the cursor, deletes them from the
 * stage and moves the run's base up to them; the run ends with its last batch. Returns what each
 * came to, oldest first, and whether the run is done.
 */
export function recordStagedBatch(db: Database, wallet: Address, minimum: bigint, limit: number): { outcomes: RecordOutcome[]; done: boolean } {
  const raw = wallet.toRawString();
  return inTransaction(db, () => {
    const rows = db
      .query<{ lt: bigint; hash: string; boc: Uint8Array }, [string, number]>("SELECT lt, hash, boc FROM ton_backfill_txs WHERE wallet = ? ORDER BY lt LIMIT ?")
      .all(raw, limit);
    const txs = rows.map((r) => decodeTransaction({ data: Buffer.from(r.boc).toString("base64"), transaction_id: { lt: r.lt.toString(), hash: r.hash } }));
    const outcomes = recordBatch(db, wallet, txs, minimum);
    const newest = txs.at(-1);
    if (newest) {
      db.query("DELETE FROM ton_backfill_txs WHERE wallet = ? AND lt <= ?").run(raw, newest.lt);
      db.query("UPDATE ton_backfill SET base_lt = ?, base_hash = ?, updated_at = ? WHERE wallet = ?").run(newest.lt, newest.hash, Date.now(), raw);
    }
    const left = db.query("SELECT 1 FROM ton_backfill_txs WHERE wallet = ? LIMIT 1").get(raw) !== null;
    if (!left) db.query("DELETE FROM ton_backfill WHERE wallet = ?").run(raw);
    return { outcomes, done: !left };
  });
}

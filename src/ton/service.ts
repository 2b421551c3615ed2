// The deposit book: records each transaction of the service wallet once (by hash), credits matched
// ones with their ledger row in the same transaction (SQLite or Postgres), keeps the watcher's cursor, and lets an
// admin list deposits and assign an unmatched one to an account, once, with who and why.
import type { Address } from "@ton/core";
import { findAccountByDepositCode, getAccount } from "../platform/accounts.ts";
import { credit } from "../platform/ledger.ts";
import { all, dual, filter, forUpdate, get, run, tx, type Q } from "../store/query.ts";
import type { ChainTransaction } from "./client.ts";
import { decide, type Decision } from "./rules.ts";

export type DepositStatus = "credited" | "unmatched" | "ignored";

export interface Deposit {
  txHash: string;
  txLt: bigint;
  wallet: string;
  sender: string | null;
  amount: bigint;
  comment: string | null;
  status: DepositStatus;
  /** Why it was credited ('matched') or not; an assigned deposit keeps why it was unmatched. */
  reason: string;
  accountId: number | null;
  chainTime: number;
  seenAt: number;
  creditedAt: number | null;
  assignedBy: string | null;
  assignNote: string | null;
}

interface DepositRow {
  tx_hash: string;
  tx_lt: bigint;
  wallet: string;
  sender: string | null;
  amount_nanoton: bigint;
  comment: string | null;
  status: DepositStatus;
  reason: string;
  account_id: bigint | null;
  chain_time: bigint;
  seen_at: bigint;
  credited_at: bigint | null;
  assigned_by: string | null;
  assign_note: string | null;
}

const toDeposit = (r: DepositRow): Deposit => ({
  txHash: r.tx_hash,
  txLt: r.tx_lt,
  wallet: r.wallet,
  sender: r.sender,
  amount: r.amount_nanoton,
  comment: r.comment,
  status: r.status,
  reason: r.reason,
  accountId: r.account_id === null ? null : Number(r.account_id),
  chainTime: Number(r.chain_time),
  seenAt: Number(r.seen_at),
  creditedAt: r.credited_at === null ? null : Number(r.credited_at),
  assignedBy: r.assigned_by,
  assignNote: r.assign_note,
});

export interface Cursor {
  lt: bigint;
  hash: string;
}

export const getCursor = dual(function* (wallet: string): Q<Cursor | null> {
  const r = yield* get<{ lt: bigint; hash: string }>("SELECT lt, hash FROM ton_cursor WHERE wallet = ?", wallet);
  return r ? { lt: r.lt, hash: r.hash } : null;
});

/** What one recorded transaction came to; "seen" when its hash was recorded before (nothing changed). */
export type RecordOutcome = { outcome: "seen" } | { outcome: "recorded"; decision: Decision };

/** The rules' decision, with the account its comment names read from the store (decide asks at most once). */
function* decideQ(t: ChainTransaction, wallet: Address, minimum: bigint): Q<Decision> {
  let asked: string | null = null;
  const first = decide(t, wallet, minimum, (comment) => {
    asked = comment;
    return null;
  });
  if (asked === null) return first;
  const account = yield* findAccountByDepositCode.q((asked as string).trim());
  return account ? decide(t, wallet, minimum, () => account.id) : first;
}

function* recordQ(wallet: Address, t: ChainTransaction, minimum: bigint, now: number): Q<RecordOutcome> {
  return yield* tx(function* (): Q<RecordOutcome> {
    if (yield* get("SELECT 1 AS one FROM ton_deposits WHERE tx_hash = ?", t.hash)) return { outcome: "seen" };
    const d = yield* decideQ(t, wallet, minimum);
    const credited = d.status === "credit";
    // ON CONFLICT: another gateway recording the same hash at the same moment waits for our row and
    // inserts nothing; only the transaction whose row went in credits it.
    const r = yield* run(
      `INSERT INTO ton_deposits (tx_hash, tx_lt, wallet, sender, amount_nanoton, comment, status, reason, account_id, chain_time, seen_at, credited_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tx_hash) DO NOTHING`,
      t.hash, t.lt, wallet.toRawString(), d.sender, d.amount, d.comment, credited ? "credited" : d.status, d.reason,
      credited ? d.accountId : null, d.chainTime, now, credited ? now : null,
    );
    if (r.changes === 0) return { outcome: "seen" };
    // The ledger's UNIQUE(kind, reference) is a second lock on the same door: one deposit per hash.
    if (credited) yield* credit.q(d.accountId, d.amount, "deposit", t.hash, `TON transfer from ${d.sender}`);
    return { outcome: "recorded", decision: d };
  });
}

/** Records one transaction (and credits it when the rules say so), all or nothing, once per hash across gateways. */
export const recordTransaction = dual(function* (wallet: Address, t: ChainTransaction, minimum: bigint, now: number = Date.now()): Q<RecordOutcome> {
  return yield* recordQ(wallet, t, minimum, now);
});

/**
 * Records `oldestFirst` (a contiguous run of the wallet's history that starts right after the stored
 * cursor) and moves the cursor to its newest transaction, in one transaction: a crash leaves either
 * all of it or none of it, and a run recorded again is all "seen".
 */
export const recordBatch = dual(function* (wallet: Address, oldestFirst: ChainTransaction[], minimum: bigint): Q<RecordOutcome[]> {
  if (oldestFirst.length === 0) return [];
  const now = Date.now();
  return yield* tx(function* () {
    const out: RecordOutcome[] = [];
    for (const t of oldestFirst) out.push(yield* recordQ(wallet, t, minimum, now));
    const newest = oldestFirst.at(-1)!;
    yield* run(
      `INSERT INTO ton_cursor (wallet, lt, hash, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (wallet) DO UPDATE SET lt = excluded.lt, hash = excluded.hash, updated_at = excluded.updated_at WHERE excluded.lt > ton_cursor.lt`,
      wallet.toRawString(), newest.lt, newest.hash, now,
    );
    return out;
  });
});

/** One recorded transfer, or null. `lock`: FOR UPDATE, inside a transaction that goes on to change it. */
export const getDeposit = dual(function* (txHash: string, lock = false): Q<Deposit | null> {
  const locking = lock ? yield* forUpdate() : "";
  const r = yield* get<DepositRow>(`SELECT * FROM ton_deposits WHERE tx_hash = ?${locking}`, txHash);
  return r ? toDeposit(r) : null;
});

/** Deposits newest first (by lt); `beforeLt` pages on from the previous page's last entry. */
export const listDeposits = dual(function* (q: { status?: DepositStatus; accountId?: number; limit: number; beforeLt?: bigint | null }): Q<{ data: Deposit[]; hasMore: boolean }> {
  const w = filter(["status = ?", q.status], ["account_id = ?", q.accountId], ["tx_lt < ?", q.beforeLt]);
  const limit = Math.min(1000, Math.max(1, Math.floor(q.limit)));
  const rows = yield* all<DepositRow>(`SELECT * FROM ton_deposits WHERE ${w.sql} ORDER BY tx_lt DESC, tx_hash DESC LIMIT ?`, ...w.params, limit + 1);
  return { data: rows.slice(0, limit).map(toDeposit), hasMore: rows.length > limit };
});

export type AssignResult =
  | { outcome: "assigned" | "repeated"; deposit: Deposit; balance: bigint }
  | { outcome: "no_deposit" }
  | { outcome: "no_account" }
  /** Credited automatically or to another account, or not a deposit at all. */
  | { outcome: "not_assignable"; deposit: Deposit };

/**
 * Credits an unmatched transfer to `accountId` with a ledger 'deposit' row whose reference is the
 * transaction hash, and records who did it and why, in one transaction. Assigning it again to the
 * same account is a no-op ("repeated"), so an admin may retry; anything else already settled is refused.
 */
export const assignDeposit = dual(function* (txHash: string, accountId: number, by: string, note: string): Q<AssignResult> {
  return yield* tx(function* (): Q<AssignResult> {
    // Locked: of two admins assigning one transfer at once (on two gateways), the second waits and
    // then finds it credited.
    const d = yield* getDeposit.q(txHash, true);
    if (!d) return { outcome: "no_deposit" };
    if (d.status === "credited" && d.accountId === accountId && d.assignedBy !== null) {
      return { outcome: "repeated", deposit: d, balance: (yield* getAccount.q(accountId))?.balance ?? 0n };
    }
    if (d.status !== "unmatched" || d.amount <= 0n) return { outcome: "not_assignable", deposit: d };
    if (!(yield* getAccount.q(accountId))) return { outcome: "no_account" };
    const now = Date.now();
    yield* run(
      "UPDATE ton_deposits SET status = 'credited', account_id = ?, credited_at = ?, assigned_by = ?, assign_note = ? WHERE tx_hash = ? AND status = 'unmatched'",
      accountId, now, by, note, txHash,
    );
    yield* credit.q(accountId, d.amount, "deposit", txHash, `assigned by ${by}: ${note} (was ${d.reason})`);
    return { outcome: "assigned", deposit: (yield* getDeposit.q(txHash))!, balance: (yield* getAccount.q(accountId))!.balance };
  });
});

/** Counts by status, for the admin view and ops. */
export const depositCounts = dual(function* (): Q<Record<DepositStatus, number>> {
  const out: Record<DepositStatus, number> = { credited: 0, unmatched: 0, ignored: 0 };
  for (const r of yield* all<{ status: DepositStatus; n: bigint }>("SELECT status, count(*) AS n FROM ton_deposits GROUP BY status")) out[r.status] = Number(r.n);
  return out;
});

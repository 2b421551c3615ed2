// The prepaid ledger: credits, reservations for requests in flight, settlement into charges, and the
// checks that prove the books add up. Money is bigint nanoton end to end; each change is one transaction.
import type { Usage } from "../inference/types.ts";
import { all, dual, forUpdate, get, run, tx, type Q } from "../store/query.ts";
import { periodEnd, periodStart, periodStarts, type BudgetDuration } from "./limits.ts";

export type CreditKind = "deposit" | "adjustment";
export type UsageStatus = "ok" | "cancelled" | "timeout" | "error";

/** What a settled request did; stored as its usage row (cost comes from settle). */
export interface UsageRecord extends Usage {
  keyId: number | null;
  model: string;
  endpoint: string;
  requestGuid?: string | null;
  status: UsageStatus;
  /** Unix ms. */
  startedAt: number;
  durationMs: number;
}

export interface UsageEntry extends UsageRecord {
  id: string;
  accountId: number;
  requestGuid: string | null;
  /** Nanoton charged. */
  cost: bigint;
  /** Nanoton of the computed cost above the reservation that was not charged (normally 0). */
  uncharged: bigint;
}

/**
 * A granted hold, and what made it smaller than wanted, if anything: the account's balance or the
 * key's budget (then generation is capped, and the response says so).
 */
export type ReserveResult =
  | { ok: true; amount: bigint; cappedBy: "balance" | "key_budget" | null }
  | { ok: false; reason: "insufficient_balance"; balance: bigint }
  // The key's lifetime or period budget has no room left; `resetAt` when a period budget binds.
  | { ok: false; reason: "key_budget"; limit: bigint; spent: bigint; period: BudgetDuration | null; resetAt: number | null }
  | { ok: false; reason: "key_parallel"; limit: number };

export interface SettleResult {
  requestId: string;
  accountId: number;
  /** The reservation that was released. */
  reserved: bigint;
  /** What was charged: the cost, or the reservation when the cost was clamped to it. */
  charged: bigint;
  /** cost − charged: what the clamp left unbilled. */
  uncharged: bigint;
  clamped: boolean;
  /** True when this request had been settled before: nothing was written, the first result is returned. */
  alreadySettled: boolean;
}

export interface Balance {
  balance: bigint;
  reserved: bigint;
  /** What a new request may still reserve: balance + maxOverdraft − reserved. */
  available(maxOverdraft: bigint): bigint;
}

function* insertLedger(accountId: number, kind: string, amount: bigint, reference: string, note: string | null, now: number): Q<void> {
  yield* run("INSERT INTO ledger (account_id, kind, amount_nanoton, reference, note, created_at) VALUES (?, ?, ?, ?, ?, ?)", accountId, kind, amount, reference, note, now);
}

/**
 * Books money onto an account: a deposit (> 0; reference = the transfer's transaction hash) or an admin
 * adjustment (either sign; reference chosen by the caller, e.g. an idempotency key). Returns false and
 * changes nothing when this kind and reference were booked before, so a watcher may retry freely.
 * A negative adjustment may take a balance below −overdraft: it is an explicit admin decision.
 */
export const credit = dual(function* (accountId: number, amount: bigint, kind: CreditKind, reference: string, note?: string | null): Q<boolean> {
  if (kind === "deposit" ? amount <= 0n : amount === 0n) throw new RangeError(`${kind} amount must be ${kind === "deposit" ? "positive" : "non-zero"}`);
  if (reference === "") throw new RangeError("reference must not be empty");
  const now = Date.now();
  return yield* tx(function* () {
    // ON CONFLICT: a second gateway booking the same transaction hash inserts nothing and credits nothing.
    const r = yield* run(
      "INSERT INTO ledger (account_id, kind, amount_nanoton, reference, note, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, reference) DO NOTHING",
      accountId, kind, amount, reference, note ?? null, now,
    );
    if (r.changes === 0) return false;
    yield* run("UPDATE accounts SET balance_nanoton = balance_nanoton + ? WHERE id = ?", amount, accountId);
    return true;
  });
});

/** Options for {@link reserve}; all money in nanoton. */
export interface ReserveRequest {
  requestId: string;
  accountId: number;
  /** The request's worst-case cost (see pricing.maxCostOf). */
  want: bigint;
  minimumBalance: bigint;
  maxOverdraft: bigint;
  /** The process holding it (see leases.ts): only it, or a process proving it dead, may release it. Defaults to none. */
  owner?: string | null;
  /** The key making the request: its budgets and concurrency cap bind too. Defaults to none. */
  keyId?: number | null;
  /** Defaults to Date.now(). */
  now?: number;
}

interface KeyBudgetRow {
  max_parallel_requests: bigint | null;
  max_budget_nanoton: bigint | null;
  period_budget_nanoton: bigint | null;
  budget_duration: BudgetDuration | null;
  spend_nanoton: bigint;
  period_spend_nanoton: bigint;
  period_start: bigint;
  open_count: bigint;
  open_held: bigint;
}

type KeyRoom = { ok: true; room: bigint | null } | Extract<ReserveResult, { ok: false }>;

/**
 * What the key may still hold, read inside the reserving transaction (so no other reservation can
 * slip in between): its budgets minus what it spent and what its open requests hold; null: no budget.
 */
function* keyRoom(keyId: number, now: number): Q<KeyRoom> {
  const k = yield* get<KeyBudgetRow>(
    `SELECT k.max_parallel_requests, k.max_budget_nanoton, k.period_budget_nanoton, k.budget_duration, k.spend_nanoton,
       k.period_spend_nanoton, k.period_start,
       (SELECT count(*) FROM reservations r WHERE r.key_id = k.id AND r.closed_at IS NULL) AS open_count,
       (SELECT CAST(coalesce(sum(amount_nanoton), 0) AS BIGINT) FROM reservations r WHERE r.key_id = k.id AND r.closed_at IS NULL) AS open_held
     FROM api_keys k WHERE k.id = ?`,
    keyId,
  );
  if (!k) return { ok: true, room: null };
  if (k.max_parallel_requests !== null && k.open_count >= k.max_parallel_requests) return { ok: false, reason: "key_parallel", limit: Number(k.max_parallel_requests) };
  let room: bigint | null = null;
  let refusal: Extract<ReserveResult, { reason: "key_budget" }> | null = null;
  if (k.max_budget_nanoton !== null) {
    const spent = k.spend_nanoton + k.open_held;
    room = k.max_budget_nanoton - spent;
    if (room <= 0n) refusal = { ok: false, reason: "key_budget", limit: k.max_budget_nanoton, spent, period: null, resetAt: null };
  }
  if (!refusal && k.period_budget_nanoton !== null && k.budget_duration !== null) {
    const d = k.budget_duration;
    const inPeriod = Number(k.period_start) === periodStart(d, now) ? k.period_spend_nanoton : 0n;
    // Holds of requests that began last period count here too: they settle into this one.
    const spent = inPeriod + k.open_held;
    const r = k.period_budget_nanoton - spent;
    if (room === null || r < room) room = r;
    if (r <= 0n) refusal = { ok: false, reason: "key_budget", limit: k.period_budget_nanoton, spent, period: d, resetAt: periodEnd(d, now) };
  }
  return refusal ?? { ok: true, room };
}

/**
 * Holds money for a request before it runs. Refuses when the balance is below `minimumBalance`;
 * otherwise holds min(want, balance + maxOverdraft − reserved), refusing when that is not positive.
 * Because every hold fits in balance + maxOverdraft − other holds and a charge never exceeds its hold,
 * no set of concurrent requests can take the balance below −maxOverdraft. The caller must stop
 * generation when the granted `amount` is used up (pricing.completionBudget).
 */
export const reserve = dual(function* (req: ReserveRequest): Q<ReserveResult> {
  if (req.want <= 0n) throw new RangeError("want must be positive");
  if (req.maxOverdraft < 0n) throw new RangeError("maxOverdraft must not be negative");
  const now = req.now ?? Date.now();
  const keyId = req.keyId ?? null;
  return yield* tx(function* (): Q<ReserveResult> {
    // The account's row lock (Postgres) serializes the reservations of the account and of its keys
    // across gateways: the balance, holds and key budget read here stay true until this commits.
    const acc = yield* get<{ balance_nanoton: bigint; reserved_nanoton: bigint }>(
      `SELECT balance_nanoton, reserved_nanoton FROM accounts WHERE id = ?${yield* forUpdate()}`,
      req.accountId,
    );
    if (!acc) throw new Error(`no account ${req.accountId}`);
    const balance = acc.balance_nanoton;
    if (balance < req.minimumBalance) return { ok: false, reason: "insufficient_balance", balance };
    const room = balance + req.maxOverdraft - acc.reserved_nanoton;
    let amount = req.want < room ? req.want : room;
    if (amount <= 0n) return { ok: false, reason: "insufficient_balance", balance };
    let cappedBy: "balance" | "key_budget" | null = amount < req.want ? "balance" : null;
    if (keyId !== null) {
      const k = yield* keyRoom(keyId, now);
      if (!k.ok) return k;
      if (k.room !== null && k.room < amount) {
        amount = k.room;
        cappedBy = "key_budget";
      }
    }
    yield* run("INSERT INTO reservations (id, account_id, amount_nanoton, created_at, owner, key_id) VALUES (?, ?, ?, ?, ?, ?)", req.requestId, req.accountId, amount, now, req.owner ?? null, keyId);
    yield* insertLedger(req.accountId, "reservation", amount, req.requestId, null, now);
    // Conditional: the hold must still fit (it does, inside this locked transaction; the guard keeps
    // it so if the statement ever runs outside one).
    const held = yield* run("UPDATE accounts SET reserved_nanoton = reserved_nanoton + ?1 WHERE id = ?2 AND balance_nanoton + ?3 - reserved_nanoton >= ?1", amount, req.accountId, req.maxOverdraft);
    if (held.changes !== 1) throw new Error(`reservation ${req.requestId} no longer fits the balance of account ${req.accountId}`);
    return { ok: true, amount, cappedBy };
  });
});

/**
 * Closes an open reservation with its charge: the release of the whole hold, the charge of `cost`
 * (clamped to the hold unless `allowOverrun`), the cached balances and the usage row. Inside a
 * transaction, after the caller closed the reservation (closeOpen): whoever closed it books it, once.
 */
function* closeWithCharge(requestId: string, accountId: number, reserved: bigint, cost: bigint, u: UsageRecord, allowOverrun: boolean, now: number, note: string | null = null, keyId: bigint | null = null): Q<{ charged: bigint; uncharged: bigint }> {
  const charged = cost > reserved && !allowOverrun ? reserved : cost;
  const uncharged = cost - charged;
  yield* insertLedger(accountId, "release", -reserved, requestId, note, now);
  yield* insertLedger(accountId, "charge", -charged, requestId, uncharged > 0n ? `cost ${cost} clamped to the reservation` : note, now);
  yield* run("UPDATE accounts SET balance_nanoton = balance_nanoton - ?, reserved_nanoton = reserved_nanoton - ? WHERE id = ?", charged, reserved, accountId);
  if (keyId !== null) yield* chargeKey(keyId, charged, now);
  yield* run(
    `INSERT INTO usage (id, account_id, key_id, model, endpoint, request_guid, prompt_tokens, cached_tokens, completion_tokens,
       reasoning_tokens, cost_nanoton, uncharged_nanoton, status, started_at, duration_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    requestId, accountId, u.keyId, u.model, u.endpoint, u.requestGuid ?? null, u.promptTokens, u.cachedTokens, u.completionTokens,
    u.reasoningTokens, charged, uncharged, u.status, u.startedAt, Math.max(0, Math.round(u.durationMs)),
  );
  return { charged, uncharged };
}

/**
 * Records what a running request has processed so far and what that costs, on its open reservation
 * (nothing once it is closed). A process that finds the owner dead settles the hold at this
 * checkpoint (releaseOpenReservations) rather than releasing it unbilled.
 */
export const checkpoint = dual(function* (requestId: string, cost: bigint, usage: UsageRecord): Q<void> {
  const json = JSON.stringify({ cost: cost.toString(), usage });
  yield* run("UPDATE reservations SET checkpoint = ? WHERE id = ? AND closed_at IS NULL", json, requestId);
});

interface ClosedRow {
  account_id: bigint;
  amount_nanoton: bigint;
  key_id: bigint | null;
  checkpoint: string | null;
}

/**
 * Closes a reservation if it is still open, in one conditional statement: of two processes closing
 * the same one (its owner settling, another releasing it as orphaned), exactly one gets the row and
 * books it; the other gets null.
 */
function* closeOpen(requestId: string, now: number): Q<ClosedRow | null> {
  return yield* get<ClosedRow>("UPDATE reservations SET closed_at = ? WHERE id = ? AND closed_at IS NULL RETURNING account_id, amount_nanoton, key_id, checkpoint", now, requestId);
}

/** Options for {@link settle}. */
export interface SettleRequest {
  requestId: string;
  /** Nanoton the request's tokens cost (pricing.costOf); 0 for a request that produced nothing. */
  cost: bigint;
  usage: UsageRecord;
  /** Charge the full cost even above the reservation (may breach the overdraft bound). Defaults to false: clamp. */
  allowOverrun?: boolean;
}

interface ReservationRow {
  account_id: bigint;
  amount_nanoton: bigint;
  closed_at: bigint | null;
  key_id: bigint | null;
}

/**
 * Ends a request, whatever its outcome: closes its reservation, books a release of the whole hold and
 * a charge of the cost (clamped to the hold unless `allowOverrun`), and writes its usage row, all in one
 * transaction. Settling a request again changes nothing and returns the first result. Throws when the
 * request has no reservation, or when it was released without charge (releaseOpenReservations).
 */
export const settle = dual(function* (req: SettleRequest): Q<SettleResult> {
  if (req.cost < 0n) throw new RangeError("cost must not be negative");
  const u = req.usage;
  const now = Date.now();
  return yield* tx(function* (): Q<SettleResult> {
    const open = yield* closeOpen(req.requestId, now);
    if (open) {
      const accountId = Number(open.account_id);
      const keyId = open.key_id ?? (u.keyId === null ? null : BigInt(u.keyId));
      const { charged, uncharged } = yield* closeWithCharge(req.requestId, accountId, open.amount_nanoton, req.cost, u, !!req.allowOverrun, now, null, keyId);
      return { requestId: req.requestId, accountId, reserved: open.amount_nanoton, charged, uncharged, clamped: uncharged > 0n, alreadySettled: false };
    }
    const res = yield* get<ReservationRow>("SELECT account_id, amount_nanoton, closed_at, key_id FROM reservations WHERE id = ?", req.requestId);
    if (!res) throw new Error(`no reservation for request ${req.requestId}`);
    const accountId = Number(res.account_id);
    const reserved = res.amount_nanoton;
    {
      const prior = yield* get<{ cost_nanoton: bigint; uncharged_nanoton: bigint }>("SELECT cost_nanoton, uncharged_nanoton FROM usage WHERE id = ?", req.requestId);
      if (!prior) throw new Error(`request ${req.requestId} was released without charge and cannot be settled`);
      const uncharged = prior.uncharged_nanoton;
      return { requestId: req.requestId, accountId, reserved, charged: prior.cost_nanoton, uncharged, clamped: uncharged > 0n, alreadySettled: true };
    }
  });
});

function parseCheckpoint(json: string | null): { cost: bigint; usage: UsageRecord } | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as { cost: string; usage: UsageRecord };
    const cost = BigInt(v.cost);
    return cost >= 0n ? { cost, usage: v.usage } : null;
  } catch {
    return null;
  }
}

/**
 * Adds a charge to the key's spend, and to its period's spend, starting the period afresh when the
 * charge falls in a new one: one UPDATE, the period start chosen by the key's own duration in SQL.
 */
function* chargeKey(keyId: bigint, charged: bigint, now: number): Q<void> {
  const p = periodStarts(now);
  yield* run(
    `UPDATE api_keys SET
       spend_nanoton = spend_nanoton + ?1,
       period_spend_nanoton = CASE WHEN period_start = (CASE budget_duration WHEN 'day' THEN ?2 WHEN 'week' THEN ?3 WHEN 'month' THEN ?4 ELSE 0 END)
         THEN period_spend_nanoton + ?1 ELSE ?1 END,
       period_start = CASE budget_duration WHEN 'day' THEN ?2 WHEN 'week' THEN ?3 WHEN 'month' THEN ?4 ELSE 0 END
     WHERE id = ?5`,
    charged, p.day, p.week, p.month, keyId,
  );
}

/**
 * Releases open reservations: without charge when the request left no checkpoint, else settled at its
 * last checkpoint (what it had processed then; see {@link checkpoint}):
 * every one, or those of the given owners (`null` in the list: reservations without an owner).
 * Returns how many it released. Only an owner, or a process that proved the owners dead
 * (leases.ts), may call it: it would also release the holds of a live server.
 */
export const releaseOpenReservations = dual(function* (owners?: readonly (string | null)[], note: string = "released at start-up"): Q<number> {
  const now = Date.now();
  return yield* tx(function* () {
    type Open = { id: string; owner: string | null };
    const found = yield* all<Open>("SELECT id, owner FROM reservations WHERE closed_at IS NULL ORDER BY id");
    const open = owners ? found.filter((r) => owners.includes(r.owner)) : found;
    let released = 0;
    for (const o of open) {
      // Closed conditionally: its owner may have settled it since we looked.
      const r = yield* closeOpen(o.id, now);
      if (!r) continue;
      released++;
      const accountId = Number(r.account_id);
      const cp = parseCheckpoint(r.checkpoint);
      if (cp) {
        // It ran: charged what it had processed at its last checkpoint (at most a second's work is lost).
        yield* closeWithCharge(o.id, accountId, r.amount_nanoton, cp.cost, { ...cp.usage, status: "error" }, false, now, `${note}; charged at its last checkpoint`, r.key_id ?? (cp.usage.keyId == null ? null : BigInt(cp.usage.keyId)));
        continue;
      }
      yield* insertLedger(accountId, "release", -r.amount_nanoton, o.id, note, now);
      yield* run("UPDATE accounts SET reserved_nanoton = reserved_nanoton - ? WHERE id = ?", r.amount_nanoton, accountId);
    }
    return released;
  });
});

export const balanceOf = dual(function* (accountId: number): Q<Balance | null> {
  const r = yield* get<{ balance_nanoton: bigint; reserved_nanoton: bigint }>("SELECT balance_nanoton, reserved_nanoton FROM accounts WHERE id = ?", accountId);
  if (!r) return null;
  const balance = r.balance_nanoton;
  const reserved = r.reserved_nanoton;
  return { balance, reserved, available: (maxOverdraft: bigint) => balance + maxOverdraft - reserved };
});

/** A usage row as stored (read by usage-query.ts too). */
export interface UsageRow {
  id: string;
  account_id: bigint;
  key_id: bigint | null;
  model: string;
  endpoint: string;
  request_guid: string | null;
  prompt_tokens: bigint;
  cached_tokens: bigint;
  completion_tokens: bigint;
  reasoning_tokens: bigint;
  cost_nanoton: bigint;
  uncharged_nanoton: bigint;
  status: UsageStatus;
  started_at: bigint;
  duration_ms: bigint;
}

export const toUsage = (r: UsageRow): UsageEntry => ({
  id: r.id,
  accountId: Number(r.account_id),
  keyId: r.key_id === null ? null : Number(r.key_id),
  model: r.model,
  endpoint: r.endpoint,
  requestGuid: r.request_guid,
  promptTokens: Number(r.prompt_tokens),
  cachedTokens: Number(r.cached_tokens),
  completionTokens: Number(r.completion_tokens),
  reasoningTokens: Number(r.reasoning_tokens),
  cost: r.cost_nanoton,
  uncharged: r.uncharged_nanoton,
  status: r.status,
  startedAt: Number(r.started_at),
  durationMs: Number(r.duration_ms),
});

/**
 * A page of an account's usage, newest first. `before` is the id of the last entry of the previous page
 * (keyset pagination: stable while new requests arrive); `limit` is clamped to 1..1000.
 */
export const usageOf = dual(function* (accountId: number, page: { limit: number; before?: string | null }): Q<{ data: UsageEntry[]; hasMore: boolean }> {
  const limit = Math.min(1000, Math.max(1, Math.floor(page.limit)));
  let rows: UsageRow[];
  if (page.before) {
    const cursor = yield* get<{ started_at: bigint }>("SELECT started_at FROM usage WHERE id = ? AND account_id = ?", page.before, accountId);
    if (!cursor) return { data: [], hasMore: false };
    rows = yield* all<UsageRow>(
      "SELECT * FROM usage WHERE account_id = ? AND (started_at, id) < (?, ?) ORDER BY started_at DESC, id DESC LIMIT ?",
      accountId, cursor.started_at, page.before, limit + 1,
    );
  } else {
    rows = yield* all<UsageRow>("SELECT * FROM usage WHERE account_id = ? ORDER BY started_at DESC, id DESC LIMIT ?", accountId, limit + 1);
  }
  return { data: rows.slice(0, limit).map(toUsage), hasMore: rows.length > limit };
});

/** One usage entry of this account; another account's request id reads as null. */
export const usageById = dual(function* (accountId: number, id: string): Q<UsageEntry | null> {
  const r = yield* get<UsageRow>("SELECT * FROM usage WHERE id = ? AND account_id = ?", id, accountId);
  return r ? toUsage(r) : null;
});

/**
 * Audits the books; returns one line per problem, empty when all is well: cached balances and holds
 * equal their ledger sums and the open reservations; each key's cached spend equals its usage; no balance below −maxOverdraft (when given); every
 * charge has its usage row with the same cost; every closed reservation has its release, no open one has.
 */
export const checkInvariants = dual(function* (maxOverdraft?: bigint): Q<string[]> {
  const problems: string[] = [];
  const accounts = yield* all<{ id: bigint; balance_nanoton: bigint; reserved_nanoton: bigint; ledger_balance: bigint; ledger_reserved: bigint; open_reserved: bigint }>(
    `SELECT a.id, a.balance_nanoton, a.reserved_nanoton,
       CAST(coalesce((SELECT sum(amount_nanoton) FROM ledger l WHERE l.account_id = a.id AND l.kind IN ('deposit', 'adjustment', 'charge')), 0) AS BIGINT) AS ledger_balance,
       CAST(coalesce((SELECT sum(amount_nanoton) FROM ledger l WHERE l.account_id = a.id AND l.kind IN ('reservation', 'release')), 0) AS BIGINT) AS ledger_reserved,
       CAST(coalesce((SELECT sum(amount_nanoton) FROM reservations r WHERE r.account_id = a.id AND r.closed_at IS NULL), 0) AS BIGINT) AS open_reserved
     FROM accounts a ORDER BY a.id`,
  );
  for (const a of accounts) {
    if (a.balance_nanoton !== a.ledger_balance) problems.push(`account ${a.id}: cached balance ${a.balance_nanoton} ≠ ledger ${a.ledger_balance}`);
    if (a.reserved_nanoton !== a.ledger_reserved) problems.push(`account ${a.id}: cached reserved ${a.reserved_nanoton} ≠ ledger ${a.ledger_reserved}`);
    if (a.reserved_nanoton !== a.open_reserved) problems.push(`account ${a.id}: cached reserved ${a.reserved_nanoton} ≠ open reservations ${a.open_reserved}`);
    if (maxOverdraft !== undefined && a.balance_nanoton < -maxOverdraft) problems.push(`account ${a.id}: balance ${a.balance_nanoton} below −overdraft ${-maxOverdraft}`);
  }
  for (const k of yield* all<{ id: bigint; spend_nanoton: bigint; usage_cost: bigint }>(
    `SELECT k.id, k.spend_nanoton, CAST(coalesce((SELECT sum(cost_nanoton) FROM usage u WHERE u.key_id = k.id), 0) AS BIGINT) AS usage_cost FROM api_keys k
     WHERE k.spend_nanoton <> coalesce((SELECT sum(cost_nanoton) FROM usage u WHERE u.key_id = k.id), 0)`,
  ))
    problems.push(`key ${k.id}: cached spend ${k.spend_nanoton} ≠ its usage ${k.usage_cost}`);
  const ids = function* (sql: string): Q<string[]> {
    return (yield* all<{ id: string }>(sql)).map((r) => r.id);
  };
  for (const id of yield* ids(
    `SELECT l.reference AS id FROM ledger l LEFT JOIN usage u ON u.id = l.reference AND u.account_id = l.account_id
     WHERE l.kind = 'charge' AND (u.id IS NULL OR u.cost_nanoton <> -l.amount_nanoton)`,
  ))
    problems.push(`charge ${id}: no usage row with its cost`);
  for (const id of yield* ids(`SELECT u.id FROM usage u LEFT JOIN ledger l ON l.kind = 'charge' AND l.reference = u.id WHERE l.id IS NULL`))
    problems.push(`usage ${id}: no charge row`);
  for (const id of yield* ids(
    `SELECT r.id FROM reservations r LEFT JOIN ledger l ON l.kind = 'reservation' AND l.reference = r.id
     WHERE l.id IS NULL OR l.amount_nanoton <> r.amount_nanoton OR l.account_id <> r.account_id`,
  ))
    problems.push(`reservation ${id}: no matching reservation ledger row`);
  for (const id of yield* ids(
    `SELECT r.id FROM reservations r LEFT JOIN ledger l ON l.kind = 'release' AND l.reference = r.id
     WHERE r.closed_at IS NOT NULL AND (l.id IS NULL OR l.amount_nanoton <> -r.amount_nanoton)`,
  ))
    problems.push(`reservation ${id}: closed without its release`);
  for (const id of yield* ids(`SELECT r.id FROM reservations r JOIN ledger l ON l.kind = 'release' AND l.reference = r.id WHERE r.closed_at IS NULL`))
    problems.push(`reservation ${id}: released but still open`);
  return problems;
});

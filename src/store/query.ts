// Store code written once for SQLite and Postgres: a query is a generator that yields statements and
// transactions; `exec` runs it synchronously on bun:sqlite and asynchronously on Postgres (pg.ts).
import type { Database } from "bun:sqlite";

export type Dialect = "sqlite" | "postgres";

/** What a store function asks of the database, one step at a time. */
export type Op =
  | { kind: "get" | "all" | "run"; sql: string; params: readonly unknown[] }
  | { kind: "tx"; body: () => Q<unknown> }
  | { kind: "dialect" };

/** A store query returning T: run it with `exec` (or through a `dual` function). */
export type Q<T> = Generator<Op, T, unknown>;

/** What runs queries asynchronously: the Postgres store (pg.ts). */
export interface PgStore {
  readonly dialect: "postgres";
  /** Its URL without the password, for messages. */
  readonly where: string;
  exec<T>(q: Q<T>): Promise<T>;
  /** A session-level advisory lock on a connection of its own while held; null when another session holds it. */
  tryLock(key: bigint): Promise<HeldLock | null>;
  close(): Promise<void>;
}

/** An advisory lock this process holds (pg.ts). */
export interface HeldLock {
  /**
   * Whether it is still held: false once its connection dropped (a network cut, the server ending the
   * session), when Postgres has already released it and another gateway may hold it now.
   */
  held(): Promise<boolean>;
  release(): Promise<void>;
}

/** Either database: a bun:sqlite handle (the embedded default) or a Postgres store (`--db postgres://`). */
export type Db = Database | PgStore;

export interface RunResult {
  /** Rows the statement inserted, updated or deleted. */
  changes: number;
}

/** The first row (null when none). SQL uses `?` or `?N` placeholders on both databases. */
export function* get<T>(sql: string, ...params: unknown[]): Q<T | null> {
  return (yield { kind: "get", sql, params }) as T | null;
}

/** Every row. */
export function* all<T>(sql: string, ...params: unknown[]): Q<T[]> {
  return (yield { kind: "all", sql, params }) as T[];
}

/** A statement without rows (or whose rows are not needed): how many rows it changed. */
export function* run(sql: string, ...params: unknown[]): Q<RunResult> {
  return (yield { kind: "run", sql, params }) as RunResult;
}

/**
 * Runs `body` in one transaction (a savepoint inside another): BEGIN IMMEDIATE on SQLite, so the
 * write lock is taken up front; BEGIN on Postgres, where concurrent writers meet at row locks (take
 * them with `forUpdate()` before a read whose answer decides a write). Rolls back when `body` throws.
 */
export function* tx<T>(body: () => Q<T>): Q<T> {
  return (yield { kind: "tx", body }) as T;
}

/** Which database runs this query (for the few statements whose SQL differs). */
export function* dialect(): Q<Dialect> {
  return (yield { kind: "dialect" }) as Dialect;
}

/**
 * " FOR UPDATE" on Postgres, "" on SQLite: appended to a SELECT whose rows the transaction goes on
 * to change, so another gateway's transaction waits instead of deciding on the same stale read
 * (SQLite's BEGIN IMMEDIATE already serializes every writer).
 */
export function* forUpdate(): Q<string> {
  return (yield* dialect()) === "postgres" ? " FOR UPDATE" : "";
}

/**
 * The AND of the conditions whose (first) value is given, with their values in order:
 * `filter(["account_id = ?", id], ["(started_at, id) < (?, ?)", at, id])`; a null or undefined value
 * leaves its condition out ("1 = 1" when none is left). For optional filters: Postgres cannot type a
 * parameter that is only ever null, so SQLite's "(?1 IS NULL OR col = ?1)" fails there.
 */
export function filter(...conds: [sql: string, ...values: unknown[]][]): { sql: string; params: unknown[] } {
  const used = conds.filter(([, v]) => v !== null && v !== undefined);
  return { sql: used.length ? used.map(([s]) => `(${s})`).join(" AND ") : "1 = 1", params: used.flatMap(([, ...v]) => v) };
}

export function isPg(db: Db): db is PgStore {
  return (db as { dialect?: unknown }).dialect === "postgres";
}

/** Runs a query on SQLite, synchronously. */
export function execSqlite<T>(db: Database, q: Q<T>): T {
  let step = q.next();
  while (!step.done) {
    const op = step.value;
    let result: unknown;
    try {
      result = sqliteOp(db, op);
    } catch (err) {
      step = q.throw(err);
      continue;
    }
    step = q.next(result);
  }
  return step.value;
}

function sqliteOp(db: Database, op: Op): unknown {
  switch (op.kind) {
    case "get":
      return db.query(op.sql).get(...(op.params as never[])) ?? null;
    case "all":
      return db.query(op.sql).all(...(op.params as never[]));
    case "run":
      return { changes: db.query(op.sql).run(...(op.params as never[])).changes };
    case "tx":
      // bun:sqlite nests a transaction inside another as a savepoint.
      return db.transaction(() => execSqlite(db, op.body())).immediate();
    case "dialect":
      return "sqlite";
  }
}

/** Runs a query: synchronously on SQLite, as a promise on Postgres. */
export function exec<T>(db: Database, q: Q<T>): T;
export function exec<T>(db: PgStore, q: Q<T>): Promise<T>;
export function exec<T>(db: Db, q: Q<T>): T | Promise<T>;
export function exec<T>(db: Db, q: Q<T>): T | Promise<T> {
  return isPg(db) ? db.exec(q) : execSqlite(db, q);
}

/** A store function callable on either database: its value on SQLite, a promise of it on Postgres. */
export interface Dual<A extends unknown[], T> {
  (db: Database, ...args: A): T;
  (db: PgStore, ...args: A): Promise<T>;
  (db: Db, ...args: A): T | Promise<T>;
  /** The query itself, to run inside another one (`yield* settle.q(req)`). */
  q: (...args: A) => Q<T>;
}

/** Makes a store function out of a query: `export const reserve = dual(function* (req) { ... })`. */
export function dual<A extends unknown[], T>(query: (...args: A) => Q<T>): Dual<A, T> {
  const f = ((db: Db, ...args: A) => exec(db, query(...args))) as Dual<A, T>;
  f.q = query;
  return f;
}

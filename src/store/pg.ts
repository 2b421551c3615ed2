// The Postgres store (`--db postgres://…`) on Bun's built-in SQL client: runs the same queries as
// SQLite (query.ts), the same migrations under an advisory lock, and hands out session-level locks.
import { SQL } from "bun";
import type { HeldLock, Op, PgStore as Store, Q } from "./query.ts";
import { pgMigrate } from "./pg-migrate.ts";
import { MIGRATIONS, type Migration } from "./migrations.ts";

/** A database error, with SQLite's code names where the code reads them (constraints, storage). */
export class PgError extends Error {
  override name = "PgError";
  constructor(
    message: string,
    /** SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT, STORE_UNAVAILABLE or PG_<sqlstate>. */
    readonly code: string,
    /** Postgres's SQLSTATE, when the server answered. */
    readonly sqlstate: string | null,
  ) {
    super(message);
  }
}

function wrap(err: unknown): unknown {
  if (err instanceof PgError) return err;
  const e = err as { errno?: unknown; code?: unknown; message?: string };
  const state = typeof e.errno === "string" && /^[0-9A-Z]{5}$/.test(e.errno) ? e.errno : null;
  const msg = e.message ?? String(err);
  if (state === "23505") return new PgError(msg, "SQLITE_CONSTRAINT_UNIQUE", state);
  if (state?.startsWith("23")) return new PgError(msg, "SQLITE_CONSTRAINT", state);
  // The database cannot take writes now (down, unreachable, read-only, out of disk or connections):
  // the operator's to fix, the client's to retry, like SQLite's full disk.
  const connection = typeof e.code === "string" && /CONNECTION|ECONNREFUSED|ECONNRESET|TIMEOUT|CLOSED/.test(e.code);
  if (connection || (state && /^(08|53|57P0|25006)/.test(state))) return new PgError(msg, "STORE_UNAVAILABLE", state);
  if (state) return new PgError(msg, `PG_${state}`, state);
  return err;
}

/** `?` and `?N` placeholders (SQLite's) as `$N` (Postgres's), outside string literals. */
export function pgPlaceholders(sql: string): string {
  let n = 0;
  let out = "";
  let quoted = false;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'") quoted = !quoted;
    if (c !== "?" || quoted) {
      out += c;
      continue;
    }
    const m = /^\d+/.exec(sql.slice(i + 1));
    if (m) {
      out += `$${m[0]}`;
      i += m[0].length;
    } else out += `$${++n}`;
  }
  return out;
}

type Conn = SQL & { savepoint?: SQL["begin"] };
const RETRYABLE = new Set(["40001", "40P01"]);

/** Options for {@link openPgStore}. */
export interface PgStoreOptions {
  /** Connections in the pool. Defaults to 10. */
  max?: number;
  /** The migrations to apply. Defaults to this build's (`MIGRATIONS`). */
  migrations?: readonly Migration[];
}

export class PgStore implements Store {
  readonly dialect = "postgres" as const;
  private readonly translated = new Map<string, string>();

  constructor(
    readonly sql: SQL,
    /** The URL without its password, for messages. */
    readonly where: string,
  ) {}

  private text(sql: string): string {
    let t = this.translated.get(sql);
    if (t === undefined) {
      t = pgPlaceholders(sql);
      this.translated.set(sql, t);
    }
    return t;
  }

  /** Runs a store query: statements on the pool, a transaction on one connection (retried on a deadlock or serialization failure). */
  exec<T>(q: Q<T>): Promise<T> {
    return this.run(this.sql, q, false);
  }

  private async run<T>(conn: Conn, q: Q<T>, inTx: boolean): Promise<T> {
    let step = q.next();
    while (!step.done) {
      let result: unknown;
      try {
        result = await this.op(conn, step.value, inTx);
      } catch (err) {
        step = q.throw(wrap(err));
        continue;
      }
      step = q.next(result);
    }
    return step.value;
  }

  private async op(conn: Conn, op: Op, inTx: boolean): Promise<unknown> {
    switch (op.kind) {
      case "dialect":
        return "postgres";
      case "get":
        return (await conn.unsafe(this.text(op.sql), op.params as unknown[]))[0] ?? null;
      case "all":
        return [...(await conn.unsafe(this.text(op.sql), op.params as unknown[]))];
      case "run": {
        const r = await conn.unsafe(this.text(op.sql), op.params as unknown[]);
        return { changes: Number((r as { count?: number }).count ?? 0) };
      }
      case "tx": {
        if (inTx) return conn.savepoint!((sp: Conn) => this.run(sp, op.body(), true));
        for (let attempt = 0; ; attempt++) {
          try {
            return await conn.begin((t: Conn) => this.run(t, op.body(), true));
          } catch (err) {
            const e = wrap(err);
            if (e instanceof PgError && e.sqlstate && RETRYABLE.has(e.sqlstate) && attempt < 5) continue;
            throw e;
          }
        }
      }
    }
  }

  /**
   * Takes the session-level advisory lock `key` on a connection of its own when no other session
   * holds it; null when another does. The lock lasts while that connection does: release() (or the
   * process dying, which closes it) frees it for the next taker.
   */
  async tryLock(key: bigint): Promise<HeldLock | null> {
    const conn = await this.sql.reserve();
    try {
      const [row] = await conn.unsafe("SELECT pg_try_advisory_lock($1) AS ok", [key]);
      if (!row?.ok) {
        conn.release();
        return null;
      }
    } catch (err) {
      conn.release();
      throw wrap(err);
    }
    let lost = false;
    return {
      async held() {
        if (lost) return false;
        try {
          // A bigint key is shown in pg_locks as its high (classid) and low (objid) 32 bits.
          const [row] = await conn.unsafe(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1",
            [key],
          );
          lost = Number(row?.n ?? 0) === 0;
        } catch {
          lost = true;
        }
        return !lost;
      },
      async release() {
        try {
          if (!lost) await conn.unsafe("SELECT pg_advisory_unlock($1)", [key]);
        } finally {
          conn.release();
        }
      },
    };
  }

  /** Closes the pool; connections still busy (a held lock) are closed after at most 5 s. */
  close(): Promise<void> {
    return this.sql.close({ timeout: 5 });
  }
}

/**
 * Connects to Postgres at `url` and applies pending migrations (under an advisory lock, so gateways
 * starting together apply each once). Integers read back as bigint, like SQLite's safeIntegers.
 */
export async function openPgStore(url: string, o: PgStoreOptions = {}): Promise<PgStore> {
  const sql = new SQL({ url, bigint: true, max: o.max ?? 10 });
  const where = url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
  const store = new PgStore(sql, where);
  try {
    await pgMigrate(sql, o.migrations ?? MIGRATIONS);
  } catch (err) {
    await sql.close().catch(() => {});
    const e = wrap(err);
    if (e instanceof PgError && e.code === "STORE_UNAVAILABLE") throw new PgError(`cannot open the database ${where}: ${e.message}`, e.code, e.sqlstate);
    throw e;
  }
  return store;
}

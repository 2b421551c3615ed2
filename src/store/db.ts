// Opens the SQLite store (bun:sqlite) with the settings every connection needs and brings its schema
// up to date; `inTransaction` is the one way platform code groups writes.
import { Database } from "bun:sqlite";
import { MIGRATIONS, type Migration } from "./migrations.ts";

export class StoreVersionError extends Error {
  override name = "StoreVersionError";
}

/** The database cannot be opened or brought up to date (read-only, missing directory, not a database). */
export class StoreOpenError extends Error {
  override name = "StoreOpenError";
}

const OPERATOR_CODES = new Set(["SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_FULL", "SQLITE_PERM", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_CORRUPT"]);

function openFailure(path: string, err: unknown): StoreOpenError {
  const code = (err as { code?: string }).code ?? "";
  const why =
    code === "SQLITE_READONLY" ? "it is read-only (check the permissions of the file and its directory, and that the disk is writable)"
    : code === "SQLITE_CANTOPEN" ? "it cannot be opened or created (check that its directory exists and is writable)"
    : code === "SQLITE_NOTADB" ? "the file is not a SQLite database"
    : code === "SQLITE_FULL" ? "the disk is full"
    : (err as Error).message;
  return new StoreOpenError(`cannot open the database ${path}: ${why}`);
}

/** Options for {@link openStore}. */
export interface OpenStoreOptions {
  /** The migrations to apply, in order. Defaults to the schema of this build (`MIGRATIONS`). */
  migrations?: readonly Migration[];
}

/**
 * Opens (creating if needed) the database at `path` (":memory:" for a private in-memory one) and
 * applies pending migrations. Every INTEGER reads back as a bigint (`safeIntegers`) so money never
 * passes through a float; callers convert ids, counts and timestamps with Number() themselves.
 * Throws StoreVersionError when the file was written by a newer build, StoreOpenError when it cannot
 * be opened or written (read-only, no such directory, not a database).
 */
export function openStore(path: string, options: OpenStoreOptions = {}): Database {
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true, safeIntegers: true });
  } catch (err) {
    throw openFailure(path, err);
  }
  try {
    // busy_timeout first: the other pragmas and the migrations may wait for another connection.
    db.exec("PRAGMA busy_timeout = 5000");
    if (path !== ":memory:" && path !== "") db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA foreign_keys = ON");
    // NORMAL in WAL mode: a power loss may drop the last commits but never corrupts the file.
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, options.migrations ?? MIGRATIONS);
    // Fail now, in one line, rather than at the first write (a lease, a request): rewriting the
    // header's user_version is a write that changes nothing, refused on a read-only file or disk.
    const { user_version } = db.query<{ user_version: number | bigint }, []>("PRAGMA user_version").get()!;
    db.exec(`PRAGMA user_version = ${Number(user_version)}`);
    return db;
  } catch (err) {
    db.close();
    // The file's state is the operator's to fix; anything else (a failing migration) is a bug and keeps its stack.
    if (OPERATOR_CODES.has((err as { code?: string }).code ?? "")) throw openFailure(path, err);
    throw err;
  }
}

/**
 * Runs `fn` in a BEGIN IMMEDIATE transaction (a savepoint when already inside one): the write lock is
 * taken up front, so two connections that read-then-write never deadlock on a lock upgrade; the second
 * one waits (busy_timeout) instead. Rolls back when `fn` throws.
 */
export function inTransaction<T>(db: Database, fn: () => T): T {
  return db.transaction(fn).immediate();
}

/** The highest applied migration version, 0 for a fresh database. */
export function schemaVersion(db: Database): number {
  const row = db.query<{ v: bigint | null }, []>("SELECT max(version) AS v FROM schema_migrations").get();
  return Number(row?.v ?? 0n);
}

function migrate(db: Database, migrations: readonly Migration[]): void {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version <= migrations[i - 1]!.version) throw new Error("migrations must be in increasing version order");
  }
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  const known = migrations.at(-1)?.version ?? 0;
  const current = schemaVersion(db);
  if (current > known) {
    throw new StoreVersionError(`database schema version ${current} is newer than this build supports (${known}); upgrade cocoon-server or use another database file`);
  }
  const applied = db.query<{ one: bigint }, [number]>("SELECT 1 AS one FROM schema_migrations WHERE version = ?");
  // Each version is applied when it is not recorded, not when it is above the highest recorded one:
  // branches append versions independently (e.g. 1, 3 here and 1, 2 elsewhere), and a file written
  // with 1 and 3 must still get 2 once both are merged.
  for (const m of migrations) {
    if (applied.get(m.version)) continue;
    // Re-checked inside the write lock: another process may have applied it since we looked.
    inTransaction(db, () => {
      if (applied.get(m.version)) return;
      db.exec(m.sql);
      db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, Date.now());
    });
  }
}

// A consistent copy of a live database: `VACUUM INTO` reads one snapshot (a read transaction in WAL
// mode), so writers carry on while it runs and the copy holds whole transactions only, compacted.
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { StoreOpenError } from "./db.ts";

export interface BackupResult {
  bytes: number;
  /** The copy's highest applied migration (0: not a cocoon-server database). */
  schemaVersion: number;
  /** PRAGMA integrity_check of the copy: "ok". */
  integrity: string;
}

/**
 * Copies the database at `source` to the new file `target`, without migrating it (a backup before an
 * upgrade must be the old schema) and without stopping the server. Refuses to overwrite. The copy is
 * written next to the target under a temporary name and renamed when it checks out, so a failed
 * backup never leaves a file that looks like one.
 */
export function backupStore(source: string, target: string): BackupResult {
  if (!existsSync(source)) throw new StoreOpenError(`no database at ${source}: nothing to back up (pass --db or --data-dir to name it)`);
  if (existsSync(target)) throw new StoreOpenError(`${target} already exists: a backup never overwrites a file; name a new one`);
  mkdirSync(dirname(target), { recursive: true });
  const partial = `${target}.partial-${process.pid}`;
  let db: Database;
  try {
    db = new Database(source, { readwrite: true, create: false, strict: true, safeIntegers: true });
  } catch (err) {
    throw new StoreOpenError(`cannot open the database ${source}: ${(err as Error).message}`);
  }
  try {
    // A writer holds the lock only for one transaction; the snapshot waits for it at most this long.
    db.exec("PRAGMA busy_timeout = 10000");
    db.query("VACUUM INTO ?").run(partial);
  } catch (err) {
    rmSync(partial, { force: true });
    throw new StoreOpenError(`backing up ${source} failed: ${(err as Error).message}`);
  } finally {
    db.close();
  }
  const copy = new Database(partial, { readonly: true, strict: true, safeIntegers: true });
  let result: BackupResult;
  try {
    const integrity = String(copy.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()?.integrity_check ?? "");
    const hasSchema = copy.query<{ n: bigint }, []>("SELECT count(*) AS n FROM sqlite_master WHERE name = 'schema_migrations'").get()!.n > 0n;
    const version = hasSchema ? Number(copy.query<{ v: bigint | null }, []>("SELECT max(version) AS v FROM schema_migrations").get()?.v ?? 0n) : 0;
    result = { bytes: statSync(partial).size, schemaVersion: version, integrity };
  } finally {
    copy.close();
  }
  if (result.integrity !== "ok") {
    rmSync(partial, { force: true });
    throw new StoreOpenError(`the copy of ${source} failed its integrity check (${result.integrity}); nothing was written to ${target}`);
  }
  renameSync(partial, target);
  return result;
}

/** `url` without its password (in the authority or as a `password=` parameter), for a command an operator copies. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    u.searchParams.delete("password");
    return u.toString();
  } catch {
    // Not a URL the parser takes: cut the password out by hand.
    return url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1@");
  }
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * What `backup` answers on Postgres: a copy there is pg_dump's job (a consistent snapshot while the
 * gateways write, restored with pg_restore), so it names the exact commands for this database, its
 * password left out (libpq reads it from PGPASSWORD or ~/.pgpass).
 */
export function pgDumpAdvice(url: string, file: string): string {
  const safe = shellQuote(withoutPassword(url));
  return [
    `backup copies a SQLite database; --db names a Postgres one. Back it up with pg_dump (a consistent snapshot, also while the gateways run):`,
    `  pg_dump --format=custom --file=${shellQuote(file)} ${safe}`,
    `restore it into an empty database with:`,
    `  pg_restore --no-owner --dbname=${safe} ${shellQuote(file)}`,
    `(the password is left out: give it with PGPASSWORD=... or ~/.pgpass)`,
  ].join("\n");
}

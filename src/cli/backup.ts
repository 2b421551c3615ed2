// `cocoon-server backup --to FILE`: a consistent copy of the database (the one the server would open,
// or --db / --data-dir), taken while the server runs. Restore: stop the server, put the copy in place.
// On Postgres (--db postgres://) it refuses with the pg_dump command to run instead.
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/config.ts";
import { resolve } from "node:path";
import { isPostgresUrl, storeLocation } from "../platform/open.ts";
import { backupStore, pgDumpAdvice } from "../store/backup.ts";

export const BACKUP_FLAGS = { to: true } as const;

export const BACKUP_HELP = `backup options:
  --to <file>               write a consistent copy of the database to this new file (never overwrites);
                            safe while the server runs. Restore: stop the server, copy the file over
                            the database (see "database" at start), delete its -wal and -shm files, start.
                            With --db postgres://... it prints the pg_dump command to use instead`;

export function backupCommand(config: Config, extra: Record<string, string | boolean>, out: (s: string) => void = console.log): void {
  // A ConfigError: one message and a non-zero exit, no stack trace; the operator runs pg_dump instead.
  if (isPostgresUrl(config.db)) throw new ConfigError(pgDumpAdvice(config.db, typeof extra.to === "string" && extra.to !== "" ? extra.to : "cocoon.dump"));
  if (typeof extra.to !== "string" || extra.to === "") throw new ConfigError("backup needs --to FILE: where to write the copy");
  const loc = storeLocation(config);
  const target = resolve(extra.to);
  const r = backupStore(loc.path, target);
  out(`backup: ${target}`);
  out(`database: ${loc.path}`);
  out(`bytes: ${r.bytes}`);
  out(`schema_version: ${r.schemaVersion}`);
  out(`integrity: ${r.integrity}`);
}

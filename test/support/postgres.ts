// Starts a throwaway Postgres (Debian's postgresql) in a temporary directory on a free 127.0.0.1 port
// for tests, as the `postgres` user when we run as root (Postgres refuses root), and stops it by pid.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "bun:test";
import { openPgStore, type PgStore } from "../../src/store/pg.ts";
import { freePort } from "./server.ts";

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  pid: number;
  /** A fresh, empty database on this server; returns its URL. */
  createDatabase(name: string): string;
  stop(): void;
}

const BIN_DIRS = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/14/bin"];

/** The directory holding initdb and pg_ctl, or null when Postgres is not installed here. */
export function postgresBin(): string | null {
  for (const d of BIN_DIRS) if (existsSync(join(d, "initdb")) && existsSync(join(d, "pg_ctl"))) return d;
  const which = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).stdout.trim();
  return which ? join(which, "..") : null;
}

/** Prints the loud banner a test shows when it skips for want of Postgres. */
export function postgresMissingBanner(what: string): void {
  const line = "=".repeat(78);
  console.warn(`\n${line}\nSKIPPED: ${what}: Postgres (initdb, pg_ctl) is not installed.\nInstall Debian's \`postgresql\` package (.ci/run does) to run these tests.\n${line}\n`);
}

const asRoot = process.getuid?.() === 0;

function runAs(bin: string, args: string[], env: Record<string, string> = {}): { status: number | null; out: string } {
  const cmd = asRoot ? ["runuser", "-u", "postgres", "--", bin, ...args] : [bin, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** initdb + pg_ctl start on a free loopback port (trust auth, fsync off: a test database). */
export function startPostgres(): TestPostgres {
  const bin = postgresBin();
  if (!bin) throw new Error("Postgres is not installed (no initdb/pg_ctl)");
  const dir = mkdtempSync(join(tmpdir(), "cocoon-pg-"));
  if (asRoot) {
    const pw = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    chownSync(dir, Number(pw.stdout.trim()), Number(gid.stdout.trim()));
  }
  chmodSync(dir, 0o700);
  const data = join(dir, "data");
  const init = runAs(join(bin, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.out}`);
  const port = freePort();
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  const start = runAs(join(bin, "pg_ctl"), ["-D", data, "-l", join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"]);
  if (start.status !== 0) throw new Error(`pg_ctl start failed:\n${start.out}\n${existsSync(join(dir, "log")) ? readFileSync(join(dir, "log"), "utf8") : ""}`);
  const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const psql = join(bin, "psql");
  return {
    url,
    port,
    pid,
    createDatabase(name: string): string {
      const r = runAs(psql, ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-qc", `CREATE DATABASE "${name}"`]);
      if (r.status !== 0) throw new Error(`CREATE DATABASE ${name} failed:\n${r.out}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop(): void {
      // By pid: SIGINT is Postgres's "fast shutdown" (rolls back open transactions, then exits).
      try {
        process.kill(pid, "SIGINT");
      } catch {
        // already gone
      }
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        Bun.sleepSync(50);
      }
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A test file's Postgres (see usePostgres). */
export interface PostgresHarness {
  /** Whether Postgres is installed here; when not, the file's Postgres tests skip (after the banner). */
  readonly available: boolean;
  /** The running server (inside tests of an available harness). */
  readonly server: TestPostgres;
  /** A store on `url`, or on a fresh database of the server; closed after the file's tests. */
  open(url?: string): Promise<PgStore>;
}

/**
 * Starts a throwaway Postgres before the calling file's tests and stops it after them, with every
 * store opened through it; prints the loud banner naming `what` instead when Postgres is missing.
 */
export function usePostgres(what: string): PostgresHarness {
  const available = postgresBin() !== null;
  if (!available) postgresMissingBanner(what);
  let server: TestPostgres | null = null;
  let dbs = 0;
  const opened: PgStore[] = [];
  beforeAll(() => {
    if (available) server = startPostgres();
  }, 120_000);
  afterAll(async () => {
    for (const s of opened) await s.close().catch(() => {});
    server?.stop();
  }, 60_000);
  return {
    available,
    get server() {
      if (!server) throw new Error("Postgres is not running (not installed, or used outside a test)");
      return server;
    },
    async open(url) {
      const s = await openPgStore(url ?? this.server.createDatabase(`t${++dbs}`), { max: 4 });
      opened.push(s);
      return s;
    },
  };
}

// The store: connection settings, versioned migrations, the append-only ledger enforced by SQLite, and
// one clear line (exit code 1) for a database the server cannot write.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { inTransaction, openStore, schemaVersion, StoreOpenError, StoreVersionError } from "../../src/store/db.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import { ROOT } from "../support/model.ts";

const dir = mkdtempSync(join(tmpdir(), "cocoon-db-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `t${n++}.sqlite`);
const latest = MIGRATIONS.at(-1)!.version;

describe("openStore", () => {
  test("a file database gets WAL, foreign keys, a 5 s busy timeout and synchronous=NORMAL", () => {
    const db = openStore(freshPath());
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1n });
    expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000n });
    expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 1n }); // 1 = NORMAL
    db.close();
  });

  test("an in-memory database gets every table of the schema", () => {
    const db = openStore(":memory:");
    const tables = db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => r.name);
    expect(tables).toEqual(["accounts", "api_keys", "audit_log", "chat_messages", "chat_sessions", "leases", "ledger", "rate_counters", "reservations", "response_secrets", "responses", "schema_migrations", "session_turns", "ton_backfill", "ton_backfill_txs", "ton_cursor", "ton_deposits", "usage"]);
    expect(schemaVersion(db)).toBe(latest);
  });

  test("re-opening a migrated file applies nothing again", () => {
    const path = freshPath();
    openStore(path).close();
    const before = openStore(path);
    const rows = before.query("SELECT * FROM schema_migrations ORDER BY version").all();
    before.close();
    const again = openStore(path);
    expect(again.query("SELECT * FROM schema_migrations ORDER BY version").all()).toEqual(rows);
    expect(rows).toHaveLength(MIGRATIONS.length);
    again.close();
  });

  test("a migration added later is applied once, on the next open", () => {
    const path = freshPath();
    openStore(path).close();
    const next = [...MIGRATIONS, { version: latest + 1, name: "notes", sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)" }];
    openStore(path, { migrations: next }).close();
    const db = openStore(path, { migrations: next });
    expect(schemaVersion(db)).toBe(latest + 1);
    expect(db.query("SELECT name FROM schema_migrations WHERE version = ?").get(latest + 1)).toEqual({ name: "notes" });
    db.close();
  });

  test("a version missing below the highest applied one (merged from another branch) is applied on the next open", () => {
    const path = freshPath();
    const withGap = [MIGRATIONS[0]!, { version: 5, name: "five", sql: "CREATE TABLE five (id INTEGER PRIMARY KEY)" }];
    openStore(path, { migrations: withGap }).close();
    const merged = [MIGRATIONS[0]!, { version: 4, name: "four", sql: "CREATE TABLE four (id INTEGER PRIMARY KEY)" }, withGap[1]!];
    const db = openStore(path, { migrations: merged });
    expect(db.query<{ version: bigint }, []>("SELECT version FROM schema_migrations ORDER BY version").all().map((r) => Number(r.version))).toEqual([1, 4, 5]);
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'four'").get()).toEqual({ name: "four" });
    db.close();
  });

  test("a failing migration leaves neither its changes nor its version behind", () => {
    const path = freshPath();
    const bad = [...MIGRATIONS, { version: latest + 1, name: "broken", sql: "CREATE TABLE half (x); INSERT INTO nowhere VALUES (1);" }];
    expect(() => openStore(path, { migrations: bad })).toThrow(/nowhere/);
    const db = openStore(path);
    expect(schemaVersion(db)).toBe(latest);
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeNull();
    db.close();
  });

  test("a database written by a newer build refuses to open with a clear error", () => {
    const path = freshPath();
    const db = openStore(path);
    db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)").run(latest + 5);
    db.close();
    expect(() => openStore(path)).toThrow(StoreVersionError);
    expect(() => openStore(path)).toThrow(`database schema version ${latest + 5} is newer than this build supports (${latest})`);
  });
});

describe("ledger table", () => {
  const db = openStore(":memory:");
  db.query("INSERT INTO accounts (id, deposit_code, created_at) VALUES (1, 'X', 0)").run();
  db.query("INSERT INTO ledger (account_id, kind, amount_nanoton, reference, created_at) VALUES (1, 'deposit', 9007199254740993, 'tx1', 0)").run();

  test("money reads back as an exact bigint, even above 2^53", () => {
    expect(db.query("SELECT amount_nanoton FROM ledger").get()).toEqual({ amount_nanoton: 9007199254740993n });
  });

  test("rows cannot be updated or deleted", () => {
    expect(() => db.query("UPDATE ledger SET amount_nanoton = 1").run()).toThrow("ledger is append-only");
    expect(() => db.query("DELETE FROM ledger").run()).toThrow("ledger is append-only");
    expect(db.query("SELECT count(*) AS n FROM ledger").get()).toEqual({ n: 1n });
  });

  test("the same kind and reference cannot be booked twice", () => {
    expect(() => db.query("INSERT INTO ledger (account_id, kind, amount_nanoton, reference, created_at) VALUES (1, 'deposit', 5, 'tx1', 0)").run()).toThrow(/UNIQUE/);
  });

  test("amount signs are checked per kind", () => {
    const insert = (kind: string, amount: number) => () =>
      db.query("INSERT INTO ledger (account_id, kind, amount_nanoton, reference, created_at) VALUES (1, ?, ?, ?, 0)").run(kind, amount, `r${n++}`);
    expect(insert("deposit", -1)).toThrow(/CHECK/);
    expect(insert("charge", 1)).toThrow(/CHECK/);
    expect(insert("reservation", 0)).toThrow(/CHECK/);
    expect(insert("release", 1)).toThrow(/CHECK/);
    expect(insert("adjustment", 0)).toThrow(/CHECK/);
    expect(insert("bonus", 1)).toThrow(/CHECK/);
  });

  test("foreign keys are enforced", () => {
    expect(() => db.query("INSERT INTO ledger (account_id, kind, amount_nanoton, reference, created_at) VALUES (99, 'deposit', 1, 'fk', 0)").run()).toThrow(/FOREIGN KEY/);
  });

  test("inTransaction rolls back everything when its function throws", () => {
    expect(() =>
      inTransaction(db, () => {
        db.query("INSERT INTO accounts (id, deposit_code, created_at) VALUES (2, 'Y', 0)").run();
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(db.query("SELECT id FROM accounts WHERE id = 2").get()).toBeNull();
  });
});

describe("a database the server cannot write", () => {
  /** A database file nobody may write, root included (chattr +i); null where the file system cannot do that. */
  function readOnlyDatabase(): { path: string; undo(): void } | null {
    const path = freshPath();
    openStore(path).close();
    chmodSync(path, 0o444);
    if (process.getuid?.() === 0 && Bun.spawnSync(["chattr", "+i", path], { stderr: "ignore" }).exitCode !== 0) return null;
    return { path, undo: () => void Bun.spawnSync(["chattr", "-i", path], { stderr: "ignore" }) };
  }

  test("opening it fails with one clear StoreOpenError, and the server exits 1 with one line, no stack", () => {
    const ro = readOnlyDatabase();
    if (!ro) return console.warn("skipped: cannot make a file read-only for this user here");
    try {
      expect(() => openStore(ro.path)).toThrow(StoreOpenError);
      expect(() => openStore(ro.path)).toThrow(`cannot open the database ${ro.path}: it is read-only`);
      for (const args of [["--db", ro.path, "--port", "0"], ["create-key", "--db", ro.path]]) {
        const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), ...args, "--ton-usd-rate-url", "off", "--data-dir", dirname(ro.path)], { stdout: "pipe", stderr: "pipe" });
        const err = r.stderr.toString();
        expect(r.exitCode).toBe(1);
        expect(err).toContain(`cocoon-server: cannot open the database ${ro.path}: it is read-only`);
        expect(err).not.toMatch(/^\s+at |SQLiteError|\^/m);
      }
    } finally {
      ro.undo();
    }
  }, 60_000);
});

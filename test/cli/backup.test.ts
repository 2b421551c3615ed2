// `cocoon-server backup --to FILE` against a running server that bills requests while the copy is
// taken: the copy's books add up (a consistent snapshot), and restored as the README says, it serves
// the same keys and balances. Refuses to overwrite, and says so when there is no database; on
// Postgres it names the pg_dump command instead.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { ROOT } from "../support/model.ts";
import { startTestServer } from "../support/server.ts";

setDefaultTimeout(180_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-backup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), ...args], { stdout: "pipe", stderr: "pipe", cwd: dir });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

async function cliAsync(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), ...args], { stdout: "pipe", stderr: "pipe", cwd: dir });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, out, err };
}

const balanceOf = async (url: string, key: string) => ((await (await fetch(`${url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } })).json()) as { balance_nanoton: number }).balance_nanoton;

describe("backup", () => {
  test("copies a live, billing database consistently; the copy restores and serves the same key and balance", async () => {
    const data = join(dir, "live");
    const created = cli(["create-key", "--credit", "5", "--data-dir", data]);
    expect(created.code).toBe(0);
    const key = created.out.match(/^api_key: (ck_\w+)$/m)![1]!;
    const server = await startTestServer(["--data-dir", data], { auth: true });
    const target = join(dir, "copies", "cocoon-backup.sqlite");
    let restoredBalance = 0;
    try {
      // Requests in flight while the backup runs: reservations open and settle around the snapshot.
      let stop = false;
      let done = 0;
      const loader = async () => {
        let n = 0;
        while (!stop) {
          const body = JSON.stringify({ messages: [{ role: "user", content: `count ${n++}` }], max_tokens: 8, temperature: 0 });
          const res = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
          done++;
        }
        return n;
      };
      const loads = [loader(), loader()];
      // Some settled before the copy, more in flight during it.
      while (done < 3) await Bun.sleep(20);
      const r = await cliAsync(["backup", "--to", target, "--data-dir", data]);
      stop = true;
      expect(await Promise.all(loads)).toBeDefined();
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toContain(`backup: ${target}`);
      expect(r.out).toContain(`database: ${join(data, "cocoon.sqlite")}`);
      expect(r.out).toMatch(/^schema_version: [0-9]+$/m);
      expect(r.out).toContain("integrity: ok");
      // No partial file is left next to it.
      expect(readdirSync(join(dir, "copies"))).toEqual(["cocoon-backup.sqlite"]);

      const copy = new Database(target, { readonly: true, strict: true, safeIntegers: true });
      try {
        // A snapshot of whole transactions: cached balances equal the ledger, holds equal open reservations.
        expect(checkInvariants(copy)).toEqual([]);
        const charges = copy.query<{ n: bigint }, []>("SELECT count(*) AS n FROM usage").get()!.n;
        expect(charges).toBeGreaterThan(0n);
        // Holds in flight at the snapshot that had written a checkpoint are charged it at the next
        // start (the dead owner's work up to then); the others are released.
        const checkpointed = copy
          .query<{ checkpoint: string; amount: bigint }, []>("SELECT checkpoint, amount_nanoton AS amount FROM reservations WHERE closed_at IS NULL AND checkpoint IS NOT NULL")
          .all()
          .reduce((n, r) => {
            const cost = BigInt((JSON.parse(r.checkpoint) as { cost: string }).cost);
            return n + (cost < r.amount ? cost : r.amount);
          }, 0n);
        restoredBalance = Number(copy.query<{ b: bigint }, []>("SELECT balance_nanoton AS b FROM accounts").get()!.b - checkpointed);
      } finally {
        copy.close();
      }
      // Refuses to overwrite, even while the server runs.
      const again = cli(["backup", "--to", target, "--data-dir", data]);
      expect(again.code).toBe(1);
      expect(again.err).toContain("already exists");
    } finally {
      await server.stop();
    }

    // Restore as the README says: stopped server, the copy over the database, no -wal/-shm left.
    const restored = join(dir, "restored");
    mkdirSync(restored);
    copyFileSync(target, join(restored, "cocoon.sqlite"));
    const again = await startTestServer(["--data-dir", restored], { auth: true });
    try {
      // Holds in flight at the snapshot are settled at start: the copy's balance less their checkpoints.
      expect(await balanceOf(again.url, key)).toBe(restoredBalance);
      expect(restoredBalance).toBeLessThan(5_000_000_000);
    } finally {
      await again.stop();
    }
  });

  test("without --to, or without a database, it says what is missing", () => {
    const noTo = cli(["backup", "--data-dir", join(dir, "nothing")]);
    expect(noTo.code).toBe(2);
    expect(noTo.err).toContain("--to");
    const none = cli(["backup", "--to", join(dir, "x.sqlite"), "--data-dir", join(dir, "nothing")]);
    expect(none.code).toBe(1);
    expect(none.err).toContain("no database at");
    expect(existsSync(join(dir, "x.sqlite"))).toBe(false);
    writeFileSync(join(dir, "not-a-db.sqlite"), "hello");
    const bad = cli(["backup", "--to", join(dir, "y.sqlite"), "--db", join(dir, "not-a-db.sqlite")]);
    expect(bad.code).toBe(1);
    expect(existsSync(join(dir, "y.sqlite"))).toBe(false);
  });

  test("on Postgres it writes nothing and names the pg_dump command for that database, password left out", () => {
    const r = cli(["backup", "--to", "ledger.dump", "--db", "postgres://cocoon:s3cret@db.example:5433/ledger?sslmode=require"]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain("pg_dump --format=custom --file='ledger.dump' 'postgres://cocoon@db.example:5433/ledger?sslmode=require'");
    expect(r.err).toContain("pg_restore");
    expect(r.err).toContain("PGPASSWORD");
    expect(r.err).not.toContain("s3cret");
    // One message, not a stack trace.
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.err.startsWith("cocoon-server: backup copies a SQLite database")).toBe(true);
    expect(existsSync(join(dir, "ledger.dump"))).toBe(false);
    // Without --to the command still names a file to write.
    expect(cli(["backup", "--db", "postgresql://localhost/x"]).err).toContain("pg_dump --format=custom --file='cocoon.dump' 'postgresql://localhost/x'");
  });
});

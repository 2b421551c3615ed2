// Part of `bun run bench -- cluster`: billing throughput of the two stores. Reserve → settle cycles
// per second on the embedded SQLite file and on a throwaway Postgres (test/support/postgres.ts), and
// what a rate-limit admission costs counted in memory vs in Postgres (shared by several gateways).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount } from "../src/platform/accounts.ts";
import { credit, reserve, settle, type UsageRecord } from "../src/platform/ledger.ts";
import { RateLimiter } from "../src/platform/ratelimit.ts";
import { admitShared } from "../src/platform/shared-ratelimit.ts";
import { openStore } from "../src/store/db.ts";
import { openPgStore } from "../src/store/pg.ts";
import type { Db } from "../src/store/query.ts";
import { postgresBin, startPostgres } from "../test/support/postgres.ts";

const usage: UsageRecord = { keyId: null, model: "tiny", endpoint: "chat", promptTokens: 20, cachedTokens: 0, completionTokens: 8, reasoningTokens: 0, status: "ok", startedAt: 0, durationMs: 1 };
const fmt = (x: number, d = 0) => x.toFixed(d);

/** `cycles` reserve → settle cycles over `accounts` accounts from `lanes` concurrent callers; cycles per second. */
async function cycles(db: Db, accounts: number[], total: number, lanes: number, tag: string): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < total) {
        const i = next++;
        const id = `${tag}-${i}`;
        const r = await reserve(db, { requestId: id, accountId: accounts[i % accounts.length]!, want: 10_000n, minimumBalance: 0n, maxOverdraft: 0n });
        if (r.ok) await settle(db, { requestId: id, cost: 1_234n, usage });
      }
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

async function admissions(admit: (i: number) => unknown, total: number, lanes: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < total) await admit(next++);
  }));
  return total / ((performance.now() - t0) / 1000);
}

async function fund(db: Db, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = (await createAccount(db)).id;
    await credit(db, id, 10n ** 15n, "deposit", `bench-${i}`);
    ids.push(id);
  }
  return ids;
}

export async function benchLedgerStore(o: { cycles?: number } = {}): Promise<string[]> {
  const total = o.cycles ?? 2_000;
  const lines: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), "cocoon-bench-store-"));
  try {
    const lite = openStore(join(dir, "bench.sqlite"));
    const liteAccounts = await fund(lite, 8);
    const sqlite = await cycles(lite, liteAccounts, total, 1, "s");
    const memory = new RateLimiter();
    const limits = { rpm: 1e9, tpm: 1e12, rpd: 1e9 };
    const inMemory = await admissions((i) => memory.admitAll([{ id: i % 50, limits }, { id: `a${i % 8}`, limits }]), total * 10, 1);
    lite.close();
    if (!postgresBin()) {
      lines.push(`| reserve → settle cycles/s | SQLite ${fmt(sqlite)} | Postgres not installed | | |`);
      return lines;
    }
    const pg = startPostgres();
    try {
      const store = await openPgStore(pg.createDatabase("bench"), { max: 16 });
      const pgAccounts = await fund(store, 8);
      const one = await cycles(store, pgAccounts, Math.floor(total / 4), 1, "p1");
      const many = await cycles(store, pgAccounts, total, 16, "p16");
      const shared = await admissions((i) => admitShared(store, [{ id: i % 50, limits }, { id: `a${i % 8}`, limits }]), total, 16);
      await store.close();
      lines.push("| measure | Postgres | SQLite | ratio | note |");
      lines.push("| --- | ---: | ---: | ---: | --- |");
      lines.push(`| reserve → settle cycles/s, one caller | ${fmt(one)} | ${fmt(sqlite)} | ${fmt(one / sqlite, 2)} | each cycle two transactions; Postgres pays a round trip per statement |`);
      lines.push(`| reserve → settle cycles/s, 16 concurrent callers (8 accounts) | ${fmt(many)} | ${fmt(sqlite)} | ${fmt(many / sqlite, 2)} | SQLite: one writer at a time in one process |`);
      lines.push(`| rate-limit admissions/s (key + account counters) | ${fmt(shared)} (shared) | ${fmt(inMemory)} (in memory) | ${fmt(shared / inMemory, 3)} | the shared counters are what Redis would take over first |`);
    } finally {
      pg.stop();
    }
    return lines;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) for (const l of await benchLedgerStore()) console.log(l);

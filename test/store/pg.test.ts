// The store's invariants on a real Postgres (started here, as the postgres user, on a loopback port):
// the same migrations, an append-only ledger in integer nanoton, deposits credited once, reservations
// race-free across connections and processes, and the lease rule on who may release a hold.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createAccount, getAccount } from "../../src/platform/accounts.ts";
import { createKey, verifyKey } from "../../src/platform/keys.ts";
import { renewLease, releaseOrphaned, type Whereabouts } from "../../src/platform/leases.ts";
import { balanceOf, checkInvariants, credit, releaseOpenReservations, reserve, settle, usageById, type UsageRecord } from "../../src/platform/ledger.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import { pgPlaceholders, type PgStore } from "../../src/store/pg.ts";
import { get } from "../../src/store/query.ts";
import { admitShared } from "../../src/platform/shared-ratelimit.ts";
import { MINIMUM, OVERDRAFT } from "../platform/fixtures/billing-load.ts";
import { runLoadPg } from "./fixtures/pg-load.ts";
import { ROOT } from "../support/model.ts";
import { usePostgres } from "../support/postgres.ts";

const harness = usePostgres("test/store/pg.test.ts");
const available = harness.available;
const open = (url?: string): Promise<PgStore> => harness.open(url);

const usage = (over: Partial<UsageRecord> = {}): UsageRecord => ({
  keyId: null, model: "tiny", endpoint: "/v1/chat/completions", promptTokens: 10, cachedTokens: 0, completionTokens: 5, reasoningTokens: 0, status: "ok", startedAt: 1_700_000_000_000, durationMs: 20, ...over,
});

test("placeholders: ? and ?N become $N, string literals keep theirs", () => {
  expect(pgPlaceholders("SELECT ? , ? WHERE x = '?'")).toBe("SELECT $1 , $2 WHERE x = '?'");
  expect(pgPlaceholders("UPDATE t SET a = ?1 WHERE b = ?2 AND c >= ?1")).toBe("UPDATE t SET a = $1 WHERE b = $2 AND c >= $1");
});

describe.skipIf(!available)("Postgres store", () => {
  test("two gateways migrating at once apply each migration once, and reopening applies none", async () => {
    const url = harness.server.createDatabase("migrate");
    const [a, b] = await Promise.all([open(url), open(url)]);
    const versions = await a.sql.unsafe("SELECT version FROM schema_migrations ORDER BY version");
    expect(versions.map((r: { version: bigint }) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
    await open(url);
    expect((await b.sql.unsafe("SELECT count(*) AS n FROM schema_migrations"))[0].n).toBe(BigInt(MIGRATIONS.length));
  });

  test("the ledger is append-only, and money is integer nanoton beyond 2^53", async () => {
    const db = await open();
    const a = (await createAccount(db)).id;
    const big = 9_000_000_000_000_000_001n; // > 2^53: a float would round it
    expect(await credit(db, a, big, "deposit", "big")).toBe(true);
    expect((await balanceOf(db, a))!.balance).toBe(big);
    await expect(db.sql.unsafe("UPDATE ledger SET amount_nanoton = 1")).rejects.toThrow("ledger is append-only");
    await expect(db.sql.unsafe("DELETE FROM ledger")).rejects.toThrow("ledger is append-only");
    await expect(db.sql.unsafe("INSERT INTO ledger (account_id, kind, amount_nanoton, reference, created_at) VALUES ($1, 'deposit', 0, 'z', 1)", [a])).rejects.toThrow(/check constraint/);
    expect(await checkInvariants(db)).toEqual([]);
  });

  test("a deposit booked from two gateways at once is credited exactly once", async () => {
    const url = harness.server.createDatabase("deposits");
    const [g1, g2] = await Promise.all([open(url), open(url)]);
    const a = (await createAccount(g1)).id;
    for (let i = 0; i < 20; i++) {
      const hash = `tx-${i}`;
      const booked = await Promise.all([credit(g1, a, 1_000n, "deposit", hash), credit(g2, a, 1_000n, "deposit", hash)]);
      expect(booked.filter(Boolean)).toHaveLength(1);
    }
    expect((await balanceOf(g1, a))!.balance).toBe(20_000n);
    expect(await checkInvariants(g2)).toEqual([]);
  });

  test("reserve, settle (idempotent), clamp and release behave as on SQLite", async () => {
    const db = await open();
    const a = (await createAccount(db)).id;
    await credit(db, a, 20_000n, "deposit", "d");
    const r = (id: string, want: bigint) => reserve(db, { requestId: id, accountId: a, want, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT, owner: "gw1" });
    expect(await r("r1", 30_000n)).toEqual({ ok: true, amount: 30_000n, cappedBy: null });
    expect(await r("r2", 1_000_000n)).toEqual({ ok: true, amount: 40_000n, cappedBy: "balance" });
    expect(await r("r3", 1n)).toEqual({ ok: false, reason: "insufficient_balance", balance: 20_000n });
    const first = await settle(db, { requestId: "r1", cost: 1_234n, usage: usage({ requestGuid: "g" }) });
    expect(first).toMatchObject({ charged: 1_234n, alreadySettled: false });
    expect(await settle(db, { requestId: "r1", cost: 9n, usage: usage() })).toEqual({ ...first, alreadySettled: true });
    expect(await usageById(db, a, "r1")).toMatchObject({ cost: 1_234n, requestGuid: "g" });
    expect(await releaseOpenReservations(db, ["gw1"])).toBe(1); // r2, never settled
    expect(await balanceOf(db, a)).toMatchObject({ balance: 20_000n - 1_234n, reserved: 0n });
    await r("r4", 100n);
    expect(await settle(db, { requestId: "r4", cost: 130n, usage: usage() })).toMatchObject({ charged: 100n, uncharged: 30n, clamped: true });
    expect(await balanceOf(db, a)).toMatchObject({ balance: 20_000n - 1_334n, reserved: 0n });
    expect(await checkInvariants(db, OVERDRAFT)).toEqual([]);
  });

  test("keys verify by hash (bytea) and accounts read back alike", async () => {
    const db = await open();
    const a = await createAccount(db, "label");
    const k = await createKey(db, a.id, "k");
    expect(await verifyKey(db, k.key)).toMatchObject({ keyId: k.id, accountId: a.id, expired: false });
    expect(await verifyKey(db, `${k.key.slice(0, -1)}x`)).toBeNull();
    expect(await getAccount(db, a.id)).toMatchObject({ depositCode: a.depositCode, label: "label", balance: 0n, disabled: false });
  });

  test("concurrent reservations on one balance from many connections never overspend it", async () => {
    const url = harness.server.createDatabase("race");
    const gws = await Promise.all([open(url), open(url)]);
    const a = (await createAccount(gws[0]!)).id;
    await credit(gws[0]!, a, 100_000n, "deposit", "d");
    // 200 holds of 1,000 at once against 100,000 + 50,000 overdraft: exactly 150 fit.
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => reserve(gws[i % 2]!, { requestId: `c${i}`, accountId: a, want: 1_000n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT })),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(150);
    expect(await balanceOf(gws[1]!, a)).toMatchObject({ reserved: 150_000n });
    expect(await checkInvariants(gws[1]!, OVERDRAFT)).toEqual([]);
  });

  test("two processes hammering the same accounts: the books balance exactly and no balance goes below −overdraft", async () => {
    const url = harness.server.createDatabase("processes");
    const db = await open(url);
    const funded = new Map<number, bigint>();
    for (let i = 0; i < 6; i++) {
      const id = (await createAccount(db)).id;
      const amount = i === 0 ? 15_000n : 2_000_000n;
      await credit(db, id, amount, "deposit", `seed-${i}`);
      funded.set(id, amount);
    }
    const ids = [...funded.keys()].join(",");
    const script = join(ROOT, "test", "store", "fixtures", "pg-load.ts");
    const procs = [1, 2].map((n) => Bun.spawn([process.execPath, script, url, `p${n}`, String(n * 7919), "600", ids], { cwd: ROOT, stdout: "pipe", stderr: "pipe" }));
    const outs = await Promise.all(procs.map(async (p) => ({ out: await new Response(p.stdout).text(), err: await new Response(p.stderr).text(), code: await p.exited })));
    for (const o of outs) expect(o.err + (o.code === 0 ? "" : `exit ${o.code}`)).not.toContain("exit");
    const results = outs.map((o) => JSON.parse(o.out) as { charged: Record<string, string>; settled: number; startedAt: number; endedAt: number });
    // They overlapped: the second started before the first ended.
    expect(results[1]!.startedAt).toBeLessThan(results[0]!.endedAt);
    expect(await checkInvariants(db, OVERDRAFT)).toEqual([]);
    for (const [id, deposited] of funded) {
      const charged = results.reduce((s, r) => s + BigInt(r.charged[id] ?? "0"), 0n);
      const b = (await balanceOf(db, id))!;
      expect(b.balance).toBe(deposited - charged);
      expect(b.reserved).toBe(0n);
      expect(b.balance).toBeGreaterThanOrEqual(-OVERDRAFT);
    }
  }, 120_000);

  test("in-process load over several connections keeps the invariants", async () => {
    const db = await open();
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const id = (await createAccount(db)).id;
      await credit(db, id, 300_000n, "deposit", `s${i}`);
      ids.push(id);
    }
    await Promise.all([1, 2, 3, 4].map((n) => runLoadPg(db, { accountIds: ids, steps: 300, seed: n, tag: `l${n}`, inFlight: 6 })));
    expect(await checkInvariants(db, OVERDRAFT)).toEqual([]);
    expect(await db.exec(get<{ n: bigint }>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL"))).toEqual({ n: 0n });
  }, 60_000);

  test("a gateway releases another's holds only once that one's lease expired or its process is dead", async () => {
    const url = harness.server.createDatabase("leases");
    const [g1, g2] = await Promise.all([open(url), open(url)]);
    const a = (await createAccount(g1)).id;
    await credit(g1, a, 1_000_000n, "deposit", "d");
    const box1: Whereabouts = { machine: "box-1", boot: "b1", pid: 100 };
    const box2: Whereabouts = { machine: "box-2", boot: "b2", pid: 200 };
    const now = Date.now();
    await renewLease(g1, "gw1", box1, 60_000, now);
    await renewLease(g2, "gw2", box2, 60_000, now);
    await reserve(g1, { requestId: "held", accountId: a, want: 5_000n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT, owner: "gw1" });
    // gw1 is alive on another machine with a live lease: gw2 must leave its hold alone.
    expect(await releaseOrphaned(g2, "gw2", box2, now + 1_000)).toBe(0);
    expect((await balanceOf(g2, a))!.reserved).toBe(5_000n);
    // Past the lease, gw1 is gone: its hold is released (no checkpoint: unbilled), once, even with both sweeping.
    const swept = await Promise.all([releaseOrphaned(g2, "gw2", box2, now + 61_000), releaseOrphaned(g2, "gw3", box2, now + 61_000)]);
    expect(swept.reduce((s, n) => s + n, 0)).toBe(1);
    expect(await balanceOf(g1, a)).toMatchObject({ balance: 1_000_000n, reserved: 0n });
    // gw1 settling it late finds it released without charge.
    await expect(settle(g1, { requestId: "held", cost: 10n, usage: usage() })).rejects.toThrow(/released without charge/);
    expect(await checkInvariants(g1, OVERDRAFT)).toEqual([]);
  });

  test("rate limits are counted across gateways: 5 per minute from two at once admits exactly 5", async () => {
    const url = harness.server.createDatabase("ratelimit");
    const [g1, g2] = await Promise.all([open(url), open(url)]);
    const limits = { rpm: 5, tpm: 1_000_000, rpd: 100 };
    const now = Date.UTC(2026, 0, 1, 12, 0, 10);
    const tries = await Promise.all(Array.from({ length: 12 }, (_, i) => admitShared(i % 2 ? g1 : g2, [{ id: 7, limits }, { id: "a1", limits }], now)));
    expect(tries.filter((t) => t.ok)).toHaveLength(5);
    const refused = tries.find((t) => !t.ok)!;
    expect(refused).toMatchObject({ ok: false, limit: "rpm", counter: 0 });
    // The next minute starts afresh, on either gateway.
    expect((await admitShared(g1, [{ id: 7, limits }], now + 60_000)).ok).toBe(true);
  });

  test("the watcher lock is held by one gateway at a time and passes on when its holder lets go", async () => {
    const url = harness.server.createDatabase("watcherlock");
    const [g1, g2] = await Promise.all([open(url), open(url)]);
    const held = await g1.tryLock(42n);
    expect(held).not.toBeNull();
    expect(await g2.tryLock(42n)).toBeNull();
    await held!.release();
    const taken = await g2.tryLock(42n);
    expect(taken).not.toBeNull();
    // A holder whose connection closes (a gateway that died) frees it too.
    await g2.close();
    // The server ends that session once it sees the socket closed: retried as the watcher would, each interval.
    let again = await g1.tryLock(42n);
    for (let i = 0; i < 100 && !again; i++) {
      await Bun.sleep(100);
      again = await g1.tryLock(42n);
    }
    expect(again).not.toBeNull();
    await again!.release();
  }, 90_000);

  test("a held watcher lock whose connection is cut says it is lost, and another gateway takes it", async () => {
    const url = harness.server.createDatabase("lostlock");
    const [g1, g2] = await Promise.all([open(url), open(url)]);
    const held = (await g1.tryLock(0x636f636f6f6e2d74n))!;
    expect(await held.held()).toBe(true);
    expect(await g2.tryLock(0x636f636f6f6e2d74n)).toBeNull();
    // The holder's session ended by the server (as after a network cut); its process lives on.
    const cut = await g2.sql.unsafe("SELECT pg_terminate_backend(pid) AS ok FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()");
    expect(cut.map((r: { ok: boolean }) => r.ok)).toEqual([true]);
    expect(await held.held()).toBe(false);
    await held.release();
    const taken = await g2.tryLock(0x636f636f6f6e2d74n);
    expect(taken).not.toBeNull();
    expect(await taken!.held()).toBe(true);
    await taken!.release();
  }, 60_000);
});

// The prepaid ledger: idempotent credits, reservations that bound overdraft under any interleaving,
// one-transaction settlement, crash recovery, and two connections writing one file.
import type { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount } from "../../src/platform/accounts.ts";
import {
  balanceOf,
  checkInvariants,
  credit,
  releaseOpenReservations,
  reserve,
  settle,
  usageById,
  usageOf,
  type UsageRecord,
} from "../../src/platform/ledger.ts";
import { openStore } from "../../src/store/db.ts";
import { MINIMUM, OVERDRAFT, prng, runLoad, type LoadResult } from "./fixtures/billing-load.ts";

const dir = mkdtempSync(join(tmpdir(), "cocoon-ledger-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const usage = (over: Partial<UsageRecord> = {}): UsageRecord => ({
  keyId: null,
  model: "tiny",
  endpoint: "/v1/chat/completions",
  promptTokens: 10,
  cachedTokens: 0,
  completionTokens: 5,
  reasoningTokens: 0,
  status: "ok",
  startedAt: 1_700_000_000_000,
  durationMs: 20,
  ...over,
});

const ledgerRows = (db: Database, reference: string) =>
  db.query<{ kind: string; amount_nanoton: bigint }, [string]>("SELECT kind, amount_nanoton FROM ledger WHERE reference = ? ORDER BY id").all(reference);
const openReservations = (db: Database) => Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL").get()!.n);
const sumLedger = (db: Database, accountId: number, kind: string) =>
  db.query<{ s: bigint }, [number, string]>("SELECT coalesce(sum(amount_nanoton), 0) AS s FROM ledger WHERE account_id = ? AND kind = ?").get(accountId, kind)!.s;

describe("credit", () => {
  const db = openStore(":memory:");
  const a = createAccount(db).id;
  const b = createAccount(db).id;

  test("books a deposit once per reference, updating the cached balance in the same transaction", () => {
    expect(credit(db, a, 1_500_000_000n, "deposit", "txhash-1")).toBe(true);
    expect(credit(db, a, 1_500_000_000n, "deposit", "txhash-1")).toBe(false);
    expect(credit(db, b, 1_500_000_000n, "deposit", "txhash-1")).toBe(false); // a transfer credits one account, once
    expect(balanceOf(db, a)?.balance).toBe(1_500_000_000n);
    expect(balanceOf(db, b)?.balance).toBe(0n);
    expect(ledgerRows(db, "txhash-1")).toEqual([{ kind: "deposit", amount_nanoton: 1_500_000_000n }]);
  });

  test("adjustments credit or debit, and are idempotent per reference too", () => {
    expect(credit(db, a, -500_000_000n, "adjustment", "admin-1", "refund reversal")).toBe(true);
    expect(credit(db, a, -500_000_000n, "adjustment", "admin-1")).toBe(false);
    expect(credit(db, a, 7n, "adjustment", "admin-2")).toBe(true);
    expect(balanceOf(db, a)?.balance).toBe(1_000_000_007n);
  });

  test("refuses non-positive deposits, zero adjustments and unknown accounts", () => {
    expect(() => credit(db, a, 0n, "deposit", "z")).toThrow(RangeError);
    expect(() => credit(db, a, -1n, "deposit", "z")).toThrow(RangeError);
    expect(() => credit(db, a, 0n, "adjustment", "z")).toThrow(RangeError);
    expect(() => credit(db, 999, 1n, "deposit", "z")).toThrow(/FOREIGN KEY/);
    expect(checkInvariants(db)).toEqual([]);
  });
});

describe("reserve and settle", () => {
  test("refuses below the minimum balance, reporting the balance", () => {
    const db = openStore(":memory:");
    const a = createAccount(db).id;
    credit(db, a, MINIMUM - 1n, "deposit", "d");
    expect(reserve(db, { requestId: "r1", accountId: a, want: 100n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT })).toEqual({
      ok: false,
      reason: "insufficient_balance",
      balance: MINIMUM - 1n,
    });
    expect(openReservations(db)).toBe(0);
  });

  test("holds min(want, balance + overdraft − reserved) and refuses when nothing is left", () => {
    const db = openStore(":memory:");
    const a = createAccount(db).id;
    credit(db, a, 20_000n, "deposit", "d");
    const r = (id: string, want: bigint) => reserve(db, { requestId: id, accountId: a, want, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT });
    expect(r("r1", 30_000n)).toEqual({ ok: true, amount: 30_000n, cappedBy: null });
    expect(r("r2", 1_000_000n)).toEqual({ ok: true, amount: 40_000n, cappedBy: "balance" }); // 20,000 + 50,000 − 30,000
    expect(r("r3", 1n)).toEqual({ ok: false, reason: "insufficient_balance", balance: 20_000n });
    const bal = balanceOf(db, a)!;
    expect([bal.balance, bal.reserved, bal.available(OVERDRAFT)]).toEqual([20_000n, 70_000n, 0n]);
    expect(ledgerRows(db, "r2")).toEqual([{ kind: "reservation", amount_nanoton: 40_000n }]);
    expect(checkInvariants(db, OVERDRAFT)).toEqual([]);
  });

  test("settle releases the hold, charges the cost and records usage in one go; a second settle changes nothing", () => {
    const db = openStore(":memory:");
    const a = createAccount(db).id;
    credit(db, a, 1_000_000n, "deposit", "d");
    reserve(db, { requestId: "req", accountId: a, want: 5_000n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT });
    const first = settle(db, { requestId: "req", cost: 1_234n, usage: usage({ requestGuid: "g-1", keyId: null }) });
    expect(first).toEqual({ requestId: "req", accountId: a, reserved: 5_000n, charged: 1_234n, uncharged: 0n, clamped: false, alreadySettled: false });
    expect(ledgerRows(db, "req")).toEqual([
      { kind: "reservation", amount_nanoton: 5_000n },
      { kind: "release", amount_nanoton: -5_000n },
      { kind: "charge", amount_nanoton: -1_234n },
    ]);
    const again = settle(db, { requestId: "req", cost: 9_999n, usage: usage() });
    expect(again).toEqual({ ...first, alreadySettled: true });
    expect(ledgerRows(db, "req")).toHaveLength(3);
    expect(balanceOf(db, a)).toMatchObject({ balance: 1_000_000n - 1_234n, reserved: 0n });
    expect(usageById(db, a, "req")).toMatchObject({ id: "req", accountId: a, requestGuid: "g-1", cost: 1_234n, uncharged: 0n, status: "ok", promptTokens: 10 });
    expect(checkInvariants(db, OVERDRAFT)).toEqual([]);
  });

  test("a cost above the hold is clamped to it and the clamp reported, unless the caller allows the overrun", () => {
    const db = openStore(":memory:");
    const a = createAccount(db).id;
    credit(db, a, 1_000_000n, "deposit", "d");
    const hold = (id: string) => reserve(db, { requestId: id, accountId: a, want: 100n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT });
    hold("c1");
    expect(settle(db, { requestId: "c1", cost: 130n, usage: usage() })).toMatchObject({ charged: 100n, uncharged: 30n, clamped: true });
    expect(settle(db, { requestId: "c1", cost: 130n, usage: usage() })).toMatchObject({ charged: 100n, uncharged: 30n, clamped: true, alreadySettled: true });
    hold("c2");
    expect(settle(db, { requestId: "c2", cost: 130n, usage: usage(), allowOverrun: true })).toMatchObject({ charged: 130n, uncharged: 0n, clamped: false });
    expect(balanceOf(db, a)?.balance).toBe(1_000_000n - 230n);
    expect(checkInvariants(db, OVERDRAFT)).toEqual([]);
  });

  test("a cancelled request that produced nothing costs 0 and still leaves its usage row", () => {
    const db = openStore(":memory:");
    const a = createAccount(db).id;
    credit(db, a, 1_000_000n, "deposit", "d");
    reserve(db, { requestId: "x", accountId: a, want: 100n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT });
    expect(settle(db, { requestId: "x", cost: 0n, usage: usage({ status: "cancelled", completionTokens: 0 }) }).charged).toBe(0n);
    expect(balanceOf(db, a)).toMatchObject({ balance: 1_000_000n, reserved: 0n });
    expect(usageById(db, a, "x")?.status).toBe("cancelled");
    expect(checkInvariants(db, OVERDRAFT)).toEqual([]);
  });

  test("a settle that fails part-way writes nothing: the hold stays open and no ledger row appears", () => {
    const db = openStore(":memory:");
    const a = createAccount(db).id;
    credit(db, a, 1_000_000n, "deposit", "d");
    reserve(db, { requestId: "f", accountId: a, want: 100n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT });
    // The usage insert is the last statement; an invalid status makes it fail after the ledger rows.
    expect(() => settle(db, { requestId: "f", cost: 50n, usage: usage({ status: "weird" as "ok" }) })).toThrow(/CHECK/);
    expect(ledgerRows(db, "f")).toEqual([{ kind: "reservation", amount_nanoton: 100n }]);
    expect(balanceOf(db, a)).toMatchObject({ balance: 1_000_000n, reserved: 100n });
    expect(settle(db, { requestId: "f", cost: 50n, usage: usage() }).charged).toBe(50n);
    expect(checkInvariants(db, OVERDRAFT)).toEqual([]);
  });

  test("settling an unknown request throws", () => {
    const db = openStore(":memory:");
    expect(() => settle(db, { requestId: "nope", cost: 0n, usage: usage() })).toThrow("no reservation for request nope");
  });
});

describe("invariants under load", () => {
  // Every fourth account is poor (nothing, just under or at the minimum, a little): it hits refusals and
  // the overdraft. The others hold enough for a few hundred requests.
  const poor = [0n, MINIMUM - 1n, MINIMUM, 15_000n, 60_000n];

  function fund(db: Database, n: number, seed: number): Map<number, bigint> {
    const rnd = prng(seed);
    const funded = new Map<number, bigint>();
    for (let i = 0; i < n; i++) {
      const id = createAccount(db, `acct-${i}`).id;
      const amount = i % 4 === 0 ? poor[Math.floor(rnd() * poor.length)]! : BigInt(5_000_000 + Math.floor(rnd() * 45_000_000));
      if (amount > 0n) credit(db, id, amount, "deposit", `seed-${seed}-${i}`);
      funded.set(id, amount);
    }
    return funded;
  }

  function expectBooksBalance(db: Database, funded: Map<number, bigint>, charged: Map<number, bigint>): void {
    expect(checkInvariants(db, OVERDRAFT)).toEqual([]);
    expect(openReservations(db)).toBe(0);
    for (const [id, deposited] of funded) {
      const b = balanceOf(db, id)!;
      expect(b.balance).toBe(deposited - (charged.get(id) ?? 0n));
      expect(b.balance).toBe(sumLedger(db, id, "deposit") + sumLedger(db, id, "charge"));
      expect(b.reserved).toBe(0n);
      expect(b.balance).toBeGreaterThanOrEqual(-OVERDRAFT);
    }
  }

  const addCharges = (into: Map<number, bigint>, r: LoadResult) => {
    for (const [id, v] of Object.entries(r.charged)) into.set(Number(id), (into.get(Number(id)) ?? 0n) + BigInt(v));
  };

  test("random reserve/settle interleavings never take a balance below −overdraft, and the books balance exactly", () => {
    for (const seed of [1, 2, 3]) {
      const db = openStore(":memory:");
      const funded = fund(db, 20, seed);
      let lowest = 0n;
      const result = runLoad(db, {
        accountIds: [...funded.keys()],
        steps: 3000,
        seed,
        tag: `s${seed}`,
        inFlight: 40,
        afterStep: (id) => {
          const b = balanceOf(db, id)!;
          if (b.balance < lowest) lowest = b.balance;
          expect(b.balance).toBeGreaterThanOrEqual(-OVERDRAFT);
          expect(b.reserved).toBeLessThanOrEqual(b.balance + OVERDRAFT);
        },
      });
      expect(result.settled).toBeGreaterThan(500);
      expect(result.refused).toBeGreaterThan(0); // tiny balances were exercised
      expect(result.clamped).toBeGreaterThan(0); // over-reservation costs were exercised
      expect(lowest).toBeLessThan(0n); // the overdraft was actually reached into
      const charged = new Map<number, bigint>();
      addCharges(charged, result);
      expectBooksBalance(db, funded, charged);
    }
  });

  test("two connections to one file (a Worker and this thread) billing the same accounts keep the books straight", async () => {
    const path = join(dir, "shared.sqlite");
    const db = openStore(path);
    const funded = fund(db, 4, 7);
    const accountIds = [...funded.keys()];
    const worker = new Worker(new URL("./fixtures/ledger-worker.ts", import.meta.url));
    type Reply = { ready?: boolean; ok?: boolean; result?: LoadResult; error?: string };
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const done = new Promise<LoadResult>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<Reply>) => {
        if (e.data.ready) ready();
        else if (e.data.ok) resolve(e.data.result!);
        else reject(new Error(e.data.error));
      };
      worker.onerror = (e) => reject(new Error(e.message));
    });
    worker.postMessage({ path });
    await isReady;
    worker.postMessage({ load: { accountIds, steps: 3000, seed: 11, tag: "worker", inFlight: 20 } });
    const mine = runLoad(db, { accountIds, steps: 3000, seed: 12, tag: "main", inFlight: 20 });
    const theirs = await done;
    worker.terminate();
    const charged = new Map<number, bigint>();
    addCharges(charged, mine);
    addCharges(charged, theirs);
    expect(mine.settled + theirs.settled).toBeGreaterThan(1000);
    expect(theirs.startedAt).toBeLessThan(mine.endedAt); // the two writers really ran at the same time
    expect(mine.startedAt).toBeLessThan(theirs.endedAt);
    expectBooksBalance(db, funded, charged);
    db.close();
  });

  test("after a crash mid-request, start-up releases every open hold without charging, leaving no charge without usage", async () => {
    const path = join(dir, "crash.sqlite");
    const out = join(dir, "crash.json");
    const db = openStore(path);
    const funded = fund(db, 6, 5);
    db.close();
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures/crash-mid-request.ts"), path, [...funded.keys()].join(","), out], {
      stdout: "inherit",
      stderr: "inherit",
    });
    await child.exited;
    expect(child.signalCode).toBe("SIGKILL");
    const result = JSON.parse(readFileSync(out, "utf8")) as LoadResult;
    expect(result.open.length).toBeGreaterThan(0);

    const after = openStore(path);
    expect(openReservations(after)).toBe(result.open.length);
    const heldBefore = new Map([...funded.keys()].map((id) => [id, balanceOf(after, id)!.balance]));
    expect(releaseOpenReservations(after)).toBe(result.open.length);
    expect(releaseOpenReservations(after)).toBe(0);
    for (const id of result.open) {
      expect(ledgerRows(after, id).map((r) => r.kind)).toEqual(["reservation", "release"]); // no charge
      expect(after.query("SELECT id FROM usage WHERE id = ?").get(id)).toBeNull();
    }
    for (const [id, before] of heldBefore) expect(balanceOf(after, id)!.balance).toBe(before); // releasing charges nothing
    const charged = new Map<number, bigint>();
    addCharges(charged, result);
    expectBooksBalance(after, funded, charged);
    expect(() => settle(after, { requestId: result.open[0]!, cost: 1n, usage: usage() })).toThrow(/released without charge/);
    after.close();
  });
});

describe("usage", () => {
  const db = openStore(":memory:");
  const a = createAccount(db).id;
  const b = createAccount(db).id;
  credit(db, a, 10_000_000n, "deposit", "da");
  credit(db, b, 10_000_000n, "deposit", "db");
  const bill = (account: number, id: string, startedAt: number) => {
    reserve(db, { requestId: id, accountId: account, want: 1_000n, minimumBalance: MINIMUM, maxOverdraft: OVERDRAFT });
    settle(db, { requestId: id, cost: 10n, usage: usage({ startedAt }) });
  };
  // Two requests share a start time, so the keyset must order by id too.
  for (let i = 0; i < 7; i++) bill(a, `a${i}`, 1_000 + Math.min(i, 5));
  bill(b, "b0", 1_003);

  test("pages newest first with a stable cursor, covering every entry once", () => {
    const ids: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = usageOf(db, a, { limit: 3, before });
      ids.push(...page.data.map((u) => u.id));
      if (!page.hasMore) break;
      before = page.data.at(-1)!.id;
    }
    expect(ids).toEqual(["a6", "a5", "a4", "a3", "a2", "a1", "a0"]);
  });

  test("one account never reads another's usage", () => {
    expect(usageById(db, a, "b0")).toBeNull();
    expect(usageById(db, b, "b0")?.cost).toBe(10n);
    expect(usageOf(db, b, { limit: 100 }).data.map((u) => u.id)).toEqual(["b0"]);
    expect(usageOf(db, b, { limit: 100, before: "a3" })).toEqual({ data: [], hasMore: false });
  });
});

test("checkInvariants reports a cached balance that disagrees with the ledger", () => {
  const db = openStore(":memory:");
  const a = createAccount(db).id;
  credit(db, a, 100n, "deposit", "d");
  db.query("UPDATE accounts SET balance_nanoton = 101 WHERE id = ?").run(a);
  expect(checkInvariants(db)).toEqual([`account ${a}: cached balance 101 ≠ ledger 100`]);
});

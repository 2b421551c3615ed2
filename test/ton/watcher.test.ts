// The deposit watcher against the toncenter stand-in: each transfer credited exactly once through
// replays, overlapping pages, pagination, restarts and API failures; the credit rules case by case.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { beginCell, convertToMerkleProof } from "@ton/core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { createAccount, getAccount } from "../../src/platform/accounts.ts";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { parseTon } from "../../src/platform/pricing.ts";
import { parseWallet } from "../../src/ton/address.ts";
import { ToncenterClient } from "../../src/ton/client.ts";
import { ENCRYPTED_COMMENT_OP } from "../../src/ton/comment.ts";
import { getDeposit, listDeposits, type DepositStatus } from "../../src/ton/service.ts";
import { TonWatcher, type WatcherOptions } from "../../src/ton/watcher.ts";
import { commentBody, ToncenterStandIn } from "../support/toncenter.ts";

setDefaultTimeout(60_000);

interface Rig {
  dir: string;
  path: string;
  db: Database;
  api: ToncenterStandIn;
  watcher: TonWatcher;
  newWatcher(o?: Partial<WatcherOptions>): TonWatcher;
}

const rigs: Rig[] = [];

function rig(o: Partial<WatcherOptions> & { timeoutMs?: number; apiKey?: string } = {}): Rig {
  const dir = mkdtempSync(join(tmpdir(), "cocoon-ton-"));
  const path = join(dir, "ton.sqlite");
  const db = openStore(path);
  const api = new ToncenterStandIn().start();
  const wallet = parseWallet(api.wallet.toString(), "mainnet");
  const client = new ToncenterClient({ base: api.url, timeoutMs: o.timeoutMs ?? 2_000, apiKey: o.apiKey });
  const r: Rig = {
    dir,
    path,
    db,
    api,
    watcher: null as unknown as TonWatcher,
    newWatcher: (over = {}) => new TonWatcher({ db: r.db, client, wallet, minimum: parseTon("0.01"), intervalMs: 50, pageSize: 8, ...o, ...over }),
  };
  r.watcher = r.newWatcher();
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.watcher.stop();
    await r.api.stop();
    r.db.close();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

const balance = (db: Database, id: number) => getAccount(db, id)!.balance;
const ledgerDeposits = (db: Database) =>
  db.query<{ reference: string; account_id: bigint; amount_nanoton: bigint }, []>("SELECT reference, account_id, amount_nanoton FROM ledger WHERE kind = 'deposit' ORDER BY id").all();

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(10);
  }
}

describe("crediting", () => {
  test("a transfer with a registered code credits that account once, with one ledger row referencing the hash", async () => {
    const { db, api, watcher } = rig();
    const a = createAccount(db);
    const other = createAccount(db);
    const tx = api.add({ value: parseTon("1.5"), comment: a.depositCode });
    const first = await watcher.pollOnce();
    expect(first).toMatchObject({ recorded: 1, credited: 1 });
    expect(balance(db, a.id)).toBe(parseTon("1.5"));
    expect(balance(db, other.id)).toBe(0n);
    expect(ledgerDeposits(db)).toEqual([{ reference: tx.hashHex, account_id: BigInt(a.id), amount_nanoton: parseTon("1.5") }]);
    const d = getDeposit(db, tx.hashHex)!;
    expect(d).toMatchObject({ status: "credited", reason: "matched", accountId: a.id, amount: parseTon("1.5"), comment: a.depositCode, sender: tx.from.toRawString() });
    // The newest page is served again on every poll: nothing more is credited.
    for (let i = 0; i < 5; i++) expect(await watcher.pollOnce()).toMatchObject({ recorded: 0, credited: 0 });
    expect(balance(db, a.id)).toBe(parseTon("1.5"));
    expect(ledgerDeposits(db)).toHaveLength(1);
    expect(checkInvariants(db)).toEqual([]);
    expect(watcher.state()).toMatchObject({ credited: 1, creditedNanoton: parseTon("1.5"), cursor: { lt: tx.lt.toString(), hash: tx.hashHex } });
  });

  test("a transfer whose body cannot be parsed (an exotic cell) is kept as unmatched and does not block the deposits after it", async () => {
    const { db, api, watcher } = rig();
    const a = createAccount(db);
    api.add({ value: parseTon("2"), comment: a.depositCode });
    // Anyone can send this for a few nanoton: @ton/core refuses to parse a Merkle proof cell.
    const inner = beginCell().storeUint(0, 32).storeBuffer(Buffer.from("hello")).endCell();
    const poison = api.add({
      value: parseTon("0.01"),
      body: beginCell().storeUint(0, 32).storeBuffer(Buffer.from("AB")).storeRef(convertToMerkleProof(inner)).endCell(),
    });
    api.add({ value: parseTon("3"), comment: a.depositCode });
    expect(await watcher.pollOnce()).toMatchObject({ recorded: 3, credited: 2 });
    expect(balance(db, a.id)).toBe(parseTon("5"));
    expect(getDeposit(db, poison.hashHex)).toMatchObject({ status: "unmatched", reason: "invalid_comment", amount: parseTon("0.01"), accountId: null });
    expect(watcher.state()).toMatchObject({ consecutiveErrors: 0, lastError: null });
    expect(checkInvariants(db)).toEqual([]);
  });

  test("the amount comes from the transaction's BOC, not from the JSON summary", async () => {
    const { db, api, watcher } = rig();
    const a = createAccount(db);
    api.add({ value: parseTon("0.25"), comment: a.depositCode, lyingSummary: { value: "1000000000000", message: "someone else" } });
    await watcher.pollOnce();
    expect(balance(db, a.id)).toBe(parseTon("0.25"));
  });

  test("a memo typed in lower case with dashes and spaces around it matches; the comparison is of the normalized, trimmed text", async () => {
    const { db, api, watcher } = rig();
    const a = createAccount(db);
    const typed = `  ${a.depositCode.slice(0, 4).toLowerCase()}-${a.depositCode.slice(4).toLowerCase()}\n`;
    api.add({ value: parseTon("1"), comment: typed });
    await watcher.pollOnce();
    expect(balance(db, a.id)).toBe(parseTon("1"));
  });

  test("each credit rule: only a kept inbound transfer with a known code at or above the minimum is credited", async () => {
    const { db, api, watcher } = rig();
    const a = createAccount(db);
    const code = a.depositCode;
    const typo = code.slice(0, 3) + (code[3] === "A" ? "B" : "A") + code.slice(4);
    const unknownValid = createAccount(db); // a valid code of an account we then forget
    db.exec(`UPDATE accounts SET deposit_code = 'ZZZZZZZZZ' WHERE id = ${unknownValid.id}`);
    const cases: { spec: Parameters<ToncenterStandIn["add"]>[0]; status: DepositStatus; reason: string }[] = [
      { spec: { comment: code, bounced: true }, status: "ignored", reason: "bounced" },
      { spec: { comment: code, outMessages: 1 }, status: "ignored", reason: "has_out_messages" },
      { spec: { comment: code, value: 0n }, status: "ignored", reason: "zero_value" },
      { spec: { external: true, body: commentBody(code) }, status: "ignored", reason: "external_message" },
      { spec: { body: beginCell().storeUint(ENCRYPTED_COMMENT_OP, 32).storeBuffer(Buffer.from(code)).endCell() }, status: "unmatched", reason: "encrypted_comment" },
      { spec: { body: beginCell().storeUint(0x0f8a7ea5, 32).storeUint(1, 64).endCell() }, status: "unmatched", reason: "binary_comment" },
      { spec: { body: commentBody(new Uint8Array([...Buffer.from(code), 0xc3, 0x28])) }, status: "unmatched", reason: "invalid_comment" },
      { spec: {}, status: "unmatched", reason: "no_comment" },
      { spec: { comment: "   " }, status: "unmatched", reason: "empty_comment" },
      { spec: { comment: typo }, status: "unmatched", reason: "unknown_code" },
      { spec: { comment: unknownValid.depositCode }, status: "unmatched", reason: "unknown_code" },
      { spec: { comment: `deposit ${code}` }, status: "unmatched", reason: "unknown_code" },
      { spec: { comment: code, value: parseTon("0.009999999") }, status: "unmatched", reason: "below_minimum" },
      // Spans three cells: the code after 250 spaces, all of it trimmed.
      { spec: { comment: `${" ".repeat(250)}${code}\n`, value: parseTon("2") }, status: "credited", reason: "matched" },
      { spec: { comment: code, value: parseTon("0.01") }, status: "credited", reason: "matched" },
    ];
    const txs = cases.map((c) => api.add(c.spec));
    await watcher.pollOnce();
    for (const [i, c] of cases.entries()) {
      const d = getDeposit(db, txs[i]!.hashHex);
      expect({ case: i, status: d?.status, reason: d?.reason }).toEqual({ case: i, status: c.status, reason: c.reason });
    }
    expect(balance(db, a.id)).toBe(parseTon("2.01"));
    expect(ledgerDeposits(db)).toHaveLength(2);
    expect(watcher.state()).toMatchObject({ credited: 2, unmatched: 9, ignored: 4 });
    const unmatched = listDeposits(db, { status: "unmatched", limit: 100 }).data;
    expect(unmatched.map((d) => d.reason).sort()).toEqual(
      ["below_minimum", "binary_comment", "empty_comment", "encrypted_comment", "invalid_comment", "no_comment", "unknown_code", "unknown_code", "unknown_code"].sort(),
    );
    // Nothing lost: each unmatched one keeps amount, sender, hash and time.
    for (const d of unmatched) {
      expect(d.amount).toBeGreaterThan(0n);
      expect(d.sender).toMatch(/^0:[0-9a-f]{64}$/);
      expect(d.chainTime).toBeGreaterThan(0);
    }
    expect(checkInvariants(db)).toEqual([]);
  });
});

describe("exactly once", () => {
  test("overlapping pages and transfers arriving between polls: each credited once", async () => {
    const { db, api, watcher } = rig({ pageSize: 5 });
    api.overlap = 2; // each page from an anchor repeats the two transactions before it
    const accounts = [createAccount(db), createAccount(db), createAccount(db)];
    const expected = new Map<number, bigint>();
    let n = 0;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 5; i++) {
        const acc = accounts[n++ % 3]!;
        const value = parseTon("0.1") + BigInt(n);
        api.add({ value, comment: acc.depositCode });
        expected.set(acc.id, (expected.get(acc.id) ?? 0n) + value);
      }
      await watcher.pollOnce();
      await watcher.pollOnce();
    }
    for (const acc of accounts) expect(balance(db, acc.id)).toBe(expected.get(acc.id)!);
    const refs = ledgerDeposits(db).map((r) => r.reference);
    expect(refs).toHaveLength(30);
    expect(new Set(refs).size).toBe(30);
    expect(checkInvariants(db)).toEqual([]);
  });

  test("a transfer that arrives while a poll is paging is not skipped", async () => {
    const { db, api, watcher } = rig({ pageSize: 3 });
    const a = createAccount(db);
    for (let i = 0; i < 7; i++) api.add({ value: parseTon("1"), comment: a.depositCode });
    let injected = false;
    api.onRequest = (call) => {
      if (call.lt !== undefined && !injected) {
        injected = true;
        api.add({ value: parseTon("5"), comment: a.depositCode });
      }
    };
    await watcher.pollOnce();
    expect(balance(db, a.id)).toBe(parseTon("7"));
    await watcher.pollOnce();
    expect(balance(db, a.id)).toBe(parseTon("12"));
  });

  test("200 deposits arriving across 10 polls, paged 7 at a time: all credited, none twice", async () => {
    const { db, api, watcher } = rig({ pageSize: 7 });
    const accounts = Array.from({ length: 20 }, () => createAccount(db));
    const expected = new Map<number, bigint>();
    let pages = 0;
    for (let poll = 0; poll < 10; poll++) {
      for (let i = 0; i < 20; i++) {
        const acc = accounts[(poll * 7 + i) % 20]!;
        const value = parseTon("0.01") + BigInt(poll * 1000 + i);
        api.add({ value, comment: acc.depositCode });
        expected.set(acc.id, (expected.get(acc.id) ?? 0n) + value);
      }
      const r = await watcher.pollOnce();
      expect(r.recorded).toBe(20);
      pages += r.pages;
    }
    expect(pages).toBeGreaterThanOrEqual(30); // 20 new per poll at 7 per page: paging really happened
    for (const acc of accounts) expect(balance(db, acc.id)).toBe(expected.get(acc.id)!);
    const refs = ledgerDeposits(db).map((r) => r.reference);
    expect(refs).toHaveLength(200);
    expect(new Set(refs).size).toBe(200);
    expect(new Set(refs)).toEqual(new Set(api.txs.map((t) => t.hashHex)));
    expect(checkInvariants(db)).toEqual([]);
  });

  test("a restart resumes from the stored cursor; even with the cursor lost, replayed history credits nothing", async () => {
    const r = rig({ pageSize: 5 });
    const a = createAccount(r.db);
    for (let i = 0; i < 12; i++) r.api.add({ value: parseTon("1"), comment: a.depositCode });
    await r.watcher.pollOnce();
    expect(balance(r.db, a.id)).toBe(parseTon("12"));
    await r.watcher.stop();
    r.db.close();
    r.db = openStore(r.path);
    const calls = r.api.calls.length;
    r.watcher = r.newWatcher();
    r.api.add({ value: parseTon("3"), comment: a.depositCode });
    expect(await r.watcher.pollOnce()).toMatchObject({ recorded: 1, credited: 1, pages: 1 });
    expect(r.api.calls.length - calls).toBe(1); // the newest page reached the cursor: no paging through history
    r.db.exec("DELETE FROM ton_cursor");
    expect(await r.watcher.pollOnce()).toMatchObject({ recorded: 0, credited: 0 });
    expect(balance(r.db, a.id)).toBe(parseTon("15"));
    expect(ledgerDeposits(r.db)).toHaveLength(13);
    expect(checkInvariants(r.db)).toEqual([]);
  });

  test("an API that leaves a transaction out is caught by the chain of predecessors: nothing recorded until it is complete", async () => {
    const { db, api, watcher } = rig();
    const a = createAccount(db);
    const txs = [1, 2, 3].map((n) => api.add({ value: parseTon(String(n)), comment: a.depositCode }));
    api.hidden.add(txs[1]!.hashHex);
    await expect(watcher.pollOnce()).rejects.toThrow(/gap/);
    expect(balance(db, a.id)).toBe(0n);
    api.hidden.clear();
    await watcher.pollOnce();
    expect(balance(db, a.id)).toBe(parseTon("6"));
  });

  test("the first run reads the whole history back through archival paging", async () => {
    const { db, api, watcher } = rig({ pageSize: 4 });
    api.recentWindow = 5; // without archival=true older transactions cannot be reached
    const a = createAccount(db);
    for (let i = 0; i < 20; i++) api.add({ value: parseTon("1"), comment: a.depositCode });
    await watcher.pollOnce();
    expect(balance(db, a.id)).toBe(parseTon("20"));
    expect(api.calls.every((c) => c.archival)).toBe(true);
  });
});

describe("failures", () => {
  test("500s, timeouts, 429s and garbage for a while: no crash, no loss, credits resume, errors counted", async () => {
    const r = rig({ timeoutMs: 150, intervalMs: 20 });
    const { db, api } = r;
    const a = createAccount(db);
    api.add({ value: parseTon("1"), comment: a.depositCode });
    api.failures.push("500", "hang", "garbage", "not_ok", "html", "500", "hang", "429");
    r.watcher.start();
    // A deposit arriving during the outage.
    api.add({ value: parseTon("2"), comment: a.depositCode });
    await until("both deposits credited", () => balance(db, a.id) === parseTon("3"));
    const s = r.watcher.state();
    expect(s.running).toBe(true);
    expect(s.pollErrors).toMatchObject({ http: 3, timeout: 2, invalid_response: 2, rate_limited: 1 });
    expect(s.lastError).not.toBeNull();
    await until("a successful poll after the outage", () => r.watcher.state().consecutiveErrors === 0);
    // Keeps polling after the outage; still credited once.
    const polls = r.watcher.state().polls;
    await until("more polls", () => r.watcher.state().polls >= polls + 3);
    expect(balance(db, a.id)).toBe(parseTon("3"));
    expect(ledgerDeposits(db)).toHaveLength(2);
  });

  test("failing polls back off exponentially up to the cap", async () => {
    const r = rig({ timeoutMs: 1000, intervalMs: 20, maxBackoffMs: 160 });
    for (let i = 0; i < 9; i++) r.api.failures.push("500");
    const t0 = Date.now();
    r.watcher.start();
    await until("nine failures", () => r.watcher.state().pollErrors.http >= 9);
    await until("recovered", () => r.watcher.state().polls >= 1);
    // 40 + 80 + 160 × 7 ms of waiting at least, far more than nine polls at the 20 ms interval.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40 + 80 + 160 * 7 - 50);
  });

  test("stop() ends a poll hanging on the API at once", async () => {
    const r = rig({ timeoutMs: 30_000 });
    r.api.failures.push("hang");
    r.watcher.start();
    await until("the request is in flight", () => r.api.calls.length === 1);
    const t0 = Date.now();
    await r.watcher.stop();
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(r.watcher.state().running).toBe(false);
  });

  test("with a watcher lock: a lock found lost stops polling until the lock is free again, then polls again", async () => {
    let otherHolds = false;
    let lost = false;
    let locks = 0;
    let released = 0;
    const lines: string[] = [];
    const r = rig();
    await r.watcher.stop();
    r.watcher = r.newWatcher({
      log: (_level, line) => lines.push(line),
      lock: async () => {
        if (otherHolds) return null;
        locks++;
        lost = false;
        return { held: async () => !lost, release: async () => void released++ };
      },
    });
    r.watcher.start();
    await until("polling under the lock", () => r.api.calls.length >= 3);
    // Its connection cut: Postgres released it and another gateway took it.
    otherHolds = true;
    lost = true;
    await until("the loss seen", () => lines.some((l) => l.includes("lost the watcher lock")));
    const calls = r.api.calls.length;
    await Bun.sleep(400);
    expect(r.api.calls.length).toBe(calls);
    expect(released).toBe(1);
    otherHolds = false;
    await until("polling again under a new lock", () => r.api.calls.length >= calls + 2);
    expect(locks).toBe(2);
  });

  test("the API key goes out as X-API-Key", async () => {
    const { api, watcher } = rig({ apiKey: "secret-key-1" });
    await watcher.pollOnce();
    expect(api.calls.map((c) => c.apiKey)).toEqual(["secret-key-1"]);
  });
});

describe("catching up on a long history", () => {
  const staged = (db: Database) => Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM ton_backfill_txs").get()!.n);
  /** Adds `n` transfers to the wallet spread over `accounts`; returns what each account should end with. */
  function history(api: ToncenterStandIn, accounts: { id: number; depositCode: string }[], n: number, expected = new Map<number, bigint>()) {
    for (let i = 0; i < n; i++) {
      const acc = accounts[i % accounts.length]!;
      const value = parseTon("0.01") + BigInt(api.txs.length);
      api.add({ value, comment: acc.depositCode });
      expected.set(acc.id, (expected.get(acc.id) ?? 0n) + value);
    }
    return expected;
  }
  /** Polls until one succeeds; returns how many failed. */
  async function pollUntilSuccess(w: TonWatcher, max = 100): Promise<number> {
    for (let failed = 0; failed < max; failed++) {
      try {
        await w.pollOnce();
        return failed;
      } catch {
        // expected: the API fails part-way
      }
    }
    throw new Error(`no successful poll in ${max}`);
  }

  test("300 transactions, paged 7 at a time, with every 6th request failing: progress is kept across polls and each is credited once", async () => {
    const { db, api, watcher } = rig({ pageSize: 7 });
    const accounts = Array.from({ length: 7 }, () => createAccount(db));
    const expected = history(api, accounts, 300);
    let n = 0;
    // A failure that 3 in-poll retries would not cure: a 500 or a truncated body, every 6th request.
    api.onRequest = () => {
      if (++n % 6 === 0) api.failures.push(n % 12 === 0 ? "garbage" : "500");
    };
    const growth: number[] = [];
    let failed = 0;
    for (;;) {
      try {
        await watcher.pollOnce();
        break;
      } catch (err) {
        failed++;
        expect(String(err)).not.toMatch(/gap/);
        // Nothing is credited before the run links up to the wallet's first transaction.
        expect(ledgerDeposits(db)).toHaveLength(0);
        const s = watcher.state().backfill!;
        expect(s.staged).toBe(staged(db));
        expect(s.target).toBeNull();
        expect(s.top).toEqual({ lt: api.txs.at(-1)!.lt.toString(), hash: api.txs.at(-1)!.hashHex });
        const oldest = db.query<{ lt: bigint; hash: string }, []>("SELECT lt, hash FROM ton_backfill_txs ORDER BY lt LIMIT 1").get()!;
        expect(s.anchor).toEqual({ lt: oldest.lt.toString(), hash: oldest.hash });
        growth.push(s.staged);
        expect(failed).toBeLessThan(20);
      }
    }
    // Each failed poll kept what it had fetched: the staged run only grew (5 good pages of 6 new per poll).
    expect(failed).toBeGreaterThanOrEqual(8);
    for (let i = 1; i < growth.length; i++) expect(growth[i]!).toBeGreaterThan(growth[i - 1]!);
    // One request from the newest; every later poll went on from the stored anchor. Starting over from
    // the newest on each failure would never get past 5 pages (35 transactions) of 300.
    expect(api.calls.filter((c) => c.lt === undefined)).toHaveLength(1);
    const pagesNeeded = 1 + Math.ceil((300 - 7) / 6);
    expect(api.calls.length).toBeLessThanOrEqual(pagesNeeded + failed);
    for (const acc of accounts) expect(balance(db, acc.id)).toBe(expected.get(acc.id)!);
    const refs = ledgerDeposits(db).map((r) => r.reference);
    expect(refs).toHaveLength(300);
    expect(new Set(refs)).toEqual(new Set(api.txs.map((t) => t.hashHex)));
    expect(staged(db)).toBe(0);
    expect(watcher.state()).toMatchObject({ backfill: null, credited: 300, cursor: { lt: api.txs.at(-1)!.lt.toString(), hash: api.txs.at(-1)!.hashHex } });
    // Replays of the newest page afterwards: nothing more.
    api.onRequest = null;
    expect(await watcher.pollOnce()).toMatchObject({ recorded: 0, pages: 1 });
    expect(ledgerDeposits(db)).toHaveLength(300);
    expect(checkInvariants(db)).toEqual([]);
  });

  test("while a failing backfill keeps making progress, the running watcher's backoff does not grow", async () => {
    const { db, api, watcher } = rig({ pageSize: 7, maxBackoffMs: 60_000 });
    const accounts = [createAccount(db), createAccount(db)];
    history(api, accounts, 120);
    let n = 0;
    api.onRequest = () => {
      if (++n % 4 === 0) api.failures.push("500");
    };
    let most = 0;
    watcher.start();
    await until("the backlog is credited", () => {
      most = Math.max(most, watcher.state().consecutiveErrors);
      return ledgerDeposits(db).length === 120;
    });
    expect(watcher.state().pollErrors.http).toBeGreaterThanOrEqual(5);
    // Every failure came after pages were staged: each is the first of its run, never a doubling.
    expect(most).toBe(1);
  });

  test("a restart in the middle of a backfill goes on from the stored anchor, not from the newest", async () => {
    const r = rig({ pageSize: 7 });
    const accounts = [createAccount(r.db), createAccount(r.db)];
    const expected = history(r.api, accounts, 100);
    r.api.onRequest = () => {
      if (r.api.calls.length === 4) r.api.failures.push("500");
    };
    await expect(r.watcher.pollOnce()).rejects.toThrow(/HTTP 500/);
    const before = r.watcher.state().backfill!;
    expect(before.staged).toBe(7 + 6 + 6);
    expect(ledgerDeposits(r.db)).toHaveLength(0);
    await r.watcher.stop();
    r.db.close();
    r.db = openStore(r.path);
    r.watcher = r.newWatcher();
    expect(r.watcher.state().backfill).toMatchObject({ staged: 19, anchor: before.anchor, complete: false });
    const calls = r.api.calls.length;
    const result = await r.watcher.pollOnce();
    const after = r.api.calls.slice(calls);
    expect(after[0]).toMatchObject({ lt: before.anchor.lt, hash: Buffer.from(before.anchor.hash, "hex").toString("base64") });
    expect(after.filter((c) => c.lt === undefined)).toHaveLength(0);
    expect(after.length).toBe(Math.ceil((100 - 19) / 6));
    expect(result).toMatchObject({ recorded: 100, credited: 100 });
    for (const acc of accounts) expect(balance(r.db, acc.id)).toBe(expected.get(acc.id)!);
    expect(new Set(ledgerDeposits(r.db).map((x) => x.reference)).size).toBe(100);
    expect(staged(r.db)).toBe(0);
    expect(checkInvariants(r.db)).toEqual([]);
  });

  test("a gap in the staged run discards it; nothing is credited until the history is complete", async () => {
    const { db, api, watcher } = rig({ pageSize: 7 });
    const a = createAccount(db);
    const txs = Array.from({ length: 60 }, () => api.add({ value: parseTon("1"), comment: a.depositCode }));
    // Left out in the middle of the history: found on the page where it is missing.
    api.hidden.add(txs[25]!.hashHex);
    await expect(watcher.pollOnce()).rejects.toThrow(/gap/);
    // Pages of 60..53, 52..47, ..., 28..22 (without 25): found on the sixth, not after paging the rest.
    expect(api.calls).toHaveLength(6);
    expect(staged(db)).toBe(0);
    expect(watcher.state().backfill).toBeNull();
    expect(balance(db, a.id)).toBe(0n);
    // Left out on a page boundary (the predecessor of a page's anchor): caught just the same.
    api.hidden.clear();
    api.hidden.add(txs[60 - 7 - 1]!.hashHex);
    await expect(watcher.pollOnce()).rejects.toThrow(/gap/);
    expect(staged(db)).toBe(0);
    api.hidden.clear();
    await watcher.pollOnce();
    expect(balance(db, a.id)).toBe(parseTon("60"));
    // A later backlog whose oldest transaction (the one right after the cursor) is left out: only the
    // check of the whole staged run against the cursor can see it.
    const cursor = watcher.state().cursor;
    const more = Array.from({ length: 30 }, () => api.add({ value: parseTon("2"), comment: a.depositCode }));
    api.hidden.add(more[0]!.hashHex);
    await expect(watcher.pollOnce()).rejects.toThrow(/gap/);
    expect(staged(db)).toBe(0);
    expect(watcher.state().cursor).toEqual(cursor);
    expect(balance(db, a.id)).toBe(parseTon("60"));
    api.hidden.clear();
    expect(await watcher.pollOnce()).toMatchObject({ recorded: 30, credited: 30 });
    expect(balance(db, a.id)).toBe(parseTon("120"));
    expect(new Set(ledgerDeposits(db).map((x) => x.reference)).size).toBe(90);
    expect(checkInvariants(db)).toEqual([]);
  });

  test("transfers arriving during a backfill are credited once after it, none skipped between its top and the newest", async () => {
    const { db, api, watcher } = rig({ pageSize: 7 });
    const accounts = [createAccount(db), createAccount(db), createAccount(db)];
    const expected = history(api, accounts, 100);
    const top = api.txs.at(-1)!;
    let n = 0;
    api.onRequest = (call) => {
      n++;
      // 4 new transfers each time paging goes on from an anchor, and a failure every 5th request.
      if (call.lt !== undefined && n < 60) history(api, accounts, 4, expected);
      if (n % 5 === 0) api.failures.push("500");
    };
    await pollUntilSuccess(watcher);
    // The run ends at the newest transaction it saw when it began; what came later is for the next polls.
    expect(watcher.state().cursor).toEqual({ lt: top.lt.toString(), hash: top.hashHex });
    expect(ledgerDeposits(db)).toHaveLength(100);
    const arrived = api.txs.length - 100;
    expect(arrived).toBeGreaterThan(7 * 3); // more than a few pages: the next poll is a staged run of its own
    api.onRequest = null;
    await pollUntilSuccess(watcher);
    expect(watcher.state()).toMatchObject({ backfill: null, cursor: { lt: api.txs.at(-1)!.lt.toString(), hash: api.txs.at(-1)!.hashHex } });
    for (const acc of accounts) expect(balance(db, acc.id)).toBe(expected.get(acc.id)!);
    const refs = ledgerDeposits(db).map((r) => r.reference);
    expect(refs).toHaveLength(api.txs.length);
    expect(new Set(refs)).toEqual(new Set(api.txs.map((t) => t.hashHex)));
    expect(checkInvariants(db)).toEqual([]);
  });

  test("a reset cursor under a staged run starts the run again instead of joining it to the wrong base", async () => {
    const { db, api, watcher } = rig({ pageSize: 7 });
    const a = createAccount(db);
    for (let i = 0; i < 10; i++) api.add({ value: parseTon("1"), comment: a.depositCode });
    await watcher.pollOnce();
    for (let i = 0; i < 30; i++) api.add({ value: parseTon("1"), comment: a.depositCode });
    let n = 0;
    api.onRequest = () => {
      if (++n === 3) api.failures.push("500");
    };
    await expect(watcher.pollOnce()).rejects.toThrow(/HTTP 500/);
    expect(watcher.state().backfill?.target).toEqual({ lt: api.txs[9]!.lt.toString(), hash: api.txs[9]!.hashHex });
    db.exec("DELETE FROM ton_cursor");
    api.onRequest = null;
    expect(await watcher.pollOnce()).toMatchObject({ recorded: 30, credited: 30 });
    expect(balance(db, a.id)).toBe(parseTon("40"));
    expect(ledgerDeposits(db)).toHaveLength(40);
    expect(staged(db)).toBe(0);
    expect(checkInvariants(db)).toEqual([]);
  });
});

describe("catching up: a crash while recording", () => {
  test("a crash between batches of a staged run leaves whole batches only; the restart records the rest without asking the API again", async () => {
    const r = rig({ pageSize: 7 });
    const a = createAccount(r.db);
    for (let i = 0; i < 150; i++) r.api.add({ value: parseTon("1"), comment: a.depositCode });
    // Stands in for the process dying while the second batch of 100 is written.
    r.db.exec(`CREATE TEMP TRIGGER crash BEFORE INSERT ON ton_deposits WHEN (SELECT count(*) FROM ton_deposits) >= 120
               BEGIN SELECT RAISE(ABORT, 'simulated crash'); END`);
    await expect(r.watcher.pollOnce()).rejects.toThrow(/simulated crash/);
    expect(ledgerDeposits(r.db)).toHaveLength(100);
    expect(r.watcher.state().cursor).toEqual({ lt: r.api.txs[99]!.lt.toString(), hash: r.api.txs[99]!.hashHex });
    expect(r.watcher.state().backfill).toMatchObject({ staged: 50, complete: true, target: { lt: r.api.txs[99]!.lt.toString() } });
    await r.watcher.stop();
    r.db.close();
    r.db = openStore(r.path);
    r.watcher = r.newWatcher();
    const calls = r.api.calls.length;
    expect(await r.watcher.pollOnce()).toMatchObject({ recorded: 50, credited: 50, pages: 0 });
    expect(r.api.calls.length).toBe(calls);
    expect(balance(r.db, a.id)).toBe(parseTon("150"));
    expect(new Set(ledgerDeposits(r.db).map((x) => x.reference))).toEqual(new Set(r.api.txs.map((t) => t.hashHex)));
    expect(r.watcher.state().backfill).toBeNull();
    expect(checkInvariants(r.db)).toEqual([]);
  });
});

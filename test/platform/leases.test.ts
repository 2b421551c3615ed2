// Reservation owners and leases: opening the platform (a CLI command) releases nothing; a server's
// start releases only the holds of owners proven gone (no lease, an expired one, a dead pid or an
// earlier boot on this machine), never a live owner's, and its stop releases only its own.
import type { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, checkpoint, credit, reserve } from "../../src/platform/ledger.ts";
import { Lease, here, pidAlive, releaseOrphaned, renewLease, type Whereabouts } from "../../src/platform/leases.ts";
import { pricingConfig } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";

const open = (db: Database) =>
  db.query<{ id: string }, []>("SELECT id FROM reservations WHERE closed_at IS NULL ORDER BY id").all().map((r) => r.id);

function funded(): { db: Database; account: number; hold: (id: string, owner: string | null) => void } {
  const db = openStore(":memory:");
  const account = createAccount(db).id;
  credit(db, account, 1_000_000_000n, "adjustment", "fund");
  const hold = (id: string, owner: string | null) => {
    const r = reserve(db, { requestId: id, accountId: account, want: 1000n, minimumBalance: 0n, maxOverdraft: 0n, owner });
    expect(r.ok).toBe(true);
  };
  return { db, account, hold };
}

const platformOn = (db: Database) =>
  new Platform(db, { auth: true, adminToken: "", pricing: pricingConfig(), rateLimits: { rpm: 10, tpm: 10_000, rpd: 100 }, signupCredit: 0n });

describe("reservation owners", () => {
  test("opening the platform (what a CLI command does) releases no reservation, not even an ownerless one", () => {
    const { db, hold } = funded();
    hold("r-live", "proc_live");
    hold("r-old", null);
    platformOn(db);
    expect(open(db)).toEqual(["r-live", "r-old"]);
    expect(checkInvariants(db)).toEqual([]);
  });

  test("a request's reservation names the process that made it", async () => {
    const { db, account } = funded();
    const p = platformOn(db);
    const { ticket } = await p.begin({ accountId: account, keyId: 0, limits: { rpm: 10, tpm: 10_000, rpd: 100 } }, {
      model: "m", endpoint: "chat", promptTokensUpperBound: 10, maxTokens: 10, n: 1, requestGuid: null,
    });
    const row = db.query<{ owner: string }, [string]>("SELECT owner FROM reservations WHERE id = ?").get(ticket.requestId);
    expect(row?.owner).toBe(p.owner);
  });

  test("only owners proven gone lose their holds: no lease, expired, dead pid, earlier boot; live ones and our own stay", () => {
    const { db, hold } = funded();
    const me: Whereabouts = { machine: "box ns:[1]", boot: "boot-1", pid: 100 };
    const now = 1_000_000;
    const lease = (owner: string, at: Whereabouts, ttl: number) => renewLease(db, owner, at, ttl, now);
    hold("a-self", "self");
    hold("b-live-here", "live-here");
    lease("live-here", { ...me, pid: 200 }, 60_000);
    hold("c-live-elsewhere", "live-elsewhere");
    lease("live-elsewhere", { machine: "other ns:[1]", boot: "boot-9", pid: 300 }, 60_000);
    hold("d-expired", "expired");
    lease("expired", { machine: "other ns:[1]", boot: "boot-9", pid: 301 }, -1);
    hold("e-dead-pid", "dead-pid");
    lease("dead-pid", { ...me, pid: 400 }, 60_000);
    hold("f-old-boot", "old-boot");
    lease("old-boot", { ...me, boot: "boot-0", pid: 200 }, 60_000);
    hold("g-no-lease", "no-lease");
    hold("h-ownerless", null);
    const alive = (pid: number) => pid === 200;
    expect(releaseOrphaned(db, "self", me, now, alive)).toBe(5);
    expect(open(db)).toEqual(["a-self", "b-live-here", "c-live-elsewhere"]);
    // The gone owners' leases are dropped with their holds; live leases stay.
    const leases = db.query<{ owner: string }, []>("SELECT owner FROM leases ORDER BY owner").all().map((l) => l.owner);
    expect(leases).toEqual(["live-elsewhere", "live-here"]);
    // Releasing is idempotent, and the books add up.
    expect(releaseOrphaned(db, "self", me, now, alive)).toBe(0);
    expect(checkInvariants(db)).toEqual([]);
    const notes = db.query<{ note: string }, []>("SELECT DISTINCT note FROM ledger WHERE kind = 'release'").all().map((r) => r.note);
    expect(notes).toEqual(["released: its owner is gone"]);
  });

  test("this machine's whereabouts and pid check are real", () => {
    const at = here();
    expect(at.pid).toBe(process.pid);
    expect(at.machine.length).toBeGreaterThan(0);
    expect(pidAlive(process.pid)).toBe(true);
    const child = Bun.spawnSync(["true"]);
    expect(pidAlive(child.pid)).toBe(false);
  });

  test("a server's lease: start releases the dead's holds, stop releases only its own", async () => {
    const { db, hold } = funded();
    const p = platformOn(db);
    const other = platformOn(db);
    const logs: string[] = [];
    // A process that died on this machine: its pid is gone.
    const dead = Bun.spawnSync(["true"]).pid;
    renewLease(db, "proc_dead", { ...here(), pid: dead }, 60_000);
    hold("dead-1", "proc_dead");
    await other.startLease((_, line) => logs.push(line));
    hold("other-1", other.owner);
    expect(await p.startLease((_, line) => logs.push(line))).toBe(0);
    expect(open(db)).toEqual(["other-1"]);
    hold("mine-1", p.owner);
    await p.endLease();
    expect(open(db)).toEqual(["other-1"]);
    expect(db.query("SELECT owner FROM leases WHERE owner = ?").get(p.owner)).toBeNull();
    await other.endLease();
    expect(open(db)).toEqual([]);
    expect(logs.join("\n")).toContain("released 1 reservations");
    expect(checkInvariants(db)).toEqual([]);
  });

  test("a lease renews on its timer, and says so when it had lapsed", async () => {
    const { db } = funded();
    const logs: string[] = [];
    const lease = new Lease(db, "proc_timer", (_, line) => logs.push(line), { renewMs: 20, ttlMs: 60_000 });
    await lease.start();
    const first = db.query<{ heartbeat_at: bigint }, []>("SELECT heartbeat_at FROM leases").get()!.heartbeat_at;
    db.query("DELETE FROM leases").run();
    await Bun.sleep(80);
    const again = db.query<{ heartbeat_at: bigint }, []>("SELECT heartbeat_at FROM leases").get()!.heartbeat_at;
    expect(again).toBeGreaterThan(first);
    expect(logs.some((l) => l.includes("lease had lapsed"))).toBe(true);
    await lease.stop();
  });

  test("a dead owner's hold with a checkpoint is settled at it (charged, with its usage row); one without is released unbilled", async () => {
    const { db, account } = funded();
    const p = platformOn(db);
    const principal = { accountId: account, keyId: createKey(db, account).id, limits: { rpm: 10, tpm: 10_000, rpd: 100 } };
    const begin = async () => (await p.begin(principal, { model: "m", endpoint: "chat", promptTokensUpperBound: 10, maxTokens: 100, n: 1, requestGuid: null })).ticket;
    const ran = await begin();
    const queued = await begin();
    await p.checkpoint(ran, { promptTokens: 10, cachedTokens: 0, completionTokens: 5, reasoningTokens: 0 });
    // A later checkpoint replaces the earlier one.
    await p.checkpoint(ran, { promptTokens: 10, cachedTokens: 0, completionTokens: 7, reasoningTokens: 0 });
    const released = releaseOrphaned(db, "proc_next", here(), Date.now(), () => false);
    expect(released).toBe(2);
    expect(open(db)).toEqual([]);
    const rows = db.query<{ id: string; completion_tokens: bigint; cost_nanoton: bigint; status: string }, []>("SELECT id, completion_tokens, cost_nanoton, status FROM usage").all();
    expect(rows.map((r) => [r.id, Number(r.completion_tokens), r.status])).toEqual([[ran.requestId, 7, "error"]]);
    expect(rows[0]!.cost_nanoton).toBeGreaterThan(0n);
    expect(db.query<{ c: bigint }, []>("SELECT balance_nanoton AS c FROM accounts").get()!.c).toBe(1_000_000_000n - rows[0]!.cost_nanoton);
    expect(checkInvariants(db)).toEqual([]);
    // The owner's own late settlement (it was alive after all) changes nothing.
    expect((await p.finish(ran, { promptTokens: 10, cachedTokens: 0, completionTokens: 50, reasoningTokens: 0 }, "ok")).nanoton).toBe(rows[0]!.cost_nanoton);
    void queued;
    // A checkpoint on a closed hold writes nothing.
    checkpoint(db, ran.requestId, 1n, { keyId: null, model: "m", endpoint: "chat", promptTokens: 1, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0, status: "error", startedAt: 0, durationMs: 0 });
    expect(checkInvariants(db)).toEqual([]);
  });
});

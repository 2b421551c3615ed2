// Sessions and stored responses on a store several gateways share: the same queries on SQLite and on
// a real Postgres (started here; skipped with a banner where it is not installed). Two services on
// one store stand for two gateways: one sees the other's sessions and responses, the seal key is the
// same, and one turn at a time runs per session (a lock row, taken over once its gateway is gone).
import { describe, expect, test } from "bun:test";
import { ApiError } from "../../src/http/errors.ts";
import { renewLease } from "../../src/platform/leases.ts";
import { ReasoningSeal } from "../../src/responses/seal.ts";
import { ResponseStore, type StoredResponse } from "../../src/responses/store.ts";
import { SessionService } from "../../src/sessions/service.ts";
import { openStore } from "../../src/store/db.ts";
import type { Db } from "../../src/store/query.ts";
import { usePostgres } from "../support/postgres.ts";

const pg = usePostgres("test/sessions/shared.test.ts (the Postgres half)");

const reply = (content: string) => ({ content, reasoning: "", model: "m", usage: { promptTokens: 3, cachedTokens: 1, completionTokens: 2 }, cost: 7n });

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof ApiError) return err.status;
    throw err;
  }
}

function suite(name: string, skip: boolean, fresh: () => Promise<Db>) {
  describe.skipIf(skip)(name, () => {
    let clock = 1_700_000_000_000;
    const now = () => clock;
    const gateways = (db: Db) => [
      new SessionService(db, { now, sharedLock: { holder: "gw-a" }, lockTtlMs: 60_000 }),
      new SessionService(db, { now, sharedLock: { holder: "gw-b" }, lockTtlMs: 60_000 }),
    ] as const;

    test("a session turned on one gateway is continued on the other, with its history, totals and order", async () => {
      const db = await fresh();
      const [a, b] = gateways(db);
      const t1 = await a.beginTurn("account:1", "conv", [{ role: "user", content: "hello from A" }], { param: "session_id", systemPrompt: "be brief" });
      await t1.commit(reply("hi, A"));
      await t1.end();
      clock += 1000;
      const t2 = await b.beginTurn("account:1", "conv", [{ role: "user", content: "and from B" }], { param: "session_id" });
      expect(t2.messages.map((m) => m.content)).toEqual(["be brief", "hello from A", "hi, A", "and from B"]);
      await t2.commit(reply("hi, B"));
      await t2.end();
      const s = await a.get("account:1", "conv");
      expect([s.messageCount, s.title, s.systemPrompt, s.cost, s.usage.promptTokens]).toEqual([5, "hello from A", "be brief", 14n, 6]);
      expect((await a.messages("account:1", "conv")).map((m) => [m.role, m.content, m.cost])).toEqual([
        ["system", "be brief", null], ["user", "hello from A", null], ["assistant", "hi, A", 7n], ["user", "and from B", null], ["assistant", "hi, B", 7n],
      ]);
      // Another owner sees none of it.
      expect(await status(b.get("account:2", "conv"))).toBe(404);
      // Pages newest first, on either gateway, with the cursor of the other's page.
      for (const id of ["s1", "s2", "s3"]) {
        clock += 1000;
        const t = await a.beginTurn("account:1", id, [{ role: "user", content: id }], { param: "session_id" });
        await t.commit(reply("ok"));
        await t.end();
      }
      const first = await a.page("account:1", { limit: 2 });
      expect(first.data.map((x) => x.id)).toEqual(["s3", "s2"]);
      const next = await b.page("account:1", { limit: 2, after: "s2" });
      expect([next.data.map((x) => x.id), next.hasMore]).toEqual([["s1", "conv"], false]);
      // Fork and rollback on B, read on A.
      const fork = await b.fork("account:1", "conv", 3, "conv-fork");
      expect(fork.messageCount).toBe(3);
      await b.rollback("account:1", "conv", 2);
      expect((await a.get("account:1", "conv")).messageCount).toBe(3);
      await a.delete("account:1", "conv-fork");
      expect(await status(b.get("account:1", "conv-fork"))).toBe(404);
    });

    test("one turn at a time per session across gateways: the second is a 409, rollback too, until the first ends", async () => {
      const db = await fresh();
      const [a, b] = gateways(db);
      const t = await a.beginTurn("account:1", "busy", [{ role: "user", content: "q" }], { param: "session_id" });
      expect(await status(b.beginTurn("account:1", "busy", [{ role: "user", content: "q2" }], { param: "session_id" }))).toBe(409);
      expect(await status(a.beginTurn("account:1", "busy", [{ role: "user", content: "q3" }], { param: "session_id" }))).toBe(409);
      // Other sessions are not held up.
      const other = await b.beginTurn("account:1", "other", [{ role: "user", content: "x" }], { param: "session_id" });
      await other.end();
      await t.commit(reply("a"));
      expect(await status(b.rollback("account:1", "busy", 1))).toBe(409);
      await t.end();
      await b.rollback("account:1", "busy", 1);
      const again = await b.beginTurn("account:1", "busy", [], { param: "session_id" });
      expect(again.messages.map((m) => m.content)).toEqual(["q"]);
      await again.end();
      // A refused turn (bad input after the lock) leaves the session free.
      expect(await status(a.beginTurn("account:1", "empty", [], { param: "session_id" }))).toBe(400);
      await (await b.beginTurn("account:1", "empty", [{ role: "user", content: "now" }], { param: "session_id" })).end();
      // Started at the same moment on both gateways, many times over: exactly one of each pair runs.
      for (let i = 0; i < 20; i++) {
        const both = await Promise.allSettled([a, b].map((g) => g.beginTurn("account:1", `race${i}`, [{ role: "user", content: "go" }], { param: "session_id" })));
        const won = both.filter((r) => r.status === "fulfilled");
        expect(won.length).toBe(1);
        expect(both.filter((r) => r.status === "rejected").map((r) => ((r as PromiseRejectedResult).reason as ApiError).status)).toEqual([409]);
        await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<SessionService["beginTurn"]>>>).value.end();
      }
    });

    test("a gateway that died mid-turn: its lock is taken over once it expired and its lease is gone, not while the lease lives", async () => {
      const db = await fresh();
      const [a, b] = gateways(db);
      await renewLease(db, "gw-a", { machine: "elsewhere", boot: "", pid: 1 }, 120_000, clock);
      await a.beginTurn("account:1", "crash", [{ role: "user", content: "q" }], { param: "session_id" });
      // gw-a "dies" here: it never ends the turn.
      clock += 61_000;
      expect(await status(b.beginTurn("account:1", "crash", [{ role: "user", content: "q" }], { param: "session_id" }))).toBe(409);
      clock += 60_000;
      const t = await b.beginTurn("account:1", "crash", [{ role: "user", content: "q" }], { param: "session_id" });
      await t.commit(reply("recovered"));
      await t.end();
      expect((await b.messages("account:1", "crash")).map((m) => m.content)).toEqual(["q", "recovered"]);
    });

    test("a lock row whose release failed: its own gateway takes it over at its next turn; the others wait", async () => {
      const db = await fresh();
      const [a, b] = gateways(db);
      await renewLease(db, "gw-a", { machine: "elsewhere", boot: "", pid: 1 }, 600_000, clock);
      // A turn of gw-a whose end never reached the store (another service of the same holder stands for it).
      const ghost = new SessionService(db, { now, sharedLock: { holder: "gw-a" } });
      await ghost.beginTurn("account:1", "stuck", [{ role: "user", content: "q" }], { param: "session_id" });
      clock += 120_000;
      expect(await status(b.beginTurn("account:1", "stuck", [{ role: "user", content: "q" }], { param: "session_id" }))).toBe(409);
      const t = await a.beginTurn("account:1", "stuck", [{ role: "user", content: "q" }], { param: "session_id" });
      await t.end();
      await (await b.beginTurn("account:1", "stuck", [{ role: "user", content: "q" }], { param: "session_id" })).end();
    });

    test("deleting a session on one gateway while the other runs its turn: the turn stores nothing, the session stays gone", async () => {
      const db = await fresh();
      const [a, b] = gateways(db);
      const t = await a.beginTurn("account:1", "gone", [{ role: "user", content: "first" }], { param: "session_id" });
      // Not stored yet (a first turn), but running: B may delete it.
      await b.delete("account:1", "gone");
      await t.commit(reply("late"));
      await t.end();
      expect(await status(a.get("account:1", "gone"))).toBe(404);
      expect(await status(b.delete("account:1", "gone"))).toBe(404);
    });

    test("stored responses: put on one gateway, read and deleted on the other; one seal key for all", async () => {
      const db = await fresh();
      const [ra, rb] = [new ResponseStore(db), new ResponseStore(db)];
      const r: StoredResponse = { id: "resp_1", previousId: null, chainId: "resp_1", model: "m", createdAt: clock, input: [], body: { id: "resp_1", status: "completed", output: [] } as never };
      await ra.put("account:1", r);
      expect((await rb.get("account:1", "resp_1"))?.body.status).toBe("completed");
      expect(await rb.get("account:2", "resp_1")).toBeNull();
      expect(await rb.chainInUse("account:1", "resp_1")).toBe(true);
      const [ka, kb] = await Promise.all([ra.secret("reasoning"), rb.secret("reasoning")]);
      expect(ka.length).toBe(32);
      expect(kb.equals(ka)).toBe(true);
      expect(new ReasoningSeal(kb).open("account:1", new ReasoningSeal(ka).seal("account:1", "thought"))).toBe("thought");
      // The chain before a response, newest first, in one query; a deleted one ends it.
      for (const [id, prev] of [["resp_2", "resp_1"], ["resp_3", "resp_2"]] as const) await rb.put("account:1", { ...r, id, previousId: prev, body: { ...r.body, id } as never });
      expect((await ra.chain("account:1", "resp_3", 1000)).map((x) => x.id)).toEqual(["resp_3", "resp_2", "resp_1"]);
      expect((await ra.chain("account:1", "resp_3", 2)).map((x) => x.id)).toEqual(["resp_3", "resp_2"]);
      expect(await ra.chain("account:2", "resp_3", 1000)).toEqual([]);
      await ra.delete("account:1", "resp_2");
      expect((await rb.chain("account:1", "resp_3", 1000)).map((x) => x.id)).toEqual(["resp_3"]);
      await rb.delete("account:1", "resp_3");
      expect(await rb.delete("account:1", "resp_1")).toBe(true);
      expect(await ra.get("account:1", "resp_1")).toBeNull();
      expect(await ra.chainInUse("account:1", "resp_1")).toBe(false);
    });
  });
}

suite("sessions on a shared SQLite store", false, async () => openStore(":memory:"));
suite("sessions on a shared Postgres store", !pg.available, () => pg.open());

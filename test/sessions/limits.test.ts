// Sessions are bounded: a per-account cap (a new session past it is a 409, an existing one goes on),
// optional expiry of sessions not updated for a while, and GET /v1/sessions a page at a time in
// OpenAI's list shape (limit, after, first_id, last_id, has_more).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { openStore } from "../../src/store/db.ts";
import { SessionService } from "../../src/sessions/service.ts";
import { ApiError } from "../../src/http/errors.ts";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

setDefaultTimeout(60_000);

const reply = { content: "ok", reasoning: "", model: "m", usage: { promptTokens: 1, cachedTokens: 0, completionTokens: 1, reasoningTokens: 0 }, cost: null };

async function stored(s: SessionService, owner: string, id: string): Promise<void> {
  const turn = await s.beginTurn(owner, id, [{ role: "user", content: `hello ${id}` }], { param: "session_id" });
  await turn.commit(reply as never);
  await turn.end();
}

describe("session limits", () => {
  test("a per-account cap: a new session past it is a 409 session_limit_reached; existing ones and other accounts go on", async () => {
    const s = new SessionService(openStore(":memory:"), { maxSessions: 2 });
    await stored(s, "a", "one");
    await stored(s, "a", "two");
    let err: unknown = null;
    try {
      await s.beginTurn("a", "three", [{ role: "user", content: "hi" }], { param: "session_id" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect([(err as ApiError).status, (err as ApiError).code]).toEqual([409, "session_limit_reached"]);
    await expect(s.fork("a", "one", 1)).rejects.toThrow("the most allowed");
    // A turn in an existing session, and another account's new session, are fine.
    await stored(s, "a", "one");
    await stored(s, "b", "three");
    expect((await s.list("a")).length).toBe(2);
  });

  test("expiry: sessions not updated within the TTL are deleted (and their engine state forgotten); recent ones stay", async () => {
    let now = 1_000_000;
    const forgotten: string[] = [];
    const s = new SessionService(openStore(":memory:"), { ttlMs: 3_600_000, now: () => now, forget: (key) => void forgotten.push(key) });
    await stored(s, "a", "old");
    now += 2 * 3_600_000;
    await stored(s, "a", "new");
    now += 61_000;
    expect((await s.list("a")).map((x) => x.id)).toEqual(["new"]);
    expect(forgotten).toEqual([s.keyOf("a", "old")]);
  });
});

describe("GET /v1/sessions pagination", () => {
  let h: InProcessApp;
  let service: SessionService;
  let now = 5_000_000;
  beforeAll(async () => {
    service = new SessionService(openStore(":memory:"), { now: () => now });
    h = await startInProcessApp({ sessions: service });
    for (let i = 0; i < 5; i++) {
      now += 1000;
      await stored(service, "local", `s${i}`);
    }
  });
  afterAll(() => h?.close());

  const list = async (q: string) => {
    const res = await h.request(`/v1/sessions${q}`);
    expect(res.status).toBe(200);
    return (await res.json()) as { object: string; data: { id: string }[]; first_id: string | null; last_id: string | null; has_more: boolean };
  };

  test("pages of `limit` in OpenAI's list shape, newest first; `after` the last id gives the next page, to the end", async () => {
    const first = await list("?limit=2");
    expect(first.object).toBe("list");
    expect(first.data.map((s) => s.id)).toEqual(["s4", "s3"]);
    expect([first.first_id, first.last_id, first.has_more]).toEqual(["s4", "s3", true]);
    const second = await list(`?limit=2&after=${first.last_id}`);
    expect(second.data.map((s) => s.id)).toEqual(["s2", "s1"]);
    const third = await list(`?limit=2&after=${second.last_id}`);
    expect(third.data.map((s) => s.id)).toEqual(["s0"]);
    expect(third.has_more).toBe(false);
    const all = await list("");
    expect(all.data.length).toBe(5);
    expect(all.has_more).toBe(false);
  });

  test("a bad limit is a 400; an unknown cursor an empty page", async () => {
    for (const q of ["?limit=0", "?limit=101", "?limit=abc"]) expect((await h.request(`/v1/sessions${q}`)).status).toBe(400);
    const none = await list("?after=nope");
    expect([none.data, none.first_id, none.last_id, none.has_more]).toEqual([[], null, null, false]);
  });
});

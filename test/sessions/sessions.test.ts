// Server-side sessions on the OpenAI API: session_id appends turns and reuses the KV cache,
// regenerate, fork, delete frees the engine's cache, privacy between accounts, billing stored on
// the session, and a cancelled turn storing nothing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";
import { billedPlatform } from "../support/billed.ts";

setDefaultTimeout(120_000);

const billed = billedPlatform("sessions");
let app: InProcessApp;

beforeAll(async () => {
  app = await startInProcessApp({ platform: billed.platform });
});
afterAll(() => {
  app.close();
  billed.close();
});

const account = () => billed.account().key;

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

function chat(key: string, body: Record<string, unknown>, signal?: AbortSignal) {
  return app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", ...auth(key) },
    body: JSON.stringify({ temperature: 0, max_tokens: 8, ...body }),
    signal,
  });
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  cost?: { nanoton: number; ton: string };
}
interface Completion {
  choices: { message: { content: string; reasoning_content?: string } }[];
  usage: Usage;
}
interface SessionInfo {
  id: string;
  object: string;
  title: string;
  model: string;
  system_prompt: string | null;
  created: number;
  updated: number;
  message_count: number;
  usage: Usage;
  cost: { nanoton: number; ton: string };
}
interface SessionDetail extends SessionInfo {
  messages: { role: string; content: string; reasoning_content?: string; created: number; usage?: Usage; cost?: { nanoton: number; ton: string } }[];
}

const get = async <T>(key: string, path: string): Promise<{ status: number; body: T }> => {
  const r = await app.request(path, { headers: auth(key) });
  return { status: r.status, body: (await r.json()) as T };
};

const say = (content: string) => [{ role: "user", content }];

describe("session_id on /v1/chat/completions", () => {
  test("turns are appended with their usage, and turn N's prompt comes from the cache but for the newest message", async () => {
    const key = account();
    const id = "conv-1";
    const first = await chat(key, { session_id: id, messages: [{ role: "system", content: "Be brief." }, ...say("Tell me about the sea and its many moods.")] });
    expect(first.status).toBe(200);
    expect(first.headers.get("x-cocoon-session-id")).toBe(id);
    const one = (await first.json()) as Completion;
    let previous = one.usage.prompt_tokens + one.usage.completion_tokens;
    for (let turn = 2; turn <= 5; turn++) {
      const r = await chat(key, { session_id: id, messages: say(`And what about turn ${turn}?`) });
      expect(r.status).toBe(200);
      const c = (await r.json()) as Completion;
      // The history is the previous prompt plus the reply: all of it but the last reply's closing
      // tokens (re-tokenized by the template) comes from the pinned slot.
      expect(c.usage.prompt_tokens).toBeGreaterThan(previous);
      expect(c.usage.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(previous - one.usage.completion_tokens - 2);
      expect(c.usage.prompt_tokens - c.usage.prompt_tokens_details.cached_tokens).toBeLessThan(30);
      previous = c.usage.prompt_tokens + c.usage.completion_tokens;
    }
    const { status, body } = await get<SessionDetail>(key, `/v1/sessions/${id}`);
    expect(status).toBe(200);
    expect(body.object).toBe("chat.session");
    expect(body.id).toBe(id);
    expect(body.title).toBe("Tell me about the sea and its many moods.");
    expect(body.system_prompt).toBe("Be brief.");
    expect(body.model).toBe("tiny-qwen3");
    expect(body.message_count).toBe(1 + 2 * 5);
    expect(body.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", ...Array(4).fill(["user", "assistant"]).flat()]);
    expect(body.messages[2]!.content).toBe(one.choices[0]!.message.content);
    expect(body.messages[2]!.usage).toEqual({
      prompt_tokens: one.usage.prompt_tokens,
      completion_tokens: one.usage.completion_tokens,
      total_tokens: one.usage.total_tokens,
      prompt_tokens_details: { cached_tokens: one.usage.prompt_tokens_details.cached_tokens },
    });
    // Messages sent by the client carry no usage.
    expect(body.messages[1]!.usage).toBeUndefined();
    const sum = body.messages.reduce((n, m) => n + (m.usage?.completion_tokens ?? 0), 0);
    expect(body.usage.completion_tokens).toBe(sum);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect(body.updated).toBeGreaterThanOrEqual(body.created);
  });

  test("without session_id nothing is stored; an empty messages list needs a session", async () => {
    const key = account();
    const r = await chat(key, { messages: say("Hello") });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-cocoon-session-id")).toBeNull();
    expect((await get<{ data: unknown[] }>(key, "/v1/sessions")).body.data).toEqual([]);
    const empty = await chat(key, { messages: [] });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { error: { param: string } }).error.param).toBe("messages");
    const nothing = await chat(key, { session_id: "fresh", messages: [] });
    expect(nothing.status).toBe(400);
    expect((await get(key, "/v1/sessions/fresh")).status).toBe(404);
  });

  test("bad session ids are a 400 naming session_id", async () => {
    const key = account();
    for (const id of ["", "a b", "x".repeat(129), "../etc"]) {
      const r = await chat(key, { session_id: id, messages: say("Hi") });
      expect({ id, status: r.status }).toEqual({ id, status: 400 });
      expect(((await r.json()) as { error: { param: string } }).error.param).toBe("session_id");
    }
    // The longest allowed id works.
    expect((await chat(key, { session_id: "x".repeat(128), messages: say("Hi") })).status).toBe(200);
  });

  test("regenerate: after a rollback, an empty messages list answers the stored history again", async () => {
    const key = account();
    const id = "regen";
    const first = (await (await chat(key, { session_id: id, messages: say("Write a line about rain."), max_tokens: 6 })).json()) as Completion;
    const rb = await app.request(`/chat/history/${id}/rollback`, { method: "POST", headers: { "content-type": "application/json", ...auth(key) }, body: JSON.stringify({ amount: 1 }) });
    expect(rb.status).toBe(200);
    expect((await get<SessionDetail>(key, `/v1/sessions/${id}`)).body.messages.map((m) => m.role)).toEqual(["user"]);
    const again = await chat(key, { session_id: id, messages: [], max_tokens: 6 });
    expect(again.status).toBe(200);
    const c = (await again.json()) as Completion;
    // Greedy: the same history gives the same reply, and the prompt came from the cache.
    expect(c.choices[0]!.message.content).toBe(first.choices[0]!.message.content);
    expect(c.usage.prompt_tokens_details.cached_tokens).toBe(c.usage.prompt_tokens - 1);
    const after = (await get<SessionDetail>(key, `/v1/sessions/${id}`)).body;
    expect(after.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    // Answering an assistant reply again is refused: roll back first.
    const twice = await chat(key, { session_id: id, messages: [] });
    expect(twice.status).toBe(400);
  });

  test("fork copies the first N messages into a new session and leaves the source unchanged", async () => {
    const key = account();
    const id = "source";
    await chat(key, { session_id: id, messages: say("First question") });
    await chat(key, { session_id: id, messages: say("Second question") });
    const before = (await get<SessionDetail>(key, `/v1/sessions/${id}`)).body;
    const r = await app.request(`/v1/sessions/${id}/fork`, { method: "POST", headers: { "content-type": "application/json", ...auth(key) }, body: JSON.stringify({ messages: 2 }) });
    expect(r.status).toBe(200);
    const fork = (await r.json()) as SessionInfo;
    expect(fork.id).not.toBe(id);
    expect(fork.object).toBe("chat.session");
    expect(fork.message_count).toBe(2);
    expect(fork.title).toBe(before.title);
    expect(fork.usage.total_tokens).toBe(0);
    const copy = (await get<SessionDetail>(key, `/v1/sessions/${fork.id}`)).body;
    expect(copy.messages).toEqual(before.messages.slice(0, 2));
    expect((await get<SessionDetail>(key, `/v1/sessions/${id}`)).body.messages).toEqual(before.messages);
    // The fork continues on its own: edit the second question by sending another one.
    const edited = await chat(key, { session_id: fork.id, messages: say("A different second question") });
    expect(edited.status).toBe(200);
    expect((await get<SessionDetail>(key, `/v1/sessions/${fork.id}`)).body.messages[2]!.content).toBe("A different second question");
    expect((await get<SessionDetail>(key, `/v1/sessions/${id}`)).body.messages).toEqual(before.messages);
    // A chosen id, and the bounds.
    const named = await app.request(`/v1/sessions/${id}/fork`, { method: "POST", headers: { "content-type": "application/json", ...auth(key) }, body: JSON.stringify({ messages: 0, id: "empty-branch" }) });
    expect(((await named.json()) as SessionInfo).id).toBe("empty-branch");
    const tooMany = await app.request(`/v1/sessions/${id}/fork`, { method: "POST", headers: { "content-type": "application/json", ...auth(key) }, body: JSON.stringify({ messages: 5 }) });
    expect(tooMany.status).toBe(400);
    // An id that is taken is a conflict (409), not a malformed request.
    const taken = await app.request(`/v1/sessions/${id}/fork`, { method: "POST", headers: { "content-type": "application/json", ...auth(key) }, body: JSON.stringify({ messages: 1, id: "empty-branch" }) });
    expect(taken.status).toBe(409);
    expect(((await taken.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: "already_exists", param: "id" });
  });

  test("GET /v1/sessions lists the caller's sessions, most recently updated first", async () => {
    const key = account();
    for (const id of ["a", "b", "c"]) await chat(key, { session_id: id, messages: say(`Hello ${id}`), max_tokens: 2 });
    await Bun.sleep(1100);
    await chat(key, { session_id: "a", messages: say("Back to a"), max_tokens: 2 });
    const r = await app.request("/v1/sessions", { headers: auth(key) });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-ratelimit-limit")).not.toBeNull();
    const list = (await r.json()) as { object: string; data: SessionInfo[] };
    expect(list.object).toBe("list");
    expect(list.data.map((s) => s.id)).toEqual(["a", "c", "b"]);
    expect(Object.keys(list.data[0]!).sort()).toEqual(["cost", "created", "id", "message_count", "model", "object", "system_prompt", "title", "updated", "usage"]);
  });

  test("deleting a session frees its pinned slot and parked state in the engine", async () => {
    const key = account();
    const id = "to-delete";
    await chat(key, { session_id: id, messages: say("Remember this conversation about mountains and rivers.") });
    const stats = () => app.engine.stats()[0]!;
    const before = stats();
    expect(before.pinnedSlots).toBeGreaterThanOrEqual(1);
    const r = await app.request(`/v1/sessions/${id}`, { method: "DELETE", headers: auth(key) });
    expect(r.status).toBe(204);
    expect(await r.text()).toBe("");
    const after = stats();
    expect(after.pinnedSlots).toBe(before.pinnedSlots - 1);
    expect(after.kvUsedCells).toBeLessThan(before.kvUsedCells);
    expect((await get(key, `/v1/sessions/${id}`)).status).toBe(404);
    expect((await app.request(`/v1/sessions/${id}`, { method: "DELETE", headers: auth(key) })).status).toBe(404);
  });

  test("a session other traffic leaves resident (cells are free) is dropped from memory when deleted", async () => {
    const key = account();
    const id = "parked";
    await chat(key, { session_id: id, messages: say("Other conversation P") });
    // Sequences outnumber slots: the next conversation takes another sequence and this one's KV
    // stays resident, not parked (eviction and parking under memory pressure: test/inference/scheduling.test.ts).
    const parkedBefore = app.engine.stats()[0]!.parkedSessions;
    await chat(key, { session_id: "other", messages: say("Other conversation 0"), max_tokens: 2 });
    const before = app.engine.stats()[0]!;
    expect(before.parkedSessions).toBe(parkedBefore);
    expect((await app.request(`/v1/sessions/${id}`, { method: "DELETE", headers: auth(key) })).status).toBe(204);
    const after = app.engine.stats()[0]!;
    expect(after.pinnedSlots).toBe(before.pinnedSlots - 1);
    expect(after.kvUsedCells).toBeLessThan(before.kvUsedCells);
  });

  test("sessions are private: another key gets 404 for them and never sees them listed", async () => {
    const alice = account();
    const bob = account();
    await chat(alice, { session_id: "secret", messages: say("My secret plan") });
    for (const path of ["/v1/sessions/secret", "/chat/history/secret"]) {
      const r = await app.request(path, { headers: auth(bob) });
      expect({ path, status: r.status }).toEqual({ path, status: 404 });
      expect(((await r.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
    }
    expect((await app.request("/v1/sessions/secret", { method: "DELETE", headers: auth(bob) })).status).toBe(404);
    expect((await app.request("/chat/history/secret", { method: "DELETE", headers: auth(bob) })).status).toBe(404);
    const rb = await app.request("/chat/history/secret/rollback", { method: "POST", headers: { "content-type": "application/json", ...auth(bob) }, body: JSON.stringify({ amount: 1 }) });
    expect(rb.status).toBe(404);
    const fork = await app.request("/v1/sessions/secret/fork", { method: "POST", headers: { "content-type": "application/json", ...auth(bob) }, body: JSON.stringify({ messages: 1 }) });
    expect(fork.status).toBe(404);
    expect((await get<{ data: SessionInfo[] }>(bob, "/v1/sessions")).body.data.map((s) => s.id)).not.toContain("secret");
    expect((await get<string[]>(bob, "/sessions")).body).not.toContain("secret");
    // Bob using the same id gets a session of his own; Alice's is untouched.
    expect((await chat(bob, { session_id: "secret", messages: say("Bob's words") })).status).toBe(200);
    expect((await get<SessionDetail>(bob, "/v1/sessions/secret")).body.messages[0]!.content).toBe("Bob's words");
    expect((await get<SessionDetail>(alice, "/v1/sessions/secret")).body.messages[0]!.content).toBe("My secret plan");
    // Without a key: 401 before anything else.
    expect((await app.request("/v1/sessions")).status).toBe(401);
  });

  test("a billed turn's charge is what the session stores, per message and in total", async () => {
    const key = account();
    const id = "billed";
    const costs: number[] = [];
    for (const text of ["One", "Two"]) {
      const r = await chat(key, { session_id: id, messages: say(text) });
      const c = (await r.json()) as Completion;
      expect(c.usage.cost!.nanoton).toBeGreaterThan(0);
      expect(r.headers.get("x-cocoon-cost-nanoton")).toBe(String(c.usage.cost!.nanoton));
      costs.push(c.usage.cost!.nanoton);
    }
    // A streamed turn: the cost arrives in the usage chunk.
    const s = await chat(key, { session_id: id, messages: say("Three"), stream: true, stream_options: { include_usage: true } });
    const text = await s.text();
    const usageChunk = text
      .split("\n\n")
      .filter((l) => l.startsWith("data: {"))
      .map((l) => JSON.parse(l.slice(6)) as { usage?: Usage | null })
      .find((c) => c.usage);
    costs.push(usageChunk!.usage!.cost!.nanoton);
    const detail = (await get<SessionDetail>(key, `/v1/sessions/${id}`)).body;
    expect(detail.messages.filter((m) => m.role === "assistant").map((m) => m.cost!.nanoton)).toEqual(costs);
    expect(detail.cost.nanoton).toBe(costs.reduce((a, b) => a + b, 0));
    // The ledger agrees: /v1/usage charged exactly these amounts.
    const usage = (await get<{ data: { cost: { nanoton: number } }[] }>(key, "/v1/usage")).body.data.map((u) => u.cost.nanoton);
    expect(usage.sort()).toEqual([...costs].sort());
  });

  test("a cancelled turn stores nothing; one turn at a time per session (409)", async () => {
    const key = account();
    const id = "cancelled";
    const ac = new AbortController();
    const r = await chat(key, { session_id: id, messages: say("Go on and on"), stream: true, max_tokens: 900 }, ac.signal);
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    await reader.read();
    // While it runs, the session is busy.
    const busy = await chat(key, { session_id: id, messages: say("Me too") });
    expect(busy.status).toBe(409);
    expect(((await busy.json()) as { error: { code: string } }).error.code).toBe("session_busy");
    ac.abort();
    await reader.cancel().catch(() => {});
    const deadline = Date.now() + 5000;
    while (app.engine.stats()[0]!.slotsBusy > 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(app.engine.stats()[0]!.slotsBusy).toBe(0);
    expect((await get(key, `/v1/sessions/${id}`)).status).toBe(404);
    // The session is free again.
    expect((await chat(key, { session_id: id, messages: say("Short one"), max_tokens: 2 })).status).toBe(200);
    expect((await get<SessionDetail>(key, `/v1/sessions/${id}`)).body.message_count).toBe(2);
  });

  /** Starts a long streamed turn and waits for its first bytes, so it is running. */
  async function running(key: string, id: string) {
    const r = await chat(key, { session_id: id, messages: say("Go on and on"), stream: true, max_tokens: 900, temperature: 1 });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    await reader.read();
    return reader;
  }
  const idle = async () => {
    const deadline = Date.now() + 5000;
    while (app.engine.stats()[0]!.slotsBusy > 0 && Date.now() < deadline) await Bun.sleep(10);
    return app.engine.stats()[0]!.slotsBusy;
  };
  const rollback = (key: string, id: string, amount: number) =>
    app.request(`/chat/history/${id}/rollback`, { method: "POST", headers: { "content-type": "application/json", ...auth(key) }, body: JSON.stringify({ amount }) });

  test("a new session's first turn can be deleted while it runs: 204, the generation stops and nothing is stored", async () => {
    const key = account();
    const reader = await running(key, "first-turn-gone");
    const del = await app.request("/v1/sessions/first-turn-gone", { method: "DELETE", headers: auth(key) });
    expect(del.status).toBe(204);
    // The stream ends (cancelled) rather than running to its 900 tokens.
    while (!(await reader.read()).done);
    expect(await idle()).toBe(0);
    expect((await get(key, "/v1/sessions/first-turn-gone")).status).toBe(404);
    expect((await get<string[]>(key, "/sessions")).body).not.toContain("first-turn-gone");
    // The seed's DELETE route does the same; another account cannot delete someone's running turn.
    const reader2 = await running(key, "first-turn-gone-2");
    expect((await app.request("/chat/history/first-turn-gone-2", { method: "DELETE", headers: auth(account()) })).status).toBe(404);
    expect((await app.request("/chat/history/first-turn-gone-2", { method: "DELETE", headers: auth(key) })).status).toBe(204);
    while (!(await reader2.read()).done);
    expect(await idle()).toBe(0);
    expect((await get(key, "/v1/sessions/first-turn-gone-2")).status).toBe(404);
  });

  test("rollback while a turn runs is 409 session_busy, for a new session's first turn and for a later one alike", async () => {
    const key = account();
    const busy = async (id: string, amount: number) => {
      const r = await rollback(key, id, amount);
      expect(r.status).toBe(409);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("session_busy");
    };
    const first = await running(key, "busy-first");
    await busy("busy-first", 1);
    await first.cancel();
    expect(await idle()).toBe(0);
    expect((await get(key, "/v1/sessions/busy-first")).status).toBe(404);
    // A later turn: the session exists with 2 messages; any amount is busy while the turn runs.
    expect((await chat(key, { session_id: "busy-later", messages: say("Short"), max_tokens: 2 })).status).toBe(200);
    const later = await running(key, "busy-later");
    await busy("busy-later", 1);
    await busy("busy-later", 99);
    await later.cancel();
    expect(await idle()).toBe(0);
    // The lock is released as the cancelled stream unwinds, just after the slot frees.
    let after = await rollback(key, "busy-later", 2);
    for (let i = 0; after.status === 409 && i < 100; i++) after = (await Bun.sleep(10), await rollback(key, "busy-later", 2));
    expect(after.status).toBe(200);
    expect((await get<SessionDetail>(key, "/v1/sessions/busy-later")).body.message_count).toBe(0);
  });
});

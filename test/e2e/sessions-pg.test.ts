// Two gateways on one Postgres (real processes on 127.0.0.1, each with the tiny model): a chat session
// begun on one is continued and listed on the other, a stored response is continued, read and deleted
// across them, and one turn of a session runs at a time however the turns are spread over gateways.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { openPgStore, type PgStore } from "../../src/store/pg.ts";
import { postgresBin, postgresMissingBanner, startPostgres, type TestPostgres } from "../support/postgres.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(180_000);

const available = postgresBin() !== null;
if (!available) postgresMissingBanner("test/e2e/sessions-pg.test.ts");

let pg: TestPostgres;
let store: PgStore;
let a: TestServer;
let b: TestServer;
let key = "";
const dirs: string[] = [];

beforeAll(async () => {
  if (!available) return;
  pg = startPostgres();
  const url = pg.createDatabase("sessions");
  store = await openPgStore(url, { max: 2 });
  const account = await createAccount(store, "sessions-e2e");
  await credit(store, account.id, 100_000_000_000n, "deposit", "sessions-e2e-seed");
  key = (await createKey(store, account.id, "e2e")).key;
  const gateway = () => {
    const dir = mkdtempSync(join(tmpdir(), "cocoon-pg-sessions-"));
    dirs.push(dir);
    return startTestServer(["--db", url, "--data-dir", dir], { auth: true });
  };
  [a, b] = await Promise.all([gateway(), gateway()]);
}, 180_000);

afterAll(async () => {
  for (const s of [a, b]) await s?.stop().catch(() => {});
  await store?.close().catch(() => {});
  pg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const headers = () => ({ "content-type": "application/json", authorization: `Bearer ${key}` });
const post = (gw: TestServer, path: string, body: unknown, signal?: AbortSignal) => fetch(`${gw.url}${path}`, { method: "POST", headers: headers(), body: JSON.stringify(body), signal });
const get = (gw: TestServer, path: string) => fetch(`${gw.url}${path}`, { headers: headers() });
const chat = (gw: TestServer, body: Record<string, unknown>, signal?: AbortSignal) => post(gw, "/v1/chat/completions", { model: "tiny-qwen3", max_tokens: 4, ...body }, signal);
const say = (content: string) => [{ role: "user", content }];

describe.skipIf(!available)("sessions and stored responses on two gateways sharing Postgres", () => {
  test("a session begun on A is continued on B with A's turn in its history, and listed on both", async () => {
    const first = await chat(a, { session_id: "conv-1", messages: say("Hello from A") });
    expect(first.status).toBe(200);
    const replyA = ((await first.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const second = await chat(b, { session_id: "conv-1", messages: say("And from B") });
    expect(second.status).toBe(200);
    // B's prompt held A's turn: its prompt is longer than the new message alone.
    const usage = ((await second.json()) as { usage: { prompt_tokens: number } }).usage;
    const alone = ((await (await chat(b, { messages: say("And from B") })).json()) as { usage: { prompt_tokens: number } }).usage;
    expect(usage.prompt_tokens).toBeGreaterThan(alone.prompt_tokens);
    const detail = (await (await get(b, "/v1/sessions/conv-1")).json()) as { message_count: number; messages: { role: string; content: string }[] };
    expect(detail.message_count).toBe(4);
    expect(detail.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(detail.messages[0]!.content).toBe("Hello from A");
    expect(detail.messages[1]!.content).toBe(replyA);
    for (const gw of [a, b]) {
      const list = (await (await get(gw, "/v1/sessions")).json()) as { data: { id: string }[] };
      expect(list.data.map((s) => s.id)).toContain("conv-1");
      // The seed 003 routes read the same store.
      expect(((await (await get(gw, "/chat/history/conv-1")).json()) as unknown[]).length).toBe(4);
    }
  });

  test("a response stored on A: previous_response_id on B continues it; GET on B; DELETE on B, then gone on A", async () => {
    const r1 = await post(a, "/v1/responses", { model: "tiny-qwen3", input: "Remember the word apple.", store: true, max_output_tokens: 4 });
    expect(r1.status).toBe(200);
    const first = (await r1.json()) as { id: string; usage: { input_tokens: number } };
    const r2 = await post(b, "/v1/responses", { model: "tiny-qwen3", input: "Which word?", previous_response_id: first.id, max_output_tokens: 4 });
    expect(r2.status).toBe(200);
    const second = (await r2.json()) as { id: string; previous_response_id: string; usage: { input_tokens: number } };
    expect(second.previous_response_id).toBe(first.id);
    expect(second.usage.input_tokens).toBeGreaterThan(first.usage.input_tokens);
    const got = await get(b, `/v1/responses/${first.id}`);
    expect(got.status).toBe(200);
    expect(((await got.json()) as { id: string }).id).toBe(first.id);
    expect((await get(a, `/v1/responses/${second.id}/input_items`)).status).toBe(200);
    const del = await fetch(`${b.url}/v1/responses/${first.id}`, { method: "DELETE", headers: headers() });
    expect(del.status).toBe(200);
    expect((await get(a, `/v1/responses/${first.id}`)).status).toBe(404);
    expect((await get(a, `/v1/responses/${second.id}`)).status).toBe(200);
  });

  test("one turn at a time per session across gateways: B is 409 session_busy while A's turn runs, and goes once it ends", async () => {
    const ac = new AbortController();
    const long = await chat(a, { session_id: "busy", messages: say("Go on and on"), stream: true, max_tokens: 900, ignore_eos: true, temperature: 1 }, ac.signal);
    expect(long.status).toBe(200);
    const reader = long.body!.getReader();
    await reader.read();
    for (const gw of [b, a]) {
      const busy = await chat(gw, { session_id: "busy", messages: say("Me too") });
      expect(busy.status).toBe(409);
      expect(((await busy.json()) as { error: { code: string } }).error.code).toBe("session_busy");
    }
    const rollback = await post(b, "/chat/history/busy/rollback", { amount: 1 });
    expect(rollback.status).toBe(409);
    ac.abort();
    await reader.cancel().catch(() => {});
    // The lock goes as A's cancelled stream unwinds; then B's turn runs (the cancelled turn stored nothing).
    let after = await chat(b, { session_id: "busy", messages: say("Now me") });
    for (let i = 0; after.status === 409 && i < 100; i++) after = (await Bun.sleep(50), await chat(b, { session_id: "busy", messages: say("Now me") }));
    expect(after.status).toBe(200);
    const detail = (await (await get(a, "/v1/sessions/busy")).json()) as { messages: { content: string }[] };
    expect(detail.messages.map((m) => m.content)[0]).toBe("Now me");
    expect(detail.messages.length).toBe(2);
  });

  test("turns fired at both gateways at once: each pair runs one and refuses the other; the books add up", async () => {
    const pairs: number[][] = [];
    for (let i = 0; i < 5; i++) {
      const body = { session_id: `race-${i}`, messages: say("Hi"), max_tokens: 24, ignore_eos: true };
      const statuses = (await Promise.all([chat(a, body), chat(b, body)])).map((r) => r.status).sort();
      pairs.push(statuses);
      // Both may also run one after the other when the first ends before the second arrives.
      expect([[200, 409], [200, 200]]).toContainEqual(statuses);
      const detail = (await (await get(b, `/v1/sessions/race-${i}`)).json()) as { message_count: number };
      expect(detail.message_count).toBe(statuses[1] === 200 ? 4 : 2);
    }
    console.log(`concurrent turn pairs (A, B): ${JSON.stringify(pairs)}`);
    expect(await checkInvariants(store)).toEqual([]);
  });
});

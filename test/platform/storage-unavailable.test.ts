// A database that cannot be written fails closed: a full one (SQLite's real SQLITE_FULL, from
// max_page_count) answers 503 "storage unavailable" in each API's shape before anything streams and
// leaves no hold behind; a settlement the database refuses (a read-only connection) is kept and
// charged exactly once storage is back, with no restart.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { billedApp } from "../support/billed.ts";

setDefaultTimeout(120_000);

const setup = billedApp("storage");
const billed = setup.billed;

const openHolds = () => Number(billed.db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL").get()!.n);

const chat = (key: string, body: Record<string, unknown>) =>
  setup.app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "Hello" }], ...body }),
  });

describe("storage unavailable", () => {
  test("a full database: 503 storage_unavailable (OpenAI and Anthropic shapes), no stream starts, no hold is left; it works again once there is room", async () => {
    const { id, key } = billed.account();
    const db = billed.db;
    // Cap the file at its size, then fill the ledger's free space: every money write now hits SQLITE_FULL.
    const pages = Number(db.query<{ page_count: bigint }, []>("PRAGMA page_count").get()!.page_count);
    db.exec(`PRAGMA max_page_count = ${pages}`);
    let filled = 0;
    try {
      for (; filled < 100_000; filled++) credit(db, id, 1n, "adjustment", `fill-${filled}`);
    } catch (err) {
      expect((err as { code?: string }).code).toBe("SQLITE_FULL");
    }
    expect(filled).toBeLessThan(100_000);
    try {
      const streamed = await chat(key, { max_tokens: 4, stream: true });
      expect(streamed.status).toBe(503);
      expect(streamed.headers.get("content-type")).toContain("application/json");
      const body = (await streamed.json()) as { error: { code: string; type: string; message: string } };
      expect(body.error.code).toBe("storage_unavailable");
      expect(body.error.type).toBe("server_error");
      expect(body.error.message).toContain("Storage unavailable");
      expect(streamed.headers.get("retry-after")).toBe("10");

      const plain = await chat(key, { max_tokens: 4 });
      expect(plain.status).toBe(503);

      const messages = await setup.app.request("/v1/messages", {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: "tiny-qwen3", max_tokens: 4, messages: [{ role: "user", content: "Hello" }] }),
      });
      expect(messages.status).toBe(503);
      expect(await messages.json()).toEqual({ type: "error", error: { type: "api_error", message: expect.stringContaining("Storage unavailable") } });

      const embedded = await setup.app.request("/v1/embeddings", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ input: "Hello" }),
      });
      expect(embedded.status).toBe(503);
      expect(openHolds()).toBe(0);
      expect(checkInvariants(db)).toEqual([]);
    } finally {
      db.exec("PRAGMA max_page_count = 1073741823");
    }
    const again = await chat(key, { max_tokens: 2 });
    expect(again.status).toBe(200);
    expect(openHolds()).toBe(0);
    expect(checkInvariants(db)).toEqual([]);
  });

  test("a finished stream whose settlement the database refuses is charged exactly what it reported once storage is back", async () => {
    const { id, key } = billed.account();
    const db = billed.db;
    const res = await chat(key, { max_tokens: 12, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value!, { stream: true });
    // Writes now fail (SQLITE_READONLY) until the test turns them back on.
    db.exec("PRAGMA query_only = ON");
    let usage: { completion_tokens: number; cost: { nanoton: number } } | null = null;
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        text += decoder.decode(r.value, { stream: true });
      }
      const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
      expect(events.at(-1)).toBe("[DONE]");
      const last = JSON.parse(events.at(-2)!) as { usage: typeof usage };
      usage = last.usage;
      expect(usage!.completion_tokens).toBe(12);
      expect(usage!.cost.nanoton).toBeGreaterThan(0);
      // Its hold is still open: nothing could be written.
      expect(openHolds()).toBe(1);
      expect(billed.platform.deferredSettlements).toBe(1);
    } finally {
      db.exec("PRAGMA query_only = OFF");
    }
    for (let i = 0; openHolds() > 0; i++) {
      if (i > 200) throw new Error("the deferred settlement was never written");
      await Bun.sleep(25);
    }
    const row = db.query<{ completion_tokens: bigint; cost_nanoton: bigint }, [number]>("SELECT completion_tokens, cost_nanoton FROM usage WHERE account_id = ?").get(id)!;
    expect(Number(row.completion_tokens)).toBe(12);
    expect(Number(row.cost_nanoton)).toBe(usage!.cost.nanoton);
    expect(billed.platform.deferredSettlements).toBe(0);
    expect(checkInvariants(db)).toEqual([]);
  });
});

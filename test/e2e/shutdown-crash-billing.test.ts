// Money at the edges of a server's life: streams cut at the end of --shutdown-grace are charged what
// they processed and end with a clean error event; a request running at a kill -9 is settled by the
// next server at its last checkpoint (what it had processed then), not released unbilled.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { openStore } from "../../src/store/db.ts";
import { ROOT } from "../support/model.ts";
import { startTestServer } from "../support/server.ts";

setDefaultTimeout(180_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-edges-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function createKey(db: string): string {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", "1", "--db", db], { stdout: "pipe", stderr: "pipe" });
  const key = r.stdout.toString().match(/^api_key: (ck_\w+)$/m)?.[1];
  if (!key) throw new Error(`create-key failed: ${r.stderr.toString()}`);
  return key;
}

const longStream = (url: string, key: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "Write a long story" }], max_tokens: 8000, ignore_eos: true, stream: true }),
  });

interface UsageRow {
  prompt_tokens: bigint;
  completion_tokens: bigint;
  cost_nanoton: bigint;
  status: string;
}

describe("billing at shutdown and after a crash", () => {
  test("a stream cut at the end of --shutdown-grace is charged what it processed and ends with an error event, not a reset", async () => {
    const dbPath = join(dir, "shutdown.sqlite");
    const key = createKey(dbPath);
    const server = await startTestServer(["--db", dbPath, "--ctx-size", "8192", "--shutdown-grace", "1"], { auth: true });
    const res = await longStream(server.url, key);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    // A few chunks: it is generating.
    while ((text.match(/chat\.completion\.chunk/g) ?? []).length < 3) {
      const r = await reader.read();
      if (r.done) throw new Error(`the stream ended early: ${text}`);
      text += decoder.decode(r.value, { stream: true });
    }
    const stopped = server.stop();
    // The rest of the stream arrives and ends normally (a reset would throw here).
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      text += decoder.decode(r.value, { stream: true });
    }
    expect(await stopped).toBe(0);
    const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const error = JSON.parse(events.at(-2)!) as { error: { code: string; type: string; message: string } };
    expect(error.error.message).toContain("shutting down");
    const delivered = events.filter((e) => e.includes("chat.completion.chunk")).length;

    const db = openStore(dbPath);
    try {
      const rows = db.query<UsageRow, []>("SELECT prompt_tokens, completion_tokens, cost_nanoton, status FROM usage").all();
      expect(rows.length).toBe(1);
      const row = rows[0]!;
      // Charged what it processed: its prompt and at least every token the client received.
      expect(Number(row.prompt_tokens)).toBeGreaterThan(0);
      expect(Number(row.completion_tokens)).toBeGreaterThanOrEqual(delivered - 1);
      expect(row.cost_nanoton).toBeGreaterThan(0n);
      expect(row.status).toBe("cancelled");
      expect(Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL").get()!.n)).toBe(0);
      expect(checkInvariants(db)).toEqual([]);
    } finally {
      db.close();
    }
  });

  test("kill -9 during a billed stream: the next server charges the request at its last checkpoint", async () => {
    const dbPath = join(dir, "crash.sqlite");
    const key = createKey(dbPath);
    const first = await startTestServer(["--db", dbPath, "--ctx-size", "8192"], { auth: true });
    const db = openStore(dbPath);
    try {
      const res = await longStream(first.url, key);
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      await reader.read();
      // The running request checkpoints what it processed about once a second.
      const checkpoint = () => db.query<{ checkpoint: string | null }, []>("SELECT checkpoint FROM reservations WHERE closed_at IS NULL").get()?.checkpoint ?? null;
      for (let i = 0; checkpoint() === null; i++) {
        if (i > 400) throw new Error("no checkpoint was written");
        await Bun.sleep(25);
      }
      const at = JSON.parse(checkpoint()!) as { cost: string; usage: { completionTokens: number } };
      first.proc.kill("SIGKILL");
      await first.proc.exited;
      await reader.cancel().catch(() => {});

      const second = await startTestServer(["--db", dbPath, "--ctx-size", "8192"], { auth: true });
      try {
        expect(Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL").get()!.n)).toBe(0);
        const rows = db.query<UsageRow, []>("SELECT prompt_tokens, completion_tokens, cost_nanoton, status FROM usage").all();
        expect(rows.length).toBe(1);
        const row = rows[0]!;
        expect(row.cost_nanoton).toBeGreaterThan(0n);
        // At least what the checkpoint seen before the kill said (a later one may have followed).
        expect(row.cost_nanoton).toBeGreaterThanOrEqual(BigInt(at.cost));
        expect(Number(row.completion_tokens)).toBeGreaterThanOrEqual(at.usage.completionTokens);
        expect(row.status).toBe("error");
        expect(checkInvariants(db)).toEqual([]);
        const balance = (await (await fetch(`${second.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } })).json()) as { balance_nanoton: number; reserved_nanoton: number };
        expect(BigInt(balance.balance_nanoton)).toBe(1_000_000_000n - row.cost_nanoton);
        expect(balance.reserved_nanoton).toBe(0);
      } finally {
        await second.stop();
      }
    } finally {
      db.close();
    }
  });
});

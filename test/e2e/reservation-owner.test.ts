// A CLI command on a live database leaves the running server's holds alone: `create-key --db` while
// billed requests run (one generating, one queued) releases nothing, and both end billed, with usage.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { openStore } from "../../src/store/db.ts";
import { ROOT } from "../support/model.ts";
import { startTestServer } from "../support/server.ts";

setDefaultTimeout(180_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-owner-"));
const dbPath = join(dir, "live.sqlite");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function createKey(): { key: string; output: string } {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", "1", "--db", dbPath], { stdout: "pipe", stderr: "pipe" });
  const output = r.stdout.toString() + r.stderr.toString();
  const key = output.match(/^api_key: (ck_\w+)$/m)?.[1];
  if (!key) throw new Error(`create-key failed: ${output}`);
  return { key, output };
}

describe("reservations belong to the process that made them", () => {
  test("create-key --db on the live database while billed requests hold money: the holds survive and both requests are billed", async () => {
    const { key } = createKey();
    // One slot: B waits (its money held) behind A, which runs until the test cancels it.
    const server = await startTestServer(["--data-dir", dir, "--db", dbPath, "--ctx-size", "8192", "--parallel", "1"], { auth: true });
    const db = openStore(dbPath);
    const openHolds = () => Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL").get()!.n);
    const chat = (maxTokens: number, signal?: AbortSignal) =>
      fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ messages: [{ role: "user", content: "Tell a long story" }], max_tokens: maxTokens, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
        signal,
      });
    try {
      const stopA = new AbortController();
      const a = await chat(8000, stopA.signal);
      expect(a.status).toBe(200);
      const readerA = a.body!.getReader();
      await readerA.read();
      const b = chat(3);
      for (let i = 0; openHolds() < 2; i++) {
        if (i > 400) throw new Error("the second request never reserved");
        await Bun.sleep(25);
      }

      const cli = createKey();
      expect(cli.output).not.toMatch(/released/i);
      expect(openHolds()).toBe(2);

      stopA.abort();
      await readerA.cancel().catch(() => {});
      const resB = await b;
      expect(resB.status).toBe(200);
      const text = await resB.text();
      expect(text).not.toContain('"error"');
      expect(text).toContain("data: [DONE]");
      const usage = text
        .split("\n")
        .filter((l) => l.startsWith("data: {"))
        .map((l) => JSON.parse(l.slice(6)) as { usage?: { completion_tokens: number; cost?: { nanoton: number } } })
        .find((c) => c.usage)?.usage;
      expect(usage?.completion_tokens).toBe(3);
      for (let i = 0; openHolds() > 0 && i < 400; i++) await Bun.sleep(25);
      const rows = db.query<{ status: string; cost_nanoton: bigint; completion_tokens: bigint }, []>("SELECT status, cost_nanoton, completion_tokens FROM usage ORDER BY started_at").all();
      // A: cancelled, charged for what it generated; B: complete, charged what its usage chunk says.
      expect(rows.map((r) => r.status)).toEqual(["cancelled", "ok"]);
      expect(Number(rows[0]!.completion_tokens)).toBeGreaterThan(0);
      expect(Number(rows[0]!.cost_nanoton)).toBeGreaterThan(0);
      expect(Number(rows[1]!.cost_nanoton)).toBe(usage!.cost!.nanoton);
      expect(openHolds()).toBe(0);
      expect(checkInvariants(db)).toEqual([]);
      expect(server.log()).not.toContain("released");
    } finally {
      await server.stop();
      db.close();
    }
  });
});

// The real server with billing, killed mid-request: after a restart no reservation is left open, the
// request is charged at its last checkpoint and no charge exists without its usage record. Also: exact rate-limit admission over HTTP.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { ROOT } from "../support/model.ts";
import { startTestServer } from "../support/server.ts";

// Starts real servers: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(120_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-crash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function createKey(credit: string): string {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", credit, "--data-dir", dir], { stdout: "pipe", stderr: "pipe" });
  const key = r.stdout.toString().match(/^api_key: (ck_\w+)$/m)?.[1];
  if (!key) throw new Error(`create-key failed: ${r.stderr.toString()}`);
  return key;
}

describe("billing across a crash", () => {
  test("SIGKILL during a billed stream: the restart closes the reservation and charges nothing unrecorded", async () => {
    const key = createKey("1");
    const first = await startTestServer(["--data-dir", dir], { auth: true });
    const body = JSON.stringify({ messages: [{ role: "user", content: "Write a long story" }], max_tokens: 900, ignore_eos: true, stream: true });
    const res = await fetch(`${first.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read(); // the request is running and holds a reservation
    const db = openStore(join(dir, "cocoon.sqlite"));
    const open = () => Number((db.query("SELECT COUNT(*) AS n FROM reservations WHERE closed_at IS NULL").get() as { n: bigint }).n);
    expect(open()).toBe(1);
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    await reader.cancel().catch(() => {});
    expect(open()).toBe(1); // nobody settled it: the process is gone

    const second = await startTestServer(["--data-dir", dir], { auth: true });
    try {
      expect(open()).toBe(0);
      expect(checkInvariants(db)).toEqual([]);
      const unrecorded = db.query("SELECT COUNT(*) AS n FROM ledger l WHERE kind = 'charge' AND NOT EXISTS (SELECT 1 FROM usage u WHERE u.id = l.reference)").get() as { n: bigint };
      expect(Number(unrecorded.n)).toBe(0);
      // The account has its money back but for what the request had processed (its checkpoint), and works again.
      const charged = db.query("SELECT coalesce(sum(cost_nanoton), 0) AS c FROM usage").get() as { c: bigint };
      const balance = (await (await fetch(`${second.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } })).json()) as { balance_nanoton: number; reserved_nanoton: number };
      expect(BigInt(balance.balance_nanoton)).toBe(1_000_000_000n - charged.c);
      expect(balance.reserved_nanoton).toBe(0);
    } finally {
      db.close();
      await second.stop();
    }
  });

  test("100 simultaneous requests against a limit of 60 per minute admit exactly 60", async () => {
    const key = createKey("1");
    const server = await startTestServer(["--data-dir", dir, "--rate-limit-rpm", "60"], { auth: true });
    try {
      // Windows are aligned to the UTC minute: don't start the burst right at a boundary.
      const tokenize = () =>
        fetch(`${server.url}/tokenize`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ content: "hi" }) });
      const second = new Date().getUTCSeconds();
      if (second >= 55) await Bun.sleep((61 - second) * 1000);
      const statuses = await Promise.all(
        // An inference route (rpm governs those; /v1/balance has the account routes' own limit).
        Array.from({ length: 100 }, () => tokenize().then((r) => r.status)),
      );
      expect(statuses.filter((s) => s === 200).length).toBe(60);
      expect(statuses.filter((s) => s === 429).length).toBe(40);
      const refused = await tokenize();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(refused.headers.get("x-ratelimit-remaining")).toBe("0");
    } finally {
      await server.stop();
    }
  });

  test("a key revoked while its WebSocket is open stops working on the next message", async () => {
    const key = createKey("1");
    const server = await startTestServer(["--data-dir", dir, "--admin-token", "admin-secret"], { auth: true });
    try {
      const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/chat/completions?api_key=${key}`);
      const messages: string[] = [];
      const done = () => new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (messages.filter((m) => m === "[DONE]").length >= expected) {
            clearInterval(check);
            resolve();
          }
        }, 10);
      });
      let expected = 1;
      ws.onmessage = (e) => messages.push(String(e.data));
      await new Promise((r) => (ws.onopen = r));
      ws.send(JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 2 }));
      await done();
      expect(messages.some((m) => m.includes("chat.completion.chunk"))).toBe(true);
      const keys = (await (await fetch(`${server.url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: { id: number }[] };
      const revoked = await fetch(`${server.url}/admin/keys/${keys.data[0]!.id}/revoke`, { method: "POST", headers: { authorization: "Bearer admin-secret" } });
      expect(revoked.status).toBe(200);
      const before = messages.length;
      expected = 2;
      ws.send(JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 2 }));
      await done();
      const after = messages.slice(before);
      expect(JSON.parse(after[0]!).error.code).toBe("invalid_api_key");
      expect(after.some((m) => m.includes("chat.completion.chunk"))).toBe(false);
      ws.close();
    } finally {
      await server.stop();
    }
  });
});

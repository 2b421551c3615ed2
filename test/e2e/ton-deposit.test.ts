// TON deposits end to end on the real server: register, transfer on the toncenter stand-in, credited
// within two poll intervals, a billed chat completion; then a restart against the same database and
// the same history: credited once. Also: a server without a wallet says deposits are off.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { ToncenterStandIn } from "../support/toncenter.ts";

// Starts real servers: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(120_000);

const POLL_SECONDS = 1;
const ADMIN = "e2e-admin-token";
const dir = mkdtempSync(join(tmpdir(), "cocoon-ton-e2e-"));
const dbPath = join(dir, "cocoon.sqlite");
let api: ToncenterStandIn;
let rate: ReturnType<typeof Bun.serve>;

beforeAll(() => {
  api = new ToncenterStandIn().start();
  rate = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ usd: 2 }) });
});
afterAll(async () => {
  await api.stop();
  await rate.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const serverArgs = () => [
  "--db", dbPath,
  "--admin-token", ADMIN,
  "--ton-wallet", api.wallet.toString({ bounceable: true }),
  "--ton-api", api.url,
  "--ton-api-key", "e2e-key",
  "--ton-poll-interval", String(POLL_SECONDS),
  "--ton-min-deposit", "0.1",
  "--ton-usd-rate-url", `http://127.0.0.1:${rate.port}/`,
];

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const balanceOf = async (s: TestServer, key: string) => (await (await fetch(`${s.url}/v1/balance`, { headers: auth(key) })).json()) as { balance_nanoton: number; balance_usd: number | null; ton_usd_rate: number | null };

describe("TON deposits on the real server", () => {
  test("register → transfer → credited within two poll intervals → a billed chat completion; a restart credits nothing twice", async () => {
    const server = await startTestServer(serverArgs(), { auth: true });
    let key = "";
    let afterChat = 0;
    try {
      const reg = (await (await fetch(`${server.url}/api/register`, { method: "POST" })).json()) as { api_key: string; deposit_code: string; deposit_wallet: string };
      key = reg.api_key;
      expect(reg.deposit_wallet).toBe(api.wallet.toString({ bounceable: false, urlSafe: true }));
      const deposit = (await (await fetch(`${server.url}/v1/deposit`, { headers: auth(key) })).json()) as { wallet: string; memo: string; link: string };
      expect(deposit.memo).toBe(reg.deposit_code);
      expect(deposit.link).toBe(`ton://transfer/${deposit.wallet}?text=${reg.deposit_code}`);
      // Before the deposit: no money, so a chat completion is refused.
      const refused = await fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth(key) },
        body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 4 }),
      });
      expect(refused.status).toBe(402);

      const tx = api.add({ value: 2_000_000_000n, comment: deposit.memo });
      const t0 = Date.now();
      let credited = 0;
      while (Date.now() - t0 < 10_000) {
        const b = await balanceOf(server, key);
        if (b.balance_nanoton > 0) {
          credited = Date.now() - t0;
          expect(b).toMatchObject({ balance_nanoton: 2_000_000_000, ton_usd_rate: 2, balance_usd: 4 });
          break;
        }
        await Bun.sleep(25);
      }
      expect(credited).toBeGreaterThan(0);
      expect(credited).toBeLessThanOrEqual(2 * POLL_SECONDS * 1000);

      const chat = await fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth(key) },
        body: JSON.stringify({ messages: [{ role: "user", content: "Hello there" }], max_tokens: 8, temperature: 0 }),
      });
      expect(chat.status).toBe(200);
      const cost = ((await chat.json()) as { usage: { cost: { nanoton: number } } }).usage.cost.nanoton;
      expect(cost).toBeGreaterThan(0);
      afterChat = (await balanceOf(server, key)).balance_nanoton;
      expect(afterChat).toBe(2_000_000_000 - cost);
      const deposits = (await (await fetch(`${server.url}/v1/deposits`, { headers: auth(key) })).json()) as { data: { tx_hash: string }[] };
      expect(deposits.data.map((d) => d.tx_hash)).toEqual([tx.hashHex]);
      const stats = (await (await fetch(`${server.url}/jsonstats`)).json()) as { ton_watcher: { cursor: { hash: string }; credited: number } };
      expect(stats.ton_watcher).toMatchObject({ cursor: { hash: tx.hashHex }, credited: 1 });
      expect(api.calls.every((c) => c.apiKey === "e2e-key" && c.archival)).toBe(true);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(server.log()).toContain("TON deposit credited");

    // Same database, same history on the API (served again on every poll): nothing more is credited,
    // while a new transfer still is.
    const again = await startTestServer(serverArgs(), { auth: true });
    try {
      const polls = api.calls.length;
      const deadline = Date.now() + 10_000;
      while (api.calls.length < polls + 3 && Date.now() < deadline) await Bun.sleep(25);
      expect(api.calls.length).toBeGreaterThanOrEqual(polls + 3);
      expect((await balanceOf(again, key)).balance_nanoton).toBe(afterChat);
      const code = ((await (await fetch(`${again.url}/v1/deposit`, { headers: auth(key) })).json()) as { memo: string }).memo;
      api.add({ value: 500_000_000n, comment: code });
      const until = Date.now() + 2 * POLL_SECONDS * 1000 + 1000;
      while ((await balanceOf(again, key)).balance_nanoton === afterChat && Date.now() < until) await Bun.sleep(25);
      expect((await balanceOf(again, key)).balance_nanoton).toBe(afterChat + 500_000_000);
    } finally {
      expect(await again.stop()).toBe(0);
    }
    const db = openStore(dbPath);
    try {
      expect(checkInvariants(db)).toEqual([]);
      const refs = db.query<{ reference: string }, []>("SELECT reference FROM ledger WHERE kind = 'deposit'").all();
      expect(refs).toHaveLength(2);
    } finally {
      db.close();
    }
  });

  test("without --ton-wallet, /v1/deposit says deposits are not enabled and nothing polls", async () => {
    const calls = api.calls.length;
    const server = await startTestServer(["--db", join(dir, "nowallet.sqlite"), "--ton-api", api.url, "--ton-poll-interval", "0.05"], { auth: true });
    try {
      const reg = (await (await fetch(`${server.url}/api/register`, { method: "POST" })).json()) as { api_key: string };
      const d = (await (await fetch(`${server.url}/v1/deposit`, { headers: auth(reg.api_key) })).json()) as Record<string, unknown>;
      expect(d).toMatchObject({ wallet: null, link: null, deposits_enabled: false });
      expect(String(d.instructions)).toContain("not enabled");
      const b = await balanceOf(server, reg.api_key);
      expect(b).toMatchObject({ balance_usd: null, ton_usd_rate: null });
      await Bun.sleep(200);
      expect(api.calls.length).toBe(calls);
    } finally {
      await server.stop();
    }
  });

  test("a bad --ton-wallet stops the start with a clear message", async () => {
    const p = Bun.spawnSync([process.execPath, "src/main.ts", "--db", join(dir, "bad.sqlite"), "--ton-wallet", "EQnotanaddress", "--port", "0"], { cwd: join(import.meta.dir, "../.."), stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode).toBe(2);
    expect(p.stderr.toString()).toContain("--ton-wallet");
  });
});

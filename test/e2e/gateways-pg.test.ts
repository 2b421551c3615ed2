// Two gateways on one Postgres ledger in front of two cocoon-server workers, all real processes on
// 127.0.0.1: billed requests spread over both gateways, a third aborted, one worker killed mid-run
// and one gateway SIGKILLed and restarted. Every request is answered or cleanly refused (never a 500),
// every answered request is charged exactly once (by its request_guid), and the ledger adds up.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { openPgStore, type PgStore } from "../../src/store/pg.ts";
import { all } from "../../src/store/query.ts";
import { postgresBin, postgresMissingBanner, startPostgres, type TestPostgres } from "../support/postgres.ts";
import { freePort, startTestServer, type TestServer } from "../support/server.ts";
import { ToncenterStandIn } from "../support/toncenter.ts";

setDefaultTimeout(240_000);

const available = postgresBin() !== null;
if (!available) postgresMissingBanner("test/e2e/gateways-pg.test.ts");

const REQUESTS = Number(process.env.COCOON_PG_E2E_REQUESTS ?? 1000);
const SECRET = "pg-gateways-secret-0123456789";
const ports = { w1: freePort(), w2: freePort(), g1: freePort(), g2: freePort() };
let pg: TestPostgres;
let url = "";
let store: PgStore;
let w1: TestServer;
let w2: TestServer;
const gateways: TestServer[] = [];
let key = "";
let accountId = 0;
let depositCode = "";
let api: ToncenterStandIn;

const workerArgs = ["--role", "worker", "--worker-secret", SECRET, "--parallel", "4"];
const gatewayArgs = () => [
  "--db", url,
  "--upstream", `w1=http://127.0.0.1:${ports.w1}#key=${SECRET}`,
  "--upstream", `w2=http://127.0.0.1:${ports.w2}#key=${SECRET}`,
  "--upstream-poll", "0.3",
  "--upstream-timeout", "150",
  "--rate-limit-rpm", "100000", "--rate-limit-rpd", "100000", "--rate-limit-tpm", "100000000",
  // Both gateways watch the wallet; the one holding the advisory lock polls.
  "--ton-wallet", api.wallet.toString({ bounceable: true }), "--ton-api", api.url, "--ton-poll-interval", "0.5", "--ton-min-deposit", "0.1",
];
// Each gateway has a data directory of its own (the ledger, sessions and responses are in Postgres).
const dirs: string[] = [];
const startGateway = (port: number) => {
  const dir = mkdtempSync(join(tmpdir(), "cocoon-pg-gw-"));
  dirs.push(dir);
  return startTestServer([...gatewayArgs(), "--data-dir", dir], { auth: true, port });
};

beforeAll(async () => {
  if (!available) return;
  pg = startPostgres();
  api = new ToncenterStandIn().start();
  url = pg.createDatabase("ledger");
  store = await openPgStore(url, { max: 2 });
  const account = await createAccount(store, "e2e");
  accountId = account.id;
  depositCode = account.depositCode;
  await credit(store, accountId, 100_000_000_000n, "deposit", "e2e-seed");
  key = (await createKey(store, accountId, "e2e")).key;
  [w1, w2] = await Promise.all([startTestServer(workerArgs, { port: ports.w1 }), startTestServer(workerArgs, { port: ports.w2 })]);
  gateways.push(...(await Promise.all([startGateway(ports.g1), startGateway(ports.g2)])));
}, 240_000);

afterAll(async () => {
  for (const s of [...gateways, w1, w2]) await s?.stop().catch(() => {});
  await store?.close().catch(() => {});
  await api?.stop();
  pg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Outcome = { guid: string; status: number | "aborted" | "unreachable"; cost: bigint | null; body?: string };

describe.skipIf(!available)("two gateways on one Postgres ledger", () => {
  test(`${REQUESTS} billed requests over both gateways, a worker killed and a gateway SIGKILLed: charged exactly once each, deposits credited once, books exact`, async () => {
    const outcomes: Outcome[] = [];
    const deposits: string[] = [];
    let next = 0;
    let g2Down = false;
    const one = async (i: number): Promise<Outcome> => {
      const guid = `pg-e2e-${i}`;
      const gw = i % 2 === 0 ? ports.g1 : ports.g2;
      const ac = new AbortController();
      const aborting = i % 3 === 2;
      if (aborting) setTimeout(() => ac.abort(), 5 + (i % 40));
      try {
        const r = await fetch(`http://127.0.0.1:${gw}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
          body: JSON.stringify({ model: "tiny-qwen3", messages: [{ role: "user", content: `Say something (${i})` }], max_tokens: 4, request_guid: guid }),
          signal: ac.signal,
        });
        const text = await r.text();
        const cost = r.headers.get("x-cocoon-cost-nanoton");
        return { guid, status: r.status, cost: cost === null ? null : BigInt(cost), body: r.status === 200 ? undefined : text };
      } catch (err) {
        if (ac.signal.aborted) return { guid, status: "aborted", cost: null };
        // The SIGKILLed gateway: the connection was refused or cut. The client sees no answer, and no 500.
        if (gw === ports.g2) return { guid, status: "unreachable", cost: null };
        throw err;
      }
    };
    const runner = async () => {
      while (next < REQUESTS) {
        const i = next++;
        if (i === Math.floor(REQUESTS * 0.1)) deposits.push(api.add({ value: 2_000_000_000n, comment: depositCode }).hashHex);
        if (i === Math.floor(REQUESTS * 0.3)) w2.proc.kill("SIGKILL");
        if (i === Math.floor(REQUESTS * 0.5) && !g2Down) {
          g2Down = true;
          gateways[1]!.proc.kill("SIGKILL");
          // Whichever gateway held the watcher lock, this one is credited once: by the survivor if it was the dead one's.
          deposits.push(api.add({ value: 3_000_000_000n, comment: depositCode }).hashHex);
          // Restarted in the background on the same port while the other gateway carries on.
          void (async () => {
            await gateways[1]!.proc.exited;
            gateways[1] = await startGateway(ports.g2);
          })();
        }
        outcomes.push(await one(i));
      }
    };
    await Promise.all(Array.from({ length: 16 }, runner));
    // The restarted gateway comes back and answers.
    await until("the restarted gateway", async () => (await fetch(`http://127.0.0.1:${ports.g2}/readiness`).catch(() => null))?.status === 200);
    const after = await one(REQUESTS);
    expect(after.status).toBe(200);
    outcomes.push(after);

    const statuses = new Map<string, number>();
    for (const o of outcomes) statuses.set(String(o.status), (statuses.get(String(o.status)) ?? 0) + 1);
    console.log(`outcomes: ${JSON.stringify(Object.fromEntries(statuses))}`);
    // A worker killed in the middle of a non-streamed reply is a 502 upstream_failed
    // (src/upstream/forward.ts); never a 500.
    const lost = outcomes.filter((o) => o.status === 502);
    expect(lost.filter((o) => !o.body?.includes("mid-response"))).toEqual([]);
    for (const o of outcomes) if (typeof o.status === "number" && o.status !== 200) expect([502, 503, 504]).toContain(o.status);
    expect(statuses.get("200") ?? 0).toBeGreaterThan(REQUESTS / 3);

    // The killed gateway's holds are settled by the other one (its process is dead on this machine).
    await until("no reservation open", async () => (await store.exec(all<{ n: bigint }>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL")))[0]!.n === 0n, 60_000);
    expect(await checkInvariants(store)).toEqual([]);
    const rows = await store.exec(all<{ request_guid: string; cost_nanoton: bigint; n: bigint }>("SELECT request_guid, max(cost_nanoton) AS cost_nanoton, count(*) AS n FROM usage GROUP BY request_guid"));
    const byGuid = new Map(rows.map((r) => [r.request_guid, r]));
    // Never doubled: one usage row (one charge) per request.
    expect(rows.filter((r) => r.n !== 1n)).toEqual([]);
    // Never lost: every answered request has its charge, of exactly the cost it was told.
    for (const o of outcomes) {
      if (o.status !== 200) continue;
      expect(byGuid.get(o.guid)?.cost_nanoton).toBe(o.cost!);
    }
    // Both deposits credited, each exactly once, though both gateways watched the wallet.
    const booked = async () => store.exec(all<{ reference: string; amount_nanoton: bigint }>("SELECT reference, amount_nanoton FROM ledger WHERE kind = 'deposit' AND reference <> 'e2e-seed' ORDER BY amount_nanoton"));
    await until("both deposits credited", async () => (await booked()).length >= 2, 30_000);
    await Bun.sleep(1_500); // three more polls: nothing may be credited again
    expect(await booked()).toEqual([
      { reference: deposits[0]!, amount_nanoton: 2_000_000_000n },
      { reference: deposits[1]!, amount_nanoton: 3_000_000_000n },
    ]);
    expect(await checkInvariants(store)).toEqual([]);
    const [acct] = await store.exec(all<{ balance_nanoton: bigint; reserved_nanoton: bigint }>("SELECT balance_nanoton, reserved_nanoton FROM accounts WHERE id = ?", accountId));
    const charged = rows.reduce((s, r) => s + r.cost_nanoton, 0n);
    expect(acct).toEqual({ balance_nanoton: 100_000_000_000n + 5_000_000_000n - charged, reserved_nanoton: 0n });
  });
});

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

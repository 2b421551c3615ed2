// The money-and-crash soak: mixed billed requests over many accounts against the real server, some
// aborted, the server killed with SIGKILL and restarted on the same database, a CLI command on the
// live database mid-run; then the invariant table from the database. `bun run soak [--requests N]
// [--accounts N] [--kills N] [--concurrency N]`; exits 1 when an invariant fails.
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createAccount } from "../src/platform/accounts.ts";
import { createKey } from "../src/platform/keys.ts";
import { checkInvariants, credit } from "../src/platform/ledger.ts";
import { costOf, pricingConfig, ratesFor } from "../src/platform/pricing.ts";
import { openStore } from "../src/store/db.ts";

const ROOT = resolve(import.meta.dir, "..");

export interface SoakOptions {
  requests: number;
  accounts: number;
  kills: number;
  concurrency: number;
  /** Share of requests aborted by the client, 0..1. */
  abortShare: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  /** Invariant rows: what was checked, the figure, and whether it holds. */
  table: { check: string; value: string; ok: boolean }[];
  problems: string[];
}

interface Outcome {
  kind: "ok" | "error" | "aborted" | "cut";
  status: number;
  /** The cost the client was shown, when it was. */
  cost: bigint | null;
}

const PRICE = 20;
const MARKUP = "1.5";

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

class Server {
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  ready: Promise<void> = Promise.resolve();
  readonly url: string;

  constructor(
    private readonly db: string,
    private readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  start(): Promise<void> {
    const args = ["--host", "127.0.0.1", "--port", String(this.port), "--db", this.db, "--parallel", "4", "--ctx-size", "1024", "--ton-usd-rate-url", "off",
      "--rate-limit-rpm", "1000000", "--rate-limit-tpm", "1000000000", "--rate-limit-rpd", "1000000", "--price-nanoton", String(PRICE), "--markup", MARKUP, "--shutdown-grace", "2"];
    this.proc = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), ...args], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    void new Response(this.proc.stdout).text();
    void new Response(this.proc.stderr).text();
    this.ready = (async () => {
      for (let i = 0; ; i++) {
        if (this.proc!.exitCode !== null) throw new Error(`the server exited with ${this.proc!.exitCode} before it was ready`);
        try {
          const r = await fetch(`${this.url}/readiness`);
          await r.arrayBuffer();
          if (r.status === 200) return;
        } catch {
          // not listening yet
        }
        if (i > 2400) throw new Error("the server was not ready within 120 s");
        await Bun.sleep(50);
      }
    })();
    return this.ready;
  }

  async kill(signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    this.proc?.kill(signal);
    await this.proc?.exited;
  }
}

/** One request of the mix, by its index: four front doors, streamed or not, a few tokens each. */
function requestFor(i: number, key: string, guid: string, model: string): { path: string; init: RequestInit; stream: boolean } {
  const maxTokens = 1 + (i % 8);
  const headers: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${key}` };
  const text = `Soak request ${i}: say something`;
  switch (i % 5) {
    case 0:
      return { path: "/v1/chat/completions", stream: false, init: { method: "POST", headers, body: JSON.stringify({ messages: [{ role: "user", content: text }], max_tokens: maxTokens, request_guid: guid }) } };
    case 1:
      return { path: "/v1/chat/completions", stream: true, init: { method: "POST", headers, body: JSON.stringify({ messages: [{ role: "user", content: text }], max_tokens: maxTokens, stream: true, stream_options: { include_usage: true }, request_guid: guid }) } };
    case 2:
      return { path: "/v1/completions", stream: false, init: { method: "POST", headers, body: JSON.stringify({ prompt: text, max_tokens: maxTokens, request_guid: guid }) } };
    case 3:
      return { path: "/v1/messages", stream: false, init: { method: "POST", headers: { ...headers, "anthropic-version": "2023-06-01" }, body: JSON.stringify({ model, messages: [{ role: "user", content: text }], max_tokens: maxTokens, request_guid: guid }) } };
    default:
      return { path: "/v1/chat/completions", stream: true, init: { method: "POST", headers, body: JSON.stringify({ messages: [{ role: "user", content: text }], max_tokens: 40 + maxTokens, ignore_eos: true, stream: true, stream_options: { include_usage: true }, request_guid: guid }) } };
  }
}

async function send(server: Server, i: number, key: string, guid: string, model: string, abortAfterMs: number | null): Promise<Outcome> {
  const { path, init, stream } = requestFor(i, key, guid, model);
  const ctl = new AbortController();
  const timer = abortAfterMs === null ? null : setTimeout(() => ctl.abort(), abortAfterMs);
  try {
    const res = await fetch(`${server.url}${path}`, { ...init, signal: ctl.signal });
    const header = res.headers.get("x-cocoon-cost-nanoton");
    const body = await res.text();
    if (res.status !== 200) return { kind: "error", status: res.status, cost: null };
    let cost: bigint | null = header !== null ? BigInt(header) : null;
    if (stream) {
      const usage = body.split("\n\n").filter((e) => e.startsWith("data: {") && e.includes('"usage":{')).map((e) => JSON.parse(e.slice(6)) as { usage?: { cost?: { nanoton: number } } }).at(-1);
      if (!body.includes("data: [DONE]")) return { kind: "cut", status: 200, cost: null };
      if (usage?.usage?.cost) cost = BigInt(usage.usage.cost.nanoton);
      if (body.includes('"error":{')) return { kind: "error", status: 200, cost };
    }
    return { kind: "ok", status: 200, cost };
  } catch (err) {
    return { kind: ctl.signal.aborted ? "aborted" : "cut", status: 0, cost: null };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), "cocoon-soak-"));
  const dbPath = join(dir, "soak.sqlite");
  const setup = openStore(dbPath);
  const keys: string[] = [];
  for (let a = 0; a < o.accounts; a++) {
    const acc = createAccount(setup);
    credit(setup, acc.id, 1_000_000_000n, "adjustment", `soak:${acc.id}`);
    keys.push(createKey(setup, acc.id).key);
  }
  setup.close();
  const server = new Server(dbPath, freePort());
  await server.start();
  const models = (await (await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${keys[0]}` } })).json()) as { data: { id: string }[] };
  const model = models.data[0]!.id;
  const outcomes = new Map<string, Outcome>();
  const killAt = new Set(Array.from({ length: o.kills }, (_, k) => Math.floor(((k + 1) * o.requests) / (o.kills + 1))));
  const cliAt = Math.floor(o.requests / 3);
  let next = 0;
  let restarting: Promise<void> | null = null;
  let cli = "";
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= o.requests) return;
      if (killAt.has(i)) {
        // Requests in flight die with the process; the next server settles them at their checkpoints.
        restarting = (async () => {
          await Bun.sleep(300);
          log(`request ${i}: kill -9 and restart`);
          await server.kill("SIGKILL");
          await server.start();
        })();
      }
      if (i === cliAt) {
        const r = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", "0.5", "--db", dbPath], { stdout: "pipe", stderr: "pipe" });
        void r.exited.then(async () => (cli = `create-key exited ${r.exitCode}: ${(await new Response(r.stdout).text()).includes("api_key:") ? "key created" : "no key"}`));
      }
      if (restarting) await restarting;
      await server.ready;
      const guid = `soak-${i}`;
      // Deterministic spread: every account, every kind of request, aborts at varied moments.
      const aborted = (i * 7919) % 100 < o.abortShare * 100;
      outcomes.set(guid, await send(server, i, keys[i % keys.length]!, guid, model, aborted ? 20 + ((i * 31) % 400) : null));
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  if (restarting) await restarting;
  // A clean stop, then a last start and stop on the same database: nothing may stay open.
  await server.kill("SIGTERM");
  await server.start();
  await server.kill("SIGTERM");

  const db = openStore(dbPath);
  const problems = checkInvariants(db, pricingConfig().maxOverdraft);
  const rates = ratesFor(pricingConfig({ baseNanoton: BigInt(PRICE), markup: MARKUP }));
  type Row = { request_guid: string | null; prompt_tokens: bigint; cached_tokens: bigint; completion_tokens: bigint; reasoning_tokens: bigint; cost_nanoton: bigint; uncharged_nanoton: bigint; status: string };
  const rows = db.query<Row, []>("SELECT request_guid, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, cost_nanoton, uncharged_nanoton, status FROM usage").all();
  let wrongCost = 0;
  for (const r of rows) {
    const cost = costOf(rates, { promptTokens: Number(r.prompt_tokens), cachedTokens: Number(r.cached_tokens), completionTokens: Number(r.completion_tokens), reasoningTokens: Number(r.reasoning_tokens) });
    if (cost !== r.cost_nanoton + r.uncharged_nanoton) wrongCost++;
  }
  const byGuid = new Map(rows.map((r) => [r.request_guid, r]));
  let shown = 0;
  let shownWrong = 0;
  for (const [guid, out] of outcomes) {
    if (out.cost === null) continue;
    shown++;
    if (byGuid.get(guid)?.cost_nanoton !== out.cost) shownWrong++;
  }
  const open = Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL").get()!.n);
  const unbilled = Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations r WHERE closed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM usage u WHERE u.id = r.id)").get()!.n);
  const atCheckpoint = Number(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM ledger WHERE kind = 'charge' AND note LIKE '%last checkpoint%'").get()!.n);
  const charged = db.query<{ c: bigint; p: bigint; t: bigint }, []>("SELECT coalesce(sum(cost_nanoton), 0) AS c, coalesce(sum(prompt_tokens), 0) AS p, coalesce(sum(completion_tokens), 0) AS t FROM usage").get()!;
  const statuses = db.query<{ status: string; n: bigint }, []>("SELECT status, count(*) AS n FROM usage GROUP BY status ORDER BY status").all();
  const server5xx = [...outcomes.values()].filter((x) => x.status >= 500 && x.status !== 503).length;
  db.close();
  rmSync(dir, { recursive: true, force: true });

  const count = (k: Outcome["kind"]) => [...outcomes.values()].filter((x) => x.kind === k).length;
  const table: SoakResult["table"] = [
    { check: "requests sent (ok / error / aborted / cut by a kill)", value: `${outcomes.size} (${count("ok")} / ${count("error")} / ${count("aborted")} / ${count("cut")})`, ok: outcomes.size === o.requests },
    { check: "balances and holds = ledger sums (checkInvariants)", value: `${problems.length} problems`, ok: problems.length === 0 },
    { check: "usage rows = Σ tokens × rates (cost + uncharged)", value: `${rows.length - wrongCost}/${rows.length} rows`, ok: wrongCost === 0 },
    { check: "costs shown to clients = charged in the database", value: `${shown - shownWrong}/${shown}`, ok: shownWrong === 0 },
    { check: "open reservations after the last restart", value: String(open), ok: open === 0 },
    { check: "holds charged at their checkpoint after a kill", value: String(atCheckpoint), ok: true },
    { check: "holds released unbilled (never started)", value: String(unbilled), ok: true },
    { check: "charged vs processed (nanoton; prompt + completion tokens)", value: `${charged.c} for ${charged.p} + ${charged.t}`, ok: true },
    { check: "usage rows by status", value: statuses.map((s) => `${s.status} ${s.n}`).join(", "), ok: true },
    { check: "5xx answers other than 503", value: String(server5xx), ok: server5xx === 0 },
    { check: "CLI command on the live database", value: cli || "not finished", ok: cli.includes("key created") },
  ];
  return { table, problems: [...problems, ...table.filter((r) => !r.ok).map((r) => `${r.check}: ${r.value}`)] };
}

if (import.meta.main) {
  const arg = (name: string, def: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i === -1 ? def : Number(process.argv[i + 1]);
  };
  const t0 = performance.now();
  const result = await runSoak({
    requests: arg("requests", 2000),
    accounts: arg("accounts", 20),
    kills: arg("kills", 3),
    concurrency: arg("concurrency", 8),
    abortShare: arg("abort-share", 0.3),
    log: (line) => console.error(line),
  });
  const width = Math.max(...result.table.map((r) => r.check.length));
  for (const r of result.table) console.log(`${r.ok ? "ok  " : "FAIL"}  ${r.check.padEnd(width)}  ${r.value}`);
  console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (result.problems.length) {
    for (const p of result.problems) console.log(`problem: ${p}`);
    process.exit(1);
  }
}

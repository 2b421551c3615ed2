// `bun run bench -- cluster`: a gateway in front of cocoon-server workers (--role worker) on this
// machine: the latency a gateway adds per request and its req/s ÷ the worker's own, and aggregate
// tok/s through a gateway with two workers ÷ with one (tiny demo model), and billing throughput on
// Postgres ÷ SQLite (bench-ledger-store.ts).
import type { Subprocess } from "bun";
import { join } from "node:path";
import { ROOT } from "./setup-native.ts";
import { benchLedgerStore } from "./bench-ledger-store.ts";

export interface ClusterBenchOptions {
  /** Seconds per throughput run. Defaults to 5. */
  seconds?: number;
  /** Sequential requests per latency set. Defaults to 200. */
  requests?: number;
}

const SECRET = "bench-cluster-secret-0123456789";
const SLOTS = 4;
const fmt = (x: number, d = 1) => x.toFixed(d);

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

interface Proc {
  url: string;
  proc: Subprocess;
}

async function start(args: string[], what: string): Promise<Proc> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = Bun.spawn([process.execPath, join(ROOT, "src", "main.ts"), "--host", "127.0.0.1", "--port", String(port), "--log-level", "warn", "--ton-usd-rate-url", "off", ...args], {
    cwd: ROOT,
    stdout: "ignore",
    stderr: "inherit",
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    try {
      const r = await fetch(`${url}/readiness`);
      await r.arrayBuffer();
      if (r.status === 200) return { url, proc };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} was not ready within 60 s`);
    await Bun.sleep(50);
  }
}

async function stop(p: Proc | null): Promise<void> {
  if (!p || p.proc.exitCode !== null) return;
  p.proc.kill("SIGTERM");
  const timer = setTimeout(() => p.proc.kill("SIGKILL"), 15_000);
  await p.proc.exited;
  clearTimeout(timer);
}

const headers = { "Content-Type": "application/json", Authorization: `Bearer ${SECRET}` };

async function chat(base: string, body: Record<string, unknown>): Promise<number> {
  const r = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers, body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], ...body }) });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${base} answered ${r.status}: ${text.slice(0, 200)}`);
  if (body.stream) return text.split("\n\n").filter((e) => e.includes('"content":"') && !e.includes('"content":""')).length;
  return (JSON.parse(text) as { usage: { completion_tokens: number } }).usage.completion_tokens;
}

/** Sorted latencies of sequential one-token requests, ms. */
async function latencies(base: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await chat(base, { max_tokens: 1 });
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;

/** Completed requests (or tokens) per second with `concurrency` loops for `seconds`. */
async function rate(base: string, seconds: number, concurrency: number, body: Record<string, unknown>): Promise<number> {
  let total = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) total += body.stream ? await chat(base, body) : (await chat(base, body), 1);
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

export async function benchCluster(opts: ClusterBenchOptions = {}): Promise<string> {
  const seconds = opts.seconds ?? 5;
  const requests = opts.requests ?? 200;
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    console.log(l);
  };
  // One thread each: two workers can use two cores, as two boxes would use two GPUs.
  const worker = ["--role", "worker", "--worker-secret", SECRET, "--parallel", String(SLOTS), "--ctx-size", "2048", "--threads", "1"];
  let w1: Proc | null = null;
  let w2: Proc | null = null;
  let one: Proc | null = null;
  let two: Proc | null = null;
  try {
    [w1, w2] = await Promise.all([start(worker, "worker 1"), start(worker, "worker 2")]);
    const gateway = (ws: Proc[]) => ["--no-auth", "--upstream-poll", "1", ...ws.flatMap((w, i) => ["--upstream", `w${i + 1}=${w.url}#key=${SECRET}`])];
    [one, two] = await Promise.all([start(gateway([w1]), "gateway (one worker)"), start(gateway([w1, w2]), "gateway (two workers)")]);

    // Warm-up, then latency: the same one-token request straight to the worker and through a gateway.
    await latencies(w1.url, 20);
    await latencies(one.url, 20);
    const direct = await latencies(w1.url, requests);
    const via = await latencies(one.url, requests);
    const rpsDirect = await rate(w1.url, seconds, SLOTS * 2, { max_tokens: 1 });
    const rpsVia = await rate(one.url, seconds, SLOTS * 2, { max_tokens: 1 });

    // Aggregate decode throughput: enough streams to fill every slot of every worker.
    const stream = { max_tokens: 128, ignore_eos: true, stream: true };
    const tokOne = await rate(one.url, seconds * 2, SLOTS * 2, stream);
    const tokTwo = await rate(two.url, seconds * 2, SLOTS * 2, stream);

    const added = pct(via, 50) - pct(direct, 50);
    log(`## cluster benchmark: tiny demo model, workers --parallel ${SLOTS} --threads 1, ${navigator.hardwareConcurrency} cores on one machine`);
    log("");
    log("| measure | through the gateway | straight to the worker | ratio | goal |");
    log("| --- | ---: | ---: | ---: | --- |");
    log(`| one-token chat request p50 ms (added: ${fmt(added, 2)} ms) | ${fmt(pct(via, 50), 2)} | ${fmt(pct(direct, 50), 2)} | ${fmt(pct(via, 50) / pct(direct, 50), 2)} | added ≤ 5 ms ${added <= 5 ? "✓" : "✗"} |`);
    log(`| one-token chat request p99 ms | ${fmt(pct(via, 99), 2)} | ${fmt(pct(direct, 99), 2)} | ${fmt(pct(via, 99) / pct(direct, 99), 2)} | |`);
    log(`| one-token requests/s, ${SLOTS * 2} concurrent | ${fmt(rpsVia, 0)} | ${fmt(rpsDirect, 0)} | ${fmt(rpsVia / rpsDirect, 2)} | ≥ 0.8 ${rpsVia / rpsDirect >= 0.8 ? "✓" : "✗"} |`);
    log("");
    log("| measure | two workers | one worker | ratio | goal |");
    log("| --- | ---: | ---: | ---: | --- |");
    const cpuBound = navigator.hardwareConcurrency <= 2;
    log(`| aggregate streamed tok/s, ${SLOTS * 2} concurrent streams of 128 tokens | ${fmt(tokTwo, 0)} | ${fmt(tokOne, 0)} | ${fmt(tokTwo / tokOne, 2)} | ≥ 1.6 with a core (GPU) per worker${cpuBound ? " (CPU-bound here: the gateway, two workers and the client share 2 cores)" : ""} ${tokTwo / tokOne >= 1.6 ? "✓" : "✗"} |`);
    log("");
    log(`latency: ${requests} sequential non-streamed requests each way (max_tokens 1); req/s and tok/s: closed loops for ${seconds} s and ${seconds * 2} s; every process on this one machine.`);
    log("");
    log("Postgres vs SQLite billing throughput (the store alone, no HTTP; Postgres a throwaway local server):");
    log("");
    for (const l of await benchLedgerStore()) log(l);
    return lines.join("\n");
  } finally {
    await Promise.all([stop(one), stop(two)]);
    await Promise.all([stop(w1), stop(w2)]);
  }
}

// `bun run bench -- http`: GET /v1/models req/s ÷ a bare Bun.serve, and /health p99 with all slots busy ÷ idle.
import type { Subprocess } from "bun";
import { join } from "node:path";
import { ROOT } from "./setup-native.ts";

export interface HttpBenchOptions {
  /** Seconds per throughput run. Defaults to 5. */
  seconds?: number;
  /** Concurrent connections for the throughput runs. Defaults to 64. */
  connections?: number;
  /** Seconds per /health latency set (sequential requests, at least 2000). Defaults to 3. */
  latencySeconds?: number;
}

const SLOTS = 4;
const fmt = (x: number, d = 1) => x.toFixed(d);

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

async function waitFor(url: string, proc: Subprocess, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode} before it answered`);
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not answer ${url} within 60 s`);
    await Bun.sleep(50);
  }
}

async function stopProcess(proc: Subprocess): Promise<void> {
  if (proc.exitCode !== null) return;
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  await proc.exited;
  clearTimeout(timer);
}

/** Requests per second against `url`: wrk when installed, else a fetch loop with fixed concurrency. */
async function throughput(url: string, seconds: number, connections: number): Promise<number> {
  const wrk = Bun.which("wrk");
  if (wrk) {
    const p = Bun.spawn([wrk, "-t2", `-c${connections}`, `-d${seconds}s`, url], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(p.stdout).text();
    if ((await p.exited) !== 0) throw new Error(`wrk failed: ${await new Response(p.stderr).text()}`);
    const rps = out.match(/Requests\/sec:\s+([\d.]+)/)?.[1];
    const errors = out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1];
    if (errors) throw new Error(`wrk saw ${errors} error responses from ${url}`);
    if (!rps) throw new Error(`cannot read wrk's output:\n${out}`);
    return Number(rps);
  }
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const r = await fetch(url);
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

/** Sequential GETs on one keep-alive connection for `seconds` (and at least `min`); sorted latencies in ms. */
async function latencies(url: string, seconds: number, min = 2000): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (out.length < min || performance.now() < end) {
    const t0 = performance.now();
    const r = await fetch(url);
    await r.arrayBuffer();
    out.push(performance.now() - t0);
    if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
  }
  return out.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function slotsBusy(base: string): Promise<number> {
  const s = (await (await fetch(`${base}/jsonstats`)).json()) as { models: { slots_busy: number }[] };
  return s.models.reduce((n, m) => n + m.slots_busy, 0);
}

export async function benchHttp(opts: HttpBenchOptions = {}): Promise<string> {
  const seconds = opts.seconds ?? 5;
  const connections = opts.connections ?? 64;
  const latencySeconds = opts.latencySeconds ?? 3;
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    console.log(l);
  };

  // Our server, as users run it (its own process), on the tiny demo model.
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const ours = Bun.spawn(
    [process.execPath, join(ROOT, "src", "main.ts"), "--host", "127.0.0.1", "--port", String(port), "--parallel", String(SLOTS), "--ctx-size", "4096", "--log-level", "warn", "--no-auth"],
    { cwd: ROOT, stdout: "ignore", stderr: "inherit" },
  );
  let bare: Subprocess | null = null;
  const streams: AbortController[] = [];
  try {
    await waitFor(`${base}/readiness`, ours, "cocoon-server");
    const modelsBody = new Uint8Array(await (await fetch(`${base}/v1/models`)).arrayBuffer());

    // The reference: a bare Bun.serve in its own process returning the same bytes.
    const barePort = freePort();
    const bareScript = `const body = Buffer.from(process.env.BENCH_BODY, "base64");
Bun.serve({ hostname: "127.0.0.1", port: ${barePort}, fetch: () => new Response(body, { headers: { "Content-Type": "application/json;charset=utf-8" } }) });`;
    bare = Bun.spawn([process.execPath, "-e", bareScript], {
      env: { ...process.env, BENCH_BODY: Buffer.from(modelsBody).toString("base64") },
      stdout: "ignore",
      stderr: "inherit",
    });
    await waitFor(`http://127.0.0.1:${barePort}/v1/models`, bare, "bare Bun.serve");
    const sameBytes = Buffer.from(await (await fetch(`http://127.0.0.1:${barePort}/v1/models`)).arrayBuffer()).equals(Buffer.from(modelsBody));

    const client = Bun.which("wrk") ? `wrk -t2 -c${connections} -d${seconds}s` : `fetch loop, ${connections} concurrent, ${seconds} s`;
    // Warm both up, then one measured run each.
    await throughput(`${base}/v1/models`, 1, connections);
    await throughput(`http://127.0.0.1:${barePort}/v1/models`, 1, connections);
    const oursRps = await throughput(`${base}/v1/models`, seconds, connections);
    const bareRps = await throughput(`http://127.0.0.1:${barePort}/v1/models`, seconds, connections);
    await stopProcess(bare);
    bare = null;

    // /health latency idle, then while every slot generates.
    await latencies(`${base}/health`, 0.2, 200);
    const idle = await latencies(`${base}/health`, latencySeconds);
    const chunks = Array.from({ length: SLOTS }, () => 0);
    const t0 = performance.now();
    const running = Array.from({ length: SLOTS }, async (_, i) => {
      const ac = new AbortController();
      streams.push(ac);
      const r = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: `Write forever, part ${i}.` }], max_tokens: 4000, ignore_eos: true, stream: true }),
        signal: ac.signal,
      });
      if (r.status !== 200) throw new Error(`stream ${i} answered ${r.status}`);
      try {
        for await (const chunk of r.body!) chunks[i]! += new TextDecoder().decode(chunk).split("data: {").length - 1;
      } catch {
        // aborted below
      }
    });
    // Wait until every slot holds a stream that is already producing tokens.
    while ((await slotsBusy(base)) < SLOTS || chunks.some((c) => c < 3)) {
      if (performance.now() - t0 > 30_000) throw new Error("the streams never filled every slot");
      await Bun.sleep(10);
    }
    const busyBefore = await slotsBusy(base);
    const c0 = chunks.map((c) => c);
    const tBusy = performance.now();
    const busy = await latencies(`${base}/health`, latencySeconds);
    const busySeconds = (performance.now() - tBusy) / 1000;
    const busyAfter = await slotsBusy(base);
    const perStream = chunks.map((c, i) => (c - c0[i]!) / busySeconds);
    if (busyAfter < SLOTS || perStream.some((r) => r === 0)) throw new Error(`a stream stopped during the busy set (slots busy ${busyAfter}, chunks/s ${perStream.map((r) => fmt(r, 0)).join(", ")})`);
    for (const ac of streams) ac.abort();
    await Promise.allSettled(running);

    const rpsRatio = oursRps / bareRps;
    const p99Ratio = pct(busy, 99) / pct(idle, 99);
    log(`## http benchmark: tiny demo model, ${SLOTS} slots, ${navigator.hardwareConcurrency} cores`);
    log("");
    log("| measure | cocoon-server | reference | ratio | goal |");
    log("| --- | ---: | ---: | ---: | --- |");
    log(`| GET /v1/models requests/s (÷ bare Bun.serve, same ${modelsBody.byteLength} bytes${sameBytes ? "" : " [bytes differ!]"}) | ${fmt(oursRps, 0)} | ${fmt(bareRps, 0)} | ${fmt(rpsRatio, 2)} | ≥ 0.5 ${rpsRatio >= 0.5 ? "✓" : "✗"} |`);
    log(`| /health p99 ms, ${SLOTS}/${SLOTS} slots generating (÷ idle p99) | ${fmt(pct(busy, 99), 3)} | ${fmt(pct(idle, 99), 3)} | ${fmt(p99Ratio, 2)} | ≤ 2 ${p99Ratio <= 2 ? "✓" : "✗"} |`);
    log(`| /health p50 ms, busy (÷ idle p50) | ${fmt(pct(busy, 50), 3)} | ${fmt(pct(idle, 50), 3)} | ${fmt(pct(busy, 50) / pct(idle, 50), 2)} | |`);
    log("");
    log(
      `client: ${client} for requests/s; /health: sequential keep-alive GETs for ${latencySeconds} s per set (${idle.length} idle, ${busy.length} busy). ` +
        `Slots busy at start/end of the busy set: ${busyBefore}/${busyAfter}; ${perStream.map((r) => fmt(r, 0)).join(" + ")} streamed tokens/s meanwhile.`,
    );
    return lines.join("\n");
  } finally {
    for (const ac of streams) ac.abort();
    if (bare) await stopProcess(bare);
    await stopProcess(ours);
  }
}

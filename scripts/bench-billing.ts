// `bun run bench -- billing`: the cost of billing on the hot path. The same streaming load runs
// against the server with keys and billing on and with --no-auth; plus authenticated
// GET /v1/balance requests per second.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./setup-native.ts";
import { freePort, stream, waitReady } from "./bench-server.ts";

const CONCURRENCY = 4;
const TOKENS = 128;
const REPEATS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function aggregate(url: string, headers: Record<string, string>): Promise<number> {
  const rates: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = performance.now();
    const runs = await Promise.all(
      Array.from({ length: CONCURRENCY }, (_, i) => stream(url, { prompt: `Billing load ${r} ${i}`, max_tokens: TOKENS, temperature: 0, ignore_eos: true }, false, headers)),
    );
    rates.push((runs.reduce((n, x) => n + x.tokens, 0) * 1000) / (performance.now() - t0));
  }
  return median(rates);
}

/** Requests per second of one GET, with wrk when installed, else a fetch loop at fixed concurrency. */
async function requestsPerSecond(url: string, headers: Record<string, string>, seconds = 5): Promise<number> {
  if (Bun.which("wrk")) {
    const args = ["wrk", "-t2", "-c32", `-d${seconds}s`, ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), url];
    const out = Bun.spawnSync(args, { stdout: "pipe" }).stdout.toString();
    const m = out.match(/Requests\/sec:\s+([\d.]+)/);
    if (m) return Number(m[1]);
  }
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < end) {
        await (await fetch(url, { headers })).arrayBuffer();
        n++;
      }
    }),
  );
  return n / seconds;
}

export async function benchBilling(log: (l: string) => void = console.log): Promise<string> {
  const results: Record<"on" | "off", { tokens: number; balanceRps: number | null }> = {} as never;
  for (const mode of ["off", "on"] as const) {
    const dir = mkdtempSync(join(tmpdir(), "cocoon-bench-billing-"));
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const common = ["--data-dir", dir, "--rate-limit-rpm", "100000", "--rate-limit-tpm", "100000000", "--rate-limit-rpd", "1000000"];
    let headers: Record<string, string> = {};
    if (mode === "on") {
      const made = Bun.spawnSync([process.execPath, join(ROOT, "src", "main.ts"), "create-key", "--credit", "1000", ...common], { stdout: "pipe" });
      const key = made.stdout.toString().match(/^api_key: (ck_\w+)$/m)?.[1];
      if (!key) throw new Error(`create-key failed: ${made.stdout}${made.stderr}`);
      headers = { authorization: `Bearer ${key}` };
    }
    const args = ["--host", "127.0.0.1", "--port", String(port), "--parallel", String(CONCURRENCY), "--ctx-size", "1024", "--log-level", "warn", ...common];
    const proc = Bun.spawn([process.execPath, join(ROOT, "src", "main.ts"), ...args, ...(mode === "off" ? ["--no-auth"] : [])], { stdout: "ignore", stderr: "ignore" });
    try {
      await waitReady(url, proc, "/readiness");
      await stream(url, { prompt: "warm-up", max_tokens: 8, temperature: 0 }, false, headers);
      const tokens = await aggregate(url, headers);
      const balanceRps = mode === "on" ? await requestsPerSecond(`${url}/v1/balance`, headers) : null;
      results[mode] = { tokens, balanceRps };
      log(`  billing ${mode}: ${tokens.toFixed(1)} tok/s${balanceRps ? `, GET /v1/balance ${balanceRps.toFixed(0)} req/s` : ""}`);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const lines = [
    `## billing: ${CONCURRENCY} concurrent streams x ${TOKENS} tokens on the tiny model, median of ${REPEATS}`,
    "",
    "| measure | billing on | billing off | ratio |",
    "| --- | ---: | ---: | ---: |",
    `| aggregate tok/s (goal >= 0.99) | ${results.on.tokens.toFixed(1)} | ${results.off.tokens.toFixed(1)} | ${(results.on.tokens / results.off.tokens).toFixed(3)} |`,
    `| authenticated GET /v1/balance req/s | ${results.on.balanceRps!.toFixed(0)} | | |`,
  ];
  for (const l of lines) log(l);
  return lines.join("\n");
}

// `bun run bench -- server`: cocoon-server against llama.cpp's own llama-server, built from the same
// source bundle, on the same model, context, slots, threads and batch sizes, driven by one client.
// Both use libraries compiled from that source, so the comparison is the servers, not the builds.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, ensureSource, setupNative } from "./setup-native.ts";
import { makeTestModel } from "./make-test-model.ts";
import { speculativeRows } from "./bench-speculative.ts";

export interface ServerBenchOptions {
  model?: string;
  tokens?: number;
  repeats?: number;
  threads?: number;
  slots?: number;
  ctx?: number;
  concurrency?: number[];
  /** Only the warm-conversation rows (`bun run bench -- turns`). */
  turnsOnly?: boolean;
  log?: (line: string) => void;
}

const BUILD = join(ROOT, "build", "cache", "llama.cpp-build-cpu");

/** The ggml CPU build's native-flag setting, read from a CMake cache. */
function nativeFlag(buildDir: string): string {
  const cache = join(buildDir, "CMakeCache.txt");
  if (!existsSync(cache)) return "";
  const m = readFileSync(cache, "utf8").match(/^GGML_NATIVE:BOOL=(\w+)/m);
  return m ? ` with GGML_NATIVE=${m[1]}` : " with GGML_NATIVE=ON (default)";
}

const BUILD_OURS = BUILD;

/** llama-server from the pinned bundle, built once into the ignored cache (a few minutes). */
export function ensureLlamaServer(log: (l: string) => void): string {
  const bin = join(BUILD, "bin", "llama-server");
  if (existsSync(bin)) return bin;
  const src = ensureSource(log);
  log("building llama-server from the llama.cpp source bundle (once; several minutes on 2 cores)");
  const run = (cmd: string[]) => {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed:\n${r.stderr.toString().split("\n").slice(-20).join("\n")}`);
  };
  run([
    "cmake", "-S", src, "-B", BUILD,
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=ON", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",
  ]);
  run(["cmake", "--build", BUILD, "--config", "Release", "--target", "llama-server", "-j", String(navigator.hardwareConcurrency || 2)]);
  return bin;
}

export function freePort(): number {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

export async function waitReady(url: string, proc: Bun.Subprocess, path: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode} before becoming ready`);
    const ok = await fetch(url + path).then((r) => r.status === 200, () => false);
    if (ok) return;
    await Bun.sleep(100);
  }
  throw new Error(`${url} not ready after 60 s`);
}

interface StreamResult {
  /** Prompt tokens the server processed rather than took from its cache (usage or llama-server's timings), NaN when not reported. */
  newPromptTokens: number;
  ttft: number;
  gaps: number[];
  tokens: number;
  decodeRate: number;
  start: number;
  end: number;
}

/** One streamed request; times each content chunk as the client sees it. */
export async function stream(url: string, body: Record<string, unknown>, chat: boolean, headers: Record<string, string> = {}): Promise<StreamResult & { text: string }> {
  const start = performance.now();
  const send = () =>
    fetch(`${url}/v1/${chat ? "chat/completions" : "completions"}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ ...body, stream: true }),
    });
  // A pooled keep-alive connection the server already closed fails at once: one retry on a new one.
  const res = await send().catch((err: { code?: string }) => {
    if (err?.code === "ECONNRESET") return send();
    throw err;
  });
  if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  const decoder = new TextDecoder();
  let buf = "";
  let text = "";
  const times: number[] = [];
  let newPromptTokens = NaN;
  for await (const part of res.body) {
    buf += decoder.decode(part, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) !== -1) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const chunk = JSON.parse(line.slice(6));
        if (chunk.usage?.prompt_tokens !== undefined && chunk.usage.prompt_tokens_details?.cached_tokens !== undefined) newPromptTokens = chunk.usage.prompt_tokens - chunk.usage.prompt_tokens_details.cached_tokens;
        else if (chunk.timings?.prompt_n !== undefined) newPromptTokens = chunk.timings.prompt_n;
        const c = chunk.choices?.[0];
        const piece = chat ? c?.delta?.content : c?.text;
        if (typeof piece === "string" && piece.length > 0) {
          times.push(performance.now());
          text += piece;
        }
      }
    }
  }
  const end = performance.now();
  const gaps = times.slice(1).map((t, k) => t - times[k]!);
  const decodeRate = times.length > 1 ? ((times.length - 1) * 1000) / (times.at(-1)! - times[0]!) : 0;
  return { ttft: (times[0] ?? end) - start, gaps, tokens: times.length, decodeRate, start, end, text, newPromptTokens };
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const median = (xs: number[]) => quantile(xs, 0.5);

interface ServerScores {
  single: number;
  aggregate: Map<number, number>;
  ttftP50: number;
  ttftP99: number;
  /** TTFT p50 with 4 requests sent at once. */
  ttft4: number;
  itlP50: number;
  itlP99: number;
  /** Inter-token p99 with 8 requests on 4 slots: 4 streaming while the queued 4 are admitted one by one. */
  itl8P99: number;
  turn1: number;
  turn5: number;
  /** Prompt tokens processed per conversation at turn 1 and at turn 5 (median). */
  new1: number;
  new5: number;
}

const PROMPT = "The history of the printing press begins in the fifteenth century, when";
/** About 200 tokens: a prompt whose processing a running stream would notice. */
const LONG_PROMPT = Array.from({ length: 12 }, (_, i) => `Paragraph ${i + 1}: the press spread from Mainz to Venice, Paris and London within decades.`).join(" ");
const TURN = "Tell me more about that, and include the names of the people, the places, the dates and the " +
  "inventions involved, describing how each of them changed the way books were made, sold and read across Europe, " +
  "and what happened to the scribes and copyists whose work was replaced by the new machines in the decades after.";

async function measure(url: string, o: Required<Pick<ServerBenchOptions, "tokens" | "repeats" | "concurrency">>, log: (l: string) => void): Promise<ServerScores> {
  const req = (i: number, max = o.tokens) => ({ prompt: `${PROMPT} (${i})`, max_tokens: max, temperature: 0, ignore_eos: true });
  await stream(url, req(0, 8), false); // warm-up
  const single: number[] = [];
  for (let r = 0; r < o.repeats; r++) single.push((await stream(url, req(100 + r), false)).decodeRate);
  const aggregate = new Map<number, number>();
  const ttfts: number[] = [];
  const ttft4: number[] = [];
  const gaps: number[] = [];
  for (const c of o.concurrency) {
    const rates: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      const t0 = performance.now();
      const runs = await Promise.all(Array.from({ length: c }, (_, i) => stream(url, req(1000 * c + 10 * r + i), false)));
      rates.push((runs.reduce((n, x) => n + x.tokens, 0) * 1000) / (performance.now() - t0));
      for (const x of runs) {
        ttfts.push(x.ttft);
        if (c === 4) ttft4.push(x.ttft);
        gaps.push(...x.gaps);
      }
    }
    aggregate.set(c, median(rates));
    log(`  concurrency ${c}: ${median(rates).toFixed(1)} tok/s`);
  }
  // Smooth streams: 8 requests with ~200-token prompts and staggered lengths on 4 slots, so each
  // queued one is admitted (and its prompt processed) while the others are streaming.
  const itl8: number[] = [];
  for (let r = 0; r < o.repeats; r++) {
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        stream(url, { prompt: `${LONG_PROMPT} (${r}.${i})`, max_tokens: Math.round(o.tokens * (0.5 + 0.25 * (i % 4))), temperature: 0, ignore_eos: true }, false),
      ),
    );
    for (const x of runs) itl8.push(...x.gaps);
  }
  log(`  8 concurrent, staggered: inter-token p99 ${quantile(itl8, 0.99).toFixed(0)} ms`);
  return {
    single: median(single),
    aggregate,
    ttftP50: quantile(ttfts, 0.5),
    ttftP99: quantile(ttfts, 0.99),
    ttft4: quantile(ttft4, 0.5),
    itl8P99: quantile(itl8, 0.99),
    itlP50: quantile(gaps, 0.5),
    itlP99: quantile(gaps, 0.99),
    ...(await measureTurns(url, log)),
  };
}

/** Multi-turn: 8 conversations share the 4 slots; each turn appends the answer and ~75 new tokens. */
async function measureTurns(url: string, log: (l: string) => void): Promise<Pick<ServerScores, "turn1" | "turn5" | "new1" | "new5">> {
  const convs = Array.from({ length: 8 }, (_, i) => [{ role: "user", content: `Conversation ${i}. ${TURN}` }] as { role: string; content: string }[]);
  // A first chat request pays one-time costs (the chat template's first render); not turn 1's.
  await stream(url, { messages: [{ role: "user", content: "Warm-up." }], max_tokens: 4, temperature: 0 }, true);
  const turnTtft: number[] = [];
  const fresh: number[] = [];
  for (let turn = 1; turn <= 5; turn++) {
    const runs = await Promise.all(
      convs.map((messages) => stream(url, { messages, max_tokens: 16, temperature: 0, ignore_eos: true, stream_options: { include_usage: true } }, true)),
    );
    runs.forEach((r, i) => convs[i]!.push({ role: "assistant", content: r.text }, { role: "user", content: TURN }));
    turnTtft.push(median(runs.map((r) => r.ttft)));
    fresh.push(median(runs.map((r) => r.newPromptTokens)));
    log(`  multi-turn turn ${turn}: TTFT p50 ${turnTtft.at(-1)!.toFixed(0)} ms, ${fresh.at(-1)} prompt tokens processed per conversation`);
  }
  return { turn1: turnTtft[0]!, turn5: turnTtft[4]!, new1: fresh[0]!, new5: fresh[4]! };
}

export async function benchServer(opts: ServerBenchOptions = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const threads = opts.threads ?? (navigator.hardwareConcurrency || 2);
  const slots = opts.slots ?? 4;
  const ctx = opts.ctx ?? 2048;
  const o = { tokens: opts.tokens ?? 48, repeats: opts.repeats ?? 3, concurrency: opts.concurrency ?? [1, 4, 8] };
  const model = opts.model ?? join(ROOT, "models", "qwen3-0.6b-q8_0.gguf");
  if (!opts.model) await makeTestModel({ preset: "qwen3-0.6b", type: "Q8_0", out: model });
  const llamaServer = ensureLlamaServer(log);
  // Our server on libraries built from the same source with the same flags.
  const ours = setupNative({ backend: "cpu", fromSource: true, makeCurrent: false, log: () => {} });
  const libDir = join(ROOT, "build", "native", ours.variant);
  const ourBuild = `${ours.variant} (llama.cpp ${ours.llamaCppRelease} ${ours.origin === "source" ? `built from the source bundle${nativeFlag(BUILD_OURS)}` : "prebuilt npm libraries"})`;
  const theirBuild = `built from the same bundle${nativeFlag(BUILD)}`;

  const results: Record<"ours" | "llama", ServerScores> = {} as never;
  for (const which of ["llama", "ours"] as const) {
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const cmd =
      which === "llama"
        ? [llamaServer, "-m", model, "--host", "127.0.0.1", "--port", String(port), "-np", String(slots), "-c", String(ctx * slots), "-t", String(threads), "-b", "512", "-ub", "512", "-kvu", "--no-webui"]
        : [process.execPath, join(ROOT, "src", "main.ts"), "--model", `bench=${model}`, "--host", "127.0.0.1", "--port", String(port), "--parallel", String(slots), "--ctx-size", String(ctx), "--threads", String(threads), "--batch-size", "512", "--log-level", "warn", "--no-auth"];
    log(`${which === "llama" ? "llama-server" : "cocoon-server"}: ${slots} slots x ${ctx} tokens, ${threads} threads`);
    // Server logs go to a file: an unread pipe would fill up and stall the server.
    const logFile = join(ROOT, "build", "cache", `bench-${which}.log`);
    const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: Bun.file(logFile), env: { ...process.env, COCOON_LIB_DIR: libDir } });
    try {
      // llama-server answers /health 503 while loading; ours has /readiness for that.
      await waitReady(url, proc, which === "llama" ? "/health" : "/readiness").catch((err) => {
        throw new Error(`${err.message}; see ${logFile}`);
      });
      results[which] = opts.turnsOnly ? ((await measureTurns(url, log)) as ServerScores) : await measure(url, o, log);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }
  const a = results.ours;
  const b = results.llama;
  // Each row: the two values, the ratio, and the issue's goal for that ratio with ✓ or ✗.
  const mark = (ok: boolean) => (ok ? "✓" : "✗");
  const row = (name: string, x: number, y: number, goal: "≥" | "≤" | null, target: number, d = 1) => {
    const r = x / y;
    const g = goal === null ? "" : `${goal} ${target} ${mark(goal === "≥" ? r >= target : r <= target)}`;
    return `| ${name} | ${x.toFixed(d)} | ${y.toFixed(d)} | ${r.toFixed(2)} | ${g} |`;
  };
  const turnRows = [
    row("TTFT at turn 5 ms, 8 conversations on 4 slots", a.turn5, b.turn5, "≤", 0.5, 0),
    `| our turn 5 ÷ our turn 1 (TTFT ms) | ${a.turn5.toFixed(0)} | ${a.turn1.toFixed(0)} | ${(a.turn5 / a.turn1).toFixed(2)} | ≤ 1.2 ${mark(a.turn5 / a.turn1 <= 1.2)} |`,
    `| prompt tokens processed per conversation at turn 5 (turn 1), the rest from the KV cache | ${a.new5} (${a.new1}) | ${b.new5} (${b.new1}) | ${(a.new5 / b.new5).toFixed(2)} |  |`,
  ];
  const header = [
    `## cocoon-server vs llama-server: ${model.replace(`${ROOT}/`, "")}, ${slots} slots x ${ctx} tokens, ${threads} threads, ${o.tokens} tokens per request, median of ${o.repeats}`,
    "",
    `builds: cocoon-server on ${ourBuild}; llama-server ${theirBuild}. Both measured in this run, one after the other.`,
    "",
    "| measure | cocoon-server | llama-server | ratio (ours ÷ theirs) | goal |",
    "| --- | ---: | ---: | ---: | --- |",
  ];
  if (opts.turnsOnly) {
    for (const l of [...header, ...turnRows]) log(l);
    return [...header, ...turnRows].join("\n");
  }
  const speculative = await speculativeRows({ model: opts.model, threads, tokens: o.tokens * 2, libDir, log });
  const lines = [
    ...header,
    // Throughput rows are at this CPU's memory-bandwidth limit: the goal is not to lose, within noise.
    row("single-stream decode tok/s", a.single, b.single, "≥", 0.97),
    ...o.concurrency.filter((c) => c > 1).map((c) => row(`aggregate tok/s, ${c} concurrent`, a.aggregate.get(c)!, b.aggregate.get(c)!, c >= 4 ? "≥" : null, 0.97)),
    row("TTFT p50 ms, 4 concurrent (lower is better)", a.ttft4, b.ttft4, "≤", 1, 0),
    row("TTFT p50 / p99 ms, all runs (lower is better)", a.ttftP50, b.ttftP50, null, 0, 0).replace(/\| ([\d.]+) \| ([\d.]+) \|/, `| $1 / ${a.ttftP99.toFixed(0)} | $2 / ${b.ttftP99.toFixed(0)} |`),
    row("inter-token p99 ms, 8 concurrent (4 streaming, 4 queued; ~200-token prompts)", a.itl8P99, b.itl8P99, "≤", 1, 0),
    row("inter-token p50 / p99 ms, equal-length runs", a.itlP50, b.itlP50, null, 0).replace(/\| ([\d.]+) \| ([\d.]+) \|/, `| $1 / ${a.itlP99.toFixed(1)} | $2 / ${b.itlP99.toFixed(1)} |`),
    ...turnRows,
    ...speculative,
    `| GPU: decode ÷ bandwidth bound, aggregate tok/s at 1 / 16 / 64 concurrent | no GPU lent to this run | | | – |`,
  ];
  for (const l of lines) log(l);
  return lines.join("\n");
}

/** Saves a results table as bench/results/<date>-<host>.md. */
export async function saveResults(markdown: string): Promise<string> {
  const dir = join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const host = (await Bun.$`hostname`.text()).trim() || "host";
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-${host}.md`);
  await Bun.write(file, `${markdown}\n`);
  return file;
}

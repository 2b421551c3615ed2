// `bun run bench [-- suite...]`: side-by-side benchmarks, each printing ratios against a reference
// measured in the same run. Suites: server (vs llama-server), engine, http, billing, sessions; all by default,
// with the tables saved to bench/results/<date>-<host>.md. `cluster` (gateway and workers) runs when named.
import { parseArgs } from "node:util";
import { benchEngine } from "./bench-engine.ts";
import { benchHttp } from "./bench-http.ts";
import { benchServer, saveResults } from "./bench-server.ts";
import { benchBilling } from "./bench-billing.ts";
import { benchSessions } from "./bench-sessions.ts";
import { benchCluster } from "./bench-cluster.ts";
import { speculativeRows } from "./bench-speculative.ts";
import { ensureSetup } from "./ensure-setup.ts";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    model: { type: "string" },
    tokens: { type: "string" },
    repeats: { type: "string" },
    threads: { type: "string" },
    "no-save": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  console.log(`usage: bun run bench [-- server|engine|http|billing|sessions|cluster|speculative|turns ...] [--model FILE] [--tokens N] [--repeats N] [--threads N] [--no-save]

  server   cocoon-server vs llama-server (built once from the same llama.cpp source bundle): decode
           tok/s, aggregate tok/s at 1-8 concurrent, TTFT and inter-token latency p50/p99, multi-turn TTFT
  engine   engine vs a raw decode loop through the same binding; concurrency 1-8; sampler cost
           (default model: a generated Qwen3-0.6B-sized Q8_0 model in models/)
  http     GET /v1/models requests/s vs a bare Bun.serve with the same bytes (wrk when installed);
           /health p99 with every slot generating vs idle (tiny demo model)
  billing  the same streaming load with billing on vs --no-auth; authenticated GET /v1/balance req/s
  sessions TTFT of turn 10 (~4k tokens of history) in a session vs the same prompt cold, and turn 1
           (tiny demo model and the Qwen3-0.6B-sized model, or --model FILE)
  cluster  a gateway (--upstream) in front of cocoon-server workers (--role worker): latency added per
           request and req/s ÷ straight to the worker; aggregate tok/s with two workers ÷ one (not in the default set)
  turns    the warm-conversation rows of \`server\` alone: 8 conversations taking 5 turns on 4 slots, both servers
  speculative  the speculative decoding rows of \`server\` alone: the target as its own draft, a smaller
           draft, n-gram lookup on a repetitive prompt, each tok/s ÷ the same run without (not in the default set)`);
  process.exit(0);
}

ensureSetup();
const suites = positionals.length ? positionals : ["server", "engine", "http", "billing", "sessions"];
const tables: string[] = [];
const common = {
  model: values.model,
  tokens: values.tokens ? Number(values.tokens) : undefined,
  repeats: values.repeats ? Number(values.repeats) : undefined,
  threads: values.threads ? Number(values.threads) : undefined,
};
for (const suite of suites) {
  if (suite === "server") {
    tables.push(await benchServer(common));
  } else if (suite === "engine") {
    tables.push(await benchEngine({
      model: values.model,
      tokens: values.tokens ? Number(values.tokens) : undefined,
      repeats: values.repeats ? Number(values.repeats) : undefined,
      threads: values.threads ? Number(values.threads) : undefined,
    }));
  } else if (suite === "http") {
    tables.push(await benchHttp());
  } else if (suite === "billing") {
    tables.push(await benchBilling());
  } else if (suite === "sessions") {
    tables.push(await benchSessions({ models: values.model ? [values.model] : undefined, repeats: common.repeats, threads: common.threads }));
  } else if (suite === "turns") {
    tables.push(await benchServer({ ...common, turnsOnly: true }));
  } else if (suite === "cluster") {
    tables.push(await benchCluster());
  } else if (suite === "speculative") {
    const rows = await speculativeRows({ model: values.model, tokens: common.tokens, threads: common.threads });
    tables.push(["## speculative decoding (our engine, one stream)", "", "| measure | on | off | ratio (on ÷ off) | goal |", "| --- | ---: | ---: | ---: | --- |", ...rows].join("\n"));
  } else {
    console.error(`unknown benchmark suite "${suite}" (available: server, engine, http, billing, sessions, cluster, speculative, turns)`);
    process.exit(2);
  }
}
if (!values["no-save"]) {
  const cpu = (await Bun.file("/proc/cpuinfo").text().catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ?? process.arch;
  const header = `# cocoon-server benchmarks, ${new Date().toISOString()}\n\n${navigator.hardwareConcurrency} cores (${cpu}), bun ${Bun.version}\n`;
  console.log(`results saved to ${await saveResults([header, ...tables].join("\n\n"))}`);
}
process.exit(0);

// `bun run bench [-- suite...]`: side-by-side benchmarks, each printing ratios against a reference
// measured in the same run. Suites: engine (default), http.
import { parseArgs } from "node:util";
import { benchEngine } from "./bench-engine.ts";
import { benchHttp } from "./bench-http.ts";
import { ensureSetup } from "./ensure-setup.ts";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    model: { type: "string" },
    tokens: { type: "string" },
    repeats: { type: "string" },
    threads: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  console.log(`usage: bun run bench [-- engine|http ...] [--model FILE] [--tokens N] [--repeats N] [--threads N]

  engine   engine vs a raw decode loop through the same binding; concurrency 1-8; sampler cost
           (default model: a generated Qwen3-0.6B-sized Q8_0 model in models/)
  http     GET /v1/models requests/s vs a bare Bun.serve with the same bytes (wrk when installed);
           /health p99 with every slot generating vs idle (tiny demo model)`);
  process.exit(0);
}

ensureSetup();
const suites = positionals.length ? positionals : ["engine"];
for (const suite of suites) {
  if (suite === "engine") {
    await benchEngine({
      model: values.model,
      tokens: values.tokens ? Number(values.tokens) : undefined,
      repeats: values.repeats ? Number(values.repeats) : undefined,
      threads: values.threads ? Number(values.threads) : undefined,
    });
  } else if (suite === "http") {
    await benchHttp();
  } else {
    console.error(`unknown benchmark suite "${suite}" (available: engine, http)`);
    process.exit(2);
  }
}
process.exit(0);

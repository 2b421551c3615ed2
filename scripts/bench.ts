// `bun run bench [-- suite...]`: side-by-side benchmarks, each printing ratios against a reference
// measured in the same run. Suites: engine (default).
import { parseArgs } from "node:util";
import { benchEngine } from "./bench-engine.ts";
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
  console.log(`usage: bun run bench [-- engine] [--model FILE] [--tokens N] [--repeats N] [--threads N]

  engine   engine vs a raw decode loop through the same binding; concurrency 1-8; sampler cost
           (default model: a generated Qwen3-0.6B-sized Q8_0 model in models/)`);
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
  } else {
    console.error(`unknown benchmark suite "${suite}" (available: engine)`);
    process.exit(2);
  }
}
process.exit(0);

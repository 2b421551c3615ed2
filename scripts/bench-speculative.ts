// Speculative decoding rows of `bun run bench -- server` (alone: `bun run bench -- speculative`): our
// engine, one greedy stream, each way of drafting against the same run without it: the target as its
// own draft (every guess kept: the ceiling of the mechanism), a smaller draft with the same tokenizer
// (random weights keep almost no guess: the cost of rejections), n-gram lookup on a repetitive prompt.
import { join } from "node:path";
import { ROOT } from "./setup-native.ts";
import { makeTestModel } from "./make-test-model.ts";
import type { DraftSpec } from "../src/inference/worker-protocol.ts";

export interface SpeculativeBenchOptions {
  /** Target model. Defaults to the generated Qwen3-0.6B-sized Q8_0 model. */
  model?: string;
  /** Its smaller draft. Defaults to the generated qwen3-0.6b-draft Q8_0 model (4 layers, 256 wide). */
  draft?: string;
  threads?: number;
  /** Tokens generated per run. Defaults to 96. */
  tokens?: number;
  libDir?: string;
  log?: (line: string) => void;
}

interface Run {
  /** Decode tok/s after the first token. */
  rate: number;
  text: string;
  drafted: number;
  accepted: number;
  steps: number;
}

const STORY = "Write a long story about a lighthouse keeper who finds a message in a bottle, with many details:";
const REPETITIVE = `Repeat this list exactly, ten times: ${"alpha, beta, gamma, delta, epsilon; ".repeat(12)}`;

async function run(model: string, o: { threads: number; libDir?: string; draft?: DraftSpec; ngramDraft?: number }, prompt: string, tokens: number): Promise<Run> {
  const { Engine } = await import("../src/inference/engine.ts");
  const engine = await Engine.start({ models: [{ id: "bench", path: model, draft: o.draft }], slots: 1, ctxSize: 2048, threads: o.threads, ngramDraft: o.ngramDraft, libDir: o.libDir });
  try {
    let text = "";
    let rate = 0;
    for await (const e of engine.submit({ prompt, maxTokens: tokens, ignoreEos: true, sampling: { temperature: 0 } })) {
      if (e.type === "delta") text += e.content;
      if (e.type === "done") rate = e.timings.tokensPerSecond;
    }
    const st = engine.stats()[0]!;
    return { rate, text, drafted: st.draftedTokens, accepted: st.acceptedTokens, steps: st.draftSteps };
  } finally {
    engine.close();
  }
}

/** Markdown table rows (measure | on | off | ratio | goal), the same columns as the server table. */
export async function speculativeRows(opts: SpeculativeBenchOptions = {}): Promise<string[]> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const threads = opts.threads ?? (navigator.hardwareConcurrency || 2);
  const tokens = opts.tokens ?? 96;
  const model = opts.model ?? join(ROOT, "models", "qwen3-0.6b-q8_0.gguf");
  if (!opts.model) await makeTestModel({ preset: "qwen3-0.6b", type: "Q8_0", out: model });
  const draft = opts.draft ?? join(ROOT, "models", "qwen3-0.6b-draft-q8_0.gguf");
  if (!opts.draft) await makeTestModel({ preset: "qwen3-0.6b-draft", type: "Q8_0", out: draft });
  const o = { threads, libDir: opts.libDir };
  log(`speculative decoding: ${tokens} greedy tokens, one stream, ${threads} threads`);
  const timed = async (name: string, ...args: Parameters<typeof run>) => {
    const r = await run(...args);
    log(`  ${name}: ${r.rate.toFixed(1)} tok/s, ${r.accepted} of ${r.drafted} guesses kept in ${r.steps} verifying steps`);
    return r;
  };
  const off = await timed("off", model, o, STORY, tokens);
  const self = await timed("target as its own draft", model, { ...o, draft: { path: model } }, STORY, tokens);
  const small = await timed("smaller draft", model, { ...o, draft: { path: draft } }, STORY, tokens);
  const ngOff = await timed("repetitive prompt, off", model, o, REPETITIVE, tokens);
  const ngOn = await timed("repetitive prompt, n-gram", model, { ...o, ngramDraft: 8 }, REPETITIVE, tokens);
  const mark = (ok: boolean) => (ok ? "✓" : "✗");
  const pct = (r: Run) => `${((r.accepted * 100) / Math.max(1, r.drafted)).toFixed(0)}% of ${r.drafted} guesses kept, ${(1 + r.accepted / Math.max(1, r.steps)).toFixed(2)} tokens per verifying step`;
  const same = (a: Run, b: Run) => (a.text === b.text ? "yes" : "NO");
  const row = (name: string, on: Run, base: Run, goal: string, ok: boolean) =>
    `| ${name}; output identical: ${same(on, base)} | ${on.rate.toFixed(1)} | ${base.rate.toFixed(1)} (ours, off) | ${(on.rate / base.rate).toFixed(2)} | ${goal} ${mark(ok && on.text === base.text)} |`;
  return [
    row(`draft model = the target itself (\`#draft=\` its own file, draft-max 8): tok/s on ÷ off, the ceiling of the mechanism; ${pct(self)}`, self, off, "100% kept", self.drafted > 0 && self.accepted === self.drafted),
    row(`smaller draft (\`#draft=\` ${draft.replace(`${ROOT}/`, "")}, random weights, draft-max 8): tok/s on ÷ off, the cost of rejections; ${pct(small)}`, small, off, "identical output", true),
    row(`n-gram lookup speculation (--ngram-draft 8) on a repetitive prompt: tok/s on ÷ off; ${pct(ngOn)}`, ngOn, ngOff, "> 1", ngOn.rate > ngOff.rate),
  ];
}

if (import.meta.main) {
  for (const line of await speculativeRows()) console.log(line);
}

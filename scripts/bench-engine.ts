// `bun run bench -- engine`: our engine against a raw decode loop through the same binding (no
// scheduler, no worker) on a Qwen3-0.6B-sized model, plus aggregate throughput at 1-8 concurrent
// requests and the per-token cost of our sampler against llama.cpp's own sampler chain.
import { join } from "node:path";
import { ROOT } from "./setup-native.ts";
import { makeTestModel } from "./make-test-model.ts";
import { Engine } from "../src/inference/engine.ts";
import { LlamaBatch, loadLlama, type SamplerStep } from "../src/native/llama.ts";
import { TokenSampler, type TokenSamplerOptions } from "../src/native/token-sampler.ts";
import type { EngineEvent } from "../src/inference/types.ts";

export interface EngineBenchOptions {
  model?: string;
  tokens?: number;
  repeats?: number;
  threads?: number;
}

const PROMPT = "The history of the printing press begins";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number, d = 1) => x.toFixed(d);

/** Greedy decode of `tokens` tokens straight through the binding; returns generation tok/s. */
function rawDecode(path: string, tokens: number, threads: number): number {
  const model = loadLlama().loadModel(path);
  try {
    const ctx = model.createContext({ nCtx: 1024, nBatch: 512, threads });
    const sampler = new TokenSampler(model, { temperature: 0 });
    const batch = new LlamaBatch(512);
    const prompt = model.tokenize(PROMPT);
    prompt.forEach((t, i) => batch.add(t, i, 0, i === prompt.length - 1));
    ctx.decode(batch);
    let row = prompt.length - 1;
    let t0 = 0;
    for (let i = 0, pos = prompt.length; i < tokens; i++, pos++) {
      const { token } = sampler.sample(ctx, row);
      if (i === 0) t0 = performance.now();
      batch.clear();
      row = batch.add(token, pos, 0, true);
      ctx.decode(batch);
    }
    // Same definition as the engine's timing: tokens after the first, over the time after it.
    const rate = ((tokens - 1) * 1000) / (performance.now() - t0);
    sampler.dispose();
    ctx.dispose();
    return rate;
  } finally {
    model.dispose();
  }
}

async function engineRun(engine: Engine, tokens: number, concurrency: number): Promise<{ perStream: number; aggregate: number }> {
  const t0 = performance.now();
  const runs = await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      let done: Extract<EngineEvent, { type: "done" }> | undefined;
      for await (const e of engine.submit({ prompt: `${PROMPT} (${i})`, maxTokens: tokens, ignoreEos: true, sampling: { temperature: 0 } })) {
        if (e.type === "done") done = e;
      }
      return done!;
    }),
  );
  const wall = performance.now() - t0;
  const generated = runs.reduce((n, r) => n + r.usage.completionTokens, 0);
  return { perStream: median(runs.map((r) => r.timings.tokensPerSecond)), aggregate: (generated * 1000) / wall };
}

/** Microseconds per token for a sampler configuration, ours vs llama.cpp's chain, on one logits row. */
function samplerCost(path: string): { name: string; ours: number; chain: number }[] {
  const model = loadLlama().loadModel(path);
  const ctx = model.createContext({ nCtx: 256 });
  const batch = new LlamaBatch(64);
  model.tokenize(PROMPT).forEach((t, i, all) => batch.add(t, i, 0, i === all.length - 1));
  ctx.decode(batch);
  const row = batch.size - 1;
  const cases: { name: string; ours: TokenSamplerOptions; chain: SamplerStep[] }[] = [
    { name: "greedy", ours: { temperature: 0 }, chain: [{ type: "greedy" }] },
    {
      name: "top-k 40, top-p 0.95, min-p 0.05, temp 0.8",
      ours: { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: 1 },
      chain: [{ type: "top_k", k: 40 }, { type: "top_p", p: 0.95 }, { type: "min_p", p: 0.05 }, { type: "temp", temperature: 0.8 }, { type: "dist", seed: 1 }],
    },
    {
      name: "penalties + top-k 40, temp 0.8",
      ours: { temperature: 0.8, topK: 40, topP: 1, minP: 0, repeatPenalty: 1.1, frequencyPenalty: 0.5, presencePenalty: 0.5, seed: 1 },
      chain: [
        { type: "penalties", lastN: 64, repeat: 1.1, frequency: 0.5, presence: 0.5 },
        { type: "top_k", k: 40 },
        { type: "temp", temperature: 0.8 },
        { type: "dist", seed: 1 },
      ],
    },
  ];
  const N = 300;
  const out = cases.map((c) => {
    const ours = new TokenSampler(model, c.ours);
    const chain = model.createSampler(c.chain);
    const time = (f: () => void) => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) f();
      return ((performance.now() - t0) * 1000) / N;
    };
    // Penalties need a history; both samplers accept the tokens they pick.
    const r = { name: c.name, ours: time(() => ours.sample(ctx, row)), chain: time(() => chain.sample(ctx, row)) };
    ours.dispose();
    chain.dispose();
    return r;
  });
  ctx.dispose();
  model.dispose();
  return out;
}

export async function benchEngine(opts: EngineBenchOptions = {}): Promise<string> {
  const tokens = opts.tokens ?? 96;
  const repeats = opts.repeats ?? 5;
  const threads = opts.threads ?? (navigator.hardwareConcurrency || 2);
  const path = opts.model ?? join(ROOT, "models", "qwen3-0.6b-q8_0.gguf");
  if (!opts.model) await makeTestModel({ preset: "qwen3-0.6b", type: "Q8_0", out: path });
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    console.log(l);
  };
  log(`## engine benchmark: ${path.replace(`${ROOT}/`, "")}, ${tokens} tokens, ${threads} threads, median of ${repeats}`);
  log("");

  const raw: number[] = [];
  const engine = await Engine.start({ models: [{ id: "bench", path }], slots: 8, ctxSize: 512, threads, llamaLogLevel: "error" });
  try {
    await engineRun(engine, 8, 1); // warm-up
    const single: number[] = [];
    // Alternating the two keeps drift (heat, other load) from favouring either side.
    for (let i = 0; i < repeats; i++) {
      raw.push(rawDecode(path, tokens, threads));
      single.push((await engineRun(engine, tokens, 1)).perStream);
    }
    log("| measure | ours | reference | ratio |");
    log("| --- | ---: | ---: | ---: |");
    log(`| single-stream decode tok/s (engine ÷ raw binding loop) | ${fmt(median(single))} | ${fmt(median(raw))} | ${fmt(median(single) / median(raw), 3)} |`);
    const base = median(single);
    for (const c of [1, 2, 4, 8]) {
      const agg: number[] = [];
      for (let i = 0; i < repeats; i++) agg.push((await engineRun(engine, tokens, c)).aggregate);
      log(`| aggregate tok/s at ${c} concurrent (÷ single stream) | ${fmt(median(agg))} | ${fmt(base)} | ${fmt(median(agg) / base, 2)} |`);
    }
  } finally {
    engine.close();
  }
  log("");
  log("| sampler, µs per token (151,936-token vocabulary) | ours | llama.cpp chain | ratio |");
  log("| --- | ---: | ---: | ---: |");
  for (const r of samplerCost(path)) log(`| ${r.name} | ${fmt(r.ours)} | ${fmt(r.chain)} | ${fmt(r.ours / r.chain, 2)} |`);
  return lines.join("\n");
}

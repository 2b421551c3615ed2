// `bun run bench -- sessions`: what server-side sessions save. A conversation is built through
// /v1/chat/completions with session_id until it holds ~4k tokens of history; then the time to the
// first token of turn 10 is measured in the session (its KV cache pinned) against the very same
// messages sent cold without a session (after the session's cache was freed), plus turn 1 for scale.
// In-process app (app.handle), no network; the tiny demo model and a Qwen3-0.6B-sized Q8_0 model.
import { join } from "node:path";
import { ROOT } from "./setup-native.ts";
import { makeTestModel } from "./make-test-model.ts";
import { Engine } from "../src/inference/engine.ts";
import { createApp } from "../src/app.ts";
import { Metrics } from "../src/ops/metrics.ts";

export interface SessionsBenchOptions {
  /** Model files to measure. Defaults to the tiny demo model and models/qwen3-0.6b-q8_0.gguf (generated when missing). */
  models?: string[];
  /** Conversations measured per model. Defaults to 3. */
  repeats?: number;
  threads?: number;
  /** Words per user message (~1.2 tokens each). Defaults to 340, ~4k tokens of history by turn 10. */
  words?: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const WORDS =
  "river mountain lantern harbor quiet garden morning letter window journey market silver forest candle winter bridge story music village ocean meadow engine clock paper stone valley thunder orchard compass island".split(
    " ",
  );

/** Deterministic prose of `n` words, different for each seed. */
function prose(seed: number, n: number): string {
  let a = seed * 2654435761;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(next() * WORDS.length)]! + (i % 12 === 11 ? "." : ""));
  return out.join(" ");
}

interface Timed {
  ms: number;
  prompt: number;
  cached: number;
  content: string;
}

export async function benchSessions(opts: SessionsBenchOptions = {}): Promise<string> {
  const repeats = opts.repeats ?? 3;
  const words = opts.words ?? 340;
  const threads = opts.threads ?? (navigator.hardwareConcurrency || 2);
  let models = opts.models;
  if (!models) {
    const big = join(ROOT, "models", "qwen3-0.6b-q8_0.gguf");
    await makeTestModel({ preset: "qwen3-0.6b", type: "Q8_0", out: big });
    models = [join(ROOT, "models", "tiny-qwen3.gguf"), big];
  }
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    console.log(l);
  };
  log(`## sessions benchmark: time to first token of turn 10 (~4k tokens of history), in a session vs cold; ${threads} threads, median of ${repeats} conversations`);
  log("");
  log("| model | history tokens | turn 10 in session ms | same prompt cold ms | cold ÷ session | turn 1 ms | cached tokens at turn 10 |");
  log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const path of models) {
    const engine = await Engine.start({ models: [{ id: "bench", path }], slots: 2, ctxSize: 6144, threads, llamaLogLevel: "error" });
    const app = createApp({
      engine,
      metrics: new Metrics({ models: () => [] }),
      platform: null,
      version: "bench",
      loadedEngine: () => engine,
      coefficient: () => 1000,
    });
    const chat = async (body: Record<string, unknown>): Promise<Timed> => {
      const t0 = performance.now();
      const r = await app.handle(
        new Request("http://localhost/v1/chat/completions", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "bench", temperature: 0, enable_thinking: false, ...body }),
        }),
      );
      const j = (await r.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } }; error?: { message: string } };
      if (r.status !== 200) throw new Error(`bench request failed: ${r.status} ${j.error?.message}`);
      return { ms: performance.now() - t0, prompt: j.usage.prompt_tokens, cached: j.usage.prompt_tokens_details.cached_tokens, content: j.choices[0]!.message.content };
    };
    const warm: number[] = [];
    const cold: number[] = [];
    const first: number[] = [];
    let history = 0;
    let cached = 0;
    try {
      await chat({ messages: [{ role: "user", content: "warm-up" }], max_tokens: 2 });
      for (let rep = 0; rep < repeats; rep++) {
        const id = `bench-${rep}`;
        const messages: { role: string; content: string }[] = [];
        // Each conversation has its own text, so nothing of an earlier one is in any cache.
        for (let turn = 1; turn <= 9; turn++) {
          const user = { role: "user", content: `Conversation ${rep}, turn ${turn}: ${prose(rep * 100 + turn, words)}` };
          const r = await chat({ session_id: id, messages: [user], max_tokens: 8 });
          if (turn === 1) first.push(r.ms);
          messages.push(user, { role: "assistant", content: r.content });
        }
        const last = { role: "user", content: `Conversation ${rep}, turn 10: ${prose(rep * 100 + 10, words)}` };
        const inSession = await chat({ session_id: id, messages: [last], max_tokens: 1 });
        warm.push(inSession.ms);
        history = inSession.prompt;
        cached = inSession.cached;
        // Free the session's cache, then send the same prompt without a session.
        await app.handle(new Request(`http://localhost/v1/sessions/${id}`, { method: "DELETE" }));
        const without = await chat({ messages: [...messages, last], max_tokens: 1 });
        if (without.prompt !== inSession.prompt) throw new Error(`the cold prompt has ${without.prompt} tokens, the session's ${inSession.prompt}`);
        cold.push(without.ms);
      }
    } finally {
      engine.close();
    }
    const name = path.replace(`${ROOT}/`, "");
    log(`| ${name} | ${history} | ${median(warm).toFixed(0)} | ${median(cold).toFixed(0)} | ${(median(cold) / median(warm)).toFixed(1)} | ${median(first).toFixed(0)} | ${cached} |`);
  }
  return lines.join("\n");
}

if (import.meta.main) await benchSessions();

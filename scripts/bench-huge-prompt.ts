// `bun scripts/bench-huge-prompt.ts`: how much a 7 MiB chat message (and a 3 MB embedding input)
// delays a small concurrent request, as a ratio to the small request alone. Text that cannot fit is
// refused from its byte count, so the ratio should stay near 1 (8.9x on a busy 2-core machine when it was tokenized; 1.7x now).
// Then the same beside a 300 KB prompt, and beside a 300 KB chat message, which pass the byte bound
// and are tokenized (then refused for their token count): in the tokenizer workers, off the decode path.
import { Engine } from "../src/inference/engine.ts";
import { createApp, engineMetrics } from "../src/app.ts";
import { join } from "node:path";
import { ROOT } from "./setup-native.ts";

const engine = await Engine.start({ models: [{ id: "tiny", path: join(ROOT, "models", "tiny-qwen3.gguf") }], slots: 4, ctxSize: 4096 });
const app = createApp({ engine, loadedEngine: () => engine, metrics: engineMetrics(() => engine), platform: null, version: "bench" });
const post = (path: string, body: unknown) => app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
const small = async () => {
  const t = performance.now();
  const r = await post("/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 4 });
  await r.arrayBuffer();
  return performance.now() - t;
};
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

await small();
const huge = "lorem ipsum ".repeat(611_670); // 7 MiB
const big = "x".repeat(3_000_000);
const fits = "lorem ipsum ".repeat(25_000); // 300 KB: under 128 B x 4096, so it is tokenized
const alone: number[] = [];
const beside: number[] = [];
const besideFit: number[] = [];
const besideChat: number[] = [];
const statuses: number[] = [];
const fitStatuses: number[] = [];
// Interleaved, so a busy machine's drift hits the three alike.
// `--rounds N` (default 9): fewer on a loaded machine.
const ROUNDS = Number(process.argv[process.argv.indexOf("--rounds") + 1]) || 9;
for (let i = 0; i < ROUNDS; i++) {
  alone.push(await small());
  const heavy = [post("/v1/chat/completions", { messages: [{ role: "user", content: huge }], max_tokens: 1 }), post("/v1/embeddings", { input: big })];
  beside.push(await small());
  for (const r of await Promise.all(heavy)) statuses.push(r.status);
  const prompt = post("/v1/completions", { prompt: fits, max_tokens: 1 });
  besideFit.push(await small());
  fitStatuses.push((await prompt).status);
  const message = post("/v1/chat/completions", { messages: [{ role: "user", content: fits }], max_tokens: 1 });
  besideChat.push(await small());
  fitStatuses.push((await message).status);
}
// A running stream's longest pause between tokens, alone and while 300 KB prompts are submitted one
// after another: tokenizing them on the decode path shows up as a pause of one tokenization.
const longestPause = async (heavy: boolean) => {
  const stream = engine.submit({ prompt: [9707, 1879], maxTokens: 300, ignoreEos: true, sampling: { temperature: 0 } });
  let last = 0;
  let most = 0;
  let n = 0;
  const pending: Promise<unknown>[] = [];
  for await (const e of stream) {
    if (e.type !== "delta") continue;
    const t = performance.now();
    if (n++ > 10) most = Math.max(most, t - last);
    last = t;
    // Every 40 tokens, one more big prompt (refused after tokenizing: it has ~50,000 tokens).
    if (heavy && n % 40 === 0) pending.push(post("/v1/completions", { prompt: fits, max_tokens: 1 }).then((r) => r.arrayBuffer()));
  }
  await Promise.all(pending);
  return most;
};
const pauseAlone: number[] = [];
const pauseBeside: number[] = [];
for (let i = 0; i < Math.max(1, Math.ceil(ROUNDS / 3)); i++) {
  pauseAlone.push(await longestPause(false));
  pauseBeside.push(await longestPause(true));
}
const info = engine.model();
console.log(`longest token ${info.longestTokenBytes} bytes x context ${info.contextWindow}: text over ${info.longestTokenBytes * info.contextWindow} bytes is refused untokenized`);
console.log(`small request alone: ${median(alone).toFixed(1)} ms; beside a 7 MiB message and a 3 MB embedding: ${median(beside).toFixed(1)} ms; ratio ${(median(beside) / median(alone)).toFixed(2)}`);
console.log(`heavy requests answered: ${[...new Set(statuses)].join(", ")}`);
console.log(`small request beside a 300 KB completion prompt (tokenized, then 400): ${median(besideFit).toFixed(1)} ms; ratio ${(median(besideFit) / median(alone)).toFixed(2)}`);
console.log(`small request beside a 300 KB chat message (tokenized, then 400): ${median(besideChat).toFixed(1)} ms; ratio ${(median(besideChat) / median(alone)).toFixed(2)}; answered ${[...new Set(fitStatuses)].join(", ")}`);
console.log(`a stream's longest pause between tokens: ${median(pauseAlone).toFixed(1)} ms alone, ${median(pauseBeside).toFixed(1)} ms while 300 KB prompts are tokenized; ratio ${(median(pauseBeside) / median(pauseAlone)).toFixed(2)}`);
engine.close();

// `cocoon-server generate`: load one model and stream a completion of a prompt to stdout. The first
// end-to-end path through the binding; the engine and HTTP server build on the same pieces.
import { LlamaBatch, Utf8Stream, loadLlama, type SamplerStep } from "../native/llama.ts";
import { ConfigError, type Config } from "../config/config.ts";
import { resolveModels } from "../config/models.ts";

export const GENERATE_FLAGS = {
  prompt: true,
  "max-tokens": true,
  temperature: true,
  "top-k": true,
  "top-p": true,
  "min-p": true,
  "repeat-penalty": true,
  seed: true,
} as const;

export const GENERATE_HELP = `generate options:
  --prompt <text>           text to continue (required)
  --max-tokens <n>          most tokens to generate [default: 128]
  --temperature <t>         0 = greedy [default: 0.8]
  --top-k <k>               [default: 40]
  --top-p <p>               [default: 0.95]
  --min-p <p>               [default: 0.05]
  --repeat-penalty <r>      1 = off [default: 1.0]
  --seed <n>                sampling seed [default: random]`;

function num(extra: Record<string, string | boolean>, name: string, dflt: number, min: number, max: number, int = false): number {
  const raw = extra[name];
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
    throw new ConfigError(`--${name} must be ${int ? "an integer" : "a number"} from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function samplerSteps(extra: Record<string, string | boolean>): SamplerStep[] {
  const temperature = num(extra, "temperature", 0.8, 0, 10);
  const repeat = num(extra, "repeat-penalty", 1, 0, 10);
  const steps: SamplerStep[] = [];
  if (repeat !== 1) steps.push({ type: "penalties", lastN: 64, repeat, frequency: 0, presence: 0 });
  if (temperature === 0) return [...steps, { type: "greedy" }];
  steps.push(
    { type: "top_k", k: num(extra, "top-k", 40, 0, 1e6, true) },
    { type: "top_p", p: num(extra, "top-p", 0.95, 0, 1) },
    { type: "min_p", p: num(extra, "min-p", 0.05, 0, 1) },
    { type: "temp", temperature },
    { type: "dist", seed: num(extra, "seed", Math.floor(Math.random() * 2 ** 32), 0, 2 ** 32 - 1, true) },
  );
  return steps;
}

export async function generateCommand(config: Config, extra: Record<string, string | boolean>, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<void> {
  const prompt = extra.prompt;
  if (typeof prompt !== "string" || prompt === "") throw new ConfigError("generate needs --prompt <text>");
  const maxTokens = num(extra, "max-tokens", 128, 1, 1e6, true);
  const steps = samplerSteps(extra);
  const [entry] = resolveModels(config);
  const llama = loadLlama({ libDir: config.libDir || undefined, logLevel: config.llamaLogLevel as "error" });
  using model = llama.loadModel(entry!.path, { gpuLayers: config.gpuLayers });
  const tokens = model.tokenize(prompt);
  const nCtx = Math.min(config.ctxSize || model.nCtxTrain, model.nCtxTrain);
  if (tokens.length + maxTokens > nCtx) {
    throw new ConfigError(`prompt (${tokens.length} tokens) + --max-tokens ${maxTokens} exceed the context of ${nCtx} tokens`);
  }
  using ctx = model.createContext({ nCtx, nBatch: config.batchSize, threads: config.threads || undefined });
  using sampler = model.createSampler(steps);
  const batch = new LlamaBatch(Math.max(config.batchSize, 1));
  const t0 = performance.now();
  // The prompt goes in as chunks of at most one batch; only its last token needs logits.
  for (let start = 0; start < tokens.length; start += batch.capacity) {
    batch.clear();
    const end = Math.min(tokens.length, start + batch.capacity);
    for (let i = start; i < end; i++) batch.add(tokens[i]!, i, 0, i === tokens.length - 1);
    ctx.decode(batch);
  }
  const t1 = performance.now();
  const text = new Utf8Stream();
  let row = batch.size - 1;
  let generated = 0;
  for (let pos = tokens.length; generated < maxTokens; pos++) {
    const token = sampler.sample(ctx, row);
    generated++;
    if (model.isEog(token)) break;
    out(text.push(model.tokenBytes(token, false)));
    batch.clear();
    row = batch.add(token, pos, 0, true);
    ctx.decode(batch);
  }
  out(text.flush());
  out("\n");
  const t2 = performance.now();
  const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(1) : "-");
  console.error(
    `[generate] ${entry!.id}: prompt ${tokens.length} tokens in ${(t1 - t0).toFixed(0)} ms (${rate(tokens.length, t1 - t0)} tok/s), ` +
      `generated ${generated} tokens in ${(t2 - t1).toFixed(0)} ms (${rate(generated, t2 - t1)} tok/s)`,
  );
}

// `cocoon-server generate`: stream a completion of --prompt (or, with --chat, a chat reply) to stdout
// through the inference engine, the same path the HTTP server uses.
import { ConfigError, type Config } from "../config/config.ts";
import { resolveModels } from "../config/models.ts";
import { Engine } from "../inference/engine.ts";
import { engineOptions } from "../server.ts";
import type { GenerateRequest, SamplingParams } from "../inference/types.ts";

export const GENERATE_FLAGS = {
  prompt: true,
  chat: false,
  system: true,
  "max-tokens": true,
  temperature: true,
  "top-k": true,
  "top-p": true,
  "min-p": true,
  "repeat-penalty": true,
  seed: true,
  stop: true,
} as const;

export const GENERATE_HELP = `generate options:
  --prompt <text>           text to continue, or with --chat the user message (required)
  --chat                    apply the model's chat template (reasoning goes to stderr)
  --system <text>           system message for --chat
  --max-tokens <n>          most tokens to generate [default: 128]
  --temperature <t>         0 = greedy [default: 0.8]
  --top-k <k>               0 = off [default: 40]
  --top-p <p>               1 = off [default: 0.95]
  --min-p <p>               0 = off [default: 0.05]
  --repeat-penalty <r>      1 = off [default: 1.0]
  --seed <n>                sampling seed [default: random]
  --stop <text>             stop before this text`;

function num(extra: Record<string, string | boolean>, name: string, min: number, max: number, int = false): number | undefined {
  const raw = extra[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
    throw new ConfigError(`--${name} must be ${int ? "an integer" : "a number"} from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function generateRequest(extra: Record<string, string | boolean>): GenerateRequest {
  const prompt = extra.prompt;
  if (typeof prompt !== "string" || prompt === "") throw new ConfigError("generate needs --prompt <text>");
  const sampling: SamplingParams = {
    temperature: num(extra, "temperature", 0, 10),
    topK: num(extra, "top-k", 0, 1e6, true),
    topP: num(extra, "top-p", 0, 1),
    minP: num(extra, "min-p", 0, 1),
    repeatPenalty: num(extra, "repeat-penalty", 0, 10),
    seed: num(extra, "seed", 0, 2 ** 32 - 1, true),
  };
  const base = { maxTokens: num(extra, "max-tokens", 1, 1e6, true) ?? 128, sampling, stop: typeof extra.stop === "string" ? [extra.stop] : undefined };
  if (!extra.chat) return { ...base, prompt };
  const system = typeof extra.system === "string" ? [{ role: "system" as const, content: extra.system }] : [];
  return { ...base, messages: [...system, { role: "user", content: prompt }] };
}

export async function generateCommand(config: Config, extra: Record<string, string | boolean>, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<void> {
  const request = generateRequest(extra);
  const [model] = resolveModels(config);
  // One request at a time: a single slot is enough.
  const engine = await Engine.start({ ...engineOptions(config, [model!]), slots: 1 });
  try {
    const ac = new AbortController();
    process.once("SIGINT", () => ac.abort());
    for await (const e of engine.submit(request, ac.signal)) {
      if (e.type === "delta") {
        if (e.reasoning) process.stderr.write(e.reasoning);
        out(e.content);
      } else if (e.type === "done") {
        out("\n");
        const t = e.timings;
        console.error(
          `[generate] ${model!.id}: prompt ${e.usage.promptTokens} tokens in ${t.promptMs.toFixed(0)} ms (${t.promptTokensPerSecond.toFixed(1)} tok/s), ` +
            `generated ${e.usage.completionTokens} tokens in ${(t.promptMs + t.generationMs).toFixed(0)} ms (${t.tokensPerSecond.toFixed(1)} tok/s)`,
        );
      }
    }
  } finally {
    engine.close();
  }
}

// Generates the qwen3 test/benchmark models (tiny F16, or Qwen3-0.6B dimensions quantized by llama.cpp).
// --draft makes the preset's draft model (same tokenizer, 1-4 narrow layers) for speculative decoding.
// Usage: bun scripts/make-test-model.ts [--preset tiny|qwen3-0.6b] [--draft] [--type F16|Q8_0|Q4_K_M] [--out PATH] [--seed N] [--stops] [--force]
//        bun scripts/make-test-model.ts --family qwen3|gpt-oss|llama3|deepseek|gemma [--out PATH] [--force]  (models/tiny-NAME.gguf)
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_SEED, QWEN3_PRESETS, type Qwen3Preset, writeQwen3Model } from "../src/gguf/qwen3.ts";
import { FAMILIES, writeFamilyModel, type Family } from "../src/gguf/families.ts";

export type ModelFileType = "F16" | "Q8_0" | "Q4_K_M";

/** Options of makeTestModel. */
export interface MakeTestModelOptions {
  /** Model dimensions. Defaults to "tiny". */
  preset?: Qwen3Preset;
  /** Tensor type of the result; anything but F16 is quantized from an F16 file by llama.cpp. Defaults to F16 for tiny, Q8_0 for qwen3-0.6b. */
  type?: ModelFileType;
  /** Output path. Defaults to models/tiny-qwen3.gguf (models/tiny-qwen3-stops.gguf with `stops`), or models/qwen3-0.6b[-stops]-<type>.gguf. */
  out?: string;
  /** Weight seed. Defaults to 42. */
  seed?: number;
  /** The stopping variant: `<|im_end|>` wins at every position, so replies end (see writeQwen3Model). Defaults to false. */
  stops?: boolean;
  /** Regenerate even when the output (or the F16 intermediate) exists. Defaults to false. */
  force?: boolean;
}

export interface MakeTestModelResult {
  path: string;
  bytes: number;
  ms: number;
  /** True when the output already existed and nothing was written. */
  skipped: boolean;
}

const BASENAME: Record<Qwen3Preset, string> = { tiny: "tiny-qwen3", "qwen3-0.6b": "qwen3-0.6b", "tiny-draft": "tiny-qwen3-draft", "qwen3-0.6b-draft": "qwen3-0.6b-draft" };

const basename = (preset: Qwen3Preset, stops: boolean): string => `${BASENAME[preset]}${stops ? "-stops" : ""}`;

export function defaultModelPath(preset: Qwen3Preset, type: ModelFileType, stops = false): string {
  if ((preset === "tiny" || preset === "tiny-draft") && type === "F16") return `models/${basename(preset, stops)}.gguf`;
  return `models/${basename(preset, stops)}-${type.toLowerCase()}.gguf`;
}

/** Writes the model unless it exists; quantized types go through an F16 file kept next to the output. */
export async function makeTestModel(options: MakeTestModelOptions = {}): Promise<MakeTestModelResult> {
  const started = performance.now();
  const preset = options.preset ?? "tiny";
  const type = options.type ?? (preset.startsWith("tiny") ? "F16" : "Q8_0");
  const stops = options.stops ?? false;
  const out = options.out ?? defaultModelPath(preset, type, stops);
  const seed = options.seed ?? DEFAULT_SEED;
  const force = options.force ?? false;
  if (!(preset in QWEN3_PRESETS)) throw new Error(`unknown preset ${preset}`);
  if (existsSync(out) && !force) {
    return { path: out, bytes: statSync(out).size, ms: performance.now() - started, skipped: true };
  }
  mkdirSync(dirname(out), { recursive: true });

  const f16Path = type === "F16" ? out : join(dirname(out), `${basename(preset, stops)}-f16.gguf`);
  if (type === "F16" || force || !existsSync(f16Path)) {
    await atomically(f16Path, (tmp) => writeQwen3Model(tmp, { preset, seed, stops }));
  }
  if (type !== "F16") {
    // Imported lazily so the F16 path works without the native binding.
    const native = (await import(new URL("../src/native/quantize.ts", import.meta.url).href)) as {
      quantizeModel(input: string, output: string, type: ModelFileType): void;
    };
    await atomically(out, async (tmp) => native.quantizeModel(f16Path, tmp, type));
  }
  return { path: out, bytes: statSync(out).size, ms: performance.now() - started, skipped: false };
}

/** Readers never see a half-written model: write to `<path>.tmp`, then rename over `path`. */
async function atomically(path: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await write(tmp);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** Writes the family's test model (models/tiny-<family>.gguf by default) unless it exists. */
export async function makeFamilyModel(family: Family, opts: { out?: string; force?: boolean; seed?: number } = {}): Promise<MakeTestModelResult> {
  const started = performance.now();
  if (!FAMILIES.includes(family)) throw new Error(`unknown family ${family} (expected one of ${FAMILIES.join(", ")})`);
  const out = opts.out ?? `models/tiny-${family}.gguf`;
  if (existsSync(out) && !opts.force) return { path: out, bytes: statSync(out).size, ms: performance.now() - started, skipped: true };
  mkdirSync(dirname(out), { recursive: true });
  // The templates come from the pinned llama.cpp source bundle setup fetches.
  const { ensureSource } = await import("./setup-native.ts");
  const templates = join(ensureSource((l) => console.log(`[make-model] ${l}`)), "models", "templates");
  await atomically(out, (tmp) => writeFamilyModel(tmp, family, templates, opts.seed ?? DEFAULT_SEED));
  return { path: out, bytes: statSync(out).size, ms: performance.now() - started, skipped: false };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      family: { type: "string" },
      preset: { type: "string", default: "tiny" },
      type: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      stops: { type: "boolean", default: false },
      draft: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "bun scripts/make-test-model.ts [--preset tiny|qwen3-0.6b] [--draft] [--type F16|Q8_0|Q4_K_M] [--out PATH] [--seed N] [--stops] [--force]\n" +
        `bun scripts/make-test-model.ts --family ${FAMILIES.join("|")} [--out PATH] [--seed N] [--force]`,
    );
    process.exit(0);
  }
  if (values.family !== undefined) {
    if (!FAMILIES.includes(values.family as Family)) {
      console.error(`unknown --family ${values.family} (expected ${FAMILIES.join(", ")})`);
      process.exit(2);
    }
    const r = await makeFamilyModel(values.family as Family, { out: values.out, force: values.force, seed: values.seed === undefined ? undefined : Number(values.seed) });
    console.log(`${r.path}: ${(r.bytes / 1e6).toFixed(1)} MB, ${r.skipped ? "exists, skipped (--force to rebuild)" : `written in ${(r.ms / 1000).toFixed(2)} s`}`);
    process.exit(0);
  }
  const preset = (values.draft && !values.preset.endsWith("-draft") ? `${values.preset}-draft` : values.preset) as Qwen3Preset;
  if (!(preset in QWEN3_PRESETS)) {
    console.error(`unknown --preset ${values.preset} (expected ${Object.keys(QWEN3_PRESETS).join(" or ")})`);
    process.exit(2);
  }
  const type = values.type?.toUpperCase() as ModelFileType | undefined;
  if (type !== undefined && !["F16", "Q8_0", "Q4_K_M"].includes(type)) {
    console.error(`unknown --type ${values.type} (expected F16, Q8_0 or Q4_K_M)`);
    process.exit(2);
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) {
    console.error(`--seed must be an integer from 0 to 4294967295, got ${values.seed}`);
    process.exit(2);
  }
  const result = await makeTestModel({ preset, type, out: values.out, seed, stops: values.stops, force: values.force });
  const mb = (result.bytes / 1e6).toFixed(1);
  const what = result.skipped ? "exists, skipped (--force to rebuild)" : `written in ${(result.ms / 1000).toFixed(2)} s`;
  console.log(`${result.path}: ${mb} MB, ${what}`);
}

// `bun run setup`: native libraries for this machine plus the tiny test model. Idempotent and fast
// when everything is already in place.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setupNative, ROOT } from "./setup-native.ts";
import type { NativeBackend } from "../src/native/release.ts";

export const TINY_MODEL = join(ROOT, "models", "tiny-qwen3.gguf");

const USAGE = `usage: bun run setup [--cpu | --cuda | --metal] [--from-source] [--force] [--no-model]

  --cpu / --cuda / --metal  which llama.cpp build to install (default: CUDA when an NVIDIA driver and
                            the CUDA 13 runtime are present, Metal on macOS, else CPU)
  --from-source             build llama.cpp from the pinned source bundle with CMake instead of using
                            the prebuilt libraries
  --force                   reinstall even when the libraries are already in place
  --no-model                skip generating models/tiny-qwen3.gguf`;

export async function setup(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      cpu: { type: "boolean" },
      cuda: { type: "boolean" },
      metal: { type: "boolean" },
      "from-source": { type: "boolean" },
      force: { type: "boolean" },
      "no-model": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const backend: NativeBackend | undefined = values.cuda ? "cuda" : values.metal ? "metal" : values.cpu ? "cpu" : undefined;
  const t0 = performance.now();
  setupNative({ backend, fromSource: values["from-source"], force: values.force });
  if (!values["no-model"] && (values.force || !existsSync(TINY_MODEL))) {
    const { makeTestModel } = await import("./make-test-model.ts");
    await makeTestModel({ preset: "tiny", out: TINY_MODEL, force: values.force });
  }
  console.log(`[setup] done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (import.meta.main) {
  try {
    await setup(process.argv.slice(2));
  } catch (err) {
    console.error(`[setup] ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}

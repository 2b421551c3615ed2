// Which model files to serve: --model (repeatable), every *.gguf in --models-dir, or the built-in tiny
// demo model. Each gets a stable id (its file name without .gguf).
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ConfigError, type Config } from "./config.ts";
import { extractedDemoModel } from "../native/paths.ts";

export interface ModelEntry {
  id: string;
  path: string;
}

/** The demo model `bun run setup` generates in the source tree. */
export const DEMO_MODEL = resolve(import.meta.dir, "..", "..", "models", "tiny-qwen3.gguf");

export function resolveModels(config: Pick<Config, "model" | "modelsDir">): ModelEntry[] {
  const paths = [...config.model];
  if (config.modelsDir) {
    const dir = resolve(config.modelsDir);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError(`--models-dir ${dir} is not a directory`);
    paths.push(...readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort().map((f) => join(dir, f)));
  }
  if (paths.length === 0) {
    const embedded = extractedDemoModel();
    if (embedded) return [{ id: "tiny-qwen3", path: embedded }];
    if (!existsSync(DEMO_MODEL)) throw new ConfigError(`no model given and the demo model ${DEMO_MODEL} is missing; run \`bun run setup\``);
    paths.push(DEMO_MODEL);
  }
  const seen = new Set<string>();
  return paths.map((p) => {
    const path = resolve(p);
    if (!existsSync(path)) throw new ConfigError(`model file not found: ${path}`);
    const id = basename(path).replace(/\.gguf$/i, "");
    if (seen.has(id)) throw new ConfigError(`two models share the id "${id}"; rename one of the files`);
    seen.add(id);
    return { id, path };
  });
}

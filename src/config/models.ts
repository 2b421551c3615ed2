// Which model files to serve: --model (repeatable), every *.gguf in --models-dir, or the built-in tiny
// demo model. A spec is `[ID=]PATH[#key=value,...]`; keys: type, slots, ctx-size, gpu-layers,
// coefficient, price (base nanoton per token), alias (another name; repeatable), draft (a draft model
// for speculative decoding) with draft-max and draft-min. Without an ID a model is named after its file
// (without .gguf). --model-price and --model-alias add prices and names by id.
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ConfigError, type Config } from "./config.ts";
import { extractedDemoModel } from "../native/paths.ts";
import { DRAFT_MAX } from "../inference/worker-protocol.ts";

export interface ModelEntry {
  id: string;
  path: string;
  type?: "chat" | "completion" | "embedding";
  slots?: number;
  ctxSize?: number;
  gpuLayers?: number;
  /** Price coefficient (Cocoon's max_coefficient is compared with it; 1000 = base price). */
  coefficient?: number;
  /** Base price of one token in nanoton (before the per-type multiplier and the markup). Defaults to --price-nanoton. */
  price?: bigint;
  /** Other names requests may use for this model (e.g. `Qwen/Qwen3-8B` and `qwen3`). */
  aliases?: string[];
  /** Speculative decoding: a draft model with the same vocabulary (llama-server's --model-draft), and tokens drafted per step at most / at least. */
  draft?: { path: string; max?: number; min?: number };
}

/** The demo model `bun run setup` generates in the source tree. */
export const DEMO_MODEL = resolve(import.meta.dir, "..", "..", "models", "tiny-qwen3.gguf");

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
// Aliases may look like Hugging Face repository names (Qwen/Qwen3-8B).
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const TYPES = ["chat", "completion", "embedding"] as const;

function int(spec: string, key: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--model ${spec}: ${key} must be an integer >= ${min}, got "${value}"`);
  return n;
}

/** Parses one `[ID=]PATH[#key=value,...]` spec. */
export function parseModelSpec(spec: string): ModelEntry {
  const hash = spec.lastIndexOf("#");
  const main = hash >= 0 ? spec.slice(0, hash) : spec;
  const eq = main.indexOf("=");
  // An "=" before any path separator names the model; later ones belong to the path.
  const named = eq > 0 && !main.slice(0, eq).includes("/");
  const id = named ? main.slice(0, eq) : basename(main).replace(/\.gguf$/i, "");
  const path = resolve(named ? main.slice(eq + 1) : main);
  if (!ID.test(id)) throw new ConfigError(`--model ${spec}: "${id}" is not a valid model id (letters, digits, . _ : -)`);
  const entry: ModelEntry = { id, path };
  if (hash >= 0) {
    let draftMax: number | undefined;
    let draftMin: number | undefined;
    for (const pair of spec.slice(hash + 1).split(",").filter(Boolean)) {
      const eqAt = pair.indexOf("=");
      const key = eqAt < 0 ? pair : pair.slice(0, eqAt);
      const value = eqAt < 0 ? "" : pair.slice(eqAt + 1);
      if (key === "type") {
        if (!(TYPES as readonly string[]).includes(value)) throw new ConfigError(`--model ${spec}: type must be one of ${TYPES.join(", ")}`);
        entry.type = value as ModelEntry["type"];
      } else if (key === "slots") entry.slots = int(spec, key, value, 1);
      else if (key === "ctx-size") entry.ctxSize = int(spec, key, value, 0);
      else if (key === "gpu-layers") entry.gpuLayers = int(spec, key, value, -1);
      else if (key === "coefficient") entry.coefficient = int(spec, key, value, 1);
      else if (key === "price") entry.price = BigInt(int(spec, key, value, 0));
      else if (key === "alias") {
        if (!ALIAS.test(value)) throw new ConfigError(`--model ${spec}: alias "${value}" is not a valid model name (letters, digits, . _ : / -)`);
        (entry.aliases ??= []).push(value);
      } else if (key === "draft") {
        if (!value) throw new ConfigError(`--model ${spec}: draft needs the path of a draft model (draft=PATH)`);
        entry.draft = { path: resolve(value) };
      } else if (key === "draft-max") draftMax = int(spec, key, value, 1);
      else if (key === "draft-min") draftMin = int(spec, key, value, 0);
      else throw new ConfigError(`--model ${spec}: unknown option "${key}" (type, slots, ctx-size, gpu-layers, coefficient, price, alias, draft, draft-max, draft-min)`);
    }
    if ((draftMax !== undefined || draftMin !== undefined) && !entry.draft) throw new ConfigError(`--model ${spec}: draft-max and draft-min need draft=PATH`);
    if (draftMax !== undefined && draftMax > 64) throw new ConfigError(`--model ${spec}: draft-max must be at most 64, got ${draftMax}`);
    if (draftMin !== undefined && draftMin > (draftMax ?? DRAFT_MAX)) throw new ConfigError(`--model ${spec}: draft-min (${draftMin}) exceeds draft-max (${draftMax ?? DRAFT_MAX})`);
    if (entry.draft) entry.draft = { ...entry.draft, ...(draftMax !== undefined && { max: draftMax }), ...(draftMin !== undefined && { min: draftMin }) };
  }
  return entry;
}

/** `ID=VALUE` pairs of a list setting (--model-price, --model-alias). */
function pairs(setting: string, list: readonly string[]): [string, string][] {
  return list.map((item) => {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new ConfigError(`--${setting} ${item}: expected ID=VALUE`);
    return [item.slice(0, eq).trim(), item.slice(eq + 1).trim()];
  });
}

/**
 * Per-model base prices in nanoton by model id, from the --model specs' `price=` and --model-price
 * (`ID=NANOTON`; the later wins). Reads no files: the admin CLI commands price the same way.
 */
export function modelPrices(config: Pick<Config, "model" | "modelPrice">): Map<string, bigint> {
  const prices = new Map<string, bigint>();
  for (const e of config.model.map(parseModelSpec)) if (e.price !== undefined) prices.set(e.id, e.price);
  for (const [id, v] of pairs("model-price", config.modelPrice)) {
    if (!/^\d{1,15}$/.test(v)) throw new ConfigError(`--model-price ${id}=${v}: the price must be whole nanoton per token (0..999999999999999)`);
    prices.set(id, BigInt(v));
  }
  return prices;
}

/** Alias → model id for the served models, from `alias=` options and --model-alias (`ALIAS=ID`); checked for clashes. */
export function modelAliases(entries: readonly ModelEntry[], extra: readonly string[] = []): Map<string, string> {
  const ids = new Set(entries.map((e) => e.id));
  const aliases = new Map<string, string>();
  const add = (alias: string, id: string) => {
    if (!ALIAS.test(alias)) throw new ConfigError(`model alias "${alias}" is not a valid model name (letters, digits, . _ : / -)`);
    if (!ids.has(id)) throw new ConfigError(`model alias "${alias}" names "${id}", which is not a served model`);
    if (ids.has(alias)) throw new ConfigError(`model alias "${alias}" is already a model id`);
    const prior = aliases.get(alias);
    if (prior !== undefined && prior !== id) throw new ConfigError(`model alias "${alias}" names two models: "${prior}" and "${id}"`);
    aliases.set(alias, id);
  };
  for (const e of entries) for (const a of e.aliases ?? []) add(a, e.id);
  for (const [alias, id] of pairs("model-alias", extra)) add(alias, id);
  return aliases;
}

export function resolveModels(config: Pick<Config, "model" | "modelsDir">): ModelEntry[] {
  const entries = config.model.map(parseModelSpec);
  if (config.modelsDir) {
    const dir = resolve(config.modelsDir);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError(`--models-dir ${dir} is not a directory`);
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort()) entries.push(parseModelSpec(join(dir, f)));
  }
  if (entries.length === 0) {
    const embedded = extractedDemoModel();
    if (embedded) return [{ id: "tiny-qwen3", path: embedded }];
    if (!existsSync(DEMO_MODEL)) throw new ConfigError(`no model given and the demo model ${DEMO_MODEL} is missing; run \`bun run setup\``);
    entries.push({ id: "tiny-qwen3", path: DEMO_MODEL });
  }
  const seen = new Set<string>();
  for (const e of entries) {
    if (!existsSync(e.path)) throw new ConfigError(`model file not found: ${e.path}`);
    if (e.draft && !existsSync(e.draft.path)) throw new ConfigError(`draft model file not found: ${e.draft.path} (in --model ${e.id})`);
    if (e.draft && e.type === "embedding") throw new ConfigError(`model ${e.id} is an embedding model: it generates nothing a draft could speed up`);
    if (seen.has(e.id)) throw new ConfigError(`two models share the id "${e.id}"; name them with --model ID=PATH`);
    seen.add(e.id);
  }
  return entries;
}

// The one registry of settings: each has a CLI flag, a COCOON_* environment variable, a config-file
// key, a default and one description (shown by --help). Read once at start into a typed object.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

type Kind = "string" | "int" | "float" | "bool" | "list";

interface SettingDef<K extends Kind = Kind> {
  kind: K;
  description: string;
  default: K extends "int" | "float" ? number : K extends "bool" ? boolean : K extends "list" ? string[] : string;
  /** Defaults to the key in kebab case. */
  flag?: string;
  short?: string;
  /** Lower and upper bound for numbers. */
  min?: number;
  max?: number;
  choices?: readonly string[];
}

function def<K extends Kind>(d: SettingDef<K>): SettingDef<K> {
  return d;
}

export const SETTINGS = {
  model: def({ kind: "list", default: [], short: "m", description: "GGUF model to serve, as [ID=]PATH[#type=chat|completion|embedding,slots=N,ctx-size=N,gpu-layers=N,draft=PATH,draft-max=N,draft-min=N]; draft= is a draft model with the same vocabulary for speculative decoding (like llama-server --model-draft; draft-max defaults to 8); repeat for several. Defaults to the built-in tiny demo model." }),
  modelPrice: def({ kind: "list", default: [], description: "Base price of a model's tokens in nanoton, as ID=NANOTON (repeat or separate with ;); overrides --price-nanoton for that model. Also `price=` in a --model spec." }),
  modelAlias: def({ kind: "list", default: [], description: "Another name for a served model, as ALIAS=ID (e.g. Qwen/Qwen3-8B=qwen3); listed in /v1/models. Also `alias=` in a --model spec." }),
  modelsDir: def({ kind: "string", default: "", description: "Directory whose *.gguf files are all served." }),
  host: def({ kind: "string", default: "127.0.0.1", description: "Address to listen on." }),
  port: def({ kind: "int", default: 10000, min: 0, max: 65535, short: "p", description: "TCP port to listen on." }),
  gpuLayers: def({ kind: "int", default: -1, min: -1, description: "Layers to offload to the GPU (-1 = all; ignored on the CPU build)." }),
  ctxSize: def({ kind: "int", default: 4096, min: 0, short: "c", description: "Context window per request in tokens (prompt + completion); each slot gets one (0 = the model's own)." }),
  parallel: def({ kind: "int", default: 4, min: 1, max: 256, description: "Parallel slots (sequences decoded together) per model." }),
  threads: def({ kind: "int", default: 0, min: 0, short: "t", description: "CPU threads for decoding (0 = all cores)." }),
  cacheRam: def({ kind: "int", default: 1024, min: 0, description: "MiB of memory per model for KV state of evicted prompts and pinned sessions, restored instead of recomputed (0 = off)." }),
  maxQueue: def({ kind: "int", default: 64, min: 0, description: "Requests per model that may wait for a free slot; more get 503 overloaded." }),
  batchSize: def({ kind: "int", default: 512, min: 1, description: "Most tokens per decode step." }),
  ngramDraft: def({ kind: "int", default: 0, min: 0, max: 64, description: "N-gram lookup speculation (opt-in): up to this many tokens per step guessed from an earlier occurrence of the sequence's last 3 tokens, kept as far as the sampler agrees; the output is unchanged, repetitive text decodes faster (0 = off). A model with a draft model (#draft=PATH) uses that instead." }),
  promptBudget: def({ kind: "int", default: 0, min: 0, description: "Prompt tokens per decode step while other requests are generating (chunked prefill), so new prompts do not stall running streams (0 = automatic, from measured step times)." }),
  libDir: def({ kind: "string", default: "", description: "Directory with the llama.cpp libraries; a compiled executable extracts its own there." }),
  dataDir: def({ kind: "string", default: "", description: "Directory for the database. Defaults to $STATE_DIRECTORY under systemd, else ./data when ./data/cocoon.sqlite exists (earlier builds), else $XDG_DATA_HOME/cocoon-server (~/.local/share/cocoon-server)." }),
  logLevel: def({ kind: "string", default: "info", choices: ["debug", "info", "warn", "error"], description: "Least severe log level printed." }),
  llamaLogLevel: def({ kind: "string", default: "error", choices: ["none", "debug", "info", "warn", "error"], description: "Least severe llama.cpp message passed to stderr." }),
  maxBodyBytes: def({ kind: "int", default: 8 * 1024 * 1024, min: 1024, description: "Largest accepted request body in bytes; larger ones get 413." }),
  shutdownGrace: def({ kind: "int", default: 10, min: 0, max: 3600, description: "Seconds SIGTERM/SIGINT waits for in-flight requests before cancelling them." }),
  maxSessions: def({ kind: "int", default: 1000, min: 0, description: "Chat sessions one account may keep (0 = no limit); starting one more is refused with 409." }),
  sessionTtlHours: def({ kind: "int", default: 0, min: 0, description: "Delete chat sessions not updated for this many hours (0 = keep them)." }),
  db: def({ kind: "string", default: "", description: "SQLite database file (accounts, keys, ledger, usage, audit log), or a postgres:// URL: several gateways then share one ledger. Defaults to cocoon.sqlite in the data directory (printed at start)." }),
  noAuth: def({ kind: "bool", default: false, description: "Turn API keys and billing off: a private single-user server." }),
  allowedHosts: def({ kind: "list", default: [], description: "With --no-auth: host names besides localhost, 127.0.0.1 and [::1] that requests may name in Host (others get 403)." }),
  allowedOrigins: def({ kind: "list", default: [], description: "With --no-auth: origins (scheme://host[:port]) besides the server's own that may open WebSockets." }),
  adminToken: def({ kind: "string", default: "", description: "Bearer token for admin routes and for POST /v1/keys (empty: admin routes are off)." }),
  register: def({ kind: "string", default: "open", choices: ["open", "admin", "off"], description: "Who may sign up at /api/register: anyone (open), only with the admin token (admin), or nobody (off)." }),
  registerLimit: def({ kind: "int", default: 5, min: 0, description: "Sign-ups per client address per UTC day at /api/register (0 = no limit); more get 429, and never a sign-up credit." }),
  trustProxy: def({ kind: "bool", default: false, description: "Behind a reverse proxy: take the client address (for --register-limit) from the last X-Forwarded-For entry." }),
  signupCredit: def({ kind: "string", default: "0", description: "TON credited to every new account (e.g. 0.1 for a trial; 0 = none)." }),
  priceNanoton: def({ kind: "int", default: 20, min: 0, description: "Base price per token in nanoton, before the per-type multiplier and the markup." }),
  markup: def({ kind: "string", default: "1.5", description: "Markup over the base price, a decimal." }),
  minimumBalance: def({ kind: "string", default: "0.01", description: "TON an account needs to start a request." }),
  maxOverdraft: def({ kind: "string", default: "0.05", description: "TON in-flight requests may take a balance below zero." }),
  rateLimitRpm: def({ kind: "int", default: 60, min: 1, description: "Requests per minute per API key (unless the key has its own)." }),
  rateLimitTpm: def({ kind: "int", default: 150000, min: 1, description: "Tokens per minute per API key." }),
  rateLimitRpd: def({ kind: "int", default: 3500, min: 1, description: "Requests per day per API key." }),
  tonWallet: def({ kind: "string", default: "", description: "TON address deposits go to (raw 0:<hex> or user-friendly); empty: deposits are off and the watcher does not run." }),
  tonNetwork: def({ kind: "string", default: "mainnet", choices: ["mainnet", "testnet"], description: "TON network of the wallet (sets the address form shown to customers)." }),
  tonApi: def({ kind: "string", default: "https://toncenter.com/api/v2", description: "toncenter API v2 base URL the deposit watcher polls (JSON-RPC at <base>/jsonRPC)." }),
  tonApiKey: def({ kind: "string", default: "", description: "toncenter API key, sent as X-API-Key (without one toncenter allows about 1 request/s)." }),
  tonPollInterval: def({ kind: "float", default: 5, min: 0.05, max: 3600, description: "Seconds between polls of the deposit wallet (fractions allowed); failures back off up to 32x, at most 60 s." }),
  tonApiTimeout: def({ kind: "float", default: 10, min: 0.1, max: 300, description: "Seconds one TON API request may take." }),
  tonPageSize: def({ kind: "int", default: 50, min: 2, max: 100, description: "Transactions per TON API request when paging through the wallet's history." }),
  tonMinDeposit: def({ kind: "string", default: "0.01", description: "Smallest transfer in TON credited automatically; smaller ones are kept as unmatched for an admin." }),
  tonUsdRateUrl: def({
    kind: "string",
    default: "https://api.coingecko.com/api/v3/simple/price?ids=the-open-network&vs_currencies=usd",
    description: 'URL of the TON/USD price for balance_usd, answering {"the-open-network":{"usd":N}} or {"usd":N}; cached 60 s; off (or empty): no USD figures.',
  }),
  strictFields: def({ kind: "bool", default: false, description: "Reject unknown request fields with a 400 (\"Unrecognized request argument supplied\"), as OpenAI does; by default they are ignored and named in X-Cocoon-Ignored-Fields." }),
  corsOrigins: def({ kind: "string", default: "*", description: "Origins browsers may call the API from: * (any; keys are bearer tokens, no cookies), a comma-separated list of origins (https://app.example,http://localhost:5173), or off." }),
  upstream: def({ kind: "list", default: [], description: "Remote OpenAI-compatible worker (cocoon-server --role worker, llama-server, vLLM) as NAME=URL[#key=SECRET,key-env=VAR,models=a|b,weight=N,coefficient=N,ctx-size=N,slots=N,type=chat]; repeat for several (in a config file: a list of strings or of {name,url,key,models,weight,coefficient,ctxSize,slots,type} objects). Its models join /v1/models and requests for them are routed by load and coefficient." }),
  upstreamPoll: def({ kind: "float", default: 5, min: 0.05, max: 3600, description: "Seconds between health and load polls of each upstream (GET /v1/models); a failing one is ejected and re-probed with backoff up to 60 s." }),
  upstreamTimeout: def({ kind: "float", default: 60, min: 0.1, max: 3600, description: "Seconds an upstream may take to send its response headers; after that the request fails over to another worker." }),
  role: def({ kind: "string", default: "server", choices: ["server", "worker"], description: "server: keys and billing (a gateway when --upstream is given); worker: no billing, every route but /health and /readiness needs --worker-secret, for a gateway to route to." }),
  workerSecret: def({ kind: "string", default: "", description: "With --role worker: the bearer token the gateway sends (its --upstream ...#key=). Required unless the worker listens on loopback only." }),
  config: def({ kind: "string", default: "", description: "Config file (JSON or TOML) with any of these settings, keys as in --help (camelCase or kebab-case)." }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
export type Config = { -readonly [K in SettingKey]: (typeof SETTINGS)[K]["default"] extends readonly string[] ? string[] : (typeof SETTINGS)[K]["default"] };

export class ConfigError extends Error {
  override name = "ConfigError";
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (key: string) => `COCOON_${kebab(key).replace(/-/g, "_").toUpperCase()}`;
const flagOf = (key: SettingKey) => SETTINGS[key].flag ?? kebab(key);

function coerce(key: SettingKey, raw: unknown, source: string): unknown {
  const s = SETTINGS[key] as SettingDef;
  const fail = (why: string): never => {
    throw new ConfigError(`${source}: ${why}`);
  };
  switch (s.kind) {
    case "list":
      // Objects (e.g. an upstream's table in a config file) travel as JSON for their own parser.
      if (Array.isArray(raw)) return raw.map((x) => (x !== null && typeof x === "object" ? JSON.stringify(x) : String(x)));
      // ";" separates values: commas belong to model options (PATH#slots=8,ctx-size=8192).
      return String(raw).split(/[;\n]/).map((x) => x.trim()).filter(Boolean);
    case "bool":
      if (typeof raw === "boolean") return raw;
      if (/^(1|true|yes|on)$/i.test(String(raw))) return true;
      if (/^(0|false|no|off)$/i.test(String(raw))) return false;
      return fail(`expected true or false, got "${raw}"`);
    case "int":
    case "float": {
      const n = typeof raw === "number" ? raw : Number(String(raw).trim());
      if (String(raw).trim() === "" || !Number.isFinite(n)) return fail(`expected a number, got "${raw}"`);
      if (s.kind === "int" && !Number.isInteger(n)) return fail(`expected an integer, got "${raw}"`);
      if (s.min !== undefined && n < s.min) return fail(`must be at least ${s.min}, got ${n}`);
      if (s.max !== undefined && n > s.max) return fail(`must be at most ${s.max}, got ${n}`);
      return n;
    }
    case "string": {
      const v = String(raw);
      if (s.choices && !s.choices.includes(v)) return fail(`must be one of ${s.choices.join(", ")}, got "${v}"`);
      return v;
    }
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ConfigError(`config file not found: ${path}`);
  const text = readFileSync(path, "utf8");
  try {
    return (path.endsWith(".toml") ? Bun.TOML.parse(text) : JSON.parse(text)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid ${path.endsWith(".toml") ? "TOML" : "JSON"}: ${(err as Error).message}`);
  }
}

export interface ParsedArgs {
  config: Config;
  /** Words that are not flags (e.g. a subcommand). */
  positionals: string[];
  /** Flags the caller's command defines itself (e.g. generate's --prompt), unparsed. */
  extra: Record<string, string | boolean>;
}

/**
 * Merges defaults < config file < environment < CLI flags. Flags in `extraFlags` (name -> takes a
 * value) are passed through for the subcommand; any other unknown flag is an error.
 */
export function loadConfig(argv: string[], env: Record<string, string | undefined> = process.env, extraFlags: Record<string, boolean> = {}): ParsedArgs {
  const byFlag = new Map<string, SettingKey>();
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    byFlag.set(flagOf(key), key);
    const short = (SETTINGS[key] as SettingDef).short;
    if (short) byFlag.set(short, key);
  }
  const cli: Partial<Record<SettingKey, unknown>> = {};
  const positionals: string[] = [];
  const extra: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const eq = arg.indexOf("=");
    const name = arg.replace(/^--?/, "").slice(0, eq > 0 ? eq - (arg.startsWith("--") ? 2 : 1) : undefined);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const key = byFlag.get(name);
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`--${name} needs a value`);
      i++;
      return next;
    };
    if (key) {
      const s = SETTINGS[key] as SettingDef;
      if (s.kind === "bool") cli[key] = inline ?? true;
      else if (s.kind === "list") cli[key] = [...((cli[key] as string[]) ?? []), takeValue()];
      else cli[key] = takeValue();
    } else if (name.startsWith("no-") && byFlag.has(name.slice(3)) && (SETTINGS[byFlag.get(name.slice(3))!] as SettingDef).kind === "bool") {
      cli[byFlag.get(name.slice(3))!] = false;
    } else if (name in extraFlags) {
      extra[name] = extraFlags[name] ? takeValue() : (inline ?? true);
    } else {
      throw new ConfigError(`unknown option --${name} (see --help)`);
    }
  }

  const config = {} as Record<SettingKey, unknown>;
  for (const key of Object.keys(SETTINGS) as SettingKey[]) config[key] = structuredClone(SETTINGS[key].default);

  const file = (cli.config as string | undefined) ?? env[envName("config")];
  if (file) {
    const values = readConfigFile(resolve(file));
    for (const [rawKey, value] of Object.entries(values)) {
      const key = (rawKey in SETTINGS ? rawKey : byFlag.get(rawKey)) as SettingKey | undefined;
      if (!key) throw new ConfigError(`config file ${file}: unknown setting "${rawKey}"`);
      config[key] = coerce(key, value, `config file ${file}, ${rawKey}`);
    }
    config.config = file;
  }
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const v = env[envName(key)];
    if (v !== undefined && v !== "") config[key] = coerce(key, v, envName(key));
  }
  for (const [key, v] of Object.entries(cli) as [SettingKey, unknown][]) config[key] = coerce(key, v, `--${flagOf(key)}`);
  return { config: config as Config, positionals, extra };
}

/** The settings table for --help: flag, environment variable, default, description. */
export function settingsHelp(): string {
  const rows = (Object.keys(SETTINGS) as SettingKey[]).map((key) => {
    const s = SETTINGS[key] as SettingDef;
    const short = s.short ? `-${s.short}, ` : "";
    const value = s.kind === "bool" ? "" : s.kind === "list" ? " <value>..." : " <value>";
    const dflt = Array.isArray(s.default) ? (s.default.length ? s.default.join(",") : "") : String(s.default);
    return [`  ${short}--${flagOf(key)}${value}`, `${s.description}${dflt !== "" ? ` [default: ${dflt}]` : ""} (env ${envName(key)})`];
  });
  const width = Math.max(...rows.map(([a]) => a!.length)) + 2;
  return rows.map(([a, b]) => `${a!.padEnd(width)}${b}`).join("\n");
}

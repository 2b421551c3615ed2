// The --upstream setting: `NAME=URL[#key=…,models=a|b,weight=N,coefficient=N,ctx-size=N,slots=N,type=…]`
// on the command line, or an object with the same keys in a config file. Parsed once at start.
import { ConfigError } from "../config/config.ts";

export interface UpstreamSpec {
  /** Shown in logs, /v1/models and enable_debug; unique. */
  name: string;
  /** Base URL of an OpenAI-compatible server, without /v1 (e.g. http://10.0.0.2:10000). */
  url: string;
  /** Bearer token sent to it (a cocoon worker's --worker-secret, vLLM's --api-key). Defaults to none. */
  key: string | null;
  /** Only these of its models are routed to it. Defaults to every model it lists. */
  models: string[] | null;
  /** Share of traffic among workers of one coefficient with free capacity alike. Defaults to 1. */
  weight: number;
  /** Price coefficient (1000 = base); a request's max_coefficient excludes dearer workers. Defaults to 1000. */
  coefficient: number;
  /** Context window when the server does not report one. Defaults to what it reports, else 4096. */
  ctxSize: number | null;
  /** Parallel requests per model when the server does not report them (llama-server, vLLM). Defaults to 4. */
  slots: number | null;
  /** Model type when the server does not report one. Defaults to chat. */
  type: "chat" | "completion" | "embedding" | null;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KEYS = ["key", "key-env", "models", "weight", "coefficient", "ctx-size", "slots", "type"] as const;

function positive(spec: string, key: string, value: unknown, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--upstream ${spec}: ${key} must be an integer >= ${min}, got "${value}"`);
  return n;
}

function option(entry: UpstreamSpec, spec: string, key: string, value: unknown, env: Record<string, string | undefined>): void {
  switch (key) {
    case "key":
      entry.key = String(value);
      break;
    case "key-env":
    case "keyEnv": {
      // The secret from an environment variable, so it is not on the command line (visible in ps).
      const v = env[String(value)];
      if (!v) throw new ConfigError(`--upstream ${spec}: environment variable ${value} (key-env) is not set`);
      entry.key = v;
      break;
    }
    case "models":
      entry.models = (Array.isArray(value) ? value.map(String) : String(value).split("|")).map((m) => m.trim()).filter(Boolean);
      break;
    case "weight":
      entry.weight = positive(spec, key, value, 1);
      break;
    case "coefficient":
      entry.coefficient = positive(spec, key, value, 1);
      break;
    case "ctx-size":
    case "ctxSize":
      entry.ctxSize = positive(spec, key, value, 16);
      break;
    case "slots":
      entry.slots = positive(spec, key, value, 1);
      break;
    case "type":
      if (value !== "chat" && value !== "completion" && value !== "embedding") throw new ConfigError(`--upstream ${spec}: type must be chat, completion or embedding`);
      entry.type = value;
      break;
    default:
      throw new ConfigError(`--upstream ${spec}: unknown option "${key}" (${KEYS.join(", ")})`);
  }
}

function checkUrl(spec: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`--upstream ${spec}: "${raw}" is not a URL (http://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError(`--upstream ${spec}: the URL must be http:// or https://`);
  // Base URL without a trailing /v1: every API path is added to it.
  return url.href.replace(/\/+$/, "").replace(/\/v1$/, "");
}

function blank(name: string, url: string): UpstreamSpec {
  return { name, url, key: null, models: null, weight: 1, coefficient: 1000, ctxSize: null, slots: null, type: null };
}

/**
 * One upstream: `NAME=URL#opt=value,...` or (from a config file) a JSON object
 * `{"name","url","key","models":[...],"weight","coefficient","ctxSize","slots","type"}`.
 */
export function parseUpstreamSpec(spec: string, env: Record<string, string | undefined> = process.env): UpstreamSpec {
  if (spec.trimStart().startsWith("{")) {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(spec) as Record<string, unknown>;
    } catch {
      throw new ConfigError(`--upstream ${spec}: not valid JSON`);
    }
    const name = String(o.name ?? "");
    if (!NAME.test(name)) throw new ConfigError(`upstream ${spec}: "name" must be letters, digits, . _ - (at most 64)`);
    const entry = blank(name, checkUrl(spec, String(o.url ?? "")));
    for (const [k, v] of Object.entries(o)) if (k !== "name" && k !== "url") option(entry, spec, k, v, env);
    return entry;
  }
  const eq = spec.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--upstream ${spec}: expected NAME=URL[#key=...,models=a|b,weight=N,coefficient=N,ctx-size=N,slots=N,type=chat]`);
  const name = spec.slice(0, eq);
  if (!NAME.test(name)) throw new ConfigError(`--upstream ${spec}: "${name}" is not a valid name (letters, digits, . _ -)`);
  const rest = spec.slice(eq + 1);
  const hash = rest.indexOf("#");
  const entry = blank(name, checkUrl(spec, hash >= 0 ? rest.slice(0, hash) : rest));
  if (hash >= 0) {
    for (const pair of rest.slice(hash + 1).split(",").filter(Boolean)) {
      const at = pair.indexOf("=");
      if (at <= 0) throw new ConfigError(`--upstream ${spec}: "${pair}" is not key=value`);
      option(entry, spec, pair.slice(0, at), pair.slice(at + 1), env);
    }
  }
  return entry;
}

export function parseUpstreams(specs: string[], env: Record<string, string | undefined> = process.env): UpstreamSpec[] {
  const out = specs.map((s) => parseUpstreamSpec(s, env));
  const seen = new Set<string>();
  for (const u of out) {
    if (seen.has(u.name)) throw new ConfigError(`two upstreams share the name "${u.name}"`);
    seen.add(u.name);
  }
  return out;
}

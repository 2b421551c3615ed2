// Opens the platform from the config: the database file (a stable place, see storeLocation, unless
// --db or --data-dir names one), prices (per model too), limits and the admin token. Shared by the server and the CLI.
import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/config.ts";
import { modelPrices } from "../config/models.ts";
import { openStore } from "../store/db.ts";
import { openPgStore } from "../store/pg.ts";
import type { Db } from "../store/query.ts";
import { Platform } from "./service.ts";
import { parseTon, pricingConfig } from "./pricing.ts";

/** Where the database is and why there, for the line the server and the commands print. */
export interface StoreLocation {
  /** The data directory (the database's directory with --db). */
  dir: string;
  /** The database file. */
  path: string;
  /** What chose it: a flag, systemd, an existing ./data database, or the XDG default. */
  source: "--db" | "--data-dir" | "$STATE_DIRECTORY" | "./data" | "$XDG_DATA_HOME" | "~/.local/share";
}

const FILE = "cocoon.sqlite";

/**
 * Where state lives, the same wherever the binary is started from: --db, else --data-dir, else
 * systemd's $STATE_DIRECTORY (from StateDirectory=), else an existing ./data/cocoon.sqlite (where
 * builds before this one put it: it keeps being used), else $XDG_DATA_HOME/cocoon-server
 * (~/.local/share/cocoon-server when unset). Starting elsewhere never silently makes a new database.
 */
/** Whether --db names a Postgres database (several gateways on one ledger) rather than a SQLite file. */
export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

export function storeLocation(config: Pick<Config, "dataDir" | "db">, env: Record<string, string | undefined> = process.env, cwd: string = process.cwd()): StoreLocation {
  // With Postgres every table is there; the data directory is where a SQLite file would be (--role worker, --no-auth, a CLI command).
  if (config.db && isPostgresUrl(config.db)) return storeLocation({ dataDir: config.dataDir, db: "" }, env, cwd);
  if (config.db) {
    const path = resolve(cwd, config.db);
    return { dir: dirname(path), path, source: "--db" };
  }
  const at = (dir: string, source: StoreLocation["source"]): StoreLocation => ({ dir: resolve(cwd, dir), path: join(resolve(cwd, dir), FILE), source });
  if (config.dataDir) return at(config.dataDir, "--data-dir");
  // systemd passes a colon-separated list when the unit names several directories: ours is the first.
  const state = env.STATE_DIRECTORY?.split(":")[0];
  if (state) return at(state, "$STATE_DIRECTORY");
  if (existsSync(join(cwd, "data", FILE))) return at("data", "./data");
  if (env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME)) return at(join(env.XDG_DATA_HOME, "cocoon-server"), "$XDG_DATA_HOME");
  return at(join(env.HOME || homedir(), ".local", "share", "cocoon-server"), "~/.local/share");
}

/** The data directory (see {@link storeLocation}). */
export function dataDir(config: Pick<Config, "dataDir" | "db">): string {
  return storeLocation(config).dir;
}

/** The lines a start prints about the database: where it is, and why there when that may surprise. */
export function storeLocationLines(loc: StoreLocation): string[] {
  const lines = [`database ${loc.path} (${loc.source === "--db" || loc.source === "--data-dir" ? `from ${loc.source}` : loc.source === "./data" ? "existing ./data" : `default under ${loc.source}`})`];
  if (loc.source === "./data") {
    lines.push(
      `using the existing database ${loc.path} found in the working directory (./data, where earlier builds kept it); ` +
        "move it to the default location or pass --data-dir to keep it there for good: started from another directory, the server would not find it",
    );
  }
  return lines;
}

function ton(name: string, value: string): bigint {
  try {
    return parseTon(value);
  } catch {
    throw new ConfigError(`--${name} must be an amount of TON like 0.01, got "${value}"`);
  }
}

/** The database file (see {@link storeLocation}); its directory is created if missing. */
export function storePath(config: Pick<Config, "dataDir" | "db">): string {
  const { path } = storeLocation(config);
  mkdirSync(dirname(path), { recursive: true });
  return path;
}

/** The platform on the store --db names: a SQLite file, or Postgres for several gateways on one ledger. */
export async function openPlatformStore(config: Config): Promise<{ service: Platform; path: string; store: Db }> {
  const path = storePath(config);
  const store: Db = isPostgresUrl(config.db) ? await openPgStore(config.db) : openStore(path);
  return { service: new Platform(store, platformOptions(config)), path, store };
}

function platformOptions(config: Config): ConstructorParameters<typeof Platform>[1] {
  const models = Object.fromEntries([...modelPrices(config)].map(([id, baseNanoton]) => [id, { baseNanoton }]));
  const pricing = pricingConfig({
    baseNanoton: BigInt(config.priceNanoton),
    models,
    markup: config.markup,
    minimumBalance: ton("minimum-balance", config.minimumBalance),
    maxOverdraft: ton("max-overdraft", config.maxOverdraft),
  });
  return {
    auth: true,
    adminToken: config.adminToken,
    pricing,
    rateLimits: { rpm: config.rateLimitRpm, tpm: config.rateLimitTpm, rpd: config.rateLimitRpd },
    signupCredit: ton("signup-credit", config.signupCredit),
    register: config.register as "open" | "admin" | "off",
    registerLimit: config.registerLimit,
    trustProxy: config.trustProxy,
  };
}

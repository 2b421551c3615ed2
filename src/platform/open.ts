// Opens the platform from the config: the database file (in the data directory unless --db names
// one), prices (per model too), limits and the admin token. Shared by the server and the admin CLI commands.
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/config.ts";
import { modelPrices } from "../config/models.ts";
import { openStore } from "../store/db.ts";
import { Platform } from "./service.ts";
import { parseTon, pricingConfig } from "./pricing.ts";

/** Where state lives: --data-dir, else systemd's $STATE_DIRECTORY, else ./data. */
export function dataDir(config: Pick<Config, "dataDir">): string {
  return resolve(config.dataDir || process.env.STATE_DIRECTORY || "data");
}

function ton(name: string, value: string): bigint {
  try {
    return parseTon(value);
  } catch {
    throw new ConfigError(`--${name} must be an amount of TON like 0.01, got "${value}"`);
  }
}

/** The database file: --db, else cocoon.sqlite in the data directory (created if missing). */
export function storePath(config: Pick<Config, "dataDir" | "db">): string {
  const path = resolve(config.db || join(dataDir(config), "cocoon.sqlite"));
  mkdirSync(dirname(path), { recursive: true });
  return path;
}

export function openPlatform(config: Config): { service: Platform; path: string } {
  const path = storePath(config);
  const models = Object.fromEntries([...modelPrices(config)].map(([id, baseNanoton]) => [id, { baseNanoton }]));
  const pricing = pricingConfig({
    baseNanoton: BigInt(config.priceNanoton),
    models,
    markup: config.markup,
    minimumBalance: ton("minimum-balance", config.minimumBalance),
    maxOverdraft: ton("max-overdraft", config.maxOverdraft),
  });
  const service = new Platform(openStore(path), {
    auth: true,
    adminToken: config.adminToken,
    pricing,
    rateLimits: { rpm: config.rateLimitRpm, tpm: config.rateLimitTpm, rpd: config.rateLimitRpd },
    signupCredit: ton("signup-credit", config.signupCredit),
    register: config.register as "open" | "admin" | "off",
    registerLimit: config.registerLimit,
    trustProxy: config.trustProxy,
  });
  return { service, path };
}

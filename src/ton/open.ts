// Builds the TON side of the server from the config: the wallet (or none: deposits off), its watcher
// over the toncenter client, and the TON/USD rate cache. Bad settings are ConfigErrors at start-up.
import type { Db } from "../store/query.ts";
import { ConfigError, type Config } from "../config/config.ts";
import { parseTon } from "../platform/pricing.ts";
import { AddressError, parseWallet, type TonNetwork, type WalletAddress } from "./address.ts";
import { ToncenterClient } from "./client.ts";
import { TonUsdRate } from "./rate.ts";
import { TonWatcher, type WatcherOptions } from "./watcher.ts";

type TonConfig = Pick<Config, "tonWallet" | "tonNetwork" | "tonApi" | "tonApiKey" | "tonPollInterval" | "tonApiTimeout" | "tonPageSize" | "tonMinDeposit" | "tonUsdRateUrl">;

export interface TonSetup {
  /** Null when no wallet is configured: deposits are off. */
  wallet: WalletAddress | null;
  minimum: bigint;
  /** Null without a wallet. Not started. */
  watcher: TonWatcher | null;
  /** Null when --ton-usd-rate-url is empty. */
  rate: TonUsdRate | null;
}

export function minimumDeposit(value: string): bigint {
  let n: bigint;
  try {
    n = parseTon(value);
  } catch {
    throw new ConfigError(`--ton-min-deposit must be an amount of TON like 0.01, got "${value}"`);
  }
  if (n < 0n) throw new ConfigError(`--ton-min-deposit must not be negative, got "${value}"`);
  return n;
}

export function openTon(config: TonConfig, db: Db, log?: WatcherOptions["log"], lock?: WatcherOptions["lock"]): TonSetup {
  const minimum = minimumDeposit(config.tonMinDeposit);
  const rateUrl = config.tonUsdRateUrl.trim();
  // "off" as well as empty: an empty COCOON_* variable counts as unset.
  const rate = rateUrl && rateUrl !== "off" ? new TonUsdRate({ url: rateUrl }) : null;
  if (rate && !/^https?:\/\//.test(rateUrl)) throw new ConfigError(`--ton-usd-rate-url must be an http(s) URL or "off", got "${rateUrl}"`);
  if (!config.tonWallet.trim()) return { wallet: null, minimum, watcher: null, rate };
  let wallet: WalletAddress;
  try {
    wallet = parseWallet(config.tonWallet, config.tonNetwork as TonNetwork);
  } catch (err) {
    if (err instanceof AddressError) throw new ConfigError(`--ton-wallet: ${err.message}`);
    throw err;
  }
  if (!/^https?:\/\//.test(config.tonApi)) throw new ConfigError(`--ton-api must be an http(s) URL, got "${config.tonApi}"`);
  const client = new ToncenterClient({ base: config.tonApi, apiKey: config.tonApiKey, timeoutMs: Math.round(config.tonApiTimeout * 1000) });
  const watcher = new TonWatcher({ db, client, wallet, minimum, intervalMs: Math.round(config.tonPollInterval * 1000), pageSize: config.tonPageSize, log, lock });
  return { wallet, minimum, watcher, rate };
}

// `cocoon-server create-key [--credit TON] [--label TEXT] [--account ID] [limits]`: a new account with
// an API key, optionally credited (or a new key of an existing account), with the key's limits, straight
// in the database (works while the server runs: SQLite in WAL mode, or the gateways' Postgres with
// --db postgres://). The operator's way to hand out access without TON, e.g. for a first try or a trial customer.
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/config.ts";
import { openPlatformStore } from "../platform/open.ts";
import { recordAudit } from "../platform/audit.ts";
import { ApiError } from "../http/errors.ts";
import { checkKeyLimits, parseKeyLimits, type KeyLimitsInput } from "../platform/limit-input.ts";
import { keyInfoById } from "../platform/keys.ts";
import { NO_KEY_LIMITS } from "../platform/limits.ts";
import { createKeyWithLimits, openAccount } from "../platform/operations.ts";
import { getAccount } from "../platform/accounts.ts";
import { exec, isPg, tx } from "../store/query.ts";
import { formatTon, parseTon } from "../platform/pricing.ts";

export const CREATE_KEY_FLAGS = {
  credit: true,
  label: true,
  account: true,
  "max-budget": true,
  "period-budget": true,
  "budget-duration": true,
  rpm: true,
  tpm: true,
  rpd: true,
  "max-parallel": true,
  expires: true,
} as const;

export const CREATE_KEY_HELP = `create-key options:
  --credit <TON>            credit the new account with this much TON (an admin adjustment)
  --label <text>            a note to recognise the account (and key) by
  --account <id>            add the key to this existing account instead of a new one
  --max-budget <TON>        the key's lifetime spending limit
  --period-budget <TON>     the key's spending limit per --budget-duration
  --budget-duration <d>     day, week or month (UTC calendar periods)
  --rpm <n> --tpm <n> --rpd <n>   the key's own rate limits (inference routes)
  --max-parallel <n>        the key's requests in flight at once
  --expires <when>          ISO date-time (2027-01-01T00:00:00Z) or a duration from now (30d, 12h)`;

function int(flag: string, v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isSafeInteger(n) || n < 0) throw new ConfigError(`--${flag} must be a non-negative integer, got "${v}"`);
  return n;
}

const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);

/** The limit flags as the routes' KeyLimitsInput. */
function limitInput(extra: Record<string, string | boolean>): KeyLimitsInput {
  const expires = str(extra.expires);
  const relative = expires !== undefined && /^\d+[smhdw]$/.test(expires);
  return {
    max_budget_ton: str(extra["max-budget"]),
    period_budget_ton: str(extra["period-budget"]),
    budget_duration: str(extra["budget-duration"]),
    rpm_limit: int("rpm", extra.rpm),
    tpm_limit: int("tpm", extra.tpm),
    rpd_limit: int("rpd", extra.rpd),
    max_parallel_requests: int("max-parallel", extra["max-parallel"]),
    ...(expires === undefined ? {} : relative ? { duration: expires } : { expires_at: expires }),
  };
}

export async function createKeyCommand(config: Config, extra: Record<string, string | boolean>, out: (s: string) => void = console.log): Promise<void> {
  const amount = typeof extra.credit === "string" ? parseCredit(extra.credit) : 0n;
  const label = typeof extra.label === "string" ? extra.label : null;
  const input = limitInput(extra);
  const existing = int("account", extra.account);
  const { store, path } = await openPlatformStore(config);
  try {
    // Account, key, limits, credit and their audit rows in one transaction: nothing half-made if anything fails.
    const made = await exec(
      store,
      tx(function* () {
        if (existing !== undefined) {
          if (amount > 0n) throw new ConfigError("--credit goes with a new account; credit an existing one with the admin route");
          const acc = yield* getAccount.q(existing);
          if (!acc) throw new ConfigError(`--account ${existing}: no such account`);
          const k = yield* createKeyWithLimits.q({ kind: "admin", name: "cli" }, existing, label, input);
          return { key: k.key, accountId: existing, depositCode: acc.depositCode, balance: acc.balance, info: k.info };
        }
        const keyLimits = checkKeyLimits(NO_KEY_LIMITS, parseKeyLimits(input), null);
        const account = yield* openAccount.q({ label, signupCredit: amount, keyLimits });
        // An operator's credit, like the admin route's: in the audit log, by the command line.
        if (amount > 0n) {
          yield* recordAudit.q({ actor: "cli", action: "account.credit", objectType: "account", objectId: account.accountId, accountId: account.accountId, reason: "create-key --credit", before: { balance_nanoton: 0n }, after: { balance_nanoton: amount, amount_nanoton: amount, reference: `signup:${account.accountId}` } });
        }
        return { key: account.key, accountId: account.accountId, depositCode: account.depositCode, balance: account.balance, info: (yield* keyInfoById.q(account.keyId))! };
      }),
    );
    out(`api_key: ${made.key}`);
    out(`account: ${made.accountId}`);
    out(`key_id: ${made.info.id}`);
    out(`deposit_code: ${made.depositCode}`);
    out(`balance_ton: ${formatTon(made.balance)}`);
    const l = made.info.limits;
    const shown = [
      l.maxBudget !== null ? `max_budget ${formatTon(l.maxBudget)} TON` : "",
      l.periodBudget !== null ? `${formatTon(l.periodBudget)} TON per ${l.budgetDuration}` : "",
      l.rpm !== null ? `rpm ${l.rpm}` : "",
      l.tpm !== null ? `tpm ${l.tpm}` : "",
      l.rpd !== null ? `rpd ${l.rpd}` : "",
      l.maxParallelRequests !== null ? `max_parallel_requests ${l.maxParallelRequests}` : "",
      l.expiresAt !== null ? `expires ${new Date(l.expiresAt).toISOString()}` : "",
    ].filter(Boolean);
    if (shown.length) out(`limits: ${shown.join(", ")}`);
    // Postgres: its URL without the password.
    out(`database: ${isPg(store) ? store.where : path}`);
    out("The key is shown only this once; send it as `Authorization: Bearer <api_key>`.");
  } catch (err) {
    if (err instanceof ApiError) throw new ConfigError(`create-key: ${err.message}`);
    throw err;
  } finally {
    if (isPg(store)) await store.close();
    else store.close();
  }
}

function parseCredit(value: string): bigint {
  try {
    const n = parseTon(value);
    if (n < 0n) throw new Error("negative");
    return n;
  } catch {
    throw new ConfigError(`--credit must be a non-negative amount of TON like 0.5, got "${value}"`);
  }
}

// `cocoon-server create-key [--credit TON] [--label TEXT]`: a new account with an API key, optionally
// credited, straight in the database (works while the server runs: SQLite in WAL mode). The
// operator's way to hand out access without TON, e.g. for a first try or a trial customer.
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/config.ts";
import { openPlatform } from "../platform/open.ts";
import { recordAudit } from "../platform/audit.ts";
import { openAccount } from "../platform/operations.ts";
import { inTransaction } from "../store/db.ts";
import { formatTon, parseTon } from "../platform/pricing.ts";

export const CREATE_KEY_FLAGS = { credit: true, label: true } as const;

export const CREATE_KEY_HELP = `create-key options:
  --credit <TON>            credit the new account with this much TON (an admin adjustment)
  --label <text>            a note to recognise the account by`;

export function createKeyCommand(config: Config, extra: Record<string, string | boolean>, out: (s: string) => void = console.log): void {
  const amount = typeof extra.credit === "string" ? parseCredit(extra.credit) : 0n;
  const { service, path } = openPlatform(config);
  try {
    // Account, key and credit in one transaction: nothing half-made if anything fails.
    const account = inTransaction(service.db, () => {
      const a = openAccount(service.db, { label: typeof extra.label === "string" ? extra.label : null, signupCredit: amount });
      // An operator's credit, like the admin route's: in the audit log, by the command line.
      if (amount > 0n) {
        recordAudit(service.db, { actor: "cli", action: "account.credit", objectType: "account", objectId: a.accountId, accountId: a.accountId, reason: "create-key --credit", before: { balance_nanoton: 0n }, after: { balance_nanoton: amount, amount_nanoton: amount, reference: `signup:${a.accountId}` } });
      }
      return a;
    });
    out(`api_key: ${account.key}`);
    out(`account: ${account.accountId}`);
    out(`deposit_code: ${account.depositCode}`);
    out(`balance_ton: ${formatTon(account.balance)}`);
    out(`database: ${path}`);
    out("The key is shown only this once; send it as `Authorization: Bearer <api_key>`.");
  } finally {
    service.db.close();
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

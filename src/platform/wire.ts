// The platform's JSON shapes on the wire (seed 001's field names): stored rows to response objects,
// money formatted at this edge only, and the deposit texts. No Elysia here: the routes call these.
import type { Account } from "./accounts.ts";
import type { KeyInfo } from "./keys.ts";
import type { UsageEntry } from "./ledger.ts";
import type { OpenedAccount } from "./operations.ts";
import { periodEnd } from "./limits.ts";
import { formatTon, NANOTON_PER_TON } from "./pricing.ts";
import { costField } from "./service.ts";

export const iso = (ms: number) => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));
/** TON as the JSON number seed 001 shows: the exact decimal string, read once as a number. */
export const tonNumber = (nanoton: bigint) => Number(formatTon(nanoton));

/** A positive integer id from a path segment, or null (then the route answers 404). */
export function parseId(s: string): number | null {
  return /^[1-9][0-9]{0,14}$/.test(s) ? Number(s) : null;
}

/** Balance in USD, rounded half away from zero to cents; exact in nanoton × the rate's decimal digits. */
export function usdOf(nanoton: bigint, rate: number | null): number | null {
  if (rate === null || !Number.isFinite(rate) || rate < 0) return null;
  const m = /^(\d+)\.(\d+)$/.exec(rate.toFixed(12));
  if (!m) return null;
  const num = BigInt(m[1]! + m[2]!);
  const den = 10n ** BigInt(m[2]!.length) * NANOTON_PER_TON;
  const abs = nanoton < 0n ? -nanoton : nanoton;
  const cents = (abs * num * 100n * 2n + den) / (2n * den);
  return Number(nanoton < 0n ? -cents : cents) / 100;
}

export function depositInstructions(wallet: string | null, code: string, minimum: bigint = 0n): string {
  if (wallet === null) {
    return `Deposits are not enabled on this server: no deposit wallet is configured. Ask the operator to credit your account (deposit code ${code}).`;
  }
  const atLeast = minimum > 0n ? ` at least ${Number(formatTon(minimum))} TON` : " TON";
  return (
    `Send${atLeast} to ${wallet} with the comment/memo: ${code} (exactly this text, unencrypted). ` +
    "Your balance will be credited automatically within ~30 seconds of the transfer's confirmation. A transfer without this memo, with an encrypted comment or below the minimum is kept but not credited automatically: contact the operator."
  );
}

/** `ton://transfer/<wallet>?text=<memo>`: wallet apps open it with the memo filled in. */
export const transferLink = (wallet: string, memo: string) => `ton://transfer/${encodeURIComponent(wallet)}?text=${encodeURIComponent(memo)}`;

/** The deposit fields that /api/register and /api/login share. */
export const depositFields = (wallet: string | null, code: string, minimum: bigint) => ({ deposit_wallet: wallet, deposit_instructions: depositInstructions(wallet, code, minimum) });

export function usageRecord(u: UsageEntry) {
  return {
    id: u.id,
    created_at: iso(u.startedAt),
    model: u.model,
    endpoint: u.endpoint,
    request_guid: u.requestGuid,
    key_id: u.keyId,
    status: u.status,
    prompt_tokens: u.promptTokens,
    cached_tokens: u.cachedTokens,
    completion_tokens: u.completionTokens,
    reasoning_tokens: u.reasoningTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    cost: costField({ nanoton: u.cost, ton: formatTon(u.cost) }),
    duration_ms: u.durationMs,
  };
}

const nanotonOrNull = (n: bigint | null) => (n === null ? null : Number(n));
const tonOrNull = (n: bigint | null) => (n === null ? null : formatTon(n));

/** A key with its limits and spend, as every key route shows it (LiteLLM's names for the limits). */
export function keyFields(k: KeyInfo, now: number = Date.now()) {
  const l = k.limits;
  return {
    id: k.id,
    prefix: k.prefix,
    name: k.name,
    created_at: iso(k.createdAt),
    revoked_at: isoOrNull(k.revokedAt),
    last_used_at: isoOrNull(k.lastUsedAt),
    expires_at: isoOrNull(l.expiresAt),
    max_budget_nanoton: nanotonOrNull(l.maxBudget),
    max_budget_ton: tonOrNull(l.maxBudget),
    period_budget_nanoton: nanotonOrNull(l.periodBudget),
    period_budget_ton: tonOrNull(l.periodBudget),
    budget_duration: l.budgetDuration,
    budget_reset_at: l.budgetDuration === null ? null : iso(periodEnd(l.budgetDuration, now)),
    spend_nanoton: Number(k.spend),
    period_spend_nanoton: Number(k.periodSpend),
    rpm_limit: l.rpm,
    tpm_limit: l.tpm,
    rpd_limit: l.rpd,
    max_parallel_requests: l.maxParallelRequests,
  };
}

export function keyInfo(k: KeyInfo, currentKeyId: number) {
  return { ...keyFields(k), current: k.id === currentKeyId };
}

export function adminKeyInfo(k: KeyInfo) {
  return { ...keyFields(k), account_id: k.accountId };
}

/** A revoked key, by the time of its first revocation. */
export const revokedKey = (k: { id: number; accountId: number; revokedAt: number }) => ({ id: k.id, account_id: k.accountId, revoked_at: iso(k.revokedAt) });

export function apiKeyResponse(a: OpenedAccount) {
  return {
    api_key: a.key,
    deposit_code: a.depositCode,
    balance_ton: tonNumber(a.balance),
    balance_nanoton: Number(a.balance),
    created_at: iso(a.createdAt),
    account_id: a.accountId,
    key_id: a.keyId,
  };
}

export function adminAccount(a: Account) {
  return {
    id: a.id,
    label: a.label,
    deposit_code: a.depositCode,
    balance_nanoton: Number(a.balance),
    balance_ton: formatTon(a.balance),
    reserved_nanoton: Number(a.reserved),
    created_at: iso(a.createdAt),
    disabled: a.disabled,
  };
}

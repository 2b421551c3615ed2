// The platform routes: seed 001's Cocoon Platform API (/api/register, /api/login, /v1/keys,
// /v1/balance, /v1/deposit, /v1/pricing, /api/stats), the caller's usage and keys, and admin routes.
// Every key-authenticated response carries the X-RateLimit-* headers; money is never a float.
import { Elysia } from "elysia";
import { ApiError, stickyHeaders } from "../http/errors.ts";
import { ErrorResponse } from "../openai/model.ts";
import { listAccounts } from "./accounts.ts";
import { listKeys, revokeKey, createKey, verifyKey, type KeyInfo } from "./keys.ts";
import { usageById, usageOf, type UsageEntry } from "./ledger.ts";
import {
  AdminAccountList,
  AdminAccountsQuery,
  ApiKeyList,
  ApiKeyResponse,
  BalanceResponse,
  CreateAccountRequest,
  CreatedKey,
  CreateKeyRequest,
  CreditRequest,
  CreditResponse,
  DepositResponse,
  LoginRequest,
  LoginResponse,
  NetworkStats,
  PricingResponse,
  RegisterResponse,
  RevokedKey,
  UsageQuery,
  UsageRecord,
  UsageRecordList,
} from "./model.ts";
import { adminCredit, keyById, openAccount, type OpenedAccount } from "./operations.ts";
import { formatTon, NANOTON_PER_TON, parseTon, pricingDocument } from "./pricing.ts";
import { limitsFor } from "./ratelimit.ts";
import { costField, type Platform, type Principal } from "./service.ts";

export interface PlatformRouteDeps {
  platform: Platform;
  /** Ids of the served models (listed by /v1/pricing). */
  modelIds(): string[];
  /** Per-model load for /api/stats; empty while no model is loaded. */
  stats(): { id: string; slotsBusy: number; slotsTotal: number; queued: number }[];
  /** The TON address deposits go to; null when this server accepts no deposits. */
  depositWallet(): string | null;
  /** USD per TON; null while no rate is known. May wait briefly for a due refresh. */
  tonUsdRate(): number | null | Promise<number | null>;
  /** Smallest transfer credited automatically, nanoton. Defaults to none mentioned. */
  minimumDeposit?(): bigint;
}

const DEFAULT_USAGE_PAGE = 20;
const DEFAULT_ACCOUNTS_PAGE = 100;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));
/** TON as the JSON number seed 001 shows: the exact decimal string, read once as a number. */
const tonNumber = (nanoton: bigint) => Number(formatTon(nanoton));

/** A positive integer id from a path segment, or null (then the route answers 404). */
function parseId(s: string): number | null {
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

function depositInstructions(wallet: string | null, code: string, minimum: bigint = 0n): string {
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
const transferLink = (wallet: string, memo: string) => `ton://transfer/${encodeURIComponent(wallet)}?text=${encodeURIComponent(memo)}`;

function usageRecord(u: UsageEntry) {
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

function keyInfo(k: KeyInfo, currentKeyId: number) {
  return {
    id: k.id,
    prefix: k.prefix,
    name: k.name,
    created_at: iso(k.createdAt),
    revoked_at: isoOrNull(k.revokedAt),
    last_used_at: isoOrNull(k.lastUsedAt),
    current: k.id === currentKeyId,
  };
}

function apiKeyResponse(a: OpenedAccount) {
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

const json = (body: unknown, headers: Record<string, string> = {}, status = 200) => Response.json(body, { status, headers });

const auth = { 401: "ErrorResponse", 429: "ErrorResponse" } as const;
const admin = { 403: "ErrorResponse" } as const;
const AUTH_NOTE = "Authenticated with `Authorization: Bearer ck_...`; the response carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`.";
const ADMIN_NOTE = "Admin route: send the admin token (`--admin-token` / `COCOON_ADMIN_TOKEN`) as `Authorization: Bearer <token>`; 403 otherwise, and always when no admin token is configured.";

export function platformRoutes(deps: PlatformRouteDeps) {
  const { platform } = deps;
  const db = platform.db;

  /** The caller's key, counted against its rate limits: the principal and the headers for the response. */
  const caller = (request: Request): { principal: Principal; headers: Record<string, string> } => {
    const principal = platform.authenticate(request);
    const headers = platform.admit(principal);
    // The app's error handler puts them on any error this request still ends with.
    stickyHeaders.set(request, headers);
    return { principal, headers };
  };
  const accountOf = (p: Principal) => {
    const b = platform.balance(p.accountId);
    // A key verifies only while its account exists; this is a race with nothing that deletes accounts.
    if (!b) throw new ApiError("unauthorized", "Invalid API key");
    return b;
  };
  const minimum = () => deps.minimumDeposit?.() ?? 0n;
  const depositCodeOf = (accountId: number) =>
    db.query<{ deposit_code: string }, [number]>("SELECT deposit_code FROM accounts WHERE id = ?").get(accountId)?.deposit_code ?? "";

  return (
    new Elysia({ name: "platform" })
      .model({
        ErrorResponse,
        ApiKeyResponse,
        RegisterResponse,
        LoginResponse,
        BalanceResponse,
        DepositResponse,
        PricingResponse,
        NetworkStats,
        UsageRecord,
        UsageRecordList,
        ApiKeyList,
        CreatedKey,
        RevokedKey,
        AdminAccountList,
        CreditRequest,
        CreditResponse,
      })
      // ---- seed 001 ------------------------------------------------------------------------------
      .post(
        "/api/register",
        ({ body }) => {
          const opened = openAccount(db, { label: body?.name ?? null, signupCredit: platform.opts.signupCredit });
          const wallet = deps.depositWallet();
          return json({ ...apiKeyResponse(opened), deposit_wallet: wallet, deposit_instructions: depositInstructions(wallet, opened.depositCode, minimum()) });
        },
        {
          body: CreateAccountRequest,
          parse: "json",
          response: { 200: "RegisterResponse", 400: "ErrorResponse" },
          detail: {
            tags: ["Authentication"],
            summary: "Register a new user",
            description:
              "Self-service sign-up, no authentication: creates an account and returns its API key (shown only once: it is stored hashed), deposit code and deposit wallet. " +
              "`deposit_wallet` is null when this server accepts no deposits (`deposit_instructions` says so). The balance includes the sign-up credit when the server grants one.",
          },
        },
      )
      .post(
        "/api/login",
        ({ body, request }) => {
          let principal: Principal;
          if (body?.api_key !== undefined) {
            const key = verifyKey(db, body.api_key);
            if (!key) throw new ApiError("unauthorized", "Invalid API key");
            principal = { accountId: key.accountId, keyId: key.keyId, limits: limitsFor(key.limits, platform.opts.rateLimits) };
          } else {
            principal = platform.authenticate(request);
          }
          const headers = platform.admit(principal);
          stickyHeaders.set(request, headers);
          const b = accountOf(principal);
          const code = depositCodeOf(principal.accountId);
          const wallet = deps.depositWallet();
          return json(
            { balance_ton: tonNumber(b.balance), balance_nanoton: Number(b.balance), deposit_code: code, deposit_wallet: wallet, deposit_instructions: depositInstructions(wallet, code, minimum()) },
            headers,
          );
        },
        {
          body: LoginRequest,
          parse: "json",
          response: { 200: "LoginResponse", 400: "ErrorResponse", ...auth },
          detail: {
            tags: ["Authentication"],
            summary: "Verify an API key and get account info",
            description: `Verifies \`api_key\` from the body, or the \`Authorization: Bearer\` key when the body has none; 401 when it is not a valid key. ${AUTH_NOTE}`,
          },
        },
      )
      .post(
        "/v1/keys",
        ({ body, request }) => {
          if (platform.opts.adminToken) platform.requireAdmin(request);
          const opened = openAccount(db, { label: body?.name ?? null, signupCredit: platform.opts.signupCredit });
          return json(apiKeyResponse(opened), {}, 201);
        },
        {
          body: CreateAccountRequest,
          parse: "json",
          response: { 201: "ApiKeyResponse", 400: "ErrorResponse", ...admin },
          detail: {
            tags: ["Authentication"],
            summary: "Create a new account and API key",
            description:
              "Creates a new account with an API key and deposit code; the key is shown only once. Requires the admin token as `Authorization: Bearer <token>` " +
              "when one is configured (403 otherwise); without one, anyone may call it, like /api/register. To add a key to your own account use POST /v1/account/keys.",
          },
        },
      )
      .get(
        "/v1/balance",
        async ({ request }) => {
          const { principal, headers } = caller(request);
          let rate: number | null = null;
          try {
            rate = await deps.tonUsdRate();
          } catch {
            rate = null; // an unknown rate is null, never an error for the balance
          }
          // Read after the (possibly awaited) rate, so the balance is the newest one.
          const b = accountOf(principal);
          const usd = usdOf(b.balance, rate);
          return json(
            { balance_ton: tonNumber(b.balance), balance_nanoton: Number(b.balance), balance_usd: usd, ton_usd_rate: usd === null ? null : rate, reserved_nanoton: Number(b.reserved) },
            headers,
          );
        },
        {
          response: { 200: "BalanceResponse", ...auth },
          detail: { tags: ["Billing"], summary: "Check account balance", description: `The caller's balance; USD fields are null while no TON/USD rate is known. ${AUTH_NOTE}` },
        },
      )
      .get(
        "/v1/deposit",
        ({ request }) => {
          const { principal, headers } = caller(request);
          const code = depositCodeOf(principal.accountId);
          const wallet = deps.depositWallet();
          const min = minimum();
          return json(
            {
              wallet,
              memo: code,
              instructions: depositInstructions(wallet, code, min),
              link: wallet === null ? null : transferLink(wallet, code),
              deposits_enabled: wallet !== null,
              minimum_deposit_ton: wallet === null ? null : formatTon(min),
              minimum_deposit_nanoton: wallet === null ? null : Number(min),
            },
            headers,
          );
        },
        {
          response: { 200: "DepositResponse", ...auth },
          detail: {
            tags: ["Billing"],
            summary: "Get deposit instructions",
            description:
              "The TON wallet and the memo (your deposit code) to put on a transfer, and a `ton://transfer` link with the memo filled in. " +
              `Always 200 for a valid key: when this server has no deposit wallet, \`deposits_enabled\` is false, \`wallet\` and \`link\` are null and \`instructions\` says so. ${AUTH_NOTE}`,
          },
        },
      )
      .get("/v1/pricing", () => json(pricingDocument(platform.opts.pricing, deps.modelIds())), {
        response: { 200: "PricingResponse" },
        detail: {
          tags: ["Billing"],
          summary: "Get pricing information",
          description:
            "No authentication. Per-token rates by token type, exactly the integers billing uses: effective_nanoton = ceil(base × multiplier × markup); a request costs Σ tokens × effective rate. `models` lists per-model rates.",
        },
      })
      .get(
        "/api/stats",
        () => {
          let stats: ReturnType<PlatformRouteDeps["stats"]> = [];
          try {
            stats = deps.stats();
          } catch {
            stats = [];
          }
          const models = stats.map((s) => ({
            id: s.id,
            workers: 1,
            running: s.slotsBusy,
            capacity: s.slotsTotal,
            load_pct: s.slotsTotal > 0 ? Math.round((s.slotsBusy / s.slotsTotal) * 1000) / 10 : 0,
            queued: s.queued,
          }));
          const online = models.length > 0;
          return json({ models, status: online ? "online" : "offline", cached_at: online ? iso(Date.now()) : null });
        },
        {
          response: { 200: "NetworkStats" },
          detail: { tags: ["Network"], summary: "Get live statistics", description: "No authentication. Served models with their load; `status` is 'offline' while no model is loaded." },
        },
      )
      // ---- usage ---------------------------------------------------------------------------------
      .get(
        "/v1/usage",
        ({ query, request }) => {
          const { principal, headers } = caller(request);
          const page = usageOf(db, principal.accountId, { limit: query.limit ?? DEFAULT_USAGE_PAGE, before: query.before ?? null });
          const data = page.data.map(usageRecord);
          return json({ object: "list", data, has_more: page.hasMore, next_before: page.hasMore ? (data.at(-1)?.id ?? null) : null }, headers);
        },
        {
          query: UsageQuery,
          response: { 200: "UsageRecordList", 400: "ErrorResponse", ...auth },
          detail: {
            tags: ["Usage"],
            summary: "List your requests",
            description: `The caller's account's billed requests, newest first, with token counts and cost. Page with \`limit\` and \`before\` (the previous page's \`next_before\`). ${AUTH_NOTE}`,
          },
        },
      )
      .get(
        "/v1/usage/:id",
        ({ params, request }) => {
          const { principal, headers } = caller(request);
          const u = usageById(db, principal.accountId, params.id);
          if (!u) throw new ApiError("not_found", `No request '${params.id}' in this account's usage.`, "id", headers);
          return json(usageRecord(u), headers);
        },
        {
          response: { 200: "UsageRecord", 404: "ErrorResponse", ...auth },
          detail: { tags: ["Usage"], summary: "Get one request", description: `One of the caller's account's requests; 404 for any other id, including other accounts' requests. ${AUTH_NOTE}` },
        },
      )
      // ---- keys of the caller's account ---------------------------------------------------------
      .get(
        "/v1/keys",
        ({ request }) => {
          const { principal, headers } = caller(request);
          return json({ object: "list", data: listKeys(db, principal.accountId).map((k) => keyInfo(k, principal.keyId)) }, headers);
        },
        {
          response: { 200: "ApiKeyList", ...auth },
          detail: { tags: ["Authentication"], summary: "List your account's keys", description: `Every key of the caller's account, revoked ones included; never the key itself. ${AUTH_NOTE}` },
        },
      )
      .post(
        "/v1/account/keys",
        ({ body, request }) => {
          const { principal, headers } = caller(request);
          const now = Date.now();
          const k = createKey(db, principal.accountId, body?.name ?? null, now);
          return json({ id: k.id, api_key: k.key, prefix: k.prefix, name: body?.name ?? null, created_at: iso(now) }, headers, 201);
        },
        {
          body: CreateKeyRequest,
          parse: "json",
          response: { 201: "CreatedKey", 400: "ErrorResponse", ...auth },
          detail: { tags: ["Authentication"], summary: "Create a key for your account", description: `Another key for the caller's account (same balance); shown only once. ${AUTH_NOTE}` },
        },
      )
      .delete(
        "/v1/account/keys/:id",
        ({ params, request }) => {
          const { principal, headers } = caller(request);
          const id = parseId(params.id);
          const k = id === null ? null : keyById(db, id);
          if (!k || k.accountId !== principal.accountId) throw new ApiError("not_found", `No key ${params.id} in this account.`, "id", headers);
          revokeKey(db, principal.accountId, k.id);
          const revokedAt = keyById(db, k.id)!.revokedAt!;
          return json({ id: k.id, account_id: k.accountId, revoked_at: iso(revokedAt) }, headers);
        },
        {
          response: { 200: "RevokedKey", 404: "ErrorResponse", ...auth },
          detail: {
            tags: ["Authentication"],
            summary: "Revoke a key of your account",
            description: `Revokes one of the caller's account's keys (the calling key too, if asked); revoking it again answers the first revocation. 404 for other accounts' keys. ${AUTH_NOTE}`,
          },
        },
      )
      // ---- admin ---------------------------------------------------------------------------------
      .get(
        "/admin/accounts",
        ({ query, request }) => {
          platform.requireAdmin(request);
          const limit = query.limit ?? DEFAULT_ACCOUNTS_PAGE;
          const offset = query.offset ?? 0;
          const page = listAccounts(db, { limit, offset });
          const data = page.data.map((a) => ({
            id: a.id,
            label: a.label,
            deposit_code: a.depositCode,
            balance_nanoton: Number(a.balance),
            balance_ton: formatTon(a.balance),
            reserved_nanoton: Number(a.reserved),
            created_at: iso(a.createdAt),
            disabled: a.disabled,
          }));
          return json({ object: "list", data, total: page.total, limit, offset });
        },
        {
          query: AdminAccountsQuery,
          response: { 200: "AdminAccountList", 400: "ErrorResponse", ...admin },
          detail: { tags: ["Admin"], summary: "List accounts", description: `Accounts in creation order, with balances. ${ADMIN_NOTE}` },
        },
      )
      .post(
        "/admin/accounts/:id/credit",
        ({ params, body, request }) => {
          platform.requireAdmin(request);
          const id = parseId(params.id);
          if (id === null) throw new ApiError("not_found", `No account ${params.id}.`, "id");
          let amount: bigint;
          try {
            amount = parseTon(body.amount_ton);
          } catch {
            throw new ApiError("invalid_request", "amount_ton must be a TON amount with at most 9 decimals, e.g. \"1.5\" or \"-0.25\".", "amount_ton");
          }
          if (amount === 0n) throw new ApiError("invalid_request", "amount_ton must not be zero.", "amount_ton");
          if (amount > MAX_SAFE || -amount > MAX_SAFE) throw new ApiError("invalid_request", `amount_ton must be at most ${formatTon(MAX_SAFE)} TON either way.`, "amount_ton");
          const reference = body.reference ?? crypto.randomUUID();
          const r = adminCredit(db, id, amount, body.reason, reference);
          if (r.outcome === "no_account") throw new ApiError("not_found", `No account ${params.id}.`, "id");
          if (r.outcome === "conflict") {
            throw new ApiError(
              "invalid_request",
              `reference '${reference}' was already used for a credit of ${formatTon(r.amount)} TON to account ${r.accountId}; use a new reference for a different credit.`,
              "reference",
            );
          }
          const booked = r.outcome === "booked";
          return json(
            {
              account_id: id,
              booked,
              reference,
              amount_nanoton: Number(amount),
              amount_ton: formatTon(amount),
              balance_nanoton: Number(r.balance),
              balance_ton: formatTon(r.balance),
            },
            {},
            booked ? 201 : 200,
          );
        },
        {
          body: "CreditRequest",
          parse: "json",
          response: { 200: "CreditResponse", 201: "CreditResponse", 400: "ErrorResponse", 404: "ErrorResponse", ...admin },
          detail: {
            tags: ["Admin"],
            summary: "Credit or debit an account",
            description:
              "Books a ledger adjustment of `amount_ton` (negative for a debit; a debit may take the balance below the overdraft limit) with `reason`. " +
              "201 when booked. `reference` is an idempotency key: repeating a booked credit answers 200 with `booked: false` and changes nothing; " +
              `the same reference with another account or amount is a 400. ${ADMIN_NOTE}`,
          },
        },
      )
      .post(
        "/admin/keys/:id/revoke",
        ({ params, request }) => {
          platform.requireAdmin(request);
          const id = parseId(params.id);
          const k = id === null ? null : keyById(db, id);
          if (!k) throw new ApiError("not_found", `No key ${params.id}.`, "id");
          revokeKey(db, null, k.id);
          const revokedAt = keyById(db, k.id)!.revokedAt!;
          return json({ id: k.id, account_id: k.accountId, revoked_at: iso(revokedAt) });
        },
        {
          response: { 200: "RevokedKey", 404: "ErrorResponse", ...admin },
          detail: { tags: ["Admin"], summary: "Revoke any key", description: `Revokes a key of any account; revoking it again answers the first revocation. No body. ${ADMIN_NOTE}` },
        },
      )
  );
}

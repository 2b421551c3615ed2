// TypeBox schemas of the platform routes (seed 001's Cocoon Platform API plus usage, own keys and
// admin): they validate requests and generate the OpenAPI document. Money: integer nanoton as JSON
// numbers; TON as numbers where seed 001 shows numbers, elsewhere as exact decimal strings.
import { t } from "elysia";
import { Type } from "@sinclair/typebox";

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);
const Nanoton = (description: string) => Type.Integer({ description: `${description} In nanoton (1 TON = 10^9 nanoton).` });
const TonString = (description: string) => t.String({ pattern: "^-?[0-9]+\\.[0-9]{9}$", description: `${description} In TON, an exact decimal with 9 places.` });
const Timestamp = (description: string) => t.String({ format: "date-time", description });

// ---- seed 001 --------------------------------------------------------------------------------------

export const CreateAccountRequest = t.Optional(
  t.Object(
    { name: t.Optional(t.String({ maxLength: 100, description: "A label for the account and its first key (yours, for telling keys apart)." })) },
    { examples: [{ name: "my laptop" }], description: "Optional; the body may be empty." },
  ),
);

const apiKeyFields = {
  api_key: t.String({ description: "The API key (`ck_` + 43 base62 characters). Shown only once: it is stored hashed and cannot be recovered." }),
  deposit_code: t.String({ description: "Put this as the comment (memo) of a TON transfer to the deposit wallet to credit this account." }),
  balance_ton: t.Number({ description: "Current balance in TON (includes any sign-up credit)." }),
  balance_nanoton: Nanoton("Current balance."),
  created_at: Timestamp("Account creation time."),
  account_id: Type.Integer({ description: "The account's id (what admin routes take)." }),
  key_id: Type.Integer({ description: "The key's id (what key revocation takes)." }),
};

export const ApiKeyResponse = t.Object(apiKeyFields, { description: "A new account and its first API key." });

export const RegisterResponse = t.Object(
  {
    ...apiKeyFields,
    deposit_wallet: Nullable(t.String({ description: "TON address to send deposits to; null when this server accepts no deposits." })),
    deposit_instructions: t.String({ description: "How to top up, or why deposits are not enabled on this server." }),
  },
  { description: "A new account: API key (shown once), deposit code and deposit wallet." },
);

export const LoginRequest = t.Optional(
  t.Object(
    { api_key: t.Optional(t.String({ maxLength: 200, description: "The API key to verify (`ck_...`). Without it, the `Authorization: Bearer` key is verified." })) },
    { examples: [{ api_key: "ck_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG" }] },
  ),
);

export const LoginResponse = t.Object({
  balance_ton: t.Number(),
  balance_nanoton: Nanoton("Current balance."),
  deposit_code: t.String(),
  deposit_wallet: Nullable(t.String({ description: "Null when this server accepts no deposits." })),
  deposit_instructions: t.String(),
});

export const BalanceResponse = t.Object({
  balance_ton: t.Number({ description: "Balance in TON." }),
  balance_nanoton: Nanoton("Balance."),
  balance_usd: Nullable(t.Number({ description: "Balance in USD at `ton_usd_rate`, rounded to cents; null while no rate is known." })),
  ton_usd_rate: Nullable(t.Number({ description: "USD per TON; null while no rate is known." })),
  reserved_nanoton: Nanoton("Held by requests in flight: it is charged or released when they end."),
});

export const DepositResponse = t.Object({
  wallet: Nullable(t.String({ description: "TON address to send funds to (user-friendly, non-bounceable); null when deposits are not enabled on this server." })),
  memo: t.String({ description: "Your deposit code: the comment (memo) to put on the transfer." }),
  instructions: t.String({ description: "How to top up, or why deposits are not enabled on this server." }),
  link: Nullable(t.String({ description: "`ton://transfer/<wallet>?text=<memo>` for wallet apps; null when deposits are not enabled." })),
  deposits_enabled: t.Boolean({ description: "False when this server has no deposit wallet: transfers cannot be credited automatically." }),
  minimum_deposit_ton: Nullable(TonString("Smallest transfer credited automatically.")),
  minimum_deposit_nanoton: Nullable(Nanoton("Smallest transfer credited automatically.")),
});

const TokenRate = t.Object({
  base_nanoton: Type.Integer({ description: "Base price per token in nanoton, before multiplier and markup." }),
  multiplier: t.Number({ description: "Token type multiplier." }),
  effective_nanoton: Type.Integer({ description: "What billing charges per token: ceil(base × multiplier × markup)." }),
});

const Rates = t.Object({ prompt_token: TokenRate, completion_token: TokenRate, reasoning_token: TokenRate, cached_prompt_token: TokenRate });

export const PricingResponse = t.Object({
  currency: t.Literal("TON"),
  unit: t.Literal("nanoton"),
  nanoton_per_ton: Type.Integer(),
  markup_multiplier: t.Number(),
  rates: Rates,
  minimum_balance_ton: t.Number(),
  minimum_balance_nanoton: Type.Integer(),
  maximum_overdraft_ton: t.Number(),
  maximum_overdraft_nanoton: Type.Integer(),
  payment_method: t.String(),
  models: t.Array(t.Object({ id: t.String(), rates: Rates }), { description: "The rates of each served model and of each model with its own price." }),
});

export const NetworkStats = t.Object({
  models: t.Array(
    t.Object({
      id: t.String(),
      workers: Type.Integer({ description: "Inference workers serving the model (one per loaded model here)." }),
      running: Type.Integer({ description: "Requests generating now." }),
      capacity: Type.Integer({ description: "Requests that can generate at once (slots)." }),
      load_pct: t.Number({ description: "running / capacity in percent, one decimal." }),
      queued: Type.Integer({ description: "Requests waiting for a slot." }),
    }),
  ),
  status: t.Union([t.Literal("online"), t.Literal("cached"), t.Literal("offline")], {
    description: "'online': live data; 'offline': no model is loaded yet. This server reads its own engine, so data is never stale ('cached' is not used).",
  }),
  cached_at: Nullable(Timestamp("When the data was read; null when offline.")),
});

// ---- usage -----------------------------------------------------------------------------------------

export const Cost = t.Object({ nanoton: Type.Integer(), ton: t.String({ description: "The same in TON, an exact decimal." }) });

export const UsageRecord = t.Object({
  id: t.String({ description: "The request id." }),
  created_at: Timestamp("When the request started."),
  model: t.String(),
  endpoint: t.String(),
  request_guid: Nullable(t.String()),
  key_id: Nullable(Type.Integer({ description: "The key that made the request." })),
  status: t.Union([t.Literal("ok"), t.Literal("cancelled"), t.Literal("timeout"), t.Literal("error")]),
  prompt_tokens: Type.Integer(),
  cached_tokens: Type.Integer({ description: "Prompt tokens served from the KV cache (billed at the cached rate)." }),
  completion_tokens: Type.Integer(),
  reasoning_tokens: Type.Integer({ description: "Completion tokens that were reasoning (billed at the reasoning rate)." }),
  total_tokens: Type.Integer(),
  cost: Cost,
  duration_ms: Type.Integer(),
});

export const UsageRecordList = t.Object({
  object: t.Literal("list"),
  data: t.Array(UsageRecord, { description: "Newest first." }),
  has_more: t.Boolean(),
  next_before: Nullable(t.String({ description: "Pass as `before` for the next page; null on the last page." })),
});

/** The usage filters /v1/usage and /admin/usage share (issue 14): key, model and a time range. */
export const UsageFilterFields = {
  key_id: t.Optional(t.Integer({ minimum: 1, maximum: 2 ** 53 - 1, description: "Only requests made with this key." })),
  model: t.Optional(t.String({ minLength: 1, maxLength: 200, description: "Only requests to this model." })),
  start_time: t.Optional(t.String({ maxLength: 40, description: "Only requests started at or after this time: unix seconds or ISO 8601 (`2026-12-01`, `2026-12-01T12:00:00Z`)." })),
  end_time: t.Optional(t.String({ maxLength: 40, description: "Only requests started before this time (exclusive), like `start_time`." })),
  format: t.Optional(t.Union([t.Literal("json"), t.Literal("csv")], { description: "`csv`: every matching row as a CSV download (no paging). Defaults to json." })),
};

export const UsageQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, description: "Entries per page, 1..1000. Defaults to 20." })),
  before: t.Optional(t.String({ maxLength: 200, description: "`next_before` of the previous page." })),
  ...UsageFilterFields,
});

// ---- keys of the caller's account -----------------------------------------------------------------

// A key's limits, in LiteLLM's names (max_budget, budget_duration, rpm_limit, tpm_limit,
// max_parallel_requests, duration), money as exact TON strings. Absent: unchanged; null: cleared.
const TonInput = (description: string) => t.Union([t.String({ maxLength: 40, description: `${description} TON as an exact decimal string ("1.5").` }), t.Null()]);
const Count = (description: string, minimum: number) => t.Union([Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER, description }), t.Null()]);
export const keyLimitFields = {
  max_budget_ton: t.Optional(TonInput("Most the key may spend in its lifetime (charges plus what its requests in flight hold).")),
  period_budget_ton: t.Optional(TonInput("Most the key may spend per `budget_duration`.")),
  budget_duration: t.Optional(
    t.Union([t.String({ maxLength: 10, description: "day, week or month (UTC calendar periods: midnight, Monday, the 1st); also daily, 1d, 7d, 1mo." }), t.Null()]),
  ),
  rpm_limit: t.Optional(Count("Requests per minute of this key on inference routes (at most the account's when set by the account).", 0)),
  tpm_limit: t.Optional(Count("Tokens per minute of this key.", 0)),
  rpd_limit: t.Optional(Count("Requests per day of this key.", 0)),
  max_parallel_requests: t.Optional(Count("Requests of this key in flight at once; more get 429 max_parallel_requests_exceeded.", 1)),
  expires_at: t.Optional(t.Union([t.String({ maxLength: 40, description: "ISO 8601 time after which the key gets 401 key_expired." }), t.Null()])),
  duration: t.Optional(t.Union([t.String({ maxLength: 12, description: 'Expiry relative to now, e.g. "30d", "12h" (instead of expires_at).' }), t.Null()])),
};

export const KeyLimitsRequest = t.Object(keyLimitFields, {
  examples: [{ max_budget_ton: "5", period_budget_ton: "0.5", budget_duration: "day", rpm_limit: 30, max_parallel_requests: 2, duration: "30d" }],
  description: "Only the fields given change; null clears a limit.",
});

const keyInfoFields = {
  id: Type.Integer(),
  prefix: t.String({ description: "The key's first characters, for recognising it; the key itself is never shown again." }),
  name: Nullable(t.String()),
  created_at: Timestamp("Creation time."),
  revoked_at: Nullable(Timestamp("Revocation time; null while the key works.")),
  last_used_at: Nullable(Timestamp("Last use, to the minute; null if never used.")),
  expires_at: Nullable(Timestamp("When the key stops working; null: never.")),
  max_budget_nanoton: Nullable(Nanoton("Lifetime spending limit; null: none.")),
  max_budget_ton: Nullable(TonString("Lifetime spending limit; null: none.")),
  period_budget_nanoton: Nullable(Nanoton("Spending limit per budget_duration; null: none.")),
  period_budget_ton: Nullable(TonString("Spending limit per budget_duration; null: none.")),
  budget_duration: Nullable(t.Union([t.Literal("day"), t.Literal("week"), t.Literal("month")])),
  budget_reset_at: Nullable(Timestamp("When the period budget resets; null without one.")),
  spend_nanoton: Nanoton("Charged to this key in its lifetime."),
  period_spend_nanoton: Nanoton("Charged to this key in the current budget period (0 without one)."),
  rpm_limit: Nullable(Type.Integer({ description: "This key's requests per minute; null: the account's." })),
  tpm_limit: Nullable(Type.Integer({ description: "This key's tokens per minute; null: the account's." })),
  rpd_limit: Nullable(Type.Integer({ description: "This key's requests per day; null: the account's." })),
  max_parallel_requests: Nullable(Type.Integer({ description: "Requests in flight at once; null: no cap." })),
};

export const ApiKeyInfo = t.Object({ ...keyInfoFields, current: t.Boolean({ description: "True for the key that made this request." }) });

export const AdminKeyInfo = t.Object({ ...keyInfoFields, account_id: Type.Integer() });

export const ApiKeyList = t.Object({
  object: t.Literal("list"),
  data: t.Array(ApiKeyInfo),
  first_id: Nullable(Type.Integer({ description: "The first key of this page." })),
  last_id: Nullable(Type.Integer({ description: "The last key of this page: pass it as `after` for the next one." })),
  has_more: t.Boolean({ description: "Whether more keys follow this page." }),
});

// Bounded as AdminAccountsQuery's offset: past 2^63 a number no longer binds as an SQL integer.
const KEY_ID_BOUND = 2 ** 31 - 1;

export const KeyListQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, description: "Keys per page, 1 to 100. Defaults to 100." })),
  after: t.Optional(t.Integer({ minimum: 0, maximum: KEY_ID_BOUND, description: "A key id: the page starts after it (the previous page's last_id)." })),
});

export const AdminKeyList = t.Object({ object: t.Literal("list"), data: t.Array(AdminKeyInfo), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() });

export const AdminKeysQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, description: "Defaults to 100." })),
  offset: t.Optional(t.Integer({ minimum: 0, maximum: KEY_ID_BOUND, description: "Defaults to 0." })),
});

export const CreateKeyRequest = t.Optional(
  t.Object(
    { name: t.Optional(t.String({ maxLength: 100, description: "A label for the key." })), ...keyLimitFields },
    { examples: [{ name: "ci", max_budget_ton: "1", rpm_limit: 10, duration: "30d" }], description: "Optional; the body may be empty. Limit fields as in PATCH." },
  ),
);

export const CreatedKey = t.Object({
  ...keyInfoFields,
  api_key: t.String({ description: "The new key. Shown only once." }),
  account_id: Type.Integer(),
});

export const AccountLimitsRequest = t.Object(
  {
    rpm_limit: t.Optional(Count("Requests per minute of the whole account (all keys together); null: the server's default.", 0)),
    tpm_limit: t.Optional(Count("Tokens per minute of the whole account; null: the server's default.", 0)),
    rpd_limit: t.Optional(Count("Requests per day of the whole account; null: the server's default.", 0)),
  },
  { examples: [{ rpm_limit: 600, tpm_limit: 1_000_000 }] },
);

export const AccountLimits = t.Object({
  account_id: Type.Integer(),
  rpm_limit: Type.Integer({ description: "In effect (the account's own or the server's default)." }),
  tpm_limit: Type.Integer(),
  rpd_limit: Type.Integer(),
  overrides: t.Object({ rpm_limit: Nullable(Type.Integer()), tpm_limit: Nullable(Type.Integer()), rpd_limit: Nullable(Type.Integer()) }),
});

export const RevokedKey = t.Object({
  id: Type.Integer(),
  account_id: Type.Integer(),
  revoked_at: Timestamp("When the key was revoked (the first revocation, when revoked before)."),
});

// ---- admin -----------------------------------------------------------------------------------------

export const AdminAccount = t.Object({
  id: Type.Integer(),
  label: Nullable(t.String()),
  deposit_code: t.String(),
  balance_nanoton: Nanoton("Balance."),
  balance_ton: TonString("Balance."),
  reserved_nanoton: Nanoton("Held by requests in flight."),
  created_at: Timestamp("Creation time."),
  disabled: t.Boolean(),
});

export const AdminAccountList = t.Object({ object: t.Literal("list"), data: t.Array(AdminAccount), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() });

export const AdminAccountsQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, description: "Defaults to 100." })),
  // Bounded: past 2^63 a number no longer binds as an SQL integer (a 500); no table gets that long.
  offset: t.Optional(t.Integer({ minimum: 0, maximum: 2 ** 31 - 1, description: "Defaults to 0." })),
  q: t.Optional(t.String({ minLength: 1, maxLength: 200, description: "Search: an account id, a deposit code, part of the label, or a key's prefix (`ck_...`)." })),
});

export const CreditRequest = t.Object(
  {
    amount_ton: t.String({ maxLength: 40, description: "TON as an exact decimal string with at most 9 places (\"1.5\", \"-0.25\"); negative for a debit; not zero." }),
    reason: t.String({ minLength: 1, maxLength: 500, description: "Why; stored with the ledger entry." }),
    reference: t.Optional(
      t.String({ minLength: 1, maxLength: 200, description: "Idempotency key: a credit with a reference already booked is not booked again. Defaults to a random one." }),
    ),
  },
  { examples: [{ amount_ton: "1.5", reason: "welcome credit", reference: "welcome-42" }] },
);

export const CreditResponse = t.Object({
  account_id: Type.Integer(),
  booked: t.Boolean({ description: "False when this reference was booked before (nothing changed)." }),
  reference: t.String(),
  amount_nanoton: Type.Integer(),
  amount_ton: TonString("The amount."),
  balance_nanoton: Nanoton("Balance after the credit."),
  balance_ton: TonString("Balance after the credit."),
});

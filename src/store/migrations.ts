// The database schema as an ordered list of migrations; `openStore` applies the ones a database lacks.
// Append new migrations at the end and never edit an applied one: their version is what a file records.

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Its Postgres text where the automatic rewrite of `sql` (pg-migrate.ts pgDdl) does not fit. Defaults to pgDdl(sql). */
  pg?: string;
}

// Money is INTEGER nanoton (signed 64-bit: ±9.2e9 TON, plenty); timestamps are INTEGER unix ms.
const initial = `
CREATE TABLE accounts (
  id               INTEGER PRIMARY KEY,
  deposit_code     TEXT NOT NULL UNIQUE,
  label            TEXT,
  created_at       INTEGER NOT NULL,
  -- cached Σ(deposit, adjustment, charge) ledger rows, updated in the same transaction as each row
  balance_nanoton  INTEGER NOT NULL DEFAULT 0,
  -- cached Σ(reservation, release) ledger rows: money held by requests in flight
  reserved_nanoton INTEGER NOT NULL DEFAULT 0 CHECK (reserved_nanoton >= 0),
  disabled         INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

CREATE TABLE api_keys (
  id           INTEGER PRIMARY KEY,
  account_id   INTEGER NOT NULL REFERENCES accounts(id),
  key_hash     BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
  prefix       TEXT NOT NULL,
  name         TEXT,
  created_at   INTEGER NOT NULL,
  revoked_at   INTEGER,
  last_used_at INTEGER,
  rpm_limit    INTEGER CHECK (rpm_limit IS NULL OR rpm_limit >= 0),
  tpm_limit    INTEGER CHECK (tpm_limit IS NULL OR tpm_limit >= 0),
  rpd_limit    INTEGER CHECK (rpd_limit IS NULL OR rpd_limit >= 0)
);
CREATE INDEX api_keys_by_account ON api_keys(account_id);

-- Append-only: the triggers below refuse UPDATE and DELETE. UNIQUE(kind, reference) makes booking
-- idempotent: a deposit's transaction hash or a request id can be booked once per kind.
CREATE TABLE ledger (
  id             INTEGER PRIMARY KEY,
  account_id     INTEGER NOT NULL REFERENCES accounts(id),
  kind           TEXT NOT NULL CHECK (kind IN ('deposit', 'charge', 'adjustment', 'reservation', 'release')),
  amount_nanoton INTEGER NOT NULL,
  reference      TEXT NOT NULL,
  note           TEXT,
  created_at     INTEGER NOT NULL,
  UNIQUE (kind, reference),
  CHECK (CASE kind
    WHEN 'deposit'     THEN amount_nanoton > 0
    WHEN 'charge'      THEN amount_nanoton <= 0
    WHEN 'adjustment'  THEN amount_nanoton <> 0
    WHEN 'reservation' THEN amount_nanoton > 0
    WHEN 'release'     THEN amount_nanoton < 0
  END)
);
CREATE INDEX ledger_by_account ON ledger(account_id, kind);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;

-- One row per billed request (id = request id) while it holds money; closed_at is set when settled
-- or released.
CREATE TABLE reservations (
  id             TEXT PRIMARY KEY,
  account_id     INTEGER NOT NULL REFERENCES accounts(id),
  amount_nanoton INTEGER NOT NULL CHECK (amount_nanoton > 0),
  created_at     INTEGER NOT NULL,
  closed_at      INTEGER
);
CREATE INDEX reservations_open ON reservations(account_id) WHERE closed_at IS NULL;

-- One row per settled request. uncharged_nanoton is the part of the computed cost above the
-- reservation that was not billed (normally 0), kept so the clamp is auditable and replayable.
CREATE TABLE usage (
  id                TEXT PRIMARY KEY,
  account_id        INTEGER NOT NULL REFERENCES accounts(id),
  key_id            INTEGER REFERENCES api_keys(id),
  model             TEXT NOT NULL,
  endpoint          TEXT NOT NULL,
  request_guid      TEXT,
  prompt_tokens     INTEGER NOT NULL CHECK (prompt_tokens >= 0),
  cached_tokens     INTEGER NOT NULL CHECK (cached_tokens >= 0),
  completion_tokens INTEGER NOT NULL CHECK (completion_tokens >= 0),
  reasoning_tokens  INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
  cost_nanoton      INTEGER NOT NULL CHECK (cost_nanoton >= 0),
  uncharged_nanoton INTEGER NOT NULL DEFAULT 0 CHECK (uncharged_nanoton >= 0),
  status            TEXT NOT NULL CHECK (status IN ('ok', 'cancelled', 'timeout', 'error')),
  started_at        INTEGER NOT NULL,
  duration_ms       INTEGER NOT NULL CHECK (duration_ms >= 0)
);
CREATE INDEX usage_by_account ON usage(account_id, started_at, id);
`;

// Every transaction the deposit watcher decided on, keyed by its hash: the PRIMARY KEY is what makes a
// replayed, re-paged or re-read transaction a no-op. A credited row is written in the same SQLite
// transaction as its ledger 'deposit' row (reference = tx_hash) and can never change again.
const tonDeposits = `
CREATE TABLE ton_deposits (
  tx_hash        TEXT PRIMARY KEY CHECK (length(tx_hash) = 64 AND tx_hash NOT GLOB '*[^0-9a-f]*'),
  tx_lt          INTEGER NOT NULL CHECK (tx_lt > 0),
  wallet         TEXT NOT NULL,          -- raw form (0:<hex>) of the service wallet
  sender         TEXT,                   -- raw form of the inbound message's source; null for external
  amount_nanoton INTEGER NOT NULL CHECK (amount_nanoton >= 0),
  comment        TEXT,                   -- the decoded text comment (at most 512 characters), else null
  status         TEXT NOT NULL CHECK (status IN ('credited', 'unmatched', 'ignored')),
  reason         TEXT NOT NULL,          -- 'matched', or why it was not credited automatically
  account_id     INTEGER REFERENCES accounts(id),
  chain_time     INTEGER NOT NULL,       -- the transaction's time on chain, unix ms
  seen_at        INTEGER NOT NULL,       -- when the watcher recorded it, unix ms
  credited_at    INTEGER,
  assigned_by    TEXT,                   -- admin assignment of an unmatched transfer: who, why
  assign_note    TEXT,
  CHECK ((status = 'credited') = (account_id IS NOT NULL AND credited_at IS NOT NULL)),
  CHECK (status <> 'credited' OR amount_nanoton > 0)
);
CREATE INDEX ton_deposits_by_status ON ton_deposits(status, tx_lt);
CREATE INDEX ton_deposits_by_account ON ton_deposits(account_id, tx_lt) WHERE account_id IS NOT NULL;
-- Only an unmatched transfer may change (when an admin assigns it), and nothing is ever deleted.
CREATE TRIGGER ton_deposits_frozen BEFORE UPDATE ON ton_deposits WHEN OLD.status <> 'unmatched'
BEGIN SELECT RAISE(ABORT, 'a credited or ignored deposit cannot change'); END;
CREATE TRIGGER ton_deposits_no_delete BEFORE DELETE ON ton_deposits
BEGIN SELECT RAISE(ABORT, 'deposits are never deleted'); END;

-- Per wallet: the newest transaction the watcher has processed completely (it and everything older).
CREATE TABLE ton_cursor (
  wallet     TEXT PRIMARY KEY,
  lt         INTEGER NOT NULL CHECK (lt > 0),
  hash       TEXT NOT NULL CHECK (length(hash) = 64),
  updated_at INTEGER NOT NULL
);
`;

// Chat sessions: owner is "account:<id>" or "local" (--no-auth), so each owner has its own id space
// and another owner's session simply does not exist for a caller. Messages keep their order in
// `position`; an assistant message carries its turn's usage and cost. The session's totals count
// every turn generated in it, including turns later rolled back (they were paid for).
const sessions = `
CREATE TABLE chat_sessions (
  owner             TEXT NOT NULL,
  id                TEXT NOT NULL,
  title             TEXT NOT NULL DEFAULT '',
  model             TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
  cached_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
  completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
  cost_nanoton      INTEGER NOT NULL DEFAULT 0 CHECK (cost_nanoton >= 0),
  PRIMARY KEY (owner, id)
);
CREATE INDEX chat_sessions_recent ON chat_sessions(owner, updated_at);

CREATE TABLE chat_messages (
  owner             TEXT NOT NULL,
  session_id        TEXT NOT NULL,
  position          INTEGER NOT NULL CHECK (position >= 0),
  role              TEXT NOT NULL CHECK (role IN ('system', 'developer', 'user', 'assistant')),
  content           TEXT NOT NULL,
  reasoning_content TEXT,
  created_at        INTEGER NOT NULL,
  prompt_tokens     INTEGER,
  cached_tokens     INTEGER,
  completion_tokens INTEGER,
  cost_nanoton      INTEGER CHECK (cost_nanoton IS NULL OR cost_nanoton >= 0),
  PRIMARY KEY (owner, session_id, position),
  FOREIGN KEY (owner, session_id) REFERENCES chat_sessions(owner, id) ON DELETE CASCADE
);
`;

// The deposit watcher's resumable catch-up: while it pages back through a backlog (a first start, a
// long outage) each fetched page is staged here with the anchor to continue from, in one transaction,
// so a failing page costs only that page. Nothing in these tables is a deposit yet: the run is
// recorded (into ton_deposits, oldest first) only once it links up to the cursor it heads for.
const tonBackfill = `
CREATE TABLE ton_backfill (
  wallet      TEXT PRIMARY KEY,
  base_lt     INTEGER,              -- the cursor the run heads for; NULL: the wallet's first transaction
  base_hash   TEXT,
  top_lt      INTEGER NOT NULL,     -- the newest transaction of the run (the cursor once it is recorded)
  top_hash    TEXT NOT NULL,
  anchor_lt   INTEGER NOT NULL,     -- the oldest transaction staged so far: paging continues from it
  anchor_hash TEXT NOT NULL,
  complete    INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),  -- paging reached the base
  started_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  CHECK ((base_lt IS NULL) = (base_hash IS NULL))
);

CREATE TABLE ton_backfill_txs (
  wallet    TEXT NOT NULL REFERENCES ton_backfill(wallet) ON DELETE CASCADE,
  lt        INTEGER NOT NULL CHECK (lt > 0),
  hash      TEXT NOT NULL CHECK (length(hash) = 64),
  prev_lt   INTEGER NOT NULL,       -- the predecessor named in the BOC, for the gap check
  prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
  boc       BLOB NOT NULL,          -- the transaction cell: decided on again when recorded
  PRIMARY KEY (wallet, hash)
);
CREATE UNIQUE INDEX ton_backfill_txs_by_lt ON ton_backfill_txs(wallet, lt);
`;

// Who holds each reservation: the process (server or gateway) whose requests it pays for, and that
// process's lease, renewed while it runs. An open reservation is released by its owner, or by another
// process once the owner's lease expired or the owner is proven dead (its pid gone on the same
// machine, or the machine rebooted); never by a CLI command. NULL owner: written by a build before this.
const reservationOwners = `
ALTER TABLE reservations ADD COLUMN owner TEXT;
CREATE INDEX reservations_open_by_owner ON reservations(owner) WHERE closed_at IS NULL;

CREATE TABLE leases (
  owner        TEXT PRIMARY KEY,
  machine      TEXT NOT NULL,          -- host name and pid namespace: where pid means something
  boot         TEXT NOT NULL,          -- the machine's boot id ('' when unknown)
  pid          INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
);
`;

// Stored responses of the OpenAI Responses API (/v1/responses), per owner like chat sessions. `input`
// is the request's input items and `body` the response object, both JSON as the API returns them;
// `chain_id` is the first response of the conversation (its engine session key). One row of
// `response_secrets` holds the key that seals reasoning returned as `encrypted_content`.
const responses = `
CREATE TABLE responses (
  owner       TEXT NOT NULL,
  id          TEXT NOT NULL,
  previous_id TEXT,
  chain_id    TEXT NOT NULL,
  model       TEXT NOT NULL,
  status      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  input       TEXT NOT NULL,
  body        TEXT NOT NULL,
  PRIMARY KEY (owner, id)
);

CREATE TABLE response_secrets (
  name       TEXT PRIMARY KEY,
  secret     BLOB NOT NULL CHECK (length(secret) = 32),
  created_at INTEGER NOT NULL
);
`;

// Issue 14 (operator audit): every admin action (credit, debit, key revocation, deposit assignment,
// limit change) as one row: who (`actor`), when, what (`action` on `object_type`/`object_id`), the
// account it concerns, and the values before and after as JSON. Append-only like the ledger.
const audit = `
CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY,
  created_at  INTEGER NOT NULL,
  actor       TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 100),
  action      TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
  object_type TEXT NOT NULL,
  object_id   TEXT NOT NULL,
  account_id  INTEGER,
  reason      TEXT,
  before      TEXT,                   -- JSON, or NULL when the object did not exist before
  after       TEXT                    -- JSON, or NULL when the action removed it
);
CREATE INDEX audit_log_by_account ON audit_log(account_id, id) WHERE account_id IS NOT NULL;
CREATE INDEX audit_log_by_action ON audit_log(action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- Usage by time, for operator reports over every account (/admin/usage, the dashboard's charts).
CREATE INDEX usage_by_time ON usage(started_at);
`;

// Key budgets and limits (issue 14): a key may expire, carry a lifetime spending limit and/or one per
// UTC day, week or month, and cap its requests in flight. Its spend is cached on the key (like the
// account's balance: updated in the settling transaction, equal to Σ usage.cost of the key); the
// period's spend is counted from period_start, the start of the current period when last charged.
// Reservations name their key, so the key's open holds and requests in flight are counted in the
// reserving transaction. Accounts may carry rate-limit overrides that bind all their keys together.
const keyBudgets = `
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN max_budget_nanoton INTEGER CHECK (max_budget_nanoton IS NULL OR max_budget_nanoton >= 0);
ALTER TABLE api_keys ADD COLUMN period_budget_nanoton INTEGER CHECK (period_budget_nanoton IS NULL OR period_budget_nanoton >= 0);
ALTER TABLE api_keys ADD COLUMN budget_duration TEXT CHECK (budget_duration IS NULL OR budget_duration IN ('day', 'week', 'month'));
ALTER TABLE api_keys ADD COLUMN max_parallel_requests INTEGER CHECK (max_parallel_requests IS NULL OR max_parallel_requests >= 1);
ALTER TABLE api_keys ADD COLUMN spend_nanoton INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN period_spend_nanoton INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN period_start INTEGER NOT NULL DEFAULT 0;
UPDATE api_keys SET spend_nanoton = coalesce((SELECT sum(cost_nanoton) FROM usage WHERE usage.key_id = api_keys.id), 0);
ALTER TABLE reservations ADD COLUMN key_id INTEGER REFERENCES api_keys(id);
CREATE INDEX reservations_open_by_key ON reservations(key_id) WHERE closed_at IS NULL;
ALTER TABLE accounts ADD COLUMN rpm_limit INTEGER CHECK (rpm_limit IS NULL OR rpm_limit >= 0);
ALTER TABLE accounts ADD COLUMN tpm_limit INTEGER CHECK (tpm_limit IS NULL OR tpm_limit >= 0);
ALTER TABLE accounts ADD COLUMN rpd_limit INTEGER CHECK (rpd_limit IS NULL OR rpd_limit >= 0);
`;

// Billing checkpoints (issue 17): while a request runs, its server writes what it processed so far
// (the usage record and its cost, JSON) onto its open reservation about once a second; a server that
// finds the owner dead settles the hold at that checkpoint instead of releasing it unbilled.
const reservationCheckpoints = `
ALTER TABLE reservations ADD COLUMN checkpoint TEXT;
`;

// Issue 15 (several gateways on one database): rate-limit windows kept in the database, so that every
// gateway counts a key's requests and tokens together. One row per counter (a key's, an account's) and
// window kind ('m': the UTC minute's requests and tokens, 'd': the UTC day's requests), rolled over in
// place when a new window starts. Gateways on SQLite (one process) keep theirs in memory instead.
const sharedRateCounters = `
CREATE TABLE rate_counters (
  counter  TEXT NOT NULL,
  win      TEXT NOT NULL CHECK (win IN ('m', 'd')),
  start    INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  tokens   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (counter, win)
);
`;

// Issue 15, sessions-shared (sessions and stored responses readable from any gateway): the lock of a
// session's running turn, so that two gateways on one Postgres never run two turns of one session at
// once. One row per session with a turn in flight: the gateway holding it (its lease owner, see
// leases), this turn's token, and an expiry; a row whose expiry passed and whose gateway's lease is
// gone (SIGKILLed mid-turn) is taken over. No foreign key: a new session's first turn holds the lock
// before the session exists. Single-process SQLite servers keep theirs in memory.
const sessionTurns = `
CREATE TABLE session_turns (
  owner      TEXT NOT NULL,
  session_id TEXT NOT NULL,
  holder     TEXT NOT NULL,
  token      TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (owner, session_id)
);
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "platform: accounts, keys, ledger, reservations, usage", sql: initial },
  { version: 2, name: "ton: deposits and the watcher's cursor", sql: tonDeposits },
  { version: 3, name: "sessions: chat sessions and their messages", sql: sessions },
  { version: 4, name: "ton: the watcher's staged catch-up run", sql: tonBackfill },
  { version: 5, name: "responses: stored responses and the reasoning seal key", sql: responses },
  { version: 6, name: "platform: reservation owners and their leases", sql: reservationOwners },
  { version: 7, name: "platform: the admin audit log and usage by time", sql: audit },
  { version: 8, name: "platform: key budgets, expiry, concurrency caps; account rate limits", sql: keyBudgets },
  { version: 9, name: "platform: billing checkpoints of running requests", sql: reservationCheckpoints },
  { version: 10, name: "platform: rate-limit windows shared by gateways", sql: sharedRateCounters },
  { version: 11, name: "sessions-shared: turn locks of sessions shared by gateways", sql: sessionTurns },
];

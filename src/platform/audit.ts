// The admin audit log: one append-only row per admin action (who, when, what, on which object, the
// values before and after). `recordAudit` is the one writer; call it inside the action's transaction.
import { all, dual, filter, get, type Q } from "../store/query.ts";

/** The actions recorded; extend this list with each new admin route that changes something. */
export type AuditAction =
  | "account.credit"
  | "account.debit"
  | "key.revoke"
  | "key.limits"
  | "key.create"
  | "account.limits"
  | "key.budget"
  | "key.expiry"
  | "deposit.assign"
  | (string & {});

export interface AuditInput {
  /** Who did it: the operator's name (`X-Cocoon-Actor`), "admin" by default, "cli" for commands. */
  actor: string;
  action: AuditAction;
  objectType: "account" | "key" | "deposit" | (string & {});
  objectId: string | number;
  /** The account the action concerns, for filtering; null when none. */
  accountId?: number | null;
  reason?: string | null;
  /** The object's values before and after (JSON-serialisable; bigints become strings). */
  before?: unknown;
  after?: unknown;
  /** Unix ms. Defaults to now. */
  at?: number;
}

export interface AuditEntry {
  id: number;
  createdAt: number;
  actor: string;
  action: string;
  objectType: string;
  objectId: string;
  accountId: number | null;
  reason: string | null;
  before: unknown;
  after: unknown;
}

// Money is bigint nanoton: as JSON it is an exact decimal string, never a rounded float.
/** A value as the audit log stores it (bigints as exact decimal strings); null for none. Also how a change is told from no change. */
export const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)));

/** The default actor when a request names none. */
export const DEFAULT_ACTOR = "admin";

/**
 * The actor a request names in `X-Cocoon-Actor` (LiteLLM's `LiteLLM-Changed-By`; percent-encoded
 * UTF-8 is decoded), trimmed and cut to 100 characters; "admin" when it names none. The admin token is one secret, so the name is the
 * operator's statement, recorded as given.
 */
export function actorOf(request: Request): string {
  let raw = request.headers.get("x-cocoon-actor") ?? "";
  // Header values are bytes: a browser sends a name beyond Latin-1 percent-encoded.
  try {
    raw = decodeURIComponent(raw);
  } catch {
    // Not percent-encoding (a literal "%"): the name as sent.
  }
  raw = raw.replace(/[\u0000-\u001f\u007f]/g, "").trim();
  return raw === "" ? DEFAULT_ACTOR : raw.slice(0, 100);
}

/**
 * Appends one audit row. Run it inside the transaction that makes the change (`yield* recordAudit.q(e)`
 * in a `tx`), so an action and its record are written together or not at all. Returns its id.
 */
export const recordAudit = dual(function* (e: AuditInput): Q<number> {
  const r = yield* get<{ id: bigint }>(
    "INSERT INTO audit_log (created_at, actor, action, object_type, object_id, account_id, reason, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    e.at ?? Date.now(), e.actor.slice(0, 100) || DEFAULT_ACTOR, e.action, e.objectType, String(e.objectId), e.accountId ?? null, e.reason ?? null, json(e.before), json(e.after),
  );
  return Number(r!.id);
});

interface AuditRow {
  id: bigint;
  created_at: bigint;
  actor: string;
  action: string;
  object_type: string;
  object_id: string;
  account_id: bigint | null;
  reason: string | null;
  before: string | null;
  after: string | null;
}

const parse = (s: string | null): unknown => (s === null ? null : JSON.parse(s));

const toEntry = (r: AuditRow): AuditEntry => ({
  id: Number(r.id),
  createdAt: Number(r.created_at),
  actor: r.actor,
  action: r.action,
  objectType: r.object_type,
  objectId: r.object_id,
  accountId: r.account_id === null ? null : Number(r.account_id),
  reason: r.reason,
  before: parse(r.before),
  after: parse(r.after),
});

export interface AuditQuery {
  limit: number;
  /** The id of the last entry of the previous page (entries are newest first). */
  before?: number | null;
  accountId?: number | null;
  action?: string | null;
  actor?: string | null;
}

/** A page of the audit log, newest first (keyset pagination by id). */
export const listAudit = dual(function* (q: AuditQuery): Q<{ data: AuditEntry[]; hasMore: boolean }> {
  const limit = Math.min(1000, Math.max(1, Math.floor(q.limit)));
  const w = filter(["id < ?", q.before], ["account_id = ?", q.accountId], ["action = ?", q.action], ["actor = ?", q.actor]);
  const rows = yield* all<AuditRow>(`SELECT * FROM audit_log WHERE ${w.sql} ORDER BY id DESC LIMIT ?`, ...w.params, limit + 1);
  return { data: rows.slice(0, limit).map(toEntry), hasMore: rows.length > limit };
});

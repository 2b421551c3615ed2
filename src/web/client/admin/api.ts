// The dashboard's calls to the admin routes on its own origin: the admin token (kept in this tab's
// sessionStorage only) as a bearer token, the operator's name as X-Cocoon-Actor for the audit log.

const TOKEN = "cocoon.admin.token";
const ACTOR = "cocoon.admin.actor";

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const session = {
  get token(): string {
    return sessionStorage.getItem(TOKEN) ?? "";
  },
  get actor(): string {
    return sessionStorage.getItem(ACTOR) ?? "";
  },
  save(token: string, actor: string): void {
    sessionStorage.setItem(TOKEN, token);
    if (actor) sessionStorage.setItem(ACTOR, actor);
    else sessionStorage.removeItem(ACTOR);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN);
  },
};

/** What a 403 does (sign out); set by the app. */
export const hooks = { forbidden: (_message: string) => {} };

/** A same-origin JSON call; errors become ApiFailure with the server's message. */
export async function api<T>(path: string, init: { method?: string; json?: unknown; token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? session.token}` };
  // Header values are bytes: the name goes percent-encoded (the server decodes it).
  if (session.actor) headers["x-cocoon-actor"] = encodeURIComponent(session.actor);
  if (init.json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method: init.method ?? (init.json !== undefined ? "POST" : "GET"), headers, body: init.json === undefined ? undefined : JSON.stringify(init.json), credentials: "omit", cache: "no-store" });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
    const message = body?.error?.message ?? `HTTP ${res.status}`;
    if (res.status === 403 && init.token === undefined) hooks.forbidden(message);
    throw new ApiFailure(res.status, message);
  }
  return (await res.json()) as T;
}

export interface Cost {
  nanoton: number;
  ton: string;
}

export interface Totals {
  day: string | null;
  account_id: number | null;
  model: string | null;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: Cost;
}

export interface Account {
  id: number;
  label: string | null;
  deposit_code: string;
  balance_ton: string;
  reserved_nanoton: number;
  created_at: string;
  disabled: boolean;
}

export interface Key {
  id: number;
  prefix: string;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  limits: Record<string, unknown>;
}

export interface Deposit {
  tx_hash: string;
  amount_ton: string;
  comment: string | null;
  sender: string | null;
  time: string;
  status: "credited" | "unmatched" | "ignored";
  reason: string;
  account_id: number | null;
  assigned_by: string | null;
}

export interface AuditEntry {
  id: number;
  created_at: string;
  actor: string;
  action: string;
  object_type: string;
  object_id: string;
  account_id: number | null;
  reason: string | null;
  before: unknown;
  after: unknown;
}

export interface ModelLoad {
  id: string;
  running: number;
  capacity: number;
  load_pct: number;
  queued: number;
}

// Queries over chat sessions, their messages and turn locks, written once for SQLite and Postgres
// (every gateway on one Postgres sees the same sessions); scoped by owner. Times unix ms, money nanoton.
import type { Usage } from "../inference/types.ts";
import { all, dialect, dual, exec, forUpdate, get, run, tx, type Db, type Q } from "../store/query.ts";

export type StoredRole = "system" | "developer" | "user" | "assistant";

/** A stored turn's token counts: the engine's usage without reasoning tokens (not stored). */
export type TurnUsage = Omit<Usage, "reasoningTokens">;

export interface StoredMessage {
  role: StoredRole;
  content: string;
  reasoningContent: string | null;
  createdAt: number;
  /** Assistant replies generated here: the turn's usage; null for messages sent by the client. */
  usage: TurnUsage | null;
  /** What the turn was charged; null when billing was off or the message was not generated. */
  cost: bigint | null;
}

export interface SessionRow {
  id: string;
  title: string;
  model: string;
  createdAt: number;
  updatedAt: number;
  messageCount: number;
  /** The first system message's content. */
  systemPrompt: string | null;
  usage: TurnUsage;
  cost: bigint;
}

type RawSession = {
  id: string;
  title: string;
  model: string;
  created_at: bigint;
  updated_at: bigint;
  prompt_tokens: bigint;
  cached_tokens: bigint;
  completion_tokens: bigint;
  cost_nanoton: bigint;
  message_count: bigint;
  system_prompt: string | null;
};

type RawMessage = {
  role: StoredRole;
  content: string;
  reasoning_content: string | null;
  created_at: bigint;
  prompt_tokens: bigint | null;
  cached_tokens: bigint | null;
  completion_tokens: bigint | null;
  cost_nanoton: bigint | null;
};

const SESSION_COLUMNS = `s.id, s.title, s.model, s.created_at, s.updated_at, s.prompt_tokens, s.cached_tokens, s.completion_tokens, s.cost_nanoton,
  (SELECT count(*) FROM chat_messages m WHERE m.owner = s.owner AND m.session_id = s.id) AS message_count,
  (SELECT content FROM chat_messages m WHERE m.owner = s.owner AND m.session_id = s.id AND m.role = 'system' ORDER BY position LIMIT 1) AS system_prompt`;

/** A session's totals or a reply's usage, from its token columns (a missing count is 0). */
function usageOf(r: { prompt_tokens: bigint | null; cached_tokens: bigint | null; completion_tokens: bigint | null }): TurnUsage {
  return { promptTokens: Number(r.prompt_tokens ?? 0n), cachedTokens: Number(r.cached_tokens ?? 0n), completionTokens: Number(r.completion_tokens ?? 0n) };
}

function toSession(r: RawSession): SessionRow {
  return {
    id: r.id,
    title: r.title,
    model: r.model,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    messageCount: Number(r.message_count),
    systemPrompt: r.system_prompt,
    usage: usageOf(r),
    cost: r.cost_nanoton,
  };
}

function toMessage(r: RawMessage): StoredMessage {
  return {
    role: r.role,
    content: r.content,
    reasoningContent: r.reasoning_content,
    createdAt: Number(r.created_at),
    usage: r.completion_tokens === null ? null : usageOf(r),
    cost: r.cost_nanoton,
  };
}

/** A new message to append (created now). */
export interface NewMessage {
  role: StoredRole;
  content: string;
  reasoningContent?: string | null;
  usage?: TurnUsage | null;
  cost?: bigint | null;
}

// The order of a session list: most recently updated first, ties by insertion (SQLite's rowid; on
// Postgres, which has none, by creation time then id).
function* order(): Q<{ key: string; by: string }> {
  return (yield* dialect()) === "sqlite"
    ? { key: "s.updated_at, s.rowid", by: "s.updated_at DESC, s.rowid DESC" }
    : { key: "s.updated_at, s.created_at, s.id", by: "s.updated_at DESC, s.created_at DESC, s.id DESC" };
}

const listQ = dual(function* (owner: string): Q<SessionRow[]> {
  const o = yield* order();
  return (yield* all<RawSession>(`SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? ORDER BY ${o.by}`, owner)).map(toSession);
});

const pageQ = dual(function* (owner: string, limit: number, after: string | null): Q<{ data: SessionRow[]; hasMore: boolean }> {
  const o = yield* order();
  let rows: RawSession[];
  if (after) {
    const c = yield* get<Record<string, unknown>>(`SELECT ${o.key} FROM chat_sessions s WHERE s.owner = ? AND s.id = ?`, owner, after);
    if (!c) return { data: [], hasMore: false };
    const cursor = Object.values(c);
    rows = yield* all<RawSession>(
      `SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? AND (${o.key}) < (${cursor.map(() => "?").join(", ")}) ORDER BY ${o.by} LIMIT ?`,
      owner, ...cursor, limit + 1,
    );
  } else {
    rows = yield* all<RawSession>(`SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? ORDER BY ${o.by} LIMIT ?`, owner, limit + 1);
  }
  return { data: rows.slice(0, limit).map(toSession), hasMore: rows.length > limit };
});

const countQ = dual(function* (owner: string): Q<number> {
  return Number((yield* get<{ n: bigint }>("SELECT count(*) AS n FROM chat_sessions WHERE owner = ?", owner))!.n);
});

function* getQ(owner: string, id: string): Q<SessionRow | null> {
  const r = yield* get<RawSession>(`SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? AND s.id = ?`, owner, id);
  return r ? toSession(r) : null;
}

const messagesQ = dual(function* (owner: string, id: string): Q<StoredMessage[]> {
  const rows = yield* all<RawMessage>(
    "SELECT role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position",
    owner, id,
  );
  return rows.map(toMessage);
});

function* createQ(owner: string, id: string, o: { title: string; model: string; now: number }): Q<boolean> {
  const r = yield* run("INSERT INTO chat_sessions (owner, id, title, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", owner, id, o.title, o.model, o.now, o.now);
  return r.changes === 1;
}

function* deleteQ(owner: string, id: string): Q<boolean> {
  return yield* tx(function* () {
    yield* run("DELETE FROM chat_messages WHERE owner = ? AND session_id = ?", owner, id);
    return (yield* run("DELETE FROM chat_sessions WHERE owner = ? AND id = ?", owner, id)).changes === 1;
  });
}

const expireQ = dual(function* (before: number): Q<{ owner: string; id: string }[]> {
  return yield* tx(function* () {
    const gone = yield* all<{ owner: string; id: string }>("SELECT owner, id FROM chat_sessions WHERE updated_at < ?", before);
    for (const s of gone) yield* deleteQ(s.owner, s.id);
    return gone;
  });
});

// The two steps of commitTurnQ, inside its transaction and after it locked the session row.

function* appendQ(owner: string, id: string, messages: NewMessage[], o: { model: string; now: number; title: string; turn?: { usage: TurnUsage; cost: bigint } }): Q<void> {
  const next = yield* get<{ n: bigint | null }>("SELECT max(position) AS n FROM chat_messages WHERE owner = ? AND session_id = ?", owner, id);
  let position = next?.n === null || next?.n === undefined ? 0 : Number(next.n) + 1;
  for (const m of messages) {
    yield* run(
      "INSERT INTO chat_messages (owner, session_id, position, role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      owner, id, position++, m.role, m.content, m.reasoningContent ?? null, o.now,
      m.usage?.promptTokens ?? null, m.usage?.cachedTokens ?? null, m.usage?.completionTokens ?? null, m.cost ?? null,
    );
  }
  const t = o.turn;
  yield* run(
    `UPDATE chat_sessions SET updated_at = ?, model = ?, title = CASE WHEN title = '' THEN ? ELSE title END,
       prompt_tokens = prompt_tokens + ?, cached_tokens = cached_tokens + ?, completion_tokens = completion_tokens + ?, cost_nanoton = cost_nanoton + ?
     WHERE owner = ? AND id = ?`,
    o.now, o.model, o.title, t?.usage.promptTokens ?? 0, t?.usage.cachedTokens ?? 0, t?.usage.completionTokens ?? 0, t?.cost ?? 0n, owner, id,
  );
}

function* setSystemPromptQ(owner: string, id: string, content: string, now: number): Q<void> {
  const first = yield* get<{ role: string; content: string }>("SELECT role, content FROM chat_messages WHERE owner = ? AND session_id = ? AND position = 0", owner, id);
  if (first?.role === "system") {
    if (first.content !== content) yield* run("UPDATE chat_messages SET content = ?, created_at = ? WHERE owner = ? AND session_id = ? AND position = 0", content, now, owner, id);
    return;
  }
  // Shift every message up by one, from the end so positions never collide.
  const rows = yield* all<{ position: bigint }>("SELECT position FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position DESC", owner, id);
  for (const r of rows) yield* run("UPDATE chat_messages SET position = position + 1 WHERE owner = ? AND session_id = ? AND position = ?", owner, id, r.position);
  yield* run("INSERT INTO chat_messages (owner, session_id, position, role, content, created_at) VALUES (?, ?, 0, 'system', ?, ?)", owner, id, content, now);
}

const rollbackQ = dual(function* (owner: string, id: string, n: number, now: number): Q<void> {
  yield* tx(function* () {
    yield* run(
      "DELETE FROM chat_messages WHERE owner = ? AND session_id = ? AND position IN (SELECT position FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position DESC LIMIT ?)",
      owner, id, owner, id, n,
    );
    yield* run("UPDATE chat_sessions SET updated_at = ? WHERE owner = ? AND id = ?", now, owner, id);
  });
});

const forkQ = dual(function* (owner: string, from: string, to: string, n: number, now: number): Q<boolean> {
  return yield* tx(function* () {
    const src = yield* getQ(owner, from);
    if (!src) return false;
    if (!(yield* createQ(owner, to, { title: src.title, model: src.model, now }))) return false;
    yield* run(
      `INSERT INTO chat_messages (owner, session_id, position, role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton)
       SELECT owner, ?, position, role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton
       FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position LIMIT ?`,
      to, owner, from, n,
    );
    return true;
  });
});

/** What a finished turn writes, in one transaction (see {@link SessionStore.commitTurn}). */
export interface TurnWrite {
  messages: NewMessage[];
  model: string;
  now: number;
  title: string;
  systemPrompt?: string;
  turn: { usage: TurnUsage; cost: bigint };
  /** On a shared store: the turn's lock, which must still be held (a session deleted meanwhile drops it). */
  lock?: TurnLock;
}

/** A turn's lock row: the session, the gateway holding it (its lease owner) and this turn's token. */
export interface TurnLock {
  owner: string;
  id: string;
  holder: string;
  token: string;
}

const commitTurnQ = dual(function* (owner: string, id: string, w: TurnWrite): Q<boolean> {
  return yield* tx(function* () {
    if (w.lock) {
      const held = yield* get(`SELECT token FROM session_turns WHERE owner = ? AND session_id = ? AND token = ?${yield* forUpdate()}`, owner, id, w.lock.token);
      if (!held) return false;
    }
    yield* createQ(owner, id, { title: w.title, model: w.model, now: w.now });
    // The session row locked (Postgres) before its messages change: two writers of one session go one after the other.
    yield* get(`SELECT id FROM chat_sessions WHERE owner = ? AND id = ?${yield* forUpdate()}`, owner, id);
    if (w.systemPrompt !== undefined) yield* setSystemPromptQ(owner, id, w.systemPrompt, w.now);
    yield* appendQ(owner, id, w.messages, { model: w.model, now: w.now, title: w.title, turn: w.turn });
    return true;
  });
});

/**
 * Takes the turn lock of a session for `lock.holder` until `expiresAt`: when no turn holds it, or the
 * one holding it is stale: its own expiry passed and its gateway's lease is gone or expired (a
 * gateway SIGKILLed mid-turn), or it is the caller's own (which runs no turn there: its caller
 * checked, so the row is one whose release failed). One conditional upsert, race-free. False: busy.
 */
export const takeTurnLock = dual(function* (lock: TurnLock, now: number, expiresAt: number): Q<boolean> {
  const r = yield* run(
    `INSERT INTO session_turns (owner, session_id, holder, token, started_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (owner, session_id) DO UPDATE SET holder = excluded.holder, token = excluded.token, started_at = excluded.started_at, expires_at = excluded.expires_at
     WHERE session_turns.holder = ? OR (session_turns.expires_at <= ? AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.owner = session_turns.holder AND l.expires_at > ?))`,
    lock.owner, lock.id, lock.holder, lock.token, now, expiresAt, lock.holder, now, now,
  );
  return r.changes === 1;
});

/** Ends a turn: drops its lock row when this turn still holds it. */
export const releaseTurnLock = dual(function* (lock: TurnLock): Q<void> {
  yield* run("DELETE FROM session_turns WHERE owner = ? AND session_id = ? AND token = ?", lock.owner, lock.id, lock.token);
});

/** Whether another gateway's live turn (one not stale at `now`, see takeTurnLock) holds the session's lock. */
export const turnRunning = dual(function* (owner: string, id: string, now: number, self: string): Q<boolean> {
  const r = yield* get(
    `SELECT 1 AS one FROM session_turns t WHERE t.owner = ? AND t.session_id = ? AND t.holder <> ?
       AND (t.expires_at > ? OR EXISTS (SELECT 1 FROM leases l WHERE l.owner = t.holder AND l.expires_at > ?))`,
    owner, id, self, now, now,
  );
  return r !== null;
});

/** The session's store on either database; every method is a promise (on SQLite, one already settled). */
export class SessionStore {
  constructor(readonly db: Db) {}

  /** The owner's sessions, most recently updated first. */
  async list(owner: string): Promise<SessionRow[]> {
    return listQ(this.db, owner);
  }

  /**
   * A page of the owner's sessions, most recently updated first, after the session `after` (keyset
   * pagination on (updated_at, insertion): stable while sessions are added). An unknown cursor: no rows.
   */
  async page(owner: string, o: { limit: number; after?: string | null }): Promise<{ data: SessionRow[]; hasMore: boolean }> {
    return pageQ(this.db, owner, o.limit, o.after ?? null);
  }

  /** How many sessions the owner has. */
  async count(owner: string): Promise<number> {
    return countQ(this.db, owner);
  }

  /** Deletes every session last updated before `before` (with its messages); returns their owners and ids. */
  async expire(before: number): Promise<{ owner: string; id: string }[]> {
    return expireQ(this.db, before);
  }

  async get(owner: string, id: string): Promise<SessionRow | null> {
    return exec(this.db, getQ(owner, id));
  }

  async messages(owner: string, id: string): Promise<StoredMessage[]> {
    return messagesQ(this.db, owner, id);
  }

  /**
   * Stores a finished turn in one transaction: the session (created when new), its system prompt, the
   * new messages and the reply. False (nothing written) when `w.lock` is no longer held.
   */
  async commitTurn(owner: string, id: string, w: TurnWrite): Promise<boolean> {
    return commitTurnQ(this.db, owner, id, w);
  }

  /** Removes the last `n` messages; the caller checked that there are at least n. */
  async rollback(owner: string, id: string, n: number, now: number): Promise<void> {
    return rollbackQ(this.db, owner, id, n, now);
  }

  /** A new session `to` holding copies of the first `n` messages of `from`; false when `to` exists. */
  async fork(owner: string, from: string, to: string, n: number, now: number): Promise<boolean> {
    return forkQ(this.db, owner, from, to, n, now);
  }

  /** Deletes a session and its messages (and a turn lock on it); false when the owner has none with this id. */
  async delete(owner: string, id: string): Promise<boolean> {
    return exec(this.db, deleteQ(owner, id));
  }

  /** Drops whatever turn lock the session has (it was deleted: the turn holding it must store nothing). */
  async dropTurnLock(owner: string, id: string): Promise<void> {
    await exec(this.db, run("DELETE FROM session_turns WHERE owner = ? AND session_id = ?", owner, id));
  }
}

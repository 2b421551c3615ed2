// Typed queries over chat_sessions and chat_messages (migration 3). Every query is scoped by owner,
// so one owner can never read or change another's sessions. Times are unix ms, money bigint nanoton.
import type { Database } from "bun:sqlite";
import type { Usage } from "../inference/types.ts";
import { inTransaction } from "../store/db.ts";

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

export class SessionStore {
  constructor(readonly db: Database) {}

  /** The owner's sessions, most recently updated first. */
  list(owner: string): SessionRow[] {
    return this.db
      .query<RawSession, [string]>(`SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? ORDER BY s.updated_at DESC, s.rowid DESC`)
      .all(owner)
      .map(toSession);
  }

  /**
   * A page of the owner's sessions, most recently updated first, after the session `after` (keyset
   * pagination on (updated_at, rowid): stable while sessions are added). An unknown cursor: no rows.
   */
  page(owner: string, o: { limit: number; after?: string | null }): { data: SessionRow[]; hasMore: boolean } {
    let rows: RawSession[];
    if (o.after) {
      const c = this.db.query<{ updated_at: bigint; rowid: bigint }, [string, string]>("SELECT updated_at, rowid FROM chat_sessions WHERE owner = ? AND id = ?").get(owner, o.after);
      if (!c) return { data: [], hasMore: false };
      rows = this.db
        .query<RawSession, [string, bigint, bigint, number]>(
          `SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? AND (s.updated_at, s.rowid) < (?, ?) ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ?`,
        )
        .all(owner, c.updated_at, c.rowid, o.limit + 1);
    } else {
      rows = this.db.query<RawSession, [string, number]>(`SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ?`).all(owner, o.limit + 1);
    }
    return { data: rows.slice(0, o.limit).map(toSession), hasMore: rows.length > o.limit };
  }

  /** How many sessions the owner has. */
  count(owner: string): number {
    return Number(this.db.query<{ n: bigint }, [string]>("SELECT count(*) AS n FROM chat_sessions WHERE owner = ?").get(owner)!.n);
  }

  /** Deletes every session last updated before `before` (with its messages); returns their owners and ids. */
  expire(before: number): { owner: string; id: string }[] {
    return inTransaction(this.db, () => {
      const gone = this.db.query<{ owner: string; id: string }, [number]>("SELECT owner, id FROM chat_sessions WHERE updated_at < ?").all(before);
      for (const s of gone) this.delete(s.owner, s.id);
      return gone;
    });
  }

  get(owner: string, id: string): SessionRow | null {
    const r = this.db.query<RawSession, [string, string]>(`SELECT ${SESSION_COLUMNS} FROM chat_sessions s WHERE s.owner = ? AND s.id = ?`).get(owner, id);
    return r ? toSession(r) : null;
  }

  messages(owner: string, id: string): StoredMessage[] {
    return this.db
      .query<RawMessage, [string, string]>(
        "SELECT role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position",
      )
      .all(owner, id)
      .map(toMessage);
  }

  /** Creates an empty session; false when the owner already has one with this id. */
  create(owner: string, id: string, o: { title: string; model: string; now: number }): boolean {
    const r = this.db
      .query("INSERT INTO chat_sessions (owner, id, title, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
      .run(owner, id, o.title, o.model, o.now, o.now);
    return r.changes === 1;
  }

  /**
   * Appends messages after the current last one; `turn` adds a generated turn's usage and cost to the
   * session's totals. Creates the session first when it does not exist. One transaction.
   */
  append(owner: string, id: string, messages: NewMessage[], o: { model: string; now: number; title: string; turn?: { usage: TurnUsage; cost: bigint } }): void {
    inTransaction(this.db, () => {
      this.create(owner, id, { title: o.title, model: o.model, now: o.now });
      const next = this.db
        .query<{ n: bigint | null }, [string, string]>("SELECT max(position) AS n FROM chat_messages WHERE owner = ? AND session_id = ?")
        .get(owner, id);
      let position = next?.n === null || next?.n === undefined ? 0 : Number(next.n) + 1;
      const insert = this.db.query(
        "INSERT INTO chat_messages (owner, session_id, position, role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      );
      for (const m of messages) {
        insert.run(
          owner,
          id,
          position++,
          m.role,
          m.content,
          m.reasoningContent ?? null,
          o.now,
          m.usage?.promptTokens ?? null,
          m.usage?.cachedTokens ?? null,
          m.usage?.completionTokens ?? null,
          m.cost ?? null,
        );
      }
      const t = o.turn;
      this.db
        .query(
          `UPDATE chat_sessions SET updated_at = ?, model = ?, title = CASE WHEN title = '' THEN ? ELSE title END,
             prompt_tokens = prompt_tokens + ?, cached_tokens = cached_tokens + ?, completion_tokens = completion_tokens + ?, cost_nanoton = cost_nanoton + ?
           WHERE owner = ? AND id = ?`,
        )
        .run(o.now, o.model, o.title, t?.usage.promptTokens ?? 0, t?.usage.cachedTokens ?? 0, t?.usage.completionTokens ?? 0, t?.cost ?? 0n, owner, id);
    });
  }

  /** Replaces the session's system prompt (the first message when it is a system one), or inserts it first. */
  setSystemPrompt(owner: string, id: string, content: string, now: number): void {
    inTransaction(this.db, () => {
      const first = this.db
        .query<{ role: string; content: string }, [string, string]>("SELECT role, content FROM chat_messages WHERE owner = ? AND session_id = ? AND position = 0")
        .get(owner, id);
      if (first?.role === "system") {
        if (first.content !== content) {
          this.db.query("UPDATE chat_messages SET content = ?, created_at = ? WHERE owner = ? AND session_id = ? AND position = 0").run(content, now, owner, id);
        }
        return;
      }
      // Shift every message up by one, from the end so positions never collide.
      const rows = this.db
        .query<{ position: bigint }, [string, string]>("SELECT position FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position DESC")
        .all(owner, id);
      const shift = this.db.query("UPDATE chat_messages SET position = position + 1 WHERE owner = ? AND session_id = ? AND position = ?");
      for (const r of rows) shift.run(owner, id, r.position);
      this.db
        .query("INSERT INTO chat_messages (owner, session_id, position, role, content, created_at) VALUES (?, ?, 0, 'system', ?, ?)")
        .run(owner, id, content, now);
    });
  }

  /** Removes the last `n` messages; the caller checked that there are at least n. */
  rollback(owner: string, id: string, n: number, now: number): void {
    inTransaction(this.db, () => {
      this.db
        .query(
          "DELETE FROM chat_messages WHERE owner = ? AND session_id = ? AND position IN (SELECT position FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position DESC LIMIT ?)",
        )
        .run(owner, id, owner, id, n);
      this.db.query("UPDATE chat_sessions SET updated_at = ? WHERE owner = ? AND id = ?").run(now, owner, id);
    });
  }

  /** A new session `to` holding copies of the first `n` messages of `from`; false when `to` exists. */
  fork(owner: string, from: string, to: string, n: number, now: number): boolean {
    return inTransaction(this.db, () => {
      const src = this.get(owner, from);
      if (!src) return false;
      if (!this.create(owner, to, { title: src.title, model: src.model, now })) return false;
      this.db
        .query(
          `INSERT INTO chat_messages (owner, session_id, position, role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton)
           SELECT owner, ?, position, role, content, reasoning_content, created_at, prompt_tokens, cached_tokens, completion_tokens, cost_nanoton
           FROM chat_messages WHERE owner = ? AND session_id = ? ORDER BY position LIMIT ?`,
        )
        .run(to, owner, from, n);
      return true;
    });
  }

  /** Deletes a session and its messages; false when the owner has none with this id. */
  delete(owner: string, id: string): boolean {
    return inTransaction(this.db, () => {
      this.db.query("DELETE FROM chat_messages WHERE owner = ? AND session_id = ?").run(owner, id);
      return this.db.query("DELETE FROM chat_sessions WHERE owner = ? AND id = ?").run(owner, id).changes === 1;
    });
  }
}

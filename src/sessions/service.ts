// Server-side chat sessions: who owns them, their history as the model sees it, one turn at a time
// per session (across gateways on a shared Postgres too), and what a finished turn stores. Used by
// /v1/chat/completions (session_id), the /v1/sessions routes and the seed 003 routes. No Elysia here.
import { ApiError } from "../http/errors.ts";
import type { ChatMessage } from "../inference/chat-template.ts";
import type { Principal } from "../platform/service.ts";
import { isPg, type Db } from "../store/query.ts";
import { releaseTurnLock, SessionStore, takeTurnLock, turnRunning, type NewMessage, type SessionRow, type StoredMessage, type StoredRole, type TurnLock, type TurnUsage } from "./store.ts";

/** Client-chosen ids (UUIDs, "my-session-id") are allowed within this charset and length. */
export const SESSION_ID_PATTERN = "^[A-Za-z0-9._:~-]{1,128}$";
const ID_RE = new RegExp(SESSION_ID_PATTERN);
const TITLE_CHARS = 80;

/** Whose sessions: an account, or the single local user of a --no-auth server. */
export function ownerOf(principal: Principal | null): string {
  return principal ? `account:${principal.accountId}` : "local";
}

export function newSessionId(): string {
  return crypto.randomUUID();
}

/** A title from the first user message: its first non-empty line, cut to 80 characters. */
export function titleOf(messages: { role: string; content: string }[]): string {
  const first = messages.find((m) => m.role === "user" && m.content.trim() !== "");
  if (!first) return "";
  const line = first.content.trim().split("\n")[0]!.trim();
  return line.length > TITLE_CHARS ? `${line.slice(0, TITLE_CHARS - 1)}…` : line;
}

/** What a finished turn hands back to be stored. */
export interface TurnResult {
  model: string;
  content: string;
  reasoning: string;
  usage: TurnUsage;
  /** The turn's charge; null when billing is off. */
  cost: bigint | null;
}

/** One running turn: holds the session's lock until end(). */
export interface Turn {
  id: string;
  /** The engine's session key: unique per owner and session, so the next turn finds its KV cache. */
  key: string;
  /** History plus the new messages, as the model sees them. */
  messages: ChatMessage[];
  /** Aborted when the session is deleted while the turn runs. */
  signal: AbortSignal;
  /** Stores the new messages and the reply with its usage and cost (once; later calls do nothing). */
  commit(result: TurnResult): Promise<void>;
  /** Releases the session for the next turn. Idempotent. */
  end(): Promise<void>;
}

export interface SessionServiceOptions {
  /** Frees the engine's cache for a session key (pinned slot, parked state); may be absent while loading. */
  forget?: (key: string) => Promise<unknown> | void;
  now?: () => number;
  /** Sessions one owner may keep; a turn or fork that would create one more is refused. 0 = no limit. Defaults to 0. */
  maxSessions?: number;
  /** Sessions not updated for this long are deleted (checked at most once a minute). 0 = never. Defaults to 0. */
  ttlMs?: number;
  /**
   * Lock turns in the store as well as in memory, so that processes sharing it never run two turns
   * of one session at once; the value names this process (its lease owner, see platform/leases.ts).
   * Defaults to a lock in the store under a random name on Postgres, none on SQLite (one process).
   */
  sharedLock?: { holder: string } | null;
  /** How long a turn's lock row outlives a gateway that died holding it (when its lease is gone too). Defaults to 60000. */
  lockTtlMs?: number;
}

export class SessionService {
  readonly store: SessionStore;
  /** Sessions with a turn in flight here, by engine key. */
  private readonly running = new Map<string, AbortController>();
  private readonly now: () => number;
  private readonly shared: { holder: string } | null;

  constructor(
    readonly db: Db,
    private readonly opts: SessionServiceOptions = {},
  ) {
    this.store = new SessionStore(db);
    this.now = opts.now ?? Date.now;
    this.shared = opts.sharedLock !== undefined ? opts.sharedLock : isPg(db) ? { holder: `proc_${crypto.randomUUID()}` } : null;
  }

  /** 400 for an id outside the allowed charset or length. */
  checkId(id: string, param: string): void {
    if (!ID_RE.test(id)) {
      throw new ApiError("invalid_request", `Invalid value for '${param}': a session id is 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -`, param);
    }
  }

  keyOf(owner: string, id: string): string {
    return `session:${owner}:${id}`;
  }

  async list(owner: string): Promise<SessionRow[]> {
    await this.sweep();
    return this.store.list(owner);
  }

  /** A page of the owner's sessions (see SessionStore.page); `limit` is clamped to 1..100. */
  async page(owner: string, o: { limit?: number; after?: string | null }): Promise<{ data: SessionRow[]; hasMore: boolean }> {
    await this.sweep();
    const limit = Math.min(100, Math.max(1, Math.floor(o.limit ?? 100)));
    return this.store.page(owner, { limit, after: o.after ?? null });
  }

  private sweptAt = -Infinity;

  /** Deletes expired sessions (those not updated within ttlMs), at most once a minute. */
  async sweep(): Promise<number> {
    const ttl = this.opts.ttlMs ?? 0;
    const now = this.now();
    if (ttl <= 0 || now - this.sweptAt < 60_000) return 0;
    this.sweptAt = now;
    const gone = (await this.store.expire(now - ttl)).filter((s) => !this.running.has(this.keyOf(s.owner, s.id)));
    for (const s of gone) void this.opts.forget?.(this.keyOf(s.owner, s.id));
    return gone.length;
  }

  /** 409 when the owner already keeps maxSessions sessions and `id` would be a new one. */
  private async checkRoom(owner: string, id: string | null): Promise<void> {
    const max = this.opts.maxSessions ?? 0;
    if (max <= 0 || (id !== null && (await this.store.get(owner, id)))) return;
    await this.sweep();
    if ((await this.store.count(owner)) >= max) {
      throw new ApiError("session_limit", `This account keeps ${max} sessions, the most allowed; delete some (DELETE /v1/sessions/{id}) to start new ones.`, "session_id");
    }
  }

  /** The session or a 404; another owner's session is indistinguishable from a missing one. */
  async get(owner: string, id: string): Promise<SessionRow> {
    const s = ID_RE.test(id) ? await this.store.get(owner, id) : null;
    if (!s) throw new ApiError("not_found", `No session with id '${id}'.`, "session_id");
    return s;
  }

  async messages(owner: string, id: string): Promise<StoredMessage[]> {
    await this.get(owner, id);
    return this.store.messages(owner, id);
  }

  /** A new session (server-generated id unless `to` is given) with copies of the first n messages. */
  async fork(owner: string, id: string, n: number, to?: string): Promise<SessionRow> {
    const src = await this.get(owner, id);
    if (!Number.isInteger(n) || n < 0 || n > src.messageCount) {
      throw new ApiError("invalid_request", `Invalid value for 'messages': the session has ${src.messageCount} messages; fork from 0 to ${src.messageCount} of them`, "messages");
    }
    const target = to ?? newSessionId();
    if (to !== undefined) this.checkId(to, "id");
    await this.checkRoom(owner, null);
    if (!(await this.store.fork(owner, id, target, n, this.now()))) {
      throw new ApiError("already_exists", `A session with id '${target}' already exists; choose another id or delete it first.`, "id");
    }
    return (await this.store.get(owner, target))!;
  }

  /**
   * Removes exactly the last n messages; 409 while a turn runs (checked first, so a new session's
   * first turn, stored only when it completes, is busy rather than missing), else 404 or a 400 when
   * n is not 1..message count.
   */
  async rollback(owner: string, id: string, n: number): Promise<void> {
    if (ID_RE.test(id)) await this.ensureIdle(owner, id);
    const s = await this.get(owner, id);
    if (!Number.isInteger(n) || n < 1 || n > s.messageCount) {
      throw new ApiError("invalid_request", `Invalid value for 'amount': the session has ${s.messageCount} messages; roll back 1 to ${s.messageCount}`, "amount");
    }
    await this.store.rollback(owner, id, n, this.now());
  }

  /**
   * Deletes the session, cancels a turn running on it and frees its engine cache. A new session's
   * first turn is stored only when it completes, so a running turn alone is enough to delete: it is
   * cancelled and nothing is stored. 404 only when there is neither. A turn running on another
   * gateway (shared store) stores nothing either: its lock row goes with the session.
   */
  async delete(owner: string, id: string): Promise<void> {
    const key = this.keyOf(owner, id);
    const running = ID_RE.test(id) ? this.running.get(key) : undefined;
    const elsewhere = !running && this.shared && ID_RE.test(id) ? await turnRunning(this.db, owner, id, this.now(), this.shared.holder) : false;
    if (!running && !elsewhere) await this.get(owner, id);
    // Aborting first: the turn's commit() sees the abort and stores nothing.
    running?.abort();
    if (this.shared) await this.store.dropTurnLock(owner, id);
    await this.store.delete(owner, id);
    try {
      await this.opts.forget?.(key);
    } catch {
      // The session is gone either way; the engine only fails this when its worker died, and the
      // restarted worker holds nothing of the session.
    }
  }

  /**
   * Drops a turn's lock row. When the store refuses (down for a moment) it is retried a few times in
   * the background; until then this gateway's next turn of the session takes the row over, and the
   * others wait for it (or for this gateway's lease to end).
   */
  private async release(lock: TurnLock, attempt = 0): Promise<void> {
    try {
      await releaseTurnLock(this.db, lock);
    } catch {
      if (attempt >= 12) return;
      const t = setTimeout(() => void this.release(lock, attempt + 1), 5_000);
      (t as { unref?: () => void }).unref?.();
    }
  }

  private busy(id: string): ApiError {
    return new ApiError("conflict", `A reply is still being generated in session '${id}'; wait for it or cancel it first.`, "session_id");
  }

  /** 409 while a turn runs in the session, here or (shared store) on another gateway. */
  private async ensureIdle(owner: string, id: string): Promise<void> {
    if (this.running.has(this.keyOf(owner, id))) throw this.busy(id);
    if (this.shared && (await turnRunning(this.db, owner, id, this.now(), this.shared.holder))) throw this.busy(id);
  }

  /**
   * Starts a turn: the stored history plus `incoming` (and `systemPrompt`, which replaces the
   * session's first system message or goes first) is what the model sees. With no incoming message
   * the model answers the stored history as it is (regenerate after a rollback). Nothing is written
   * until commit(): a turn that fails or is cancelled leaves the session as it was.
   */
  async beginTurn(owner: string, id: string, incoming: NewMessage[], o: { param: string; systemPrompt?: string }): Promise<Turn> {
    this.checkId(id, o.param);
    const key = this.keyOf(owner, id);
    // Taken here before anything is awaited: a second turn arriving meanwhile is a 409 at once.
    if (this.running.has(key)) throw this.busy(id);
    const controller = new AbortController();
    this.running.set(key, controller);
    let lock: TurnLock | null = null;
    let done = false;
    const end = async () => {
      if (done) return;
      done = true;
      if (this.running.get(key) === controller) this.running.delete(key);
      if (lock) await this.release(lock);
    };
    let all: { role: StoredRole; content: string; reasoningContent: string | null }[];
    try {
      if (this.shared) {
        const now = this.now();
        const mine: TurnLock = { owner, id, holder: this.shared.holder, token: crypto.randomUUID() };
        if (!(await takeTurnLock(this.db, mine, now, now + (this.opts.lockTtlMs ?? 60_000)))) throw this.busy(id);
        lock = mine;
      }
      await this.checkRoom(owner, id);
      const stored = await this.store.messages(owner, id);
      let history: { role: StoredRole; content: string; reasoningContent: string | null }[] = stored;
      if (o.systemPrompt !== undefined) {
        const sys = { role: "system" as const, content: o.systemPrompt, reasoningContent: null };
        history = stored[0]?.role === "system" ? [sys, ...stored.slice(1)] : [sys, ...stored];
      }
      all = [...history, ...incoming.map((m) => ({ ...m, reasoningContent: m.reasoningContent ?? null }))];
      if (!all.some((m) => m.role !== "system")) {
        throw new ApiError("invalid_request", incoming.length === 0 ? `Session '${id}' has no messages to answer; send at least one message.` : "Send at least one non-system message.", o.param === "session_id" ? "messages" : "prompt");
      }
      if (incoming.length === 0 && all.at(-1)!.role === "assistant") {
        throw new ApiError("invalid_request", `The last message of session '${id}' is already an assistant reply; roll it back to regenerate it, or send a new message.`, "messages");
      }
    } catch (err) {
      await end();
      throw err;
    }
    let committed = false;
    return {
      id,
      key,
      signal: controller.signal,
      messages: all.map((m) => ({ role: m.role, content: m.content, ...(m.reasoningContent ? { reasoning_content: m.reasoningContent } : {}) })),
      commit: async (r) => {
        // A session deleted during the turn stays deleted (here: the abort; elsewhere: the lock row gone).
        if (committed || controller.signal.aborted) return;
        committed = true;
        const reply: NewMessage = { role: "assistant", content: r.content, reasoningContent: r.reasoning || null, usage: r.usage, cost: r.cost };
        await this.store.commitTurn(owner, id, {
          messages: [...incoming, reply],
          model: r.model,
          now: this.now(),
          title: titleOf(all),
          systemPrompt: o.systemPrompt,
          turn: { usage: r.usage, cost: r.cost ?? 0n },
          lock: lock ?? undefined,
        });
      },
      end,
    };
  }
}

/** Text of an OpenAI message content (string or text parts); null for none. */
export function textOf(content: string | { type: string; text?: string }[] | null | undefined): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return content.map((p) => (p.type === "text" ? (p.text ?? "") : "")).join("");
}

export type { SessionRow, StoredMessage, TurnUsage };

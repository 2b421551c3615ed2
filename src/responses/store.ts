// Queries over the stored responses (migration 5), written once for SQLite and Postgres, scoped by
// owner; the seal key is created once, race-free, so it is the same on every gateway sharing the store.
import { randomBytes } from "node:crypto";
import { all, dual, get, run, type Db, type Q } from "../store/query.ts";
import type { ResponseItem, ResponseObject } from "./model.ts";

export interface StoredResponse {
  id: string;
  previousId: string | null;
  /** The first response of the conversation; its id names the engine session. */
  chainId: string;
  model: string;
  createdAt: number;
  /** The request's input items, with their ids. */
  input: ResponseItem[];
  body: ResponseObject;
}

type Raw = { id: string; previous_id: string | null; chain_id: string; model: string; created_at: bigint; input: string; body: string };

function toStored(r: Raw): StoredResponse {
  return {
    id: r.id,
    previousId: r.previous_id,
    chainId: r.chain_id,
    model: r.model,
    createdAt: Number(r.created_at),
    input: JSON.parse(r.input) as ResponseItem[],
    body: JSON.parse(r.body) as ResponseObject,
  };
}

const getQ = dual(function* (owner: string, id: string): Q<StoredResponse | null> {
  const r = yield* get<Raw>("SELECT id, previous_id, chain_id, model, created_at, input, body FROM responses WHERE owner = ? AND id = ?", owner, id);
  return r ? toStored(r) : null;
});

// The chain up to a response, one query (not one per turn, which on Postgres is a round trip each).
const chainQ = dual(function* (owner: string, id: string, max: number): Q<StoredResponse[]> {
  const rows = yield* all<Raw>(
    `WITH RECURSIVE chain (id, previous_id, chain_id, model, created_at, input, body, depth) AS (
       SELECT id, previous_id, chain_id, model, created_at, input, body, 1 FROM responses WHERE owner = ? AND id = ?
       UNION ALL
       SELECT r.id, r.previous_id, r.chain_id, r.model, r.created_at, r.input, r.body, c.depth + 1
       FROM chain c JOIN responses r ON r.owner = ? AND r.id = c.previous_id WHERE c.depth < ?
     ) SELECT id, previous_id, chain_id, model, created_at, input, body FROM chain ORDER BY depth`,
    owner, id, owner, max,
  );
  return rows.map(toStored);
});

const putQ = dual(function* (owner: string, r: StoredResponse): Q<void> {
  yield* run(
    `INSERT INTO responses (owner, id, previous_id, chain_id, model, status, created_at, input, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (owner, id) DO UPDATE SET status = excluded.status, body = excluded.body`,
    owner, r.id, r.previousId, r.chainId, r.model, r.body.status, r.createdAt, JSON.stringify(r.input), JSON.stringify(r.body),
  );
});

const deleteQ = dual(function* (owner: string, id: string): Q<boolean> {
  return (yield* run("DELETE FROM responses WHERE owner = ? AND id = ?", owner, id)).changes === 1;
});

const chainInUseQ = dual(function* (owner: string, chainId: string): Q<boolean> {
  return (yield* get("SELECT 1 AS one FROM responses WHERE owner = ? AND chain_id = ? LIMIT 1", owner, chainId)) !== null;
});

const secretQ = dual(function* (name: string, candidate: Uint8Array, now: number): Q<Buffer> {
  // The first writer wins on every database and process; everyone reads back the winner's.
  yield* run("INSERT INTO response_secrets (name, secret, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING", name, candidate, now);
  const row = (yield* get<{ secret: Uint8Array }>("SELECT secret FROM response_secrets WHERE name = ?", name))!;
  return Buffer.from(row.secret);
});

/** The stored responses on either database; every method is a promise (on SQLite, one already settled). */
export class ResponseStore {
  constructor(readonly db: Db) {}

  async get(owner: string, id: string): Promise<StoredResponse | null> {
    return getQ(this.db, owner, id);
  }

  /**
   * The response `id` and the ones before it (previous_response_id), newest first, at most `max`; a
   * deleted response ends the chain. Empty when the owner has no such response.
   */
  async chain(owner: string, id: string, max: number): Promise<StoredResponse[]> {
    return chainQ(this.db, owner, id, max);
  }

  /** Stores a finished response; a second write of the same id replaces it. */
  async put(owner: string, r: StoredResponse): Promise<void> {
    return putQ(this.db, owner, r);
  }

  /** False when the owner has no such response. */
  async delete(owner: string, id: string): Promise<boolean> {
    return deleteQ(this.db, owner, id);
  }

  /** Whether any of the owner's responses still belongs to the conversation. */
  async chainInUse(owner: string, chainId: string): Promise<boolean> {
    return chainInUseQ(this.db, owner, chainId);
  }

  /** A 32-byte server secret by name, created on first use (the first writer wins across processes and gateways). */
  async secret(name: string): Promise<Buffer> {
    return secretQ(this.db, name, randomBytes(32), Date.now());
  }
}

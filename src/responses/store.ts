// Typed queries over the stored responses (migration 5). Every query is scoped by owner, so one owner
// can never read or delete another's responses; the seal key is created once, race-free.
import type { Database } from "bun:sqlite";
import { randomBytes } from "node:crypto";
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

export class ResponseStore {
  constructor(readonly db: Database) {}

  get(owner: string, id: string): StoredResponse | null {
    const r = this.db
      .query<Raw, [string, string]>("SELECT id, previous_id, chain_id, model, created_at, input, body FROM responses WHERE owner = ? AND id = ?")
      .get(owner, id);
    return r ? toStored(r) : null;
  }

  /** Stores a finished response; a second write of the same id replaces it. */
  put(owner: string, r: StoredResponse): void {
    this.db
      .query(
        `INSERT INTO responses (owner, id, previous_id, chain_id, model, status, created_at, input, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (owner, id) DO UPDATE SET status = excluded.status, body = excluded.body`,
      )
      .run(owner, r.id, r.previousId, r.chainId, r.model, r.body.status, r.createdAt, JSON.stringify(r.input), JSON.stringify(r.body));
  }

  /** False when the owner has no such response. */
  delete(owner: string, id: string): boolean {
    return this.db.query("DELETE FROM responses WHERE owner = ? AND id = ?").run(owner, id).changes === 1;
  }

  /** Whether any of the owner's responses still belongs to the conversation. */
  chainInUse(owner: string, chainId: string): boolean {
    return this.db.query<{ one: bigint }, [string, string]>("SELECT 1 AS one FROM responses WHERE owner = ? AND chain_id = ? LIMIT 1").get(owner, chainId) !== null;
  }

  /** A 32-byte server secret by name, created on first use (the first writer wins across processes). */
  secret(name: string): Buffer {
    this.db.query("INSERT INTO response_secrets (name, secret, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING").run(name, randomBytes(32), Date.now());
    const row = this.db.query<{ secret: Uint8Array }, [string]>("SELECT secret FROM response_secrets WHERE name = ?").get(name)!;
    return Buffer.from(row.secret);
  }
}

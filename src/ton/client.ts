// A toncenter API v2 client for the one call the watcher needs, getTransactions over JSON-RPC (as
// @ton/ton's TonClient calls it), with a timeout per request and failures sorted into kinds the
// watcher can back off on. Each transaction is decoded from its BOC and checked against its id.
import { Cell, loadTransaction, type Transaction } from "@ton/core";

export type TonApiErrorKind = "http" | "rate_limited" | "timeout" | "network" | "invalid_response" | "aborted";

export class TonApiError extends Error {
  override name = "TonApiError";
  constructor(
    readonly kind: TonApiErrorKind,
    message: string,
    /** Seconds the API asked us to wait (Retry-After), when it said. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

/** One transaction as the chain recorded it (decoded from the BOC, not from the JSON summary). */
export interface ChainTransaction {
  lt: bigint;
  /** Hex of the transaction cell's hash: the transaction's identity. */
  hash: string;
  tx: Transaction;
}

export interface ToncenterOptions {
  /** The API v2 base, e.g. https://toncenter.com/api/v2 (the JSON-RPC endpoint is `${base}/jsonRPC`). */
  base: string;
  /** Sent as X-API-Key; empty for none. */
  apiKey?: string;
  /** Milliseconds before a request is abandoned. Defaults to 10 000. */
  timeoutMs?: number;
}

export interface TransactionsQuery {
  /** Raw or user-friendly address of the account. */
  address: string;
  limit: number;
  /** Start from this transaction (inclusive) instead of the newest; both or neither. */
  lt?: bigint;
  hash?: string;
}

const hexToBase64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

/** A transaction hash as hex, from hex, base64 or base64url (explorers and toncenter use base64); null if not 32 bytes. */
export function normalizeTxHash(s: unknown): string | null {
  if (typeof s !== "string") return null;
  if (/^[0-9a-fA-F]{64}$/.test(s)) return s.toLowerCase();
  const b = Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  return b.length === 32 ? b.toString("hex") : null;
}

/** One entry of the result array, decoded and verified; throws invalid_response when it does not hold. */
export function decodeTransaction(entry: unknown): ChainTransaction {
  const bad = (why: string): never => {
    throw new TonApiError("invalid_response", `getTransactions returned a bad transaction: ${why}`);
  };
  if (typeof entry !== "object" || entry === null) return bad("not an object");
  const e = entry as { data?: unknown; transaction_id?: { lt?: unknown; hash?: unknown } };
  if (typeof e.data !== "string" || e.data === "") return bad("no `data` BOC");
  let cell: Cell;
  try {
    const roots = Cell.fromBoc(Buffer.from(e.data, "base64"));
    if (roots.length !== 1) return bad(`the BOC has ${roots.length} roots`);
    cell = roots[0]!;
  } catch (err) {
    return bad(`the BOC does not parse (${(err as Error).message})`);
  }
  let tx: Transaction;
  try {
    const s = cell.beginParse();
    tx = loadTransaction(s);
  } catch (err) {
    return bad(`the BOC is not a transaction (${(err as Error).message})`);
  }
  const hash = cell.hash().toString("hex");
  // The id the API states must be the one of the data it sent: otherwise paging by it is meaningless.
  const statedHash = normalizeTxHash(e.transaction_id?.hash);
  if (statedHash !== null && statedHash !== hash) bad(`transaction_id.hash ${String(e.transaction_id?.hash)} is not the hash of its data`);
  const statedLt = e.transaction_id?.lt;
  if (statedLt !== undefined && String(statedLt) !== tx.lt.toString()) bad(`transaction_id.lt ${String(statedLt)} is not the lt of its data (${tx.lt})`);
  return { lt: tx.lt, hash, tx };
}

let rpcId = 0;

export class ToncenterClient {
  private readonly endpoint: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: ToncenterOptions) {
    this.endpoint = `${opts.base.replace(/\/+$/, "")}/jsonRPC`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Transactions of `address`, newest first, from the newest or from (lt, hash) inclusive. */
  async getTransactions(q: TransactionsQuery, signal?: AbortSignal): Promise<ChainTransaction[]> {
    const params: Record<string, unknown> = { address: q.address, limit: q.limit, archival: true };
    if (q.lt !== undefined && q.hash !== undefined) {
      params.lt = q.lt.toString();
      params.hash = hexToBase64(q.hash);
    }
    const result = await this.call("getTransactions", params, signal);
    if (!Array.isArray(result)) throw new TonApiError("invalid_response", "getTransactions: `result` is not an array");
    return result.map(decodeTransaction);
  }

  private async call(method: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (this.opts.apiKey) headers["X-API-Key"] = this.opts.apiKey;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.endpoint, { method: "POST", headers, body: JSON.stringify({ id: ++rpcId, jsonrpc: "2.0", method, params }), signal: combined });
      text = await res.text();
    } catch (err) {
      if (signal?.aborted) throw new TonApiError("aborted", `${method}: stopped`);
      if (timeout.aborted) throw new TonApiError("timeout", `${method}: no answer within ${this.timeoutMs} ms`);
      throw new TonApiError("network", `${method}: ${(err as Error).message}`);
    }
    type RpcBody = { ok?: unknown; result?: unknown; error?: unknown; code?: unknown };
    let body: RpcBody | null = null;
    try {
      const parsed: unknown = JSON.parse(text);
      body = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as RpcBody) : null;
    } catch {
      body = null;
    }
    const said = body ? String(body.error ?? (body.ok === false ? body.result : "") ?? "") : "";
    if (res.status === 429 || body?.code === 429) {
      const ra = Number(res.headers.get("retry-after"));
      throw new TonApiError("rate_limited", `${method}: rate limited (429)${said ? `: ${said}` : ""}`, Number.isFinite(ra) && ra > 0 ? ra : null);
    }
    if (!res.ok) throw new TonApiError("http", `${method}: HTTP ${res.status}${said ? `: ${said}` : ""}`);
    if (!body) throw new TonApiError("invalid_response", `${method}: the answer is not a JSON object (${JSON.stringify(text.slice(0, 80))})`);
    if (body.ok !== true) throw new TonApiError("http", `${method}: the API answered ok=false${said ? `: ${said}` : ""}`);
    return body.result;
  }
}

// A stand-in for toncenter API v2 on 127.0.0.1: a wallet's history of real BOC-encoded transactions
// (built with @ton/core), served by getTransactions over JSON-RPC like toncenter serves it: newest
// first, `limit`, paging from (lt, hash) inclusive, `archival`, plus failures injected on demand.
import type { Server } from "bun";
import { Address, beginCell, Cell, Dictionary, loadMessage, storeMessage, storeTransaction, type DictionaryValue, type Message, type Transaction } from "@ton/core";
import { randomBytes } from "node:crypto";

export type Failure = "500" | "429" | "hang" | "garbage" | "not_ok" | "html";

/** One transfer to (or transaction of) the wallet. */
export interface TransferSpec {
  /** Nanoton. Defaults to 1 TON. */
  value?: bigint;
  /** A text comment (op 0, snake-encoded across cells as needed), or a ready body cell. Defaults to none. */
  comment?: string;
  body?: Cell;
  /** Defaults to a random address. */
  from?: Address;
  bounced?: boolean;
  /** Outbound messages of the transaction (e.g. a bounce back to the sender). Defaults to 0. */
  outMessages?: number;
  /** An external inbound message (the wallet's own signed transfer) instead of an internal one. */
  external?: boolean;
  /** Chain time, unix seconds. Defaults to now. */
  now?: number;
  /** JSON summary fields that disagree with the BOC (the watcher must read the BOC). */
  lyingSummary?: { value?: string; message?: string };
}

export interface StoredTx {
  lt: bigint;
  /** base64, as toncenter shows it. */
  hash: string;
  hashHex: string;
  boc: string;
  spec: TransferSpec;
  from: Address;
}

export interface GetTransactionsCall {
  address: string;
  limit: number;
  lt?: string;
  hash?: string;
  archival: boolean;
  apiKey: string | null;
}

/** A text comment body: op 0 then the UTF-8 bytes, continued in a chain of refs when longer than one cell. */
export function commentBody(text: string | Uint8Array): Cell {
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : Buffer.from(text);
  // 127 bytes per cell, 123 in the first (after the 32-bit op): exactly what wallet apps produce.
  const chunks: Buffer[] = [bytes.subarray(0, 123)];
  for (let i = 123; i < bytes.length; i += 127) chunks.push(bytes.subarray(i, i + 127));
  let tail: Cell | null = null;
  for (let i = chunks.length - 1; i >= 1; i--) {
    const b = beginCell().storeBuffer(chunks[i]!);
    if (tail) b.storeRef(tail);
    tail = b.endCell();
  }
  const head = beginCell().storeUint(0, 32).storeBuffer(chunks[0]!);
  if (tail) head.storeRef(tail);
  return head.endCell();
}

const MessageValue: DictionaryValue<Message> = {
  serialize: (src, builder) => void builder.storeRef(beginCell().store(storeMessage(src))),
  parse: (s) => loadMessage(s.loadRef().beginParse()),
};

export const randomAddress = () => new Address(0, randomBytes(32));

export class ToncenterStandIn {
  readonly wallet: Address;
  /** Oldest first. */
  readonly txs: StoredTx[] = [];
  readonly calls: GetTransactionsCall[] = [];
  /** Consumed one per request, first to last. */
  readonly failures: Failure[] = [];
  /** Without `archival: true`, only this many newest transactions are reachable. Defaults to all. */
  recentWindow = Infinity;
  /** When paging from an anchor, also return this many transactions newer than it (an overlapping page). */
  overlap = 0;
  /** Hashes (hex) of transactions left out of every answer, like a lagging or broken API would. */
  readonly hidden = new Set<string>();
  /** Called before each request is answered (e.g. to add transactions between pages). */
  onRequest: ((call: GetTransactionsCall) => void) | null = null;
  private server: Server<undefined> | null = null;
  private lt = 1_000_000n;
  private prevHash = 0n;
  private readonly hanging = new Set<() => void>();

  constructor(wallet: Address = randomAddress()) {
    this.wallet = wallet;
  }

  /** Base URL to pass as --ton-api. */
  get url(): string {
    return `http://127.0.0.1:${this.server!.port}/api/v2`;
  }

  start(): this {
    this.server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 60, fetch: (req) => this.handle(req) });
    return this;
  }

  async stop(): Promise<void> {
    for (const release of this.hanging) release();
    await this.server?.stop(true);
  }

  /** Appends a transaction of the wallet (newest); returns it. */
  add(spec: TransferSpec = {}): StoredTx {
    this.lt += 1000n + BigInt(this.txs.length % 7);
    const lt = this.lt;
    const now = spec.now ?? Math.floor(Date.now() / 1000);
    const from = spec.from ?? randomAddress();
    const value = spec.value ?? 1_000_000_000n;
    const body = spec.body ?? (spec.comment !== undefined ? commentBody(spec.comment) : Cell.EMPTY);
    const inMessage: Message = spec.external
      ? { info: { type: "external-in", dest: this.wallet, importFee: 0n }, body }
      : {
          info: {
            type: "internal",
            ihrDisabled: true,
            bounce: false,
            bounced: spec.bounced ?? false,
            src: from,
            dest: this.wallet,
            value: { coins: value },
            ihrFee: 0n,
            forwardFee: 1_000_000n,
            createdLt: lt - 1n,
            createdAt: now,
          },
          body,
        };
    const outMessages = Dictionary.empty(Dictionary.Keys.Uint(15), MessageValue);
    for (let i = 0; i < (spec.outMessages ?? 0); i++) {
      outMessages.set(i, {
        info: {
          type: "internal",
          ihrDisabled: true,
          bounce: false,
          bounced: true,
          src: this.wallet,
          dest: from,
          value: { coins: value > 10_000_000n ? value - 10_000_000n : 0n },
          ihrFee: 0n,
          forwardFee: 1_000_000n,
          createdLt: lt + 1n + BigInt(i),
          createdAt: now,
        },
        body: Cell.EMPTY,
      });
    }
    const tx: Transaction = {
      address: BigInt(`0x${this.wallet.hash.toString("hex")}`),
      lt,
      prevTransactionHash: this.prevHash,
      prevTransactionLt: this.txs.at(-1)?.lt ?? 0n,
      now,
      outMessagesCount: spec.outMessages ?? 0,
      oldStatus: "active",
      endStatus: "active",
      inMessage,
      outMessages,
      totalFees: { coins: 2_000_000n },
      stateUpdate: { oldHash: randomBytes(32), newHash: randomBytes(32) },
      description: {
        type: "generic",
        creditFirst: !spec.external,
        storagePhase: { storageFeesCollected: 1000n, statusChange: "unchanged" },
        creditPhase: spec.external ? null : { credit: { coins: value } },
        computePhase: { type: "skipped", reason: "no-state" },
        aborted: false,
        destroyed: false,
      },
      raw: Cell.EMPTY,
      hash: () => Buffer.alloc(32),
    };
    const cell = beginCell().store(storeTransaction(tx)).endCell();
    const hash = cell.hash();
    this.prevHash = BigInt(`0x${hash.toString("hex")}`);
    const stored: StoredTx = { lt, hash: hash.toString("base64"), hashHex: hash.toString("hex"), boc: cell.toBoc().toString("base64"), spec, from };
    this.txs.push(stored);
    return stored;
  }

  private json(t: StoredTx) {
    const friendly = (a: Address) => a.toString({ bounceable: true, urlSafe: true });
    const internal = !t.spec.external;
    const value = (t.spec.value ?? 1_000_000_000n).toString();
    return {
      "@type": "raw.transaction",
      address: { "@type": "accountAddress", account_address: friendly(this.wallet) },
      utime: t.spec.now ?? 0,
      data: t.boc,
      transaction_id: { "@type": "internal.transactionId", lt: t.lt.toString(), hash: t.hash },
      fee: "2000000",
      storage_fee: "1000",
      other_fee: "1999000",
      in_msg: {
        "@type": "raw.message",
        source: internal ? friendly(t.from) : "",
        destination: friendly(this.wallet),
        value: t.spec.lyingSummary?.value ?? (internal ? value : "0"),
        fwd_fee: "1000000",
        ihr_fee: "0",
        created_lt: (t.lt - 1n).toString(),
        body_hash: "",
        msg_data: { "@type": "msg.dataText", text: Buffer.from(t.spec.comment ?? "").toString("base64") },
        message: t.spec.lyingSummary?.message ?? t.spec.comment ?? "",
      },
      out_msgs: [],
    };
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/api/v2/jsonRPC") return Response.json({ ok: false, error: "Not Found", code: 404 }, { status: 404 });
    let rpc: { id?: unknown; method?: string; params?: Record<string, unknown> };
    try {
      rpc = (await req.json()) as typeof rpc;
    } catch {
      return Response.json({ ok: false, error: "invalid JSON", code: 400 }, { status: 400 });
    }
    if (rpc.method !== "getTransactions") return Response.json({ ok: false, error: `unknown method ${rpc.method}`, code: 400 }, { status: 400 });
    const p = rpc.params ?? {};
    const call: GetTransactionsCall = {
      address: String(p.address ?? ""),
      limit: Number(p.limit ?? 10),
      lt: p.lt === undefined ? undefined : String(p.lt),
      hash: p.hash === undefined ? undefined : String(p.hash),
      archival: p.archival === true || p.archival === "true",
      apiKey: req.headers.get("x-api-key"),
    };
    this.calls.push(call);
    this.onRequest?.(call);
    const failure = this.failures.shift();
    switch (failure) {
      case "500":
        return Response.json({ ok: false, error: "Internal server error", code: 500 }, { status: 500 });
      case "429":
        return Response.json({ ok: false, result: "Ratelimit exceed", code: 429 }, { status: 429 });
      case "not_ok":
        return Response.json({ ok: false, error: "LITE_SERVER_NETWORK: timeout", code: 503 }, { status: 200 });
      case "garbage":
        return new Response('{"ok":true,"result":[{"@type":"raw.transa', { headers: { "content-type": "application/json" } });
      case "html":
        return new Response("<html><body>502 Bad Gateway</body></html>", { status: 200, headers: { "content-type": "text/html" } });
      case "hang":
        // Answers only when the stand-in stops: the client must give up on its own timeout.
        await new Promise<void>((resolve) => {
          this.hanging.add(resolve);
          req.signal.addEventListener("abort", () => resolve());
        });
        return new Response("", { status: 504 });
      case undefined:
        break;
    }
    let address: Address;
    try {
      address = Address.parse(call.address);
    } catch {
      return Response.json({ ok: false, error: "Incorrect address", code: 416 }, { status: 416 });
    }
    if (!address.equals(this.wallet)) return Response.json({ ok: true, result: [], id: rpc.id, jsonrpc: "2.0" });
    const newestFirst = this.txs.filter((t) => !this.hidden.has(t.hashHex)).reverse();
    let start = 0;
    if (call.lt !== undefined || call.hash !== undefined) {
      const hashHex = Buffer.from(call.hash ?? "", "base64").toString("hex");
      start = newestFirst.findIndex((t) => t.lt.toString() === call.lt && t.hashHex === hashHex);
      if (start < 0) return Response.json({ ok: false, error: "LITE_SERVER_UNKNOWN: cannot locate transaction", code: 500 }, { status: 500 });
      start = Math.max(0, start - this.overlap);
    }
    const limit = Math.max(1, Math.min(100, Math.floor(call.limit)));
    if (!call.archival && start >= this.recentWindow) {
      return Response.json({ ok: false, error: "LITE_SERVER_UNKNOWN: block is not applied (not in the recent state; use archival)", code: 500 }, { status: 500 });
    }
    const page = newestFirst.slice(start, start + limit).map((t) => this.json(t));
    return Response.json({ ok: true, result: page, id: rpc.id, jsonrpc: "2.0" });
  }
}

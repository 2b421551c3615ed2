// The toncenter v2 client: what it sends, how it reads answers, and how it sorts failures.
import { afterAll, describe, expect, test } from "bun:test";
import { ToncenterClient, TonApiError, decodeTransaction, normalizeTxHash } from "../../src/ton/client.ts";
import { ToncenterStandIn } from "../support/toncenter.ts";

const api = new ToncenterStandIn().start();
afterAll(() => api.stop());

let answer: () => Response = () => Response.json({ ok: true, result: [] });
const custom = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => answer() });
afterAll(() => custom.stop(true));

const failure = async (p: Promise<unknown>): Promise<TonApiError> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof TonApiError) return err;
    throw err;
  }
  throw new Error("expected a TonApiError");
};

describe("ToncenterClient.getTransactions", () => {
  test("pages newest first from (lt, hash) inclusive, with archival and the API key", async () => {
    const txs = Array.from({ length: 5 }, (_, i) => api.add({ comment: `c${i}` }));
    const client = new ToncenterClient({ base: `${api.url}/`, apiKey: "k1" });
    const first = await client.getTransactions({ address: api.wallet.toRawString(), limit: 2 });
    expect(first.map((t) => t.hash)).toEqual([txs[4]!.hashHex, txs[3]!.hashHex]);
    const next = await client.getTransactions({ address: api.wallet.toRawString(), limit: 2, lt: first[1]!.lt, hash: first[1]!.hash });
    expect(next.map((t) => t.hash)).toEqual([txs[3]!.hashHex, txs[2]!.hashHex]);
    expect(api.calls.at(-1)).toMatchObject({ lt: txs[3]!.lt.toString(), hash: txs[3]!.hash, archival: true, apiKey: "k1", limit: 2 });
  });

  test("sorts failures: 429 with Retry-After, HTTP errors, ok=false, non-JSON, a bad BOC, a network error", async () => {
    const client = new ToncenterClient({ base: `http://127.0.0.1:${custom.port}` });
    const q = { address: api.wallet.toRawString(), limit: 1 };
    answer = () => Response.json({ ok: false, result: "Ratelimit exceed", code: 429 }, { status: 429, headers: { "retry-after": "3" } });
    expect(await failure(client.getTransactions(q))).toMatchObject({ kind: "rate_limited", retryAfter: 3 });
    answer = () => Response.json({ ok: false, error: "boom" }, { status: 502 });
    expect(await failure(client.getTransactions(q))).toMatchObject({ kind: "http", message: expect.stringContaining("HTTP 502: boom") });
    answer = () => Response.json({ ok: false, error: "LITE_SERVER_NETWORK" });
    expect(await failure(client.getTransactions(q))).toMatchObject({ kind: "http" });
    answer = () => new Response("[1,2");
    expect((await failure(client.getTransactions(q))).kind).toBe("invalid_response");
    answer = () => Response.json({ ok: true, result: { not: "a list" } });
    expect((await failure(client.getTransactions(q))).kind).toBe("invalid_response");
    answer = () => Response.json({ ok: true, result: [{ data: "AAAA", transaction_id: { lt: "1", hash: "x" } }] });
    expect((await failure(client.getTransactions(q))).kind).toBe("invalid_response");
    const gone = new ToncenterClient({ base: "http://127.0.0.1:1" });
    expect((await failure(gone.getTransactions(q))).kind).toBe("network");
  });
});

describe("decodeTransaction", () => {
  test("refuses a transaction whose stated hash or lt is not the one of its data", () => {
    const t = api.add({ comment: "x" });
    const ok = { data: t.boc, transaction_id: { lt: t.lt.toString(), hash: t.hash } };
    expect(decodeTransaction(ok)).toMatchObject({ lt: t.lt, hash: t.hashHex });
    const other = api.add({ comment: "y" });
    expect(() => decodeTransaction({ ...ok, transaction_id: { lt: t.lt.toString(), hash: other.hash } })).toThrow(/not the hash of its data/);
    expect(() => decodeTransaction({ ...ok, transaction_id: { lt: "5", hash: t.hash } })).toThrow(/not the lt of its data/);
    expect(() => decodeTransaction({ data: Buffer.from("garbage").toString("base64") })).toThrow(TonApiError);
  });

  test("transaction hashes are read from hex, base64 and base64url", () => {
    const hex = "ab".repeat(16) + "cd".repeat(16);
    const b = Buffer.from(hex, "hex");
    expect(normalizeTxHash(hex.toUpperCase())).toBe(hex);
    expect(normalizeTxHash(b.toString("base64"))).toBe(hex);
    expect(normalizeTxHash(b.toString("base64url"))).toBe(hex);
    expect(normalizeTxHash("abc")).toBeNull();
  });
});

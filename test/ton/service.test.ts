// The deposit book's own guarantees in SQLite: one row per transaction hash, credited rows frozen,
// nothing deleted, and the cursor never moving backwards.
import { describe, expect, test } from "bun:test";
import { openStore } from "../../src/store/db.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { parseTon } from "../../src/platform/pricing.ts";
import { ToncenterClient } from "../../src/ton/client.ts";
import { getCursor, recordBatch, recordTransaction } from "../../src/ton/service.ts";
import { ToncenterStandIn } from "../support/toncenter.ts";

describe("deposit book", () => {
  test("a credited row cannot be changed or deleted, a hash cannot be inserted twice, and the cursor only moves forward", async () => {
    const api = new ToncenterStandIn().start();
    const db = openStore(":memory:");
    try {
      const a = createAccount(db);
      const older = api.add({ value: parseTon("1"), comment: a.depositCode });
      const newer = api.add({ value: parseTon("1"), comment: a.depositCode });
      const txs = await new ToncenterClient({ base: api.url }).getTransactions({ address: api.wallet.toRawString(), limit: 10 });
      const [n, o] = txs;
      expect(o!.hash).toBe(older.hashHex);
      recordBatch(db, api.wallet, [o!, n!], 0n);
      expect(getCursor(db, api.wallet.toRawString())).toEqual({ lt: newer.lt, hash: newer.hashHex });
      expect(recordTransaction(db, api.wallet, o!, 0n)).toEqual({ outcome: "seen" });
      // An older batch replayed does not move the cursor back.
      recordBatch(db, api.wallet, [o!], 0n);
      expect(getCursor(db, api.wallet.toRawString())!.lt).toBe(newer.lt);
      expect(() => db.exec(`UPDATE ton_deposits SET amount_nanoton = 5 WHERE tx_hash = '${older.hashHex}'`)).toThrow(/cannot change/);
      expect(() => db.exec(`DELETE FROM ton_deposits WHERE tx_hash = '${older.hashHex}'`)).toThrow(/never deleted/);
      expect(() =>
        db.query("INSERT INTO ton_deposits (tx_hash, tx_lt, wallet, amount_nanoton, status, reason, chain_time, seen_at) VALUES (?, 1, 'w', 1, 'unmatched', 'x', 0, 0)").run(older.hashHex),
      ).toThrow(/UNIQUE/);
      expect(db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM ledger WHERE kind = 'deposit'").get()!.n).toBe(2n);
    } finally {
      db.close();
      await api.stop();
    }
  });
});

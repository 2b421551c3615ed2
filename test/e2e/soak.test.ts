// The short form of `bun run soak`: mixed billed requests over several accounts, a third aborted, a
// kill -9 and restart on the same database, a CLI command on the live database; every invariant holds.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { runSoak } from "../../scripts/soak.ts";

setDefaultTimeout(300_000);

describe("money-and-crash soak (short)", () => {
  test("30 requests over 4 accounts, 30% aborted, one kill -9: balances = ledger, costs = tokens × rates, shown = charged, nothing left open", async () => {
    const result = await runSoak({ requests: 30, accounts: 4, kills: 1, concurrency: 4, abortShare: 0.3 });
    expect(result.problems).toEqual([]);
    expect(result.table.find((r) => r.check.startsWith("open reservations"))!.value).toBe("0");
  });
});

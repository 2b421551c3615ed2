// Billing on /v1/responses, exactly as on chat: cost = Σ tokens × the published rates (cached tokens of
// a previous_response_id at the cached rate), in usage.cost, the header and /v1/usage; a cancelled
// stream bills only what was processed; the ledger adds up after concurrent and aborted requests.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { auth, checkResponse, expectedCost, parseSse, startResponsesApp, type Rates, type ResponsesApp } from "./support.ts";

setDefaultTimeout(120_000);

let h: ResponsesApp;
let rates: Rates;

beforeAll(async () => {
  h = await startResponsesApp("responses-billing");
  rates = ((await (await h.request("/v1/pricing")).json()) as { rates: Rates }).rates;
});
afterAll(() => h?.close());

type UsageRow = { id: string; endpoint: string; status: string; prompt_tokens: number; cached_tokens: number; completion_tokens: number; reasoning_tokens: number; cost: { nanoton: number } };
const usageRows = async (key: string) => ((await (await h.request("/v1/usage", auth(key))).json()) as { data: UsageRow[] }).data;

async function settled(): Promise<void> {
  for (let i = 0; i < 200 && h.engine.stats().some((s) => s.slotsBusy + s.queued > 0); i++) await Bun.sleep(25);
  await Bun.sleep(100);
}

describe("billing on /v1/responses", () => {
  test("a response costs its tokens times the published rates; the follow-up's cached tokens at the cached rate", async () => {
    const a = h.billed.account("1");
    const before = h.billed.platform.balance(a.id)!.balance;
    const first = await h.create(a.key, { input: "What is a river?", max_output_tokens: 6, temperature: 0 });
    const one = checkResponse(await first.json());
    expect(one.usage!.cost!.nanoton).toBe(expectedCost(rates, one.usage!));
    expect(first.headers.get("x-cocoon-cost-nanoton")).toBe(String(one.usage!.cost!.nanoton));
    const second = checkResponse(await (await h.create(a.key, { input: "And a lake?", previous_response_id: one.id, max_output_tokens: 6, temperature: 0 })).json());
    expect(second.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(second.usage!.cost!.nanoton).toBe(expectedCost(rates, second.usage!));
    const rows = await usageRows(a.key);
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => r.endpoint)).toEqual(["responses", "responses"]);
    expect(rows[0]!.cached_tokens).toBe(second.usage!.input_tokens_details.cached_tokens);
    expect(rows[0]!.cost.nanoton).toBe(second.usage!.cost!.nanoton);
    const after = h.billed.platform.balance(a.id)!;
    expect(before - after.balance).toBe(BigInt(one.usage!.cost!.nanoton + second.usage!.cost!.nanoton));
    expect(after.reserved).toBe(0n);
  });

  test("a stream's cost is in its final event's usage and matches the /v1/usage row", async () => {
    const a = h.billed.account("1");
    const r = await h.create(a.key, { input: "Stream", max_output_tokens: 5, stream: true, temperature: 1 });
    const last = parseSse(await r.text()).at(-1)!.data;
    if (last.type !== "response.incomplete" && last.type !== "response.completed") throw new Error(last.type);
    const u = last.response.usage!;
    expect(u.cost!.nanoton).toBe(expectedCost(rates, u));
    await settled();
    const rows = await usageRows(a.key);
    expect(rows[0]!.cost.nanoton).toBe(u.cost!.nanoton);
    expect(rows[0]!.status).toBe("ok");
  });

  test("a stream cancelled by its client bills only the tokens processed and stores nothing", async () => {
    const a = h.billed.account("1");
    const ac = new AbortController();
    const r = await h.create(a.key, { input: "Go on and on", max_output_tokens: 400, stream: true, temperature: 1, top_p: 1 }, ac.signal);
    const reader = r.body!.getReader();
    let seen = "";
    // Read until the first text delta, then go away.
    while (!seen.includes("response.output_text.delta")) seen += new TextDecoder().decode((await reader.read()).value);
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(seen)![1]!;
    ac.abort();
    await reader.cancel().catch(() => {});
    await settled();
    const row = (await usageRows(a.key))[0]!;
    expect(row.status).toBe("cancelled");
    expect(row.completion_tokens).toBeGreaterThan(0);
    expect(row.completion_tokens).toBeLessThan(400);
    expect(row.cost.nanoton).toBe(
      expectedCost(rates, { input_tokens: row.prompt_tokens, output_tokens: row.completion_tokens, input_tokens_details: { cached_tokens: row.cached_tokens }, output_tokens_details: { reasoning_tokens: row.reasoning_tokens } }),
    );
    const b = h.billed.platform.balance(a.id)!;
    expect(b.reserved).toBe(0n);
    expect(b.balance).toBe(1_000_000_000n - BigInt(row.cost.nanoton));
    expect((await h.request(`/v1/responses/${id}`, auth(a.key))).status).toBe(404);
  });

  test("60 concurrent responses from 6 accounts, a third of the streams aborted: balances equal their ledger sums", async () => {
    const accounts = Array.from({ length: 6 }, (_, i) => h.billed.account(i === 0 ? "0.0101" : "0.5"));
    const statuses = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const a = accounts[i % accounts.length]!;
        const ac = new AbortController();
        const stream = i % 2 === 0;
        const abort = stream && i % 3 === 0;
        try {
          const r = await h.create(a.key, { input: `Request ${i}`, max_output_tokens: abort ? 50 : 4, stream, temperature: 1, top_p: 1 }, ac.signal);
          if (abort && r.body) {
            const reader = r.body.getReader();
            await reader.read();
            ac.abort();
            await reader.cancel().catch(() => {});
          } else await r.arrayBuffer();
          return r.status;
        } catch {
          return -1;
        }
      }),
    );
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(30);
    expect(statuses.every((s) => s === 200 || s === 402 || s === -1)).toBe(true);
    await settled();
    expect(checkInvariants(h.billed.db)).toEqual([]);
    for (const a of accounts) {
      const sum = h.billed.db.query("SELECT COALESCE(SUM(amount_nanoton), 0) AS s FROM ledger WHERE account_id = ? AND kind IN ('deposit','adjustment','charge')").get(a.id) as { s: bigint };
      const b = h.billed.platform.balance(a.id)!;
      expect(b.balance).toBe(BigInt(sum.s));
      expect(b.reserved).toBe(0n);
    }
  });
});

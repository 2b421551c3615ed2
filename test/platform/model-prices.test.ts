// Per-model prices and model aliases on the real inference path: two models served at once, each
// billed at its own published rates (cost = Σ tokens × that model's effective rates), aliases
// listed in /v1/models and billed as the model they name; prices come from --model and --model-price.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, engineMetrics, type App } from "../../src/app.ts";
import { loadConfig } from "../../src/config/config.ts";
import { modelAliases, modelPrices, parseModelSpec } from "../../src/config/models.ts";
import { Engine } from "../../src/inference/engine.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { openPlatformStore } from "../../src/platform/open.ts";
import { isPg } from "../../src/store/query.ts";
import { parseTon, pricingConfig, ratesFor } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";
import { TINY_MODEL } from "../support/model.ts";

setDefaultTimeout(120_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-model-prices-"));
const db = openStore(join(dir, "prices.sqlite"));
const pricing = pricingConfig({ baseNanoton: 20n, models: { cheap: { baseNanoton: 7n }, dear: { baseNanoton: 333n } } });
const platform = new Platform(db, { auth: true, adminToken: "", pricing, rateLimits: { rpm: 10_000, tpm: 100_000_000, rpd: 100_000 }, signupCredit: 0n });
const aliases = modelAliases([{ id: "cheap", path: TINY_MODEL }, { id: "dear", path: TINY_MODEL, aliases: ["Qwen/Qwen3-8B"] }], ["qwen3=dear"]);
let engine: Engine;
let app: App;

beforeAll(async () => {
  engine = await Engine.start({ models: [{ id: "cheap", path: TINY_MODEL }, { id: "dear", path: TINY_MODEL }], slots: 2, ctxSize: 1024 });
  app = createApp({ engine, loadedEngine: () => engine, metrics: engineMetrics(() => engine), platform, version: "0.0.0-test", aliases });
});
afterAll(() => {
  engine.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const request = (path: string, init?: RequestInit) => app.handle(new Request(`http://localhost${path}`, init));

interface Rate {
  effective_nanoton: number;
}
type Rates = Record<"prompt_token" | "completion_token" | "reasoning_token" | "cached_prompt_token", Rate>;

describe("per-model prices", () => {
  test("two models at once: each request costs its tokens × its model's published rates; an alias bills as its model", async () => {
    const a = createAccount(db);
    credit(db, a.id, parseTon("10"), "adjustment", `test:${a.id}`);
    const key = createKey(db, a.id).key;
    const doc = (await (await request("/v1/pricing")).json()) as { rates: Rates; models: { id: string; rates: Rates }[] };
    const published = new Map(doc.models.map((m) => [m.id, m.rates]));
    expect(published.get("dear")!.completion_token.effective_nanoton).toBe(Number(ratesFor(pricing, "dear").completion));
    expect(published.get("cheap")!.prompt_token.effective_nanoton).not.toBe(published.get("dear")!.prompt_token.effective_nanoton);

    const asks = ["cheap", "dear", "cheap", "dear", "qwen3", "Qwen/Qwen3-8B"];
    const replies = await Promise.all(
      asks.map((model, i) =>
        request("/v1/chat/completions", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
          body: JSON.stringify({ model, messages: [{ role: "user", content: `Hello number ${i}` }], max_tokens: 4 + i, temperature: 0 }),
        }),
      ),
    );
    type Reply = { id: string; model: string; usage: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number }; completion_tokens_details?: { reasoning_tokens: number }; cost: { nanoton: number } } };
    const bodies = await Promise.all(replies.map(async (r) => ({ status: r.status, body: (await r.json()) as Reply })));
    expect(bodies.map((b) => b.status)).toEqual(asks.map(() => 200));
    // An alias runs as the model it names.
    expect(bodies.map((b) => b.body.model)).toEqual(["cheap", "dear", "cheap", "dear", "dear", "dear"]);
    for (const { body } of bodies) {
      const r = published.get(body.model)!;
      const u = body.usage;
      const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
      const expected =
        (u.prompt_tokens - u.prompt_tokens_details.cached_tokens) * r.prompt_token.effective_nanoton +
        u.prompt_tokens_details.cached_tokens * r.cached_prompt_token.effective_nanoton +
        (u.completion_tokens - reasoning) * r.completion_token.effective_nanoton +
        reasoning * r.reasoning_token.effective_nanoton;
      expect({ model: body.model, cost: u.cost.nanoton }).toEqual({ model: body.model, cost: expected });
    }
    // The usage rows agree, per model.
    const rows = db.query<{ model: string; n: bigint }, [number]>("SELECT model, count(*) AS n FROM usage WHERE account_id = ? GROUP BY model ORDER BY model").all(a.id);
    expect(rows).toEqual([{ model: "cheap", n: 2n }, { model: "dear", n: 4n }]);
    expect(checkInvariants(db)).toEqual([]);
  });
});

describe("model aliases", () => {
  test("/v1/models lists each model and each alias, the alias entries rooted at their model; /v1/models/{alias} answers", async () => {
    const list = (await (await request("/v1/models")).json()) as { data: { id: string; root: string; aliases?: string[] }[] };
    expect(list.data.map((m) => [m.id, m.root])).toEqual([
      ["cheap", "cheap"],
      ["dear", "dear"],
      ["Qwen/Qwen3-8B", "dear"],
      ["qwen3", "dear"],
    ]);
    expect(list.data[1]!.aliases).toEqual(["Qwen/Qwen3-8B", "qwen3"]);
    const one = await request(`/v1/models/${encodeURIComponent("qwen3")}`);
    expect(one.status).toBe(200);
    expect(((await one.json()) as { id: string; root: string })).toMatchObject({ id: "qwen3", root: "dear" });
    expect((await request("/v1/models/nope")).status).toBe(404);
  });

  test("alias options: alias= in a --model spec and --model-alias; clashes are refused", () => {
    expect(parseModelSpec("dear=/m/x.gguf#alias=Qwen/Qwen3-8B,alias=qwen3,price=333").aliases).toEqual(["Qwen/Qwen3-8B", "qwen3"]);
    const entries = [{ id: "a", path: "/x" }, { id: "b", path: "/y" }];
    expect(() => modelAliases(entries, ["b=a"])).toThrow(/already a model id/);
    expect(() => modelAliases(entries, ["z=nope"])).toThrow(/not a served model/);
    expect(() => modelAliases(entries, ["z=a", "z=b"])).toThrow(/names two models/);
    expect([...modelAliases(entries, ["z=a"])]).toEqual([["z", "a"]]);
  });
});

describe("prices from the config", () => {
  test("price= in a --model spec and --model-price (the later wins) reach billing through openPlatformStore", async () => {
    const { config } = loadConfig(["--model", "cheap=/nowhere/cheap.gguf#price=7", "--model", "dear=/nowhere/dear.gguf", "--model-price", "dear=333", "--model-price", "cheap=9", "--db", join(dir, "cfg.sqlite")]);
    expect([...modelPrices(config)]).toEqual([["cheap", 9n], ["dear", 333n]]);
    const { service, store } = await openPlatformStore(config);
    try {
      expect(ratesFor(service.opts.pricing, "dear")).toEqual(ratesFor(pricingConfig({ baseNanoton: 333n }), "dear"));
      expect(ratesFor(service.opts.pricing, "other")).toEqual(ratesFor(pricingConfig({ baseNanoton: 20n })));
    } finally {
      if (!isPg(store)) store.close();
    }
    expect(() => modelPrices(loadConfig(["--model-price", "x=1.5"]).config)).toThrow(/whole nanoton/);
  });
});

// Reservations on the generation path: a missing max_tokens means what the context leaves (reserved
// and billed, never an error), every prompt form is reserved for in full (the charge never passes
// the hold), and token limits too large for exact billing are a 400, never a 500.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { billedApp } from "../support/billed.ts";

setDefaultTimeout(180_000);

const h = billedApp("generation-billing");
const billed = h.billed;
// test/support/app.ts runs the tiny model with a 1024-token context.
const CTX = 1024;
// billedPlatform prices: base 20 nanoton × markup 1.5 × prompt 1, completion and reasoning 4, cached 0.1.
const RATE = { prompt: 30, completion: 120, cached: 3 };

const post = (key: string, path: string, body: unknown) =>
  h.app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

interface Row {
  id: string;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
  cost: number;
  uncharged: number;
  reserved: number;
}

/** Every settled request of the account, with the hold it had. */
function rowsOf(accountId: number): Row[] {
  return billed.db
    .query<Record<string, bigint | string>, [number]>(
      `SELECT u.id, u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens, u.cost_nanoton AS cost,
         u.uncharged_nanoton AS uncharged, r.amount_nanoton AS reserved
       FROM usage u JOIN reservations r ON r.id = u.id WHERE u.account_id = ? ORDER BY u.started_at`,
    )
    .all(accountId)
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])) as unknown as Row);
}

const costOf = (r: Row) => (r.prompt_tokens - r.cached_tokens) * RATE.prompt + r.cached_tokens * RATE.cached + r.completion_tokens * RATE.completion;

// A prompt that leaves a few tokens of the context: generating "what the context leaves" stays cheap.
const LONG = "lorem ipsum dolor sit amet ".repeat(200);

describe("a missing token limit", () => {
  test("the quickstart request (no max_tokens) answers, streaming, reserved for what the context can hold", async () => {
    const a = billed.account("10");
    const r = await post(a.key, "/v1/chat/completions", { messages: [{ role: "user", content: "Hello" }], stream: true });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain("chat.completion.chunk");
    await reader.cancel();
    const reserved = Number(billed.db.query<{ a: bigint }, [number]>("SELECT amount_nanoton AS a FROM reservations WHERE account_id = ?").get(a.id)!.a);
    // Reserved for every output token the context could hold (the prompt's bound is small here).
    expect(reserved).toBeGreaterThanOrEqual((CTX - 1) * RATE.completion);
    expect(reserved).toBeLessThan((CTX - 1) * RATE.completion + 300 * RATE.prompt);
  });

  test("without max_tokens a request generates exactly what the context leaves after its prompt, billed exactly", async () => {
    const a = billed.account("10");
    const r = await post(a.key, "/v1/chat/completions", { messages: [{ role: "user", content: LONG }], ignore_eos: true });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { choices: { finish_reason: string }[]; usage: { prompt_tokens: number; completion_tokens: number; cost: { nanoton: number } } };
    // Past end-of-generation tokens only the context stops it: exactly what the prompt leaves.
    expect(j.usage.prompt_tokens).toBeGreaterThan(CTX - 40);
    expect(j.choices[0]!.finish_reason).toBe("length");
    expect(j.usage.completion_tokens).toBe(CTX - j.usage.prompt_tokens);
    const [row] = rowsOf(a.id);
    expect(row!.uncharged).toBe(0);
    expect(row!.cost).toBe(costOf(row!));
    expect(j.usage.cost.nanoton).toBe(row!.cost);
    // The prompt's bound is the whole context here: context × prompt rate + the rest at the output rate.
    expect(row!.reserved).toBe(CTX * RATE.prompt + (CTX - 1) * RATE.completion);
    expect(checkInvariants(billed.db)).toEqual([]);
  });

  test("seed 003 /chat/completions without max-token keeps its 512 default, clamped to what the context leaves", async () => {
    const a = billed.account("10");
    const r = await post(a.key, "/chat/completions", { "model-name": "tiny-qwen3", prompt: LONG });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).not.toContain("event: error");
    const [row] = rowsOf(a.id);
    expect(row!.completion_tokens).toBeGreaterThan(0);
    expect(row!.prompt_tokens + row!.completion_tokens).toBeLessThanOrEqual(CTX);
    expect(row!.uncharged).toBe(0);
    // Reserved for the default of 512, not for the whole context.
    expect(row!.reserved).toBe(CTX * RATE.prompt + 512 * RATE.completion);
  });
});

describe("the reservation covers every token a request processes", () => {
  const lorem = "lorem ipsum dolor sit amet ".repeat(30);
  const forms: [string, string, Record<string, unknown>][] = [
    ["token ids + a long suffix", "/v1/completions", { prompt: [1, 2, 3], suffix: lorem, max_tokens: 1 }],
    ["text + a long suffix", "/v1/completions", { prompt: "x", suffix: lorem, max_tokens: 1 }],
    ["several token-id prompts with a suffix", "/v1/completions", { prompt: [[1, 2], [3]], suffix: lorem, max_tokens: 2 }],
    ["echo with n and best_of", "/v1/completions", { prompt: lorem, echo: true, n: 2, best_of: 3, max_tokens: 3 }],
    ["token ids with echo", "/v1/completions", { prompt: [10, 20, 30, 40], echo: true, max_tokens: 2 }],
    ["chat with tools and template variables", "/v1/chat/completions", {
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "f", description: lorem.slice(0, 200), parameters: { type: "object" } } }],
      chat_template_kwargs: { enable_thinking: false },
      max_tokens: 2,
    }],
    ["chat with n", "/v1/chat/completions", { messages: [{ role: "user", content: lorem }], n: 3, max_tokens: 2 }],
  ];
  for (const [name, path, body] of forms) {
    test(`${name}: charged exactly its tokens, within its hold`, async () => {
      const a = billed.account("10");
      const r = await post(a.key, path, body);
      expect(r.status).toBe(200);
      await r.text();
      const rows = rowsOf(a.id);
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        expect(row.uncharged).toBe(0);
        expect(row.cost).toBe(costOf(row));
        expect(row.cost).toBeLessThanOrEqual(row.reserved);
      }
    });
  }

  test("a token-id prompt with a long suffix is reserved for the suffix", async () => {
    const a = billed.account("10");
    const r = await post(a.key, "/v1/completions", { prompt: [1, 2, 3], suffix: lorem, max_tokens: 1 });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { usage: { prompt_tokens: number } };
    // The suffix is most of what the model read.
    expect(j.usage.prompt_tokens).toBeGreaterThan(100);
    const [row] = rowsOf(a.id);
    expect(row!.reserved).toBeGreaterThanOrEqual(j.usage.prompt_tokens * RATE.prompt + RATE.completion);
    expect(checkInvariants(billed.db)).toEqual([]);
  });
});

describe("token limits too large for exact billing", () => {
  const huge = ["1e308", "9007199254740993", "4294967296"];
  const bodies: [string, string, (v: string) => string][] = [
    ["chat max_tokens", "/v1/chat/completions", (v) => `{"messages":[{"role":"user","content":"hi"}],"max_tokens":${v}}`],
    ["chat max_completion_tokens", "/v1/chat/completions", (v) => `{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":${v}}`],
    ["chat max_tokens × n", "/v1/chat/completions", (v) => `{"messages":[{"role":"user","content":"hi"}],"max_tokens":${v},"n":16}`],
    ["completions max_tokens", "/v1/completions", (v) => `{"prompt":"hi","max_tokens":${v}}`],
    ["completions max_tokens × best_of", "/v1/completions", (v) => `{"prompt":"hi","max_tokens":${v},"best_of":16}`],
    ["seed 003 /completions max_tokens", "/completions", (v) => `{"model":"tiny-qwen3","prompt":"hi","max_tokens":${v}}`],
    ["seed 003 /chat/completions max-token", "/chat/completions", (v) => `{"model-name":"tiny-qwen3","prompt":"hi","max-token":${v}}`],
  ];
  for (const [name, path, body] of bodies) {
    test(`${name}: 400 naming the field`, async () => {
      const a = billed.account("10");
      for (const v of huge) {
        const r = await post(a.key, path, body(v));
        expect(r.status).toBe(400);
        const j = (await r.json()) as { error: { message: string; type: string; param: string | null } };
        expect(j.error.type).toBe("invalid_request_error");
        expect(j.error.param).toMatch(/^max(_tokens|_completion_tokens|-token)$/);
        expect(j.error.message).toContain("2147483647");
      }
      // Nothing was held or charged.
      expect(rowsOf(a.id)).toEqual([]);
      expect(billed.platform.balance(a.id)!.reserved).toBe(0n);
    });
  }

  test("the largest accepted limit is refused as too long for the context, not as an overflow", async () => {
    const a = billed.account("10");
    const r = await post(a.key, "/v1/completions", `{"prompt":"hi","max_tokens":2147483647}`);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string | null } }).error.code).toBe("context_length_exceeded");
    expect(checkInvariants(billed.db)).toEqual([]);
  });
});

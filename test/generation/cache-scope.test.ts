// The prompt cache never crosses accounts: a prefix one account's request left in the KV cache (or
// parked) is reused for that account only, so another account cannot read it back through
// `cached_tokens`, its cost or its timing.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { billedApp } from "../support/billed.ts";

setDefaultTimeout(120_000);

const h = billedApp("cache-scope");

interface Chat {
  usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

async function chat(key: string, system: string): Promise<Chat> {
  const res = await h.app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ messages: [{ role: "system", content: system }, { role: "user", content: "What is the code?" }], max_tokens: 2, temperature: 0 }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Chat;
}

describe("prefix reuse across accounts", () => {
  test("another account's identical prompt reuses nothing; the owner's repeat reuses its prefix", async () => {
    const a = h.billed.account();
    const b = h.billed.account();
    const secret = `The vault code is 4 8 1 5 1 6 2 3 4 2. ${"Keep it secret. ".repeat(40)}`;
    const first = await chat(a.key, secret);
    expect(first.usage.prompt_tokens).toBeGreaterThan(100);

    // B sends exactly A's prompt: with a shared cache this reported nearly all of it as cached.
    const other = await chat(b.key, secret);
    expect(other.usage.prompt_tokens).toBe(first.usage.prompt_tokens);
    expect(other.usage.prompt_tokens_details.cached_tokens).toBe(0);

    // A's own repeat still finds its prefix.
    const again = await chat(a.key, secret);
    expect(again.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(first.usage.prompt_tokens - 10);
  });

  test("a guessed prefix of another account's prompt is not confirmed by partial reuse", async () => {
    const a = h.billed.account();
    const b = h.billed.account();
    const secret = `Account PIN: 9 9 7 3. ${"Context that follows the PIN. ".repeat(30)}`;
    await chat(a.key, secret);
    // B guesses the start of A's system prompt; a shared cache would reuse the matching part.
    const guess = await chat(b.key, `Account PIN: 9 9 7 3. ${"Different text after it. ".repeat(30)}`);
    expect(guess.usage.prompt_tokens_details.cached_tokens).toBe(0);
  });
});

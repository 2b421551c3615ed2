// llama-server's /tokenize and /detokenize: its shapes (ids, {id, piece}, content), a key required,
// nothing billed, bad ids and unknown models refused in OpenAI's error shape.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { pieceOf } from "../../src/tokenize/service.ts";
import { balanceOf } from "../../src/platform/ledger.ts";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";
import { billedPlatform, type BilledPlatform } from "../support/billed.ts";

setDefaultTimeout(60_000);

let billed: BilledPlatform;
let h: InProcessApp;
let account: { id: number; key: string };

beforeAll(async () => {
  billed = billedPlatform("tokenize");
  account = billed.account();
  h = await startInProcessApp({ platform: billed.platform, slots: 1 });
});
afterAll(() => {
  h?.close();
  billed?.close();
});

const post = async (path: string, body: unknown, key: string | null = account.key) => {
  const res = await h.request(path, { method: "POST", headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> & { error?: { param: string | null; code: string | null } } };
};

const TEXT = "Hello world, héllo 🌍<|im_start|>";

describe("/tokenize and /detokenize", () => {
  test("ids, then the same ids back into the text", async () => {
    const t = await post("/tokenize", { content: TEXT });
    expect(t.status).toBe(200);
    const ids = t.body.tokens as number[];
    expect(ids.length).toBeGreaterThan(3);
    expect(ids.every((x) => Number.isInteger(x) && x >= 0)).toBe(true);
    const d = await post("/detokenize", { tokens: ids, model: TINY_ID });
    expect(d).toMatchObject({ status: 200, body: { content: TEXT } });
  });

  test("with_pieces: {id, piece} whose pieces join to the text (bytes where a piece splits a character)", async () => {
    const plain = (await post("/tokenize", { content: TEXT })).body.tokens as number[];
    const t = await post("/tokenize", { content: TEXT, with_pieces: true });
    const pieces = t.body.tokens as { id: number; piece: string | number[] }[];
    expect(pieces.map((p) => p.id)).toEqual(plain);
    const bytes = pieces.flatMap((p) => (typeof p.piece === "string" ? [...new TextEncoder().encode(p.piece)] : p.piece));
    expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(TEXT);
    expect(pieces.some((p) => p.piece === "<|im_start|>")).toBe(true);
  });

  test("parse_special false reads special-token text as plain text; add_special is accepted", async () => {
    const special = (await post("/tokenize", { content: "<|im_start|>" })).body.tokens as number[];
    const literal = (await post("/tokenize", { content: "<|im_start|>", parse_special: false })).body.tokens as number[];
    expect(special).toHaveLength(1);
    expect(literal.length).toBeGreaterThan(1);
    expect((await post("/tokenize", { content: "hi", add_special: true })).status).toBe(200);
  });

  test("pieceOf: text when whole UTF-8, else the bytes", () => {
    expect(pieceOf([104, 105])).toBe("hi");
    expect(pieceOf([0xf0, 0x9f])).toEqual([0xf0, 0x9f]);
  });

  test("a key is required, and nothing is billed", async () => {
    expect((await post("/tokenize", { content: "hi" }, null)).status).toBe(401);
    expect((await post("/detokenize", { tokens: [1] }, null)).status).toBe(401);
    const before = balanceOf(billed.db, account.id)!.balance;
    await post("/tokenize", { content: TEXT.repeat(20), with_pieces: true });
    await post("/detokenize", { tokens: [9707, 1879] });
    expect(balanceOf(billed.db, account.id)!.balance).toBe(before);
    expect(before).toBe(10_000_000_000n);
  });

  test("ids outside the vocabulary, a wrong type, an unknown model: 400 / 400 / 404", async () => {
    const bad = await post("/detokenize", { tokens: [1, 999_999_999] });
    expect(bad.status).toBe(400);
    expect(bad.body.error!.param).toBe("tokens");
    const pieces = await post("/detokenize", { tokens: [-1] });
    expect(pieces.status).toBe(400);
    expect((await post("/tokenize", { content: 5 })).status).toBe(400);
    const missing = await post("/tokenize", { content: "hi", model: "nope" });
    expect(missing.status).toBe(404);
    expect(missing.body.error!.code).toBe("model_not_found");
  });

  test("unknown fields are ignored and named, as on the OpenAI routes", async () => {
    const t = await post("/tokenize", { content: "hi", extra_thing: 1 });
    expect(t.status).toBe(200);
    expect(t.headers.get("x-cocoon-ignored-fields")).toBe("extra_thing");
  });
});

// Text that cannot fit the context is refused before it is tokenized, from its byte count alone (no
// token covers more than the model's longest piece): a 7 MiB chat message, a 3 MB completion prompt
// and a 3 MB embedding input are each a 400 context_length_exceeded that says so, and nothing is held.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { billedApp } from "../support/billed.ts";

setDefaultTimeout(120_000);

const setup = billedApp("unfittable");

const post = (path: string, key: string, body: unknown) =>
  setup.app.request(path, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify(body) });

const openHolds = () => Number(setup.billed.db.query<{ n: bigint }, []>("SELECT count(*) AS n FROM reservations WHERE closed_at IS NULL").get()!.n);

type ErrorBody = { error: { message: string; code: string; param: string } };

describe("prompts that cannot fit", () => {
  test("the model knows its longest token, a bound far below the length of a 7 MiB message", () => {
    const info = setup.app.engine.model();
    expect(info.longestTokenBytes).toBeGreaterThan(1);
    expect(info.longestTokenBytes * info.contextWindow).toBeLessThan(7 * 2 ** 20);
  });

  test("a 7 MiB chat message: 400 context_length_exceeded from its size, before tokenizing", async () => {
    const { key } = setup.billed.account();
    const res = await post("/v1/chat/completions", key, { messages: [{ role: "user", content: "lorem ipsum ".repeat(611_670) }], max_tokens: 1 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("context_length_exceeded");
    expect(body.error.param).toBe("messages");
    expect(body.error.message).toContain("no token of this model covers more than");
    expect(openHolds()).toBe(0);
  });

  test("a 3 MB completion prompt and a 3 MB embedding input: the same, param prompt and input", async () => {
    const { key } = setup.billed.account();
    const text = "x".repeat(3_000_000);
    const completion = await post("/v1/completions", key, { prompt: text, max_tokens: 1 });
    expect(completion.status).toBe(400);
    const c = (await completion.json()) as ErrorBody;
    expect([c.error.code, c.error.param]).toEqual(["context_length_exceeded", "prompt"]);
    expect(c.error.message).toContain("no token of this model covers more than");
    const embedding = await post("/v1/embeddings", key, { input: ["short", text] });
    expect(embedding.status).toBe(400);
    const e = (await embedding.json()) as ErrorBody;
    expect([e.error.code, e.error.param]).toEqual(["context_length_exceeded", "input"]);
    expect(e.error.message).toContain("input[1]");
    expect(openHolds()).toBe(0);
  });

  test("text just within the bound is still tokenized and judged by its real token count", async () => {
    const { key } = setup.billed.account();
    const res = await post("/v1/completions", key, { prompt: "hello ".repeat(2000), max_tokens: 1 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("context_length_exceeded");
    expect(body.error.message).not.toContain("no token of this model covers more than");
  });
});

// Reasoning on /v1/responses with the thinking variant of the demo model (its template opens <think>,
// so answers start in reasoning): reasoning items and their stream events, reasoning.effort, reasoning
// tokens billed at their rate, and encrypted_content that only this server can read back, for its owner.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import type { ReasoningItem, ResponseObject } from "../../src/responses/model.ts";
import { checkResponse, expectedCost, parseSse, startResponsesApp, THINKING, type Rates, type ResponsesApp } from "./support.ts";

setDefaultTimeout(120_000);

let h: ResponsesApp;
let key: string;
let other: string;
let rates: Rates;

beforeAll(async () => {
  h = await startResponsesApp("responses-reasoning");
  key = h.billed.account("10").key;
  other = h.billed.account("10").key;
  rates = ((await (await h.request("/v1/pricing")).json()) as { rates: Rates }).rates;
});
afterAll(() => h?.close());

// Random weights at temperature 1 write random (non-blank) reasoning until max_output_tokens, but
// now and then sample the block's closing tag within a few tokens: tests that need the whole answer
// in reasoning draw such a sample again (allReasoning).
const thinking = { model: THINKING, temperature: 1, top_p: 1 };

async function allReasoning<T>(draw: () => Promise<T>, closedEarly: (x: T) => boolean): Promise<T> {
  let x = await draw();
  for (let attempt = 1; attempt < 8 && closedEarly(x); attempt++) x = await draw();
  return x;
}

async function respond(body: Record<string, unknown>, k = key): Promise<ResponseObject> {
  const r = await h.create(k, { ...thinking, ...body });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`${r.status}: ${JSON.stringify(j)}`);
  return checkResponse(j);
}

const reasoningOf = (r: ResponseObject): ReasoningItem => {
  const item = r.output[0]!;
  if (item.type !== "reasoning") throw new Error(`expected a reasoning item, got ${JSON.stringify(r.output)}`);
  return item;
};

describe("reasoning items", () => {
  test("reasoning comes as a reasoning item with reasoning_text and an empty summary, billed as reasoning tokens", async () => {
    const r = await allReasoning(
      () => respond({ input: "Think hard.", reasoning: { effort: "high" }, max_output_tokens: 6 }),
      // Drawn again when the block closed within the limit, even on its last token.
      (x) => x.output.some((o) => o.type !== "reasoning") || x.usage!.output_tokens_details.reasoning_tokens < x.usage!.output_tokens,
    );
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.reasoning).toEqual({ effort: "high", summary: null });
    const item = reasoningOf(r);
    expect(item.id).toStartWith("rs_");
    expect(item.summary).toEqual([]);
    expect(item.status).toBe("incomplete");
    expect(item.content).toHaveLength(1);
    expect(item.content![0]!.type).toBe("reasoning_text");
    expect(item.content![0]!.text.length).toBeGreaterThan(0);
    expect(item.encrypted_content).toBeUndefined();
    expect(r.output.filter((o) => o.type === "message")).toEqual([]);
    expect(r.usage!.output_tokens_details.reasoning_tokens).toBe(6);
    expect(r.usage!.cost!.nanoton).toBe(expectedCost(rates, r.usage!));
  });

  test("reasoning.effort none (and minimal) turns thinking off: a message and no reasoning tokens", async () => {
    for (const effort of ["none", "minimal"]) {
      const r = await respond({ input: "Answer directly.", reasoning: { effort }, max_output_tokens: 4 });
      expect(r.output.map((o) => o.type)).toEqual(["message"]);
      expect(r.usage!.output_tokens_details.reasoning_tokens).toBe(0);
    }
  });

  test("a stream sends reasoning_text events inside the reasoning item, in order", async () => {
    const events = await allReasoning(
      async () => parseSse(await (await h.create(key, { ...thinking, input: "Think.", reasoning: { effort: "low" }, include: ["reasoning.encrypted_content"], max_output_tokens: 5, stream: true })).text()).map((e) => e.data),
      (x) => x.some((e) => e.type === "response.output_text.delta"),
    );
    const types = events.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete",
    ]);
    const added = events[2]!;
    if (added.type !== "response.output_item.added") throw new Error(added.type);
    expect(added.item).toMatchObject({ type: "reasoning", summary: [], content: [], status: "in_progress" });
    const done = events.find((e) => e.type === "response.output_item.done")!;
    if (done.type !== "response.output_item.done" || done.item.type !== "reasoning") throw new Error("no reasoning item done");
    expect(typeof done.item.encrypted_content).toBe("string");
    const text = events.flatMap((e) => (e.type === "response.reasoning_text.delta" ? [e.delta] : [])).join("");
    expect(done.item.content![0]!.text).toBe(text);
  });
});

describe("encrypted reasoning (store: false, include reasoning.encrypted_content)", () => {
  test("the sealed reasoning goes back in the next input and the model sees it; forged or foreign seals are 400s", async () => {
    const first = await respond({ input: "Plan it.", store: false, include: ["reasoning.encrypted_content"], reasoning: { effort: "medium" }, max_output_tokens: 8 });
    const item = reasoningOf(first);
    const text = item.content![0]!.text;
    const sealed = item.encrypted_content!;
    expect(typeof sealed).toBe("string");
    // Opaque: base64 of more than the text, with the text nowhere in it.
    expect(Buffer.from(sealed, "base64").toString("base64")).toBe(sealed);
    expect(sealed).not.toContain(text);
    expect(Buffer.from(sealed, "base64").toString("latin1")).not.toContain(text);

    // What Codex sends back: the reasoning item as received, without its plain text.
    const back = { type: "reasoning", id: item.id, summary: [], encrypted_content: sealed };
    const next = (extra: unknown[], k = key) =>
      h.create(k, { ...thinking, store: false, reasoning: { effort: "medium" }, input: [{ role: "user", content: "Plan it." }, ...extra, { role: "assistant", content: "Done." }], max_output_tokens: 2 });
    const without = checkResponse(await (await next([])).json());
    const withIt = checkResponse(await (await next([back])).json());
    // The reasoning kept after the last user message (Qwen3's template) is rendered into the prompt.
    expect(withIt.usage!.input_tokens).toBeGreaterThan(without.usage!.input_tokens);
    // The same reasoning sent in the clear gives the same prompt: the seal held exactly the text.
    const clear = checkResponse(await (await next([{ type: "reasoning", summary: [], content: [{ type: "reasoning_text", text }] }])).json());
    expect(clear.usage!.input_tokens).toBe(withIt.usage!.input_tokens);

    for (const [k, token] of [
      [key, `${sealed.slice(0, 20)}${sealed[20] === "A" ? "B" : "A"}${sealed.slice(21)}`],
      [key, Buffer.from("not a seal at all").toString("base64")],
      [other, sealed],
    ] as const) {
      const r = await next([{ ...back, encrypted_content: token }], k);
      expect(r.status).toBe(400);
      const e = ((await r.json()) as { error: { param: string; message: string } }).error;
      expect(e.param).toBe("input[1].encrypted_content");
      expect(e.message).toContain("could not be verified");
    }
  });

  test("stored responses keep reasoning for previous_response_id", async () => {
    const first = await respond({ input: "Think first.", reasoning: { effort: "medium" }, max_output_tokens: 6 });
    reasoningOf(first);
    const second = await respond({ input: "Go on.", previous_response_id: first.id, reasoning: { effort: "none" }, max_output_tokens: 3 });
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
    expect(second.usage!.input_tokens_details.cached_tokens).toBeGreaterThan(0);
  });
});

// POST /v1/responses in-process: the response object and its stream events against the published
// schemas, each input item kind, tools and tool_choice, text formats, the 400s (with param), 401,
// 402 and 404s, the stored-response routes per account, and previous_response_id chains on the KV cache.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { auth, checkResponse, MODEL, parseSse, startResponsesApp, type ResponsesApp } from "./support.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(120_000);

let h: ResponsesApp;
let key: string;
let other: string;

beforeAll(async () => {
  h = await startResponsesApp("responses");
  key = h.billed.account("10").key;
  other = h.billed.account("10").key;
});
afterAll(() => h?.close());

type Err = { error: { message: string; type: string; param: string | null; code: string | null } };

async function json<T = Record<string, unknown>>(r: Response): Promise<T> {
  return (await r.json()) as T;
}

async function ok(body: Record<string, unknown>, k = key) {
  const r = await h.create(k, body);
  const j = await json(r);
  if (r.status !== 200) throw new Error(`${r.status}: ${JSON.stringify(j)}`);
  return { r, body: checkResponse(j) };
}

async function refused(body: Record<string, unknown>, status = 400): Promise<Err["error"]> {
  const r = await h.create(key, body);
  expect(r.status).toBe(status);
  return (await json<Err>(r)).error;
}

const weather = { type: "function", name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false } };

describe("POST /v1/responses", () => {
  test("a response echoes its settings and matches the schema; the cost is in usage and in the header", async () => {
    const { r, body } = await ok({ input: "Hello", instructions: "Be terse.", max_output_tokens: 5, temperature: 0.5, top_p: 0.9, metadata: { a: "b" }, user: "u1", truncation: "disabled", parallel_tool_calls: false, store: true });
    expect(body).toMatchObject({
      object: "response",
      model: MODEL,
      instructions: "Be terse.",
      max_output_tokens: 5,
      temperature: 0.5,
      top_p: 0.9,
      metadata: { a: "b" },
      user: "u1",
      truncation: "disabled",
      parallel_tool_calls: false,
      store: true,
      previous_response_id: null,
      tool_choice: "auto",
      tools: [],
      text: { format: { type: "text" } },
      error: null,
    });
    expect(body.output.length).toBe(1);
    const msg = body.output[0]!;
    expect(msg.type).toBe("message");
    if (msg.type !== "message") return;
    expect(msg.content[0]!).toMatchObject({ type: "output_text", annotations: [], logprobs: [] });
    expect(body.usage!.output_tokens).toBeLessThanOrEqual(5);
    expect(r.headers.get("x-cocoon-cost-nanoton")).toBe(String(body.usage!.cost!.nanoton));
    expect(r.headers.get("x-ratelimit-limit")).not.toBeNull();
    expect(r.headers.get("x-cocoon-client-start")).not.toBeNull();
    if (body.status === "incomplete") expect(body.incomplete_details).toEqual({ reason: "max_output_tokens" });
    else expect(body.completed_at).toBeGreaterThanOrEqual(body.created_at);
  });

  test("input items: messages of every role (string or parts), assistant output_text, function calls and outputs", async () => {
    const { body } = await ok({
      input: [
        { role: "system", content: "You help." },
        { role: "developer", content: [{ type: "input_text", text: "Use tools." }] },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Weather?" }] },
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' },
        { type: "function_call_output", call_id: "call_1", output: "cold" },
        { role: "assistant", content: [{ type: "output_text", text: "It is cold." }] },
        { role: "user", content: "Thanks" },
      ],
      tools: [weather],
      max_output_tokens: 3,
    });
    const items = await json<{ data: { type: string; role?: string; id: string }[] }>(await h.request(`/v1/responses/${body.id}/input_items?order=asc`, auth(key)));
    expect(items.data.map((i) => i.role ?? i.type)).toEqual(["system", "developer", "user", "function_call", "function_call_output", "assistant", "user"]);
    expect(items.data.every((i) => typeof i.id === "string" && i.id.length > 3)).toBe(true);
  });

  test("text.format json_object and json_schema are grammar-constrained", async () => {
    const { body } = await ok({ input: "JSON please", text: { format: { type: "json_object" } }, max_output_tokens: 30, temperature: 0 });
    const text = body.output[0]!.type === "message" ? body.output[0]!.content[0]!.text : "";
    if (body.status === "completed") expect(typeof JSON.parse(text)).toBe("object");
    else expect(text.trimStart().startsWith("{")).toBe(true);
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const s = await ok({ input: "JSON please", text: { format: { type: "json_schema", name: "flag", schema, strict: true } }, max_output_tokens: 60, temperature: 0 });
    expect(s.body.status).toBe("completed");
    expect(s.body.text.format).toEqual({ type: "json_schema", name: "flag", schema, strict: true });
    const out = s.body.output[0]!;
    expect(typeof JSON.parse(out.type === "message" ? out.content[0]!.text : "").ok).toBe("boolean");
  });

  test("a forced function call is a function_call item; allowed_tools narrows the tools", async () => {
    const { body } = await ok({ input: "Weather in Rome?", tools: [weather, { ...weather, name: "get_time" }], tool_choice: { type: "allowed_tools", mode: "required", tools: [{ type: "function", name: "get_weather" }] }, max_output_tokens: 200, temperature: 0 });
    expect(body.status).toBe("completed");
    expect(body.tools.map((t) => t.name)).toEqual(["get_weather"]);
    const call = body.output.find((o) => o.type === "function_call");
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", status: "completed" });
    if (call?.type !== "function_call") return;
    expect(call.id).toStartWith("fc_");
    expect(call.call_id).toStartWith("call_");
    expect(typeof (JSON.parse(call.arguments) as { city: string }).city).toBe("string");
    // No whitespace-only message next to the call.
    expect(body.output.filter((o) => o.type === "message")).toEqual([]);
  });

  test("include message.output_text.logprobs: one entry per output token, with top_logprobs alternatives", async () => {
    const { body } = await ok({ input: "Logprobs", include: ["message.output_text.logprobs"], top_logprobs: 2, max_output_tokens: 4, temperature: 0 });
    expect(body.top_logprobs).toBe(2);
    const msg = body.output[0]!;
    if (msg.type !== "message") throw new Error(msg.type);
    const lps = msg.content[0]!.logprobs;
    expect(lps).toHaveLength(body.usage!.output_tokens);
    for (const lp of lps) {
      expect(lp.logprob).toBeLessThanOrEqual(0);
      expect(lp.top_logprobs).toHaveLength(2);
    }
    expect(lps.map((l) => l.token).join("")).toBe(msg.content[0]!.text);
  });

  test("a stream: event: lines match each event's type, sequence numbers count from 0, and the final event carries the response", async () => {
    const r = await h.create(key, { input: "Stream it", max_output_tokens: 4, stream: true, temperature: 1 });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/event-stream");
    const text = await r.text();
    expect(text).not.toContain("[DONE]");
    const events = parseSse(text);
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events[0]!.event).toBe("response.created");
    expect(events[1]!.event).toBe("response.in_progress");
    const last = events.at(-1)!.data;
    if (last.type !== "response.incomplete" && last.type !== "response.completed") throw new Error(`ended with ${last.type}`);
    checkResponse(last.response);
    const deltas = events.flatMap((e) => (e.data.type === "response.output_text.delta" ? [e.data.delta] : [])).join("");
    const msg = last.response.output[0]!;
    expect(msg.type === "message" ? msg.content[0]!.text : null).toBe(deltas);
    // Stored as it was sent.
    const stored = checkResponse(await json(await h.request(`/v1/responses/${last.response.id}`, auth(key))));
    expect(stored).toEqual(last.response);
  });
});

describe("errors", () => {
  test("bad input items and parts are 400s naming the param", async () => {
    expect((await refused({ input: [{ role: "robot", content: "hi" }] })).param).toBe("input[0].role");
    const image = await refused({ input: [{ role: "user", content: [{ type: "input_text", text: "see" }, { type: "input_image", image_url: "http://x/y.png" }] }] });
    expect(image.param).toBe("input[0].content[1].type");
    expect(image.message).toContain("text only");
    const unknown = await refused({ input: [{ role: "user", content: "hi" }, { type: "item_reference", id: "msg_1" }] });
    expect(unknown.param).toBe("input[1].type");
    expect(unknown.message).toContain("'item_reference'");
    expect((await refused({ input: [{ type: "function_call_output", output: "x" }] })).param).toBe("input[0].call_id");
    expect((await refused({ input: [] })).param).toBe("input");
    expect((await refused({ instructions: "only a system prompt" })).param).toBe("input");
    expect((await refused({ input: 42 })).param).toBe("input");
  });

  test("hosted tools, hosted tool choices and unsupported features are named in their 400", async () => {
    for (const type of ["web_search", "web_search_preview", "file_search", "computer_use_preview", "code_interpreter", "image_generation", "mcp"]) {
      const e = await refused({ input: "hi", tools: [weather, { type }] });
      expect(e.param).toBe("tools[1].type");
      expect(e.message).toContain(`'${type}'`);
    }
    expect((await refused({ input: "hi", tools: [weather], tool_choice: { type: "web_search_preview" } })).param).toBe("tool_choice.type");
    expect((await refused({ input: "hi", tools: [weather], tool_choice: { type: "function", name: "nope" } })).param).toBe("tool_choice.name");
    expect((await refused({ input: "hi", tool_choice: "required" })).param).toBe("tool_choice");
    expect((await refused({ input: "hi", background: true })).param).toBe("background");
    expect((await refused({ input: "hi", conversation: "conv_1" })).param).toBe("conversation");
    expect((await refused({ input: "hi", include: ["everything"] })).param).toBe("include[0]");
    expect((await refused({ input: "hi", temperature: 3 })).param).toBe("temperature");
    expect((await refused({ input: "hi", reasoning: { effort: "extreme" } })).param).toBe("reasoning.effort");
    expect((await refused({ input: "hi", text: { format: { type: "json_schema", name: "x" } } })).param).toBe("text.format");
    expect((await refused({ input: "hi", model: "nope" }, 404)).param).toBe("model");
  });

  test("unknown fields are accepted and ignored, as OpenAI's own new fields arrive", async () => {
    await ok({ input: "hi", max_output_tokens: 2, service_tier: "auto", prompt_cache_key: "k", safety_identifier: "s", some_future_field: { x: 1 }, stream_options: { include_obfuscation: false } });
  });

  test("401 without a valid key, 402 for an account that cannot pay", async () => {
    expect((await h.create(null, { input: "hi" })).status).toBe(401);
    expect((await h.create("ck_not_a_key", { input: "hi" })).status).toBe(401);
    const poor = h.billed.account("0").key;
    const r = await h.create(poor, { input: "hi", max_output_tokens: 4 });
    expect(r.status).toBe(402);
    expect((await json<Err>(r)).error.type).toBe("insufficient_balance");
  });

  test("previous_response_id of nobody's or another account's response: 404 previous_response_not_found", async () => {
    const mine = (await ok({ input: "mine", max_output_tokens: 2 })).body;
    for (const [k, id] of [
      [key, "resp_unknown"],
      [other, mine.id],
    ] as const) {
      const r = await h.create(k, { input: "more", previous_response_id: id, max_output_tokens: 2 });
      expect(r.status).toBe(404);
      expect((await json<Err>(r)).error).toEqual({ message: `Previous response with id '${id}' not found.`, type: "invalid_request_error", param: "previous_response_id", code: "previous_response_not_found" });
    }
  });
});

describe("stored responses", () => {
  test("GET, input_items (order, limit, after) and DELETE are per account; the deletion object is OpenAI's", async () => {
    const { body } = await ok({ input: [1, 2, 3, 4, 5].map((n) => ({ role: "user", content: `m${n}` })), max_output_tokens: 2 });
    expect((await h.request(`/v1/responses/${body.id}`, auth(other))).status).toBe(404);
    expect((await h.request(`/v1/responses/${body.id}/input_items`, auth(other))).status).toBe(404);
    expect((await h.request(`/v1/responses/${body.id}`, { method: "DELETE", ...auth(other) })).status).toBe(404);
    expect((await h.request(`/v1/responses/${body.id}`)).status).toBe(401);
    expect(checkResponse(await json(await h.request(`/v1/responses/${body.id}`, auth(key))))).toEqual(body);

    type Page = { object: string; data: { id: string; content: { text: string }[] }[]; first_id: string; last_id: string; has_more: boolean };
    const texts = (p: Page) => p.data.map((d) => d.content[0]!.text);
    const desc = await json<Page>(await h.request(`/v1/responses/${body.id}/input_items`, auth(key)));
    expect(desc.object).toBe("list");
    expect(texts(desc)).toEqual(["m5", "m4", "m3", "m2", "m1"]);
    const p1 = await json<Page>(await h.request(`/v1/responses/${body.id}/input_items?order=asc&limit=2`, auth(key)));
    expect(texts(p1)).toEqual(["m1", "m2"]);
    expect(p1.has_more).toBe(true);
    expect(p1.first_id).toBe(p1.data[0]!.id);
    expect(p1.last_id).toBe(p1.data[1]!.id);
    const p2 = await json<Page>(await h.request(`/v1/responses/${body.id}/input_items?order=asc&limit=10&after=${p1.last_id}`, auth(key)));
    expect(texts(p2)).toEqual(["m3", "m4", "m5"]);
    expect(p2.has_more).toBe(false);
    expect((await h.request(`/v1/responses/${body.id}/input_items?limit=0`, auth(key))).status).toBe(400);
    expect((await h.request(`/v1/responses/${body.id}/input_items?after=msg_nope`, auth(key))).status).toBe(400);

    const del = await h.request(`/v1/responses/${body.id}`, { method: "DELETE", ...auth(key) });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ id: body.id, object: "response", deleted: true });
    const gone = await h.request(`/v1/responses/${body.id}`, auth(key));
    expect(gone.status).toBe(404);
    expect((await json<Err>(gone)).error.message).toBe(`Response with id '${body.id}' not found.`);
  });

  test("store: false keeps nothing", async () => {
    const { body } = await ok({ input: "forget me", store: false, max_output_tokens: 2 });
    expect(body.store).toBe(false);
    expect((await h.request(`/v1/responses/${body.id}`, auth(key))).status).toBe(404);
    expect((await h.create(key, { input: "more", previous_response_id: body.id })).status).toBe(404);
  });

  test("a chain of previous_response_ids: each turn sees all earlier turns and resumes from the KV cache", async () => {
    const first = (await ok({ input: "The first message of a long conversation.", max_output_tokens: 4, temperature: 0 })).body;
    const second = (await ok({ input: "Second.", previous_response_id: first.id, max_output_tokens: 4, temperature: 0 })).body;
    const third = (await ok({ input: "Third.", previous_response_id: second.id, max_output_tokens: 4, temperature: 0 })).body;
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens + first.usage!.output_tokens);
    expect(third.usage!.input_tokens).toBeGreaterThan(second.usage!.input_tokens + second.usage!.output_tokens);
    // The previous prompt was in the cache (but for the token where the reply's text joins it).
    expect(second.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(first.usage!.input_tokens - 2);
    expect(third.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(second.usage!.input_tokens - 2);
    // input_items lists each response's own input only.
    const items = await json<{ data: unknown[] }>(await h.request(`/v1/responses/${third.id}/input_items`, auth(key)));
    expect(items.data).toHaveLength(1);
    // Deleting the middle one ends the chain there: the third's follow-up sees only the third turn.
    await h.request(`/v1/responses/${second.id}`, { method: "DELETE", ...auth(key) });
    const fourth = (await ok({ input: "Fourth.", previous_response_id: third.id, max_output_tokens: 2, temperature: 0 })).body;
    expect(fourth.usage!.input_tokens).toBeLessThan(third.usage!.input_tokens);
  });

  test("truncation auto drops the oldest turns when the conversation outgrows the context; disabled is a 400", async () => {
    const long = "word ".repeat(300);
    const input = [1, 2, 3, 4].map((n) => ({ role: "user", content: `${n} ${long}` }));
    const refusedError = await refused({ input, max_output_tokens: 4 });
    expect(refusedError.code).toBe("context_length_exceeded");
    const { body } = await ok({ input, truncation: "auto", max_output_tokens: 4 });
    expect(body.truncation).toBe("auto");
    expect(body.usage!.input_tokens).toBeLessThan(1024);
  });
});

describe("namespace tools (Codex sends them)", () => {
  const ns = { type: "namespace", name: "agents", description: "Sub-agents", tools: [{ ...weather, name: "spawn" }] };

  test("a namespace's functions are offered as namespace.name, echoed as given and called with their namespace", async () => {
    const { body } = await ok({ input: "Spawn one.", tools: [weather, ns], tool_choice: { type: "function", name: "spawn", namespace: "agents" }, max_output_tokens: 200, temperature: 0 });
    expect(body.tools).toEqual([
      { type: "function", name: "get_weather", description: "Weather for a city", parameters: weather.parameters, strict: null },
      { type: "namespace", name: "agents", description: "Sub-agents", tools: [{ type: "function", name: "spawn", description: "Weather for a city", parameters: weather.parameters, strict: null }] },
    ]);
    const call = body.output.find((o) => o.type === "function_call");
    expect(call).toMatchObject({ type: "function_call", name: "spawn", namespace: "agents", status: "completed" });
    // Sent back, the call and its output continue the conversation.
    const next = await ok({ input: [{ role: "user", content: "Spawn one." }, call!, { type: "function_call_output", call_id: (call as { call_id: string }).call_id, output: "spawned" }], tools: [weather, ns], max_output_tokens: 2 });
    expect(next.body.usage!.input_tokens).toBeGreaterThan(body.usage!.input_tokens);
    expect((await refused({ input: "hi", tools: [{ ...ns, tools: [{ type: "custom", name: "apply_patch" }] }] })).param).toBe("tools[0].tools[0].type");
  });
});

describe("a failure after the stream began", () => {
  test("ends the stream with response.failed, then an error event; the worker comes back", async () => {
    const r = await h.create(key, { input: "Go on and on", max_output_tokens: 600, stream: true, temperature: 1, top_p: 1 });
    const reader = r.body!.getReader();
    let text = "";
    while (!text.includes("response.output_text.delta")) text += new TextDecoder().decode((await reader.read()).value);
    h.engine.crashWorkerForTest(MODEL);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const events = parseSse(text);
    const [failed, error] = events.slice(-2).map((e) => e.data);
    if (failed?.type !== "response.failed" || error?.type !== "error") throw new Error(`ended with ${events.slice(-2).map((e) => e.event)}`);
    expect(failed.response.status).toBe("failed");
    expect(failed.response.error?.code).toBe("server_error");
    expect(error.message).toBe(failed.response.error!.message);
    expect(error.sequence_number).toBe(failed.sequence_number + 1);
    // The worker comes back for the next request.
    for (let i = 0; i < 100 && !h.engine.stats().find((s) => s.id === MODEL)?.ready; i++) await Bun.sleep(50);
    await ok({ input: "Still there?", max_output_tokens: 2 });
  });
});

// The generation path's parsed output through every front door: a canned Qwen3 answer (reasoning,
// text, two tool calls) forced with a GBNF grammar onto the tiny model comes out of
// /v1/chat/completions (whole and streamed), /v1/responses items and /v1/messages blocks as
// reasoning, content and tool calls with ids, never as markup; a call cut by max_tokens ends
// "length" with no markup in content. llama.cpp keeps the whitespace around reasoning; compared trimmed.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";

setDefaultTimeout(180_000);

let h: InProcessApp;
beforeAll(async () => {
  h = await startInProcessApp();
});
afterAll(() => h?.close());

const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } },
  { type: "function", function: { name: "get_time", description: "Local time", parameters: { type: "object", properties: { tz: { type: "string" } }, required: ["tz"] } } },
];

const ANSWER =
  "<think>\nplan it\n</think>\n\nLet me check.\n" +
  '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n' +
  '<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>';

/** A GBNF grammar whose only sentence is `text`. */
const literal = (text: string) => `root ::= ${JSON.stringify(text)}`;

const post = (path: string, body: unknown) => h.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function sse(r: Response): Promise<Record<string, unknown>[]> {
  const text = await r.text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("data: ") && l !== "data: [DONE]")
    .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

const chat = { model: TINY_ID, messages: [{ role: "user", content: "Weather and time in Paris?" }], tools, grammar: literal(ANSWER), max_tokens: 200 };

describe("a canned Qwen3 answer through the front doors", () => {
  test("chat completions: reasoning_content, content and two tool calls with ids", async () => {
    const r = await post("/v1/chat/completions", chat);
    expect(r.status).toBe(200);
    const j = (await r.json()) as { choices: { finish_reason: string; message: { content: string | null; reasoning_content?: string; tool_calls: { id: string; function: { name: string; arguments: string } }[] } }[] };
    const c = j.choices[0]!;
    expect(c.finish_reason).toBe("tool_calls");
    expect(c.message.reasoning_content?.trim()).toBe("plan it");
    expect(c.message.content?.trim()).toBe("Let me check.");
    expect(c.message.tool_calls.map((t) => [t.function.name, JSON.parse(t.function.arguments)])).toEqual([
      ["get_weather", { city: "Paris" }],
      ["get_time", { tz: "CET" }],
    ]);
    for (const t of c.message.tool_calls) expect(t.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
  });

  test("chat completions streamed: deltas never show markup, names arrive whole, once", async () => {
    const chunks = await sse(await post("/v1/chat/completions", { ...chat, stream: true }));
    let content = "";
    let reasoning = "";
    const names: string[] = [];
    const args: string[] = [];
    let finish: string | null = null;
    for (const ch of chunks) {
      const choice = (ch.choices as { delta: Record<string, unknown>; finish_reason: string | null }[] | undefined)?.[0];
      if (!choice) continue;
      const d = choice.delta as { content?: string; reasoning_content?: string; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
      if (d.content) {
        expect(d.content).not.toMatch(/<\/?(tool_call|think)>/);
        content += d.content;
      }
      reasoning += d.reasoning_content ?? "";
      for (const t of d.tool_calls ?? []) {
        if (t.function?.name) {
          names.push(t.function.name);
          expect(t.id).toMatch(/^call_/);
        }
        args[t.index] = (args[t.index] ?? "") + (t.function?.arguments ?? "");
      }
      finish = choice.finish_reason ?? finish;
    }
    expect(reasoning.trim()).toBe("plan it");
    expect(content.trim()).toBe("Let me check.");
    expect(names).toEqual(["get_weather", "get_time"]);
    expect(args.map((a) => JSON.parse(a))).toEqual([{ city: "Paris" }, { tz: "CET" }]);
    expect(finish).toBe("tool_calls");
  });

  test("a call cut off by max_tokens ends with finish_reason length and no markup in content", async () => {
    const r = await post("/v1/chat/completions", { ...chat, max_tokens: 14 });
    const j = (await r.json()) as { choices: { finish_reason: string; message: { content: string | null } }[] };
    expect(j.choices[0]!.finish_reason).toBe("length");
    expect(j.choices[0]!.message.content ?? "").not.toContain("<tool_call>");
    const streamed = await sse(await post("/v1/chat/completions", { ...chat, max_tokens: 14, stream: true }));
    const text = streamed.map((c) => ((c.choices as { delta: { content?: string } }[] | undefined)?.[0]?.delta.content ?? "")).join("");
    expect(text).not.toContain("<tool_call>");
    expect(streamed.some((c) => (c.choices as { finish_reason: string | null }[] | undefined)?.[0]?.finish_reason === "length")).toBe(true);
  });

  test("responses: a reasoning item, a message and two function_call items", async () => {
    const r = await post("/v1/responses", {
      model: TINY_ID,
      input: "Weather and time in Paris?",
      tools: tools.map((t) => ({ type: "function", ...t.function })),
      grammar: literal(ANSWER),
      max_output_tokens: 200,
      store: false,
    });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { output: { type: string; name?: string; arguments?: string; call_id?: string; content?: { text: string }[] }[] };
    expect(j.output.map((o) => o.type)).toEqual(["reasoning", "message", "function_call", "function_call"]);
    expect(j.output[0]!.content?.[0]?.text.trim()).toBe("plan it");
    expect(j.output[1]!.content?.[0]?.text.trim()).toBe("Let me check.");
    const calls = j.output.filter((o) => o.type === "function_call");
    expect(calls.map((c) => [c.name, JSON.parse(c.arguments!)])).toEqual([
      ["get_weather", { city: "Paris" }],
      ["get_time", { tz: "CET" }],
    ]);
    for (const c of calls) expect(c.call_id).toMatch(/^call_/);
  });

  test("messages: thinking, text and two tool_use blocks, stop_reason tool_use", async () => {
    const r = await post("/v1/messages", {
      model: TINY_ID,
      max_tokens: 200,
      thinking: { type: "enabled", budget_tokens: 100 },
      messages: [{ role: "user", content: "Weather and time in Paris?" }],
      tools: tools.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters })),
      grammar: literal(ANSWER),
    });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { stop_reason: string; content: { type: string; thinking?: string; text?: string; name?: string; input?: unknown; id?: string }[] };
    expect(j.content.map((b) => b.type)).toEqual(["thinking", "text", "tool_use", "tool_use"]);
    expect(j.content[0]!.thinking?.trim()).toBe("plan it");
    expect(j.content[1]!.text?.trim()).toBe("Let me check.");
    expect(j.content.filter((b) => b.type === "tool_use").map((b) => [b.name, b.input])).toEqual([
      ["get_weather", { city: "Paris" }],
      ["get_time", { tz: "CET" }],
    ]);
    expect(j.stop_reason).toBe("tool_use");
  });
});

describe("GET /v1/models", () => {
  test("says which chat format was detected and whether the model does tools and reasoning", async () => {
    const j = (await (await h.request("/v1/models")).json()) as { data: { id: string; meta: Record<string, unknown> }[] };
    const meta = j.data.find((m) => m.id === TINY_ID)!.meta;
    expect(meta.supports_tools).toBe(true);
    expect(meta.supports_reasoning).toBe(true);
    expect(meta.chat_format).toEqual({ family: "qwen3", parser: "peg-native", tool_call_start: ["<tool_call>\n"], reasoning_start: "<think>", reasoning_end: ["</think>"] });
  });
});

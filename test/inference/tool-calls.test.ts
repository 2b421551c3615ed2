// Tool-call extraction for the hermes, Llama 3 and Mistral formats, whole and streamed: a stream split
// anywhere must add up to the whole-text parse, and plain text must never be held back longer than needed.
import { describe, expect, test } from "bun:test";
import type { ToolCall, ToolCallFormat } from "../../src/inference/chat-template.ts";
import { collectToolEvents, parseToolCalls, ToolCallStream, type ToolStreamEvent } from "../../src/inference/tool-calls.ts";
import { prng, randomChunks } from "../support/chunking.ts";

function counterIds(): () => string {
  let n = 0;
  return () => `call_${++n}`;
}

function call(id: string, name: string, args: string): ToolCall {
  return { id, type: "function", function: { name, arguments: args } };
}

/** Feeds `chunks` to a fresh stream and folds the events. */
function streamed(chunks: string[], format: ToolCallFormat) {
  const stream = new ToolCallStream(format, counterIds());
  const events: ToolStreamEvent[] = [];
  for (const chunk of chunks) events.push(...stream.push(chunk));
  events.push(...stream.flush());
  return { events, result: collectToolEvents(events) };
}



const SAMPLES: Array<[ToolCallFormat, string]> = [
  ["hermes", 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'],
  [
    "hermes",
    '<tool_call>\n{"name": "a", "arguments": {"x": "braces {} and \\"quotes\\" in a string"}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "c", "arguments": "{\\"k\\": [1, 2]}"}\n</tool_call>\n',
  ],
  ["hermes", 'Text <b>bold</b> and a < sign, <tool_call>{"name": "f", "arguments": {bad json}}</tool_call> after.\n\nEnd.\n'],
  ["hermes", 'Unclosed at the end: <tool_call>\n{"name": "f", "arguments": {"q": "x"}}\n'],
  ["hermes", "No calls at all, just text with <tool and <tool_ca fragments.\n"],
  ["llama3", '<|python_tag|>{"name": "search", "parameters": {"query": "bun \\"ffi\\""}}'],
  ["llama3", '  {"name": "search", "parameters": {"query": "x"}}\n{"name": "lookup", "parameters": {"id": 3}}'],
  ["llama3", '{"name": "Alice", "age": 30}'],
  ["llama3", 'I will search.<|python_tag|>{"name": "search", "parameters": {}}'],
  ["mistral", '[TOOL_CALLS][{"name": "f", "arguments": {"a": 1}, "id": "abc123XYZ"}, {"name": "g", "arguments": {}}]'],
  ["mistral", 'Sure. [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[CALL_ID]Zz9Zz9Zz9[ARGS]{"tz": "CET"}'],
  ["mistral", "[TOOL_CALLS] not a call"],
  ["none", "Plain <tool_call> text stays text.\n"],
];

describe("parseToolCalls", () => {
  test("a hermes block becomes a call with compact arguments; the text before it is content", () => {
    const text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>';
    expect(parseToolCalls(text, "hermes", counterIds())).toEqual({
      content: "Let me check.",
      toolCalls: [call("call_1", "get_weather", '{"city":"Paris","days":2}')],
    });
  });

  test("parallel hermes calls are all returned, in order, with no whitespace content between them", () => {
    const text =
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}\n</tool_call>';
    expect(parseToolCalls(text, "hermes", counterIds())).toEqual({
      content: "",
      toolCalls: [call("call_1", "get_weather", '{"city":"Paris"}'), call("call_2", "get_weather", '{"city":"Rome"}')],
    });
  });

  test("default ids are call_ plus 24 base62 characters, unique per call", () => {
    const text = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b"}</tool_call>';
    const { toolCalls } = parseToolCalls(text, "hermes");
    expect(toolCalls.map((c) => c.function.arguments)).toEqual(["{}", "{}"]);
    for (const c of toolCalls) expect(c.id).toMatch(/^call_[0-9A-Za-z]{24}$/);
    expect(toolCalls[0]?.id).not.toBe(toolCalls[1]?.id);
  });

  test("malformed JSON inside a block is left in content", () => {
    const text = 'Try: <tool_call>\n{"name": "f", "arguments": {oops}}\n</tool_call>';
    expect(parseToolCalls(text, "hermes")).toEqual({ content: text, toolCalls: [] });
  });

  test("an unclosed block holding a whole call still counts at the end of generation", () => {
    const text = '<tool_call>\n{"name": "f", "arguments": {"q": 1}}';
    expect(parseToolCalls(text, "hermes", counterIds()).toolCalls).toEqual([call("call_1", "f", '{"q":1}')]);
  });

  test("text without a call is returned unchanged, whitespace included", () => {
    const text = "\nHello <b>world</b>, 1 < 2 and <tool is not a tag.\n\n";
    expect(parseToolCalls(text, "hermes")).toEqual({ content: text, toolCalls: [] });
    expect(parseToolCalls(text, "none")).toEqual({ content: text, toolCalls: [] });
  });

  test("Llama 3 calls: after <|python_tag|> or as a bare object; a plain JSON answer stays content", () => {
    const ids = counterIds();
    expect(parseToolCalls('<|python_tag|>{"name": "search", "parameters": {"q": "x"}}', "llama3", ids)).toEqual({
      content: "",
      toolCalls: [call("call_1", "search", '{"q":"x"}')],
    });
    expect(parseToolCalls('{"type": "function", "name": "search", "parameters": {"q": "y"}}', "llama3", ids).toolCalls).toEqual([
      call("call_2", "search", '{"q":"y"}'),
    ]);
    const answer = '{"name": "Alice", "age": 30}';
    expect(parseToolCalls(answer, "llama3")).toEqual({ content: answer, toolCalls: [] });
    expect(parseToolCalls('Here: {"name": "f", "parameters": {}}', "llama3").toolCalls).toEqual([]);
  });

  test("Mistral calls in both the JSON-array and the name[ARGS] forms keep the model's ids", () => {
    const list = '[TOOL_CALLS][{"name": "f", "arguments": {"a": 1}, "id": "abc123XYZ"}, {"name": "g", "arguments": {}}]';
    const parsed = parseToolCalls(list, "mistral");
    expect(parsed.content).toBe("");
    expect(parsed.toolCalls[0]).toEqual(call("abc123XYZ", "f", '{"a":1}'));
    // Mistral templates require 9 alphanumerics, so generated ids have that shape.
    expect(parsed.toolCalls[1]?.id).toMatch(/^[0-9A-Za-z]{9}$/);
    const named = 'Sure.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[CALL_ID]Zz9Zz9Zz9[ARGS]{}';
    expect(parseToolCalls(named, "mistral", counterIds())).toEqual({
      content: "Sure.",
      toolCalls: [call("call_1", "get_weather", '{"city":"Paris"}'), call("Zz9Zz9Zz9", "get_time", "{}")],
    });
  });
});

describe("ToolCallStream", () => {
  test("plain text is emitted at once, holding back only a possible marker prefix", () => {
    const stream = new ToolCallStream("hermes");
    expect(stream.push("Hello")).toEqual([{ type: "content", text: "Hello" }]);
    expect(stream.push(", wor")).toEqual([{ type: "content", text: ", wor" }]);
    expect(stream.push("ld<tool")).toEqual([{ type: "content", text: "ld" }]);
    expect(stream.push("tip")).toEqual([{ type: "content", text: "<tooltip" }]);
    expect(stream.push("!<")).toEqual([{ type: "content", text: "!" }]);
    expect(stream.flush()).toEqual([{ type: "content", text: "<" }]);
  });

  test("a call is announced with id and name, then its arguments, when its block closes", () => {
    const stream = new ToolCallStream("hermes", counterIds());
    expect(stream.push('Checking.\n<tool_call>\n{"name": "get_')).toEqual([{ type: "content", text: "Checking." }]);
    expect(stream.push('weather", "arguments": {"city": "Paris"}}\n')).toEqual([]);
    expect(stream.push("</tool_call>\n<tool_call>")).toEqual([
      { type: "tool_call", index: 0, id: "call_1", name: "get_weather" },
      { type: "tool_arguments", index: 0, delta: '{"city":"Paris"}' },
    ]);
    expect(stream.push('{"name": "get_time", "arguments": {}}</tool_call>\n')).toEqual([
      { type: "tool_call", index: 1, id: "call_2", name: "get_time" },
      { type: "tool_arguments", index: 1, delta: "{}" },
    ]);
    expect(stream.flush()).toEqual([]);
  });

  test("every sample streamed char by char, split at every point, and in random chunks equals the whole parse", () => {
    const random = prng(1234);
    for (const [format, text] of SAMPLES) {
      const whole = parseToolCalls(text, format, counterIds());
      const chunkings: string[][] = [[...text]];
      for (let i = 0; i <= text.length; i++) chunkings.push([text.slice(0, i), text.slice(i)]);
      for (let n = 0; n < 100; n++) chunkings.push(randomChunks(text, random));
      for (const chunks of chunkings) {
        const { events, result } = streamed(chunks, format);
        expect(result).toEqual(whole);
        expect(events.every((e) => e.type !== "content" || e.text !== "")).toBe(true);
      }
    }
  });

  test("the samples parse to the calls and content they contain", () => {
    const summary = SAMPLES.map(([format, text]) => {
      const { content, toolCalls } = parseToolCalls(text, format, counterIds());
      return [content, toolCalls.map((c) => `${c.id} ${c.function.name} ${c.function.arguments}`)];
    });
    expect(summary).toEqual([
      ["Let me check.", ['call_1 get_weather {"city":"Paris"}']],
      ["", ['call_1 a {"x":"braces {} and \\"quotes\\" in a string"}', "call_2 b {}", 'call_3 c {"k":[1,2]}']],
      [SAMPLES[2]![1], []],
      ["Unclosed at the end:", ['call_1 f {"q":"x"}']],
      [SAMPLES[4]![1], []],
      ["", ['call_1 search {"query":"bun \\"ffi\\""}']],
      ["", ['call_1 search {"query":"x"}', 'call_2 lookup {"id":3}']],
      [SAMPLES[7]![1], []],
      ["I will search.", ["call_1 search {}"]],
      ["", ['abc123XYZ f {"a":1}', "call_1 g {}"]],
      ["Sure.", ['call_1 get_weather {"city":"Paris"}', 'Zz9Zz9Zz9 get_time {"tz":"CET"}']],
      [SAMPLES[11]![1], []],
      [SAMPLES[12]![1], []],
    ]);
  });
});

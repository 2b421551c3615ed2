// Gemma 4's forced calls follow the tools' schemas: llama.cpp's call grammar (any dict for every tool)
// gets each tool's arguments written in Gemma's syntax, the call made required, and the result loads
// in llama.cpp's grammar sampler; grammars of other formats pass unchanged.
import { describe, expect, test } from "bun:test";
import { gemma4SchemaGrammar } from "../../src/inference/gemma4-grammar.ts";
import type { ToolDefinition } from "../../src/inference/chat-template.ts";

const tools: ToolDefinition[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string", enum: ["Paris", "London"] }, days: { type: "integer" }, tags: { type: "array", items: { type: "string" } } }, required: ["city", "days", "tags"] },
    },
  },
  { type: "function", function: { name: "free", parameters: { type: "object", properties: { a: { type: "string" } } } } },
];
// llama.cpp's rules for the format (peg-gemma4's grammar for these tools, tool_choice auto).
const llamaCpp = [
  "root ::= tool-call",
  'tool-call ::= ("<|tool_call>call:" (tool-get-weather | tool-free) "<tool_call|>")?',
  'tool-get-weather ::= ("get_weather") gemma4-dict',
  'tool-free ::= ("free") gemma4-dict',
].join("\n");

describe("gemma4SchemaGrammar", () => {
  test("each tool's arguments rule comes from its schema: bare keys in order, <|\"|>-quoted enum strings, integers, arrays", () => {
    const g = gemma4SchemaGrammar(llamaCpp, tools);
    expect(g).toContain('tool-get-weather ::= ("get_weather") g4-args-0');
    expect(g).toContain('g4-args-0 ::= ("{" g4-args-0-v-0 "," g4-args-0-v-1 "," g4-args-0-v-2 "}")');
    expect(g).toContain('g4-args-0-v-0 ::= "city:" ("<|\\"|>" "Paris" "<|\\"|>" | "<|\\"|>" "London" "<|\\"|>")');
    expect(g).toContain('g4-args-0-v-1 ::= "days:" ("-"? ([0-9] | [1-9] [0-9]{1,15}))');
    expect(g).toContain('g4-args-0-v-2 ::= "tags:" ("[" (g4-args-0-v-2-v-i ("," g4-args-0-v-2-v-i)*)? "]")');
    // Optional properties keep llama.cpp's generic dict.
    expect(g).toContain("g4-args-1 ::= gemma4-dict");
    // Forced: the call is no longer optional.
    expect(g).toContain('tool-call ::= ("<|tool_call>call:" (tool-get-weather | tool-free) "<tool_call|>")\n');
  });

  test("another format's grammar, or no tools, comes back unchanged", () => {
    const hermes = 'root ::= tool-call\ntool-call ::= "<tool_call>" space json "</tool_call>"';
    expect(gemma4SchemaGrammar(hermes, tools)).toBe(hermes);
    expect(gemma4SchemaGrammar(llamaCpp, [])).toBe(llamaCpp);
  });
});

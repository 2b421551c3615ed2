// Canned model outputs from llama.cpp's tests/test-chat.cpp, one or more per format family, parsed by
// our path (the template's ChatTemplate render -> llama.cpp's parser through ChatStream) into content,
// reasoning and tool calls: whole, and streamed in small pieces, where the deltas never show markup,
// never split a call's name, and add up to the whole parse. Content and reasoning are compared with
// their ends' whitespace stripped, as test-chat.cpp compares them.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadLlama, ChatStream, ChatTemplates, type LlamaModel } from "../../src/native/llama.ts";
import { ChatTemplate, type RenderOptions, type ToolDefinition } from "../../src/inference/chat-template.ts";
import { ROOT, TINY_MODEL } from "../support/model.ts";

const TEMPLATES = join(ROOT, "build", "cache", "llama.cpp-v0.5.0", "models", "templates");

// test-chat.cpp's special_function_tool, get_time_tool and empty_args_tool.
const special: ToolDefinition = {
  type: "function",
  function: { name: "special_function", description: "I'm special", parameters: { type: "object", properties: { arg1: { type: "integer", description: "The arg." } }, required: ["arg1"] } },
};
const getTime: ToolDefinition = {
  type: "function",
  function: { name: "get_time", description: "Get the current time in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};
const emptyArgs: ToolDefinition = { type: "function", function: { name: "empty_args", description: "No args", parameters: { type: "object", properties: {} } } };

interface Expected {
  content?: string;
  reasoning?: string;
  calls?: [name: string, args: Record<string, unknown>][];
}

interface Case {
  template: string;
  output: string;
  options?: RenderOptions;
  expect: Expected;
}

const HELLO = "Hello, world!\nWhat's up?";
const THINKING = "I'm\nthinking";
const call1: [string, Record<string, unknown>] = ["special_function", { arg1: 1 }];

const CASES: Case[] = [
  // Hermes 2 Pro / Qwen 2.5 style <tool_call> JSON
  { template: "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", output: '<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>', options: { tools: [special] }, expect: { calls: [call1] } },
  { template: "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", output: `${HELLO}<tool_call>\n{"name": "special_function", "arguments": {"arg1": 1}}</tool_call>`, options: { tools: [special] }, expect: { content: HELLO, calls: [call1] } },
  // Qwen3-Coder XML calls
  { template: "Qwen3-Coder.jinja", output: HELLO, expect: { content: HELLO } },
  { template: "Qwen3-Coder.jinja", output: "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>", options: { tools: [special] }, expect: { calls: [call1] } },
  // Qwen3.5: reasoning then XML calls
  { template: "Qwen3.5-4B.jinja", output: `${THINKING}\n</think>\n\n${HELLO}`, options: { enableThinking: true }, expect: { reasoning: THINKING, content: HELLO } },
  { template: "Qwen3.5-4B.jinja", output: "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>", options: { enableThinking: false, tools: [special] }, expect: { calls: [call1] } },
  // gpt-oss harmony channels
  { template: "openai-gpt-oss-120b.jinja", output: `<|channel|>final<|message|>${HELLO}`, expect: { content: HELLO } },
  { template: "openai-gpt-oss-120b.jinja", output: `<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant<|channel|>final<|message|>${HELLO}`, expect: { reasoning: THINKING, content: HELLO } },
  { template: "openai-gpt-oss-120b.jinja", output: '<|channel|>commentary to=functions.special_function<|message|>{"arg1": 1}', options: { tools: [special] }, expect: { calls: [call1] } },
  { template: "openai-gpt-oss-120b.jinja", output: ' to=functions.special_function<|channel|>analysis <|constrain|>json<|message|>{"arg1": 1}', options: { tools: [special] }, expect: { calls: [call1] } },
  // DeepSeek V3.1 tool-call tokens, R1 distills' reasoning
  {
    template: "deepseek-ai-DeepSeek-V3.1.jinja",
    output: '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"city": "XYZCITY"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
    options: { tools: [getTime], enableThinking: false },
    expect: { calls: [["get_time", { city: "XYZCITY" }]] },
  },
  { template: "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", output: `${THINKING}</think>${HELLO}`, options: { enableThinking: true }, expect: { reasoning: THINKING, content: HELLO } },
  // Mistral / Devstral [TOOL_CALLS]name[ARGS]{...}
  { template: "unsloth-mistral-Devstral-Small-2507.jinja", output: '[TOOL_CALLS]special_function[ARGS]{"arg1": 1}', options: { tools: [special] }, expect: { calls: [call1] } },
  { template: "unsloth-mistral-Devstral-Small-2507.jinja", output: `${HELLO}[TOOL_CALLS]special_function[ARGS]{"arg1": 1}`, options: { tools: [special] }, expect: { content: HELLO, calls: [call1] } },
  // Llama 3.x: plain content with tools offered
  { template: "meta-llama-Llama-3.1-8B-Instruct.jinja", output: HELLO, options: { tools: [special] }, expect: { content: HELLO } },
  // Gemma 4 channels and calls
  { template: "google-gemma-4-31B-it.jinja", output: `<|channel>thought\n${THINKING}<channel|>${HELLO}`, expect: { reasoning: THINKING, content: HELLO } },
  { template: "google-gemma-4-31B-it.jinja", output: '<|tool_call>call:get_time{city:<|"|>London<|"|>}<tool_call|>', options: { tools: [getTime] }, expect: { calls: [["get_time", { city: "London" }]] } },
  // GLM 4.6 arg_key / arg_value
  { template: "GLM-4.6.jinja", output: "<tool_call>special_function\n<arg_key>arg1</arg_key>\n<arg_value>1</arg_value>\n</tool_call>", options: { tools: [special] }, expect: { calls: [call1] } },
  { template: "GLM-4.7-Flash.jinja", output: `${THINKING}</think>${HELLO}`, options: { enableThinking: true }, expect: { reasoning: THINKING, content: HELLO } },
  // Kimi K2 sections
  {
    template: "moonshotai-Kimi-K2.jinja",
    output: '<|tool_calls_section_begin|><|tool_call_begin|>functions.special_function:0<|tool_call_argument_begin|>{"arg1": 1}<|tool_call_end|><|tool_calls_section_end|>',
    options: { tools: [special] },
    expect: { calls: [call1] },
  },
  // MiniMax M2 invoke blocks
  {
    template: "MiniMax-M2.jinja",
    output: "Let's call a tool:\n</think>\n\n<minimax:tool_call>\n<invoke name=\"empty_args\">\n</invoke>\n</minimax:tool_call>",
    options: { tools: [emptyArgs], enableThinking: true },
    expect: { reasoning: "Let's call a tool:", calls: [["empty_args", {}]] },
  },
  // Granite <think>, Command R7B thinking and actions, Functionary v3.2
  { template: "ibm-granite-granite-3.3-2B-Instruct.jinja", output: `<think>${THINKING}</think>${HELLO}`, expect: { reasoning: THINKING, content: HELLO } },
  { template: "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", output: `<|START_THINKING|>${THINKING}<|END_THINKING|><|START_RESPONSE|>${HELLO}<|END_RESPONSE|>`, expect: { reasoning: THINKING, content: HELLO } },
  { template: "meetkai-functionary-medium-v3.2.jinja", output: 'special_function\n{"arg1": 1}', options: { tools: [special] }, expect: { calls: [call1] } },
];

setDefaultTimeout(120_000);

let model: LlamaModel;
beforeAll(() => {
  model = loadLlama().loadModel(TINY_MODEL);
});
afterAll(() => model?.dispose());

function template(file: string): ChatTemplate {
  return new ChatTemplate(ChatTemplates.create(loadLlama().chat, model.handle, readFileSync(join(TEMPLATES, file), "utf8")));
}

interface Parsed {
  content: string;
  reasoning: string;
  calls: { id: string; name: string; args: string }[];
  /** Names as they arrived in deltas. */
  names: string[];
}

/** Streams `output` through llama.cpp's parser in pieces of `size` characters. */
function stream(t: ChatTemplate, c: Case, size: number): Parsed {
  const params = t.render([{ role: "user", content: "Hi" }], c.options ?? {}).params;
  const parser = new ChatStream(loadLlama().chat, { format_id: params.format_id, parser: params.parser, generation_prompt: params.generation_prompt, parse_tool_calls: (c.options?.tools?.length ?? 0) > 0 });
  const out: Parsed = { content: "", reasoning: "", calls: [], names: [] };
  const chars = Array.from(c.output);
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(""));
  pieces.push("");
  pieces.forEach((piece, i) => {
    const step = parser.push(piece, i === pieces.length - 1);
    for (const d of step.diffs) {
      out.content += d.content ?? "";
      out.reasoning += d.reasoning ?? "";
      if (d.index === undefined) continue;
      out.calls[d.index] ??= { id: "", name: "", args: "" };
      if (d.name) {
        out.names.push(d.name);
        out.calls[d.index]!.name = d.name;
        out.calls[d.index]!.id = d.id ?? "";
      }
      out.calls[d.index]!.args += d.arguments ?? "";
    }
  });
  parser.dispose();
  return out;
}

describe("llama.cpp's canned outputs parse through our path", () => {
  for (const c of CASES) {
    test(`${c.template}: ${JSON.stringify(c.output).slice(0, 70)}`, () => {
      const t = template(c.template);
      try {
        for (const size of [1000, 3, 1]) {
          const p = stream(t, c, size);
          // Compared as llama.cpp's own tests compare them: ends stripped of whitespace.
          expect(p.content.trim()).toBe(c.expect.content ?? "");
          expect(p.reasoning.trim()).toBe(c.expect.reasoning ?? "");
          expect(p.calls.map((k) => [k.name, JSON.parse(k.args || "{}")])).toEqual(c.expect.calls ?? []);
          // Each call's name arrives once, whole, with an id.
          expect(p.names).toEqual((c.expect.calls ?? []).map(([name]) => name));
          for (const k of p.calls) expect(k.id).toMatch(/^(call_[A-Za-z0-9]{24}|\S+)$/);
        }
      } finally {
        t.dispose();
      }
    });
  }
});

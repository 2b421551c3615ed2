// Anthropic -> engine conversion (messages, tools, tool_choice, thinking) and the reasoning budget cut
// on the event stream, as pure functions.
import { describe, expect, test } from "bun:test";
import { chatMessages, messagesRequest, stopReason, toolChoice, toolInput } from "../../src/anthropic/service.ts";
import type { MessagesRequest } from "../../src/anthropic/model.ts";
import type { ModelInfo } from "../../src/inference/types.ts";

const model = { id: "m" } as ModelInfo;
const cocoon = { maxCoefficient: 0, timeoutMs: 0, debug: false, guid: null };

describe("conversion to the engine's request", () => {
  test("tool_use becomes tool_calls with the same ids, tool_result tool messages, thinking reasoning_content, system blocks one system message", () => {
    const messages = chatMessages({
      system: [{ type: "text", text: "A" }, { type: "text", text: "B", cache_control: { type: "ephemeral" } }],
      messages: [
        { role: "user", content: "Weather?" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Call it.", signature: "s" },
            { type: "redacted_thinking", data: "opaque" },
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "w", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "w", input: { city: "Rome" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "Sunny" },
            { type: "tool_result", tool_use_id: "toolu_2", content: [{ type: "text", text: "Rain" }], is_error: true },
            { type: "text", text: "And tomorrow?" },
          ],
        },
      ],
    });
    expect(messages).toEqual([
      { role: "system", content: "A\nB" },
      { role: "user", content: "Weather?" },
      {
        role: "assistant",
        content: "Checking.",
        reasoning_content: "Call it.",
        tool_calls: [
          { id: "toolu_1", type: "function", function: { name: "w", arguments: '{"city":"Paris"}' } },
          { id: "toolu_2", type: "function", function: { name: "w", arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: "tool", tool_call_id: "toolu_1", content: "Sunny" },
      { role: "tool", tool_call_id: "toolu_2", content: "Error: Rain" },
      { role: "user", content: "And tomorrow?" },
    ]);
  });

  test("tool_choice: any is required, tool is forced by name, disable_parallel_tool_use turns parallel calls off", () => {
    const tools = [{ name: "w", input_schema: { type: "object" } }];
    expect(toolChoice({ messages: [], tools, tool_choice: { type: "any" } })).toEqual({ choice: "required", parallel: undefined });
    expect(toolChoice({ messages: [], tools, tool_choice: { type: "tool", name: "w", disable_parallel_tool_use: true } })).toEqual({ choice: { name: "w" }, parallel: false });
    expect(toolChoice({ messages: [], tools, tool_choice: { type: "none" } })).toEqual({ choice: "none", parallel: undefined });
    expect(() => toolChoice({ messages: [], tools, tool_choice: { type: "tool", name: "other" } })).toThrow(/no tool named 'other'/);
  });

  test("the request: max_tokens, sampling, stop sequences, tools as functions; thinking off unless enabled", () => {
    const body: MessagesRequest = {
      model: "m",
      max_tokens: 50,
      messages: [{ role: "user", content: "hi" }],
      temperature: 0.5,
      top_p: 0.9,
      top_k: 20,
      stop_sequences: ["END", ""],
      tools: [{ name: "w", description: "d", input_schema: { type: "object" } }],
    };
    const r = messagesRequest(body, model, cocoon);
    expect(r.maxTokens).toBe(50);
    expect(r.sampling).toEqual({ temperature: 0.5, topP: 0.9, topK: 20 });
    expect(r.stop).toEqual(["END"]);
    expect(r.tools).toEqual([{ type: "function", function: { name: "w", description: "d", parameters: { type: "object" } } }]);
    expect(r.enableThinking).toBe(false);
    expect(messagesRequest({ ...body, thinking: { type: "enabled", budget_tokens: 10 } }, model, cocoon).enableThinking).toBe(true);
    expect(() => chatMessages({ messages: [{ role: "user", content: [{ type: "document", source: {} } as { type: string }] }] })).toThrow(/document/);
    // System messages between turns (Claude Code sends them) stay system messages.
    expect(chatMessages({ messages: [{ role: "user", content: "a" }, { role: "system", content: [{ type: "text", text: "note" }] }] })).toEqual([
      { role: "user", content: "a" },
      { role: "system", content: "note" },
    ]);
  });

  test("stop reasons and tool inputs", () => {
    expect(stopReason("stop", null)).toEqual({ stop_reason: "end_turn", stop_sequence: null });
    expect(stopReason("stop", "END")).toEqual({ stop_reason: "stop_sequence", stop_sequence: "END" });
    expect(stopReason("length", null).stop_reason).toBe("max_tokens");
    expect(stopReason("tool_calls", null).stop_reason).toBe("tool_use");
    expect(stopReason("length", null, true).stop_reason).toBe("model_context_window_exceeded");
    expect(toolInput('{"a":1}')).toEqual({ a: 1 });
    expect(toolInput("")).toEqual({});
    expect(toolInput("[1]")).toEqual({ arguments: "[1]" });
  });
});

describe("thinking.budget_tokens", () => {
  test("becomes the engine's reasoning budget (the block is closed there, the answer follows); absent without thinking", () => {
    const base = { model: "m", max_tokens: 64, messages: [{ role: "user" as const, content: "hi" }] };
    expect(messagesRequest({ ...base, thinking: { type: "enabled", budget_tokens: 16 } } as never, model, {} as never).reasoningBudget).toBe(16);
    expect(messagesRequest({ ...base, thinking: { type: "enabled", budget_tokens: 16 } } as never, model, {} as never).enableThinking).toBe(true);
    expect(messagesRequest(base as never, model, {} as never).reasoningBudget).toBeUndefined();
    expect(messagesRequest({ ...base, thinking: { type: "adaptive" } } as never, model, {} as never).reasoningBudget).toBeUndefined();
  });
});

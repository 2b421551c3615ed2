// The family test models (`bun run make-model -- --family NAME`): each loads in llama.cpp with its
// family's tokenizer and template, a tool call forced onto it parses into tool_calls, and the call's
// result renders back for the answer (call -> tool result -> answer); reasoning_effort reaches the
// templates that read it (gpt-oss's system message) and "none" turns Qwen3's thinking off.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Engine } from "../../src/inference/engine.ts";
import type { ChatMessage, EngineEvent, GenerateRequest } from "../../src/inference/types.ts";
import { makeFamilyModel } from "../../scripts/make-test-model.ts";
import { ROOT } from "../support/model.ts";

setDefaultTimeout(600_000);

// What each family's model writes for one call, in its own markup (as llama.cpp's test-chat.cpp has it).
const CALLS: Record<string, string> = {
  "gpt-oss": '<|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>{"city": "Paris"}<|call|>',
  llama3: '{"type": "function", "name": "get_weather", "parameters": {"city": "Paris"}}',
  deepseek: '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
  qwen3: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
  gemma: '<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>',
};
const tools = [{ type: "function" as const, function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];

let engine: Engine;
beforeAll(async () => {
  const models = [];
  for (const family of Object.keys(CALLS)) {
    const out = join(ROOT, "models", `tiny-${family}.gguf`);
    await makeFamilyModel(family as never, { out });
    models.push({ id: family, path: out });
  }
  engine = await Engine.start({ models, slots: 1, ctxSize: 1024, maxQueue: 8 });
});
afterAll(() => engine?.close());

async function run(req: GenerateRequest) {
  let content = "";
  const calls: { id: string; function: { name: string; arguments: string } }[] = [];
  let reason = "";
  for await (const e of engine.submit(req) as AsyncIterable<EngineEvent>) {
    if (e.type === "delta") content += e.content;
    if (e.type === "finish") {
      calls.push(...e.toolCalls);
      reason = e.reason;
    }
  }
  return { content, calls, reason };
}

describe("family test models", () => {
  for (const family of Object.keys(CALLS)) {
    test(`${family}: its format is detected, a call parses, and its result renders back for the answer`, async () => {
      const info = engine.models().find((m) => m.id === family)!;
      expect(info.chatFormat?.family).toBe(family);
      expect(info.supportsTools).toBe(true);
      const messages: ChatMessage[] = [{ role: "user", content: "Weather in Paris?" }];
      const literal = `root ::= ${JSON.stringify(CALLS[family])}`;
      // DeepSeek V3.1 with thinking on would read the call as reasoning (no </think>): as test-chat.cpp, off.
      const enableThinking = family === "deepseek" ? false : undefined;
      const first = await run({ model: family, messages, tools, grammar: literal, maxTokens: 300, enableThinking });
      expect(first.reason).toBe("tool_calls");
      expect(first.calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([["get_weather", { city: "Paris" }]]);
      expect(first.content).not.toContain("get_weather");
      const turn: ChatMessage[] = [...messages, { role: "assistant", content: null, tool_calls: first.calls.map((c) => ({ ...c, type: "function" as const })) }, { role: "tool", tool_call_id: first.calls[0]!.id, content: "18C" }];
      const prompt = await engine.render(family, { messages: turn, options: { tools } });
      expect(prompt.prompt).toContain("18C");
      // gpt-oss answers in its final channel; the others in plain text.
      const said = family === "gpt-oss" ? "<|channel|>final<|message|>It is 18C." : "It is 18C.";
      const answer = await run({ model: family, messages: turn, tools, enableThinking, grammar: `root ::= ${JSON.stringify(said)}`, maxTokens: 40 });
      expect([answer.reason, answer.content.trim()]).toEqual(["stop", "It is 18C."]);
    });
  }

  test('reasoning_effort "low" reaches gpt-oss\'s system message; "none" turns Qwen3 thinking off', async () => {
    const messages: ChatMessage[] = [{ role: "user", content: "Hi" }];
    expect((await engine.render("gpt-oss", { messages: messages, options: { extra: { reasoning_effort: "low" } } })).prompt).toContain("Reasoning: low");
    expect((await engine.render("qwen3", { messages: messages, options: { enableThinking: false } })).prompt).toEndWith("<think>\n\n</think>\n\n");
  });
});

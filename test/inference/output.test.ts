// ChoiceOutput: generated tokens -> stop strings -> llama.cpp's parser for the model's format, as
// deltas (content, reasoning, tool calls), with reasoning tokens counted and call ids in the format's
// own style (Mistral's 9 alphanumerics).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadLlama, ChatStream, ChatTemplates, type LlamaModel } from "../../src/native/llama.ts";
import { ChatTemplate, type ToolDefinition } from "../../src/inference/chat-template.ts";
import { ChoiceOutput, type OutputOptions, type TokenText } from "../../src/inference/output.ts";
import { ROOT, TINY_MODEL } from "../support/model.ts";

const TEMPLATES = join(ROOT, "build", "cache", "llama.cpp-v0.5.0", "models", "templates");
const tool: ToolDefinition = { type: "function", function: { name: "f", parameters: { type: "object", properties: { a: { type: "integer" } }, required: ["a"] } } };

setDefaultTimeout(120_000);

let model: LlamaModel;
beforeAll(() => {
  model = loadLlama().loadModel(TINY_MODEL);
});
afterAll(() => model?.dispose());

/** A vocabulary where token i is the i-th character of `text`: one token per character. */
const charVocab = (text: string): TokenText & { ids: number[] } => {
  const chars = Array.from(text);
  return { ids: chars.map((_, i) => i), tokenBytes: (t) => new TextEncoder().encode(chars[t]!) };
};

function output(file: string, text: string, extra: Partial<OutputOptions> = {}) {
  const t = new ChatTemplate(ChatTemplates.create(loadLlama().chat, model.handle, readFileSync(join(TEMPLATES, file), "utf8")));
  const p = t.render([{ role: "user", content: "Hi" }], { tools: [tool] }).params;
  const vocab = charVocab(text);
  const out = new ChoiceOutput(vocab, {
    stops: [],
    parser: () => new ChatStream(loadLlama().chat, { format_id: p.format_id, parser: p.parser, generation_prompt: p.generation_prompt, parse_tool_calls: true }),
    specialTokens: new Set(),
    logprobs: false,
    ...extra,
  });
  const deltas = vocab.ids.map((id) => out.push(id, null));
  deltas.push(out.finish());
  t.dispose();
  return { out, deltas };
}

describe("ChoiceOutput over llama.cpp's parser", () => {
  test("Qwen3: reasoning, then content, then a call; reasoning tokens counted; no markup in any delta", () => {
    const { out, deltas } = output("Qwen-Qwen3-0.6B.jinja", '<think>\nhm\n</think>\n\nOk.\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>');
    expect(deltas.map((d) => d.reasoning).join("").trim()).toBe("hm");
    expect(deltas.map((d) => d.content).join("").trim()).toBe("Ok.");
    for (const d of deltas) expect(d.content).not.toContain("<");
    expect(out.toolCalls.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([["f", { a: 1 }]]);
    expect(out.toolCalls[0]!.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(out.reasoningTokens).toBeGreaterThan(3);
    expect(out.reasoningTokens).toBeLessThan(20);
  });

  test("an answer's leading whitespace is kept when it is the first thing generated (its next-turn tokens match the KV), not after reasoning", () => {
    for (const tools of [false, true]) {
      const plain = output("Qwen-Qwen3-0.6B.jinja", " Torres Torres", { toolCalls: tools });
      expect(plain.deltas.map((d) => d.content).join("")).toBe(" Torres Torres");
      const lines = output("Qwen-Qwen3-0.6B.jinja", "\n\nOk. Fine", { toolCalls: tools });
      expect(lines.deltas.map((d) => d.content).join("")).toBe("\n\nOk. Fine");
    }
    const after = output("Qwen-Qwen3-0.6B.jinja", "<think>\nhm\n</think>\n\nOk.");
    expect(after.deltas.map((d) => d.content).join("")).toBe("Ok.");
    const calls = output("Qwen-Qwen3-0.6B.jinja", ' <tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>', { toolCalls: true });
    expect(calls.deltas.map((d) => d.content).join("")).toBe("");
    expect(calls.out.toolCalls.map((c) => c.function.name)).toEqual(["f"]);
  });

  test("Mistral: a generated call id is 9 alphanumerics, the same in deltas and the final call", () => {
    const { out, deltas } = output("unsloth-mistral-Devstral-Small-2507.jinja", '[TOOL_CALLS]f[ARGS]{"a": 1}', { mistralIds: true });
    const id = out.toolCalls[0]!.id;
    expect(id).toMatch(/^[A-Za-z0-9]{9}$/);
    expect(deltas.flatMap((d) => d.toolCalls).filter((c) => c.id).map((c) => c.id)).toEqual([id]);
  });
});

// A thinking budget on a real model and template: DeepSeek V3.1's prompt opens the <think> block, the
// budget closes it with the format's own tag, the answer follows in content, and usage counts the
// reasoning tokens apart (billed at the reasoning rate).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Engine } from "../../src/inference/engine.ts";
import type { EngineEvent, GenerateRequest, Usage } from "../../src/inference/types.ts";
import { makeFamilyModel } from "../../scripts/make-test-model.ts";
import { ROOT } from "../support/model.ts";

setDefaultTimeout(300_000);

let engine: Engine;
beforeAll(async () => {
  const path = join(ROOT, "models", "tiny-deepseek.gguf");
  await makeFamilyModel("deepseek", { out: path });
  engine = await Engine.start({ models: [{ id: "deepseek", path }], slots: 1, ctxSize: 1024, maxQueue: 4 });
});
afterAll(() => engine?.close());

async function run(req: Partial<GenerateRequest>) {
  let content = "";
  let reasoning = "";
  let usage: Usage | null = null;
  for await (const e of engine.submit({ model: "deepseek", messages: [{ role: "user", content: "Think, then answer." }], ...req }) as AsyncIterable<EngineEvent>) {
    if (e.type === "delta") {
      content += e.content;
      reasoning += e.reasoning;
    } else if (e.type === "done") usage = e.usage;
  }
  return { content, reasoning, usage: usage! };
}

test("the budget closes the reasoning block with </think> and the rest of max_tokens is the answer", async () => {
  const prompt = await engine.render("deepseek", { messages: [{ role: "user", content: "Hi" }], options: { enableThinking: true } });
  expect(prompt.prompt.trimEnd()).toEndWith("<think>");
  const r = await run({ enableThinking: true, reasoningBudget: 6, maxTokens: 24, sampling: { temperature: 0.8, seed: 5 }, ignoreEos: true });
  expect(r.reasoning.length).toBeGreaterThan(0);
  expect(r.content.length).toBeGreaterThan(0);
  expect(r.content).not.toContain("</think>");
  expect(r.reasoning).not.toContain("</think>");
  // Six generated inside the block, at most three more that finish a split UTF-8 character, the tag.
  expect(r.usage.reasoningTokens).toBeGreaterThanOrEqual(6);
  expect(r.usage.reasoningTokens).toBeLessThanOrEqual(6 + 3 + 1);
  expect(r.usage.completionTokens).toBe(24);
});

test("without a budget the random model stays inside the block up to max_tokens", async () => {
  const r = await run({ enableThinking: true, maxTokens: 24, sampling: { temperature: 0.8, seed: 5 }, ignoreEos: true });
  expect(r.content).toBe("");
  expect(r.usage.reasoningTokens).toBe(24);
});

test("budget 0 means no reasoning at all: the tag is forced first", async () => {
  const r = await run({ enableThinking: true, reasoningBudget: 0, maxTokens: 12, sampling: { temperature: 0.8, seed: 6 }, ignoreEos: true });
  expect(r.reasoning).toBe("");
  expect(r.content.length).toBeGreaterThan(0);
});

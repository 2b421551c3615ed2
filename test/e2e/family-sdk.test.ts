// Every family test model through the official SDKs over HTTP: a forced tool call round trip (call ->
// tool result -> answer) on chat completions and Responses (`openai`) and Messages (`@anthropic-ai/sdk`),
// streaming and not, with no format markup reaching content; and the reasoning controls reaching the
// templates: reasoning_effort / reasoning.effort / thinking "none" turn Qwen3's thinking off, "low"
// reaches gpt-oss's system message (seen through POST /apply-template, llama-server's route).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { makeFamilyModel } from "../../scripts/make-test-model.ts";
import { FAMILIES } from "../../src/gguf/families.ts";
import { ROOT } from "../support/model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(120_000);

// Random weights never stop by themselves: small budgets keep each answer short.
const ANSWER_TOKENS = 12;
const CALL_TOKENS = 80;
// Any family's call, channel or reasoning markup: none of it may reach content or text.
const MARKUP = /<\|?tool_call\|?>|<\/tool_call>|<\|channel\|?>|<channel\|>|<\|message\|>|<\|call\|>|<\|constrain\|>|tool▁call|<\|python_tag\|>|<\|start_header_id\|>|<\|"\|>|<\/?think>|get_weather/;

let server: TestServer;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  const args: string[] = [];
  for (const family of FAMILIES) {
    const { path } = await makeFamilyModel(family, { out: join(ROOT, "models", `tiny-${family}.gguf`) });
    args.push("--model", `${family}=${path}`);
  }
  server = await startTestServer([...args, "--ctx-size", "2048", "--parallel", "1"], { readyTimeoutMs: 120_000 });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 90_000 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0, timeout: 90_000 });
});
afterAll(async () => {
  await server?.stop();
});

// An enum keeps the forced arguments short whatever the random weights pick.
const parameters = { type: "object", properties: { city: { type: "string", enum: ["Paris", "London"] } }, required: ["city"], additionalProperties: false };
const chatTools: OpenAI.ChatCompletionTool[] = [{ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters } }];
const responseTools: OpenAI.Responses.FunctionTool[] = [{ type: "function", name: "get_weather", description: "Weather for a city", parameters, strict: true }];
const anthropicTools: Anthropic.Tool[] = [{ name: "get_weather", description: "Weather for a city", input_schema: parameters as Anthropic.Tool.InputSchema }];
const question = "What is the weather in Paris?";
const greedy = { temperature: 0 };

// gpt-oss answers in its final channel, which random weights never open by themselves (text outside a
// channel parses to nothing): its answers are held to the channel with a grammar (llama-server's field).
const answerShape = (family: string) => (family === "gpt-oss" ? ({ grammar: 'root ::= "<|channel|>final<|message|>" [A-Za-z ,.]+' } as object) : {});

function expectCity(args: unknown): void {
  const parsed = typeof args === "string" ? (JSON.parse(args) as unknown) : args;
  expect(Object.keys(parsed as object)).toEqual(["city"]);
  expect(["Paris", "London"]).toContain((parsed as { city: string }).city);
}

describe.each(FAMILIES.map((f) => [f]))("%s", (family) => {
  test("chat completions: a forced call, its result, an answer (named and not streamed, then required and streamed)", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: question }];
    const first = await openai.chat.completions.create({ model: family, messages, tools: chatTools, tool_choice: { type: "function", function: { name: "get_weather" } }, max_tokens: CALL_TOKENS, ...greedy });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    const call = choice.message.tool_calls![0]!;
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.id.length).toBeGreaterThan(0);
    expect(call.function.name).toBe("get_weather");
    expectCity(call.function.arguments);
    expect(choice.message.content ?? "").not.toMatch(MARKUP);

    // Streamed: the name arrives whole in one delta, the arguments concatenate to JSON, no markup in content.
    const stream = await openai.chat.completions.create({ model: family, messages, tools: chatTools, tool_choice: "required", parallel_tool_calls: false, max_tokens: CALL_TOKENS, stream: true, ...greedy });
    let content = "";
    let args = "";
    const names: string[] = [];
    let id = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      content += c.delta.content ?? "";
      for (const d of c.delta.tool_calls ?? []) {
        if (d.function?.name) names.push(d.function.name);
        if (d.id) id = d.id;
        args += d.function?.arguments ?? "";
      }
      finish = c.finish_reason ?? finish;
    }
    expect([finish, names, id.length > 0]).toEqual(["tool_calls", ["get_weather"], true]);
    expectCity(args);
    expect(content).not.toMatch(MARKUP);

    const turn: OpenAI.ChatCompletionMessageParam[] = [...messages, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: call.id, content: "Sunny, 21 C" }];
    const answer = await openai.chat.completions.create({ model: family, messages: turn, tools: chatTools, max_tokens: ANSWER_TOKENS, ...greedy, ...answerShape(family) });
    const a = answer.choices[0]!;
    expect(["stop", "length"]).toContain(a.finish_reason);
    expect(a.message.tool_calls ?? []).toEqual([]);
    expect((a.message.content ?? "").length).toBeGreaterThan(0);
    expect(a.message.content).not.toMatch(MARKUP);
    let streamed = "";
    let streamedFinish: string | null = null;
    for await (const chunk of await openai.chat.completions.create({ model: family, messages: turn, tools: chatTools, max_tokens: ANSWER_TOKENS, stream: true, ...greedy, ...answerShape(family) })) {
      streamed += chunk.choices[0]?.delta.content ?? "";
      streamedFinish = chunk.choices[0]?.finish_reason ?? streamedFinish;
    }
    expect([streamedFinish, streamed]).toEqual([a.finish_reason, a.message.content]);
  });

  test("responses: function_call item, function_call_output, an answer (not streamed and streamed)", async () => {
    const first = await openai.responses.create({ model: family, input: question, tools: responseTools, tool_choice: { type: "function", name: "get_weather" }, max_output_tokens: CALL_TOKENS, ...greedy });
    const call = first.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === "function_call")!;
    expect(call.name).toBe("get_weather");
    expect(call.call_id.length).toBeGreaterThan(0);
    expectCity(call.arguments);
    expect(first.output_text).not.toMatch(MARKUP);

    const events: string[] = [];
    let streamedCall: OpenAI.Responses.ResponseFunctionToolCall | undefined;
    let text = "";
    for await (const e of await openai.responses.create({ model: family, input: question, tools: responseTools, tool_choice: "required", parallel_tool_calls: false, max_output_tokens: CALL_TOKENS, stream: true, ...greedy })) {
      events.push(e.type);
      if (e.type === "response.output_item.done" && e.item.type === "function_call") streamedCall = e.item;
      if (e.type === "response.output_text.delta") text += e.delta;
    }
    expect(events.at(-1)).toBe("response.completed");
    expect(streamedCall?.name).toBe("get_weather");
    expectCity(streamedCall!.arguments);
    expect(text).not.toMatch(MARKUP);

    const input: OpenAI.Responses.ResponseInput = [
      { role: "user", content: question },
      { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: "function_call_output", call_id: call.call_id, output: "Sunny, 21 C" },
    ];
    const answer = await openai.responses.create({ model: family, input, tools: responseTools, max_output_tokens: ANSWER_TOKENS, ...greedy, ...answerShape(family) });
    expect(["completed", "incomplete"]).toContain(answer.status ?? "");
    expect(answer.output.some((o) => o.type === "function_call")).toBe(false);
    expect(answer.output_text.length).toBeGreaterThan(0);
    expect(answer.output_text).not.toMatch(MARKUP);
    let streamed = "";
    for await (const e of await openai.responses.create({ model: family, input, tools: responseTools, max_output_tokens: ANSWER_TOKENS, stream: true, ...greedy, ...answerShape(family) })) {
      if (e.type === "response.output_text.delta") streamed += e.delta;
    }
    expect(streamed).toBe(answer.output_text);
  });

  test("messages: tool_use block, tool_result, an answer (tool_choice tool not streamed, any streamed)", async () => {
    const messages: Anthropic.MessageParam[] = [{ role: "user", content: question }];
    const first = await anthropic.messages.create({ model: family, messages, tools: anthropicTools, tool_choice: { type: "tool", name: "get_weather" }, max_tokens: CALL_TOKENS, ...greedy });
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use")!;
    expect(use.id).toStartWith("toolu_");
    expect(use.name).toBe("get_weather");
    expectCity(use.input);
    for (const b of first.content) if (b.type === "text") expect(b.text).not.toMatch(MARKUP);

    const stream = anthropic.messages.stream({ model: family, messages, tools: anthropicTools, tool_choice: { type: "any", disable_parallel_tool_use: true }, max_tokens: CALL_TOKENS, ...greedy });
    let text = "";
    for await (const e of stream) if (e.type === "content_block_delta" && e.delta.type === "text_delta") text += e.delta.text;
    const streamed = await stream.finalMessage();
    expect(streamed.stop_reason).toBe("tool_use");
    const streamedUse = streamed.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use")!;
    expect(streamedUse.name).toBe("get_weather");
    expectCity(streamedUse.input);
    expect(text).not.toMatch(MARKUP);

    const turn: Anthropic.MessageParam[] = [...messages, { role: "assistant", content: first.content }, { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "Sunny, 21 C" }] }];
    const answer = await anthropic.messages.create({ model: family, messages: turn, tools: anthropicTools, max_tokens: ANSWER_TOKENS, ...greedy, ...answerShape(family) });
    expect(["end_turn", "max_tokens"]).toContain(answer.stop_reason!);
    expect(answer.content.some((b) => b.type === "tool_use")).toBe(false);
    const said = answer.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    expect(said.length).toBeGreaterThan(0);
    expect(said).not.toMatch(MARKUP);
    const again = await anthropic.messages.stream({ model: family, messages: turn, tools: anthropicTools, max_tokens: ANSWER_TOKENS, ...greedy, ...answerShape(family) }).finalMessage();
    expect(again.content.map((b) => (b.type === "text" ? b.text : "")).join("")).toBe(said);
  });
});

/** The prompt the server renders for a chat completions body (POST /apply-template, as llama-server). */
async function rendered(body: Record<string, unknown>): Promise<string> {
  const r = await fetch(`${server.url}/apply-template`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(r.status).toBe(200);
  return ((await r.json()) as { prompt: string }).prompt;
}

describe("reasoning controls over HTTP", () => {
  const hi = [{ role: "user", content: "Hi" }];

  test('reasoning_effort "none" turns Qwen3 thinking off: the prompt closes an empty think block, the answer has no reasoning', async () => {
    expect(await rendered({ model: "qwen3", messages: hi })).not.toContain("</think>");
    expect(await rendered({ model: "qwen3", messages: hi, reasoning_effort: "none" })).toEndWith("<think>\n\n</think>\n\n");
    const r = await openai.chat.completions.create({ model: "qwen3", messages: hi as OpenAI.ChatCompletionMessageParam[], reasoning_effort: "none" as never, max_tokens: ANSWER_TOKENS, ...greedy });
    const message = r.choices[0]!.message as { content: string | null; reasoning_content?: string };
    expect(message.reasoning_content ?? "").toBe("");
    expect(r.usage?.completion_tokens_details?.reasoning_tokens ?? 0).toBe(0);
    // The Responses reasoning.effort and Anthropic thinking disabled map to the same.
    const resp = await openai.responses.create({ model: "qwen3", input: "Hi", reasoning: { effort: "none" as never }, max_output_tokens: ANSWER_TOKENS, ...greedy });
    expect(resp.output.some((o) => o.type === "reasoning")).toBe(false);
    expect(resp.usage?.output_tokens_details.reasoning_tokens ?? 0).toBe(0);
    const msg = await anthropic.messages.create({ model: "qwen3", messages: [{ role: "user", content: "Hi" }], thinking: { type: "disabled" }, max_tokens: ANSWER_TOKENS, ...greedy });
    expect(msg.content.some((b) => b.type === "thinking")).toBe(false);
  });

  test('reasoning_effort "low" reaches gpt-oss\'s system message (chat reasoning_effort, Responses reasoning.effort; Anthropic thinking has no level to map)', async () => {
    expect(await rendered({ model: "gpt-oss", messages: hi })).toContain("Reasoning: medium");
    expect(await rendered({ model: "gpt-oss", messages: hi, reasoning_effort: "low" })).toContain("Reasoning: low");
    expect(await rendered({ model: "gpt-oss", messages: hi, reasoning_effort: "high" })).toContain("Reasoning: high");
    // The same prompt is what generation uses: "low" costs the same prompt tokens as the rendered text.
    const r = await openai.chat.completions.create({ model: "gpt-oss", messages: hi as OpenAI.ChatCompletionMessageParam[], reasoning_effort: "low", max_tokens: 4, ...greedy });
    const prompt = await rendered({ model: "gpt-oss", messages: hi, reasoning_effort: "low" });
    const tokens = (await (await fetch(`${server.url}/tokenize`, { method: "POST", body: JSON.stringify({ model: "gpt-oss", content: prompt }), headers: { "content-type": "application/json" } })).json()) as { tokens: number[] };
    expect(r.usage!.prompt_tokens).toBe(tokens.tokens.length);
    const resp = await openai.responses.create({ model: "gpt-oss", input: "Hi", reasoning: { effort: "low" }, max_output_tokens: 4, ...greedy });
    expect(resp.usage!.input_tokens).toBe(tokens.tokens.length);
  });
});

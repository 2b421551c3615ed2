// The Vercel AI SDK's default OpenAI provider (`openai("model")` speaks the Responses API) against the
// real server with a funded key: generateText, streamText, and a tool round trip over two steps.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { ROOT } from "../support/model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(90_000);

const MODEL = "tiny-qwen3";
const dir = mkdtempSync(join(tmpdir(), "cocoon-ai-sdk-"));
let server: TestServer;
let key: string;
let openai: ReturnType<typeof createOpenAI>;

beforeAll(async () => {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", "2", "--data-dir", dir], { stdout: "pipe", stderr: "pipe" });
  key = /ck_[A-Za-z0-9_-]+/.exec(r.stdout.toString())?.[0] ?? "";
  if (!key) throw new Error(`create-key failed: ${r.stderr.toString()}`);
  server = await startTestServer(["--data-dir", dir], { auth: true });
  openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: key });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

type UsageRow = { endpoint: string; status: string; prompt_tokens: number; completion_tokens: number; cost: { nanoton: number } };
const usageRows = async () => ((await (await fetch(`${server.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: UsageRow[] }).data;

describe("AI SDK: openai(model) on the Responses API", () => {
  test("generateText: text, finish reason, usage and the response id, billed", async () => {
    const r = await generateText({ model: openai(MODEL), system: "Be terse.", prompt: "Hello", maxOutputTokens: 8, temperature: 0 });
    expect(typeof r.text).toBe("string");
    expect(["stop", "length"]).toContain(r.finishReason);
    expect(r.usage.inputTokens).toBeGreaterThan(0);
    expect(r.usage.outputTokens).toBeGreaterThan(0);
    expect(r.usage.outputTokens!).toBeLessThanOrEqual(8);
    expect(r.response.id).toStartWith("resp_");
    const row = (await usageRows())[0]!;
    expect(row).toMatchObject({ endpoint: "responses", status: "ok", prompt_tokens: r.usage.inputTokens, completion_tokens: r.usage.outputTokens });
    expect(row.cost.nanoton).toBeGreaterThan(0);
  });

  test("streamText: the deltas add up to the text, with usage at the end", async () => {
    const s = streamText({ model: openai(MODEL), prompt: "Count.", maxOutputTokens: 6, temperature: 1 });
    let deltas = "";
    const errors: unknown[] = [];
    for await (const part of s.fullStream) {
      if (part.type === "text-delta") deltas += part.text;
      if (part.type === "error") errors.push(part.error);
    }
    expect(errors).toEqual([]);
    expect(await s.text).toBe(deltas);
    expect(await s.finishReason).toBe("length");
    expect((await s.usage).outputTokens).toBe(6);
  });

  test("a tool call round trip: the SDK runs the tool and sends its result back in the next step", async () => {
    const calls: string[] = [];
    const weather = tool({
      description: "Weather for a city",
      inputSchema: jsonSchema<{ city: string }>({ type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false }),
      execute: async ({ city }) => {
        calls.push(city);
        return { city, temperature: 21 };
      },
    });
    const r = await generateText({
      model: openai(MODEL),
      prompt: "Weather in Paris?",
      tools: { weather },
      toolChoice: { type: "tool", toolName: "weather" },
      stopWhen: stepCountIs(2),
      prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: "none" as const } : undefined),
      maxOutputTokens: 150,
      temperature: 0,
    });
    expect(r.steps).toHaveLength(2);
    expect(r.steps[0]!.finishReason).toBe("tool-calls");
    expect(r.steps[0]!.toolCalls[0]!.toolName).toBe("weather");
    expect(calls).toHaveLength(1);
    expect(r.steps[1]!.toolCalls).toEqual([]);
    // The second request carried the tool's result as a function_call_output (stored: input_items shows it).
    const items = (await (await fetch(`${server.url}/v1/responses/${r.steps[1]!.response.id}/input_items?order=asc`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: { type: string; call_id?: string; output?: string }[] };
    const output = items.data.find((i) => i.type === "function_call_output");
    expect(output?.call_id).toBe(r.steps[0]!.toolCalls[0]!.toolCallId);
    expect(JSON.parse(output!.output!)).toMatchObject({ temperature: 21 });
  });
});

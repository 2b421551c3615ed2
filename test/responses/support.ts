// The app in-process for the Responses API tests: the demo model and its thinking variant on a real
// engine, billing on (funded accounts on demand), and helpers to call /v1/responses and read its streams.
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { createApp, engineMetrics, type App } from "../../src/app.ts";
import { Engine } from "../../src/inference/engine.ts";
import { ResponseObject, ResponseStreamEvent } from "../../src/responses/model.ts";
import { billedPlatform, type BilledPlatform } from "../support/billed.ts";
import { TINY_MODEL } from "../support/model.ts";
import { thinkingModel } from "../support/thinking-model.ts";

export const MODEL = "tiny-qwen3";
export const THINKING = "tiny-thinking";

export interface ResponsesApp {
  app: App;
  engine: Engine;
  billed: BilledPlatform;
  logged: string[];
  request(path: string, init?: RequestInit): Promise<Response>;
  /** POST /v1/responses with a key. */
  create(key: string | null, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response>;
  close(): void;
}

export async function startResponsesApp(name: string): Promise<ResponsesApp> {
  const billed = billedPlatform(name);
  const engine = await Engine.start({ models: [{ id: MODEL, path: TINY_MODEL }, { id: THINKING, path: thinkingModel() }], slots: 4, ctxSize: 1024, maxQueue: 256 });
  const logged: string[] = [];
  const app = createApp({ engine, loadedEngine: () => engine, metrics: engineMetrics(() => engine), platform: billed.platform, ton: null, version: "0.0.0-test", log: (line) => logged.push(line) });
  const request = (path: string, init?: RequestInit) => app.handle(new Request(`http://localhost${path}`, init));
  return {
    app,
    engine,
    billed,
    logged,
    request,
    create: (key, body, signal) =>
      request("/v1/responses", { method: "POST", headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify({ model: MODEL, ...body }), signal }),
    close() {
      engine.close();
      billed.close();
    },
  };
}

export const auth = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

const responseCheck = TypeCompiler.Compile(ResponseObject);
const eventCheck = TypeCompiler.Compile(ResponseStreamEvent);

/** The response object, checked against the published schema. */
export function checkResponse(value: unknown): ResponseObject {
  const errors = [...responseCheck.Errors(value)].slice(0, 3).map((e) => `${e.path}: ${e.message}`);
  if (errors.length) throw new Error(`not a Response: ${errors.join("; ")}\n${JSON.stringify(value).slice(0, 2000)}`);
  return value as ResponseObject;
}

export interface SseEvent {
  event: string;
  data: ResponseStreamEvent;
}

/** The events of a stream, each checked against the published event schema and its `event:` line. */
export function parseSse(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .filter((block) => block.includes("data: "))
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "";
      const data = JSON.parse(lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")) as ResponseStreamEvent;
      const errors = [...eventCheck.Errors(data)].slice(0, 3).map((e) => `${e.path}: ${e.message}`);
      if (errors.length) throw new Error(`not a stream event: ${errors.join("; ")}\n${JSON.stringify(data).slice(0, 1000)}`);
      if (event !== data.type) throw new Error(`event line '${event}' for a '${data.type}' event`);
      return { event, data };
    });
}

export interface Rates {
  prompt_token: { effective_nanoton: number };
  completion_token: { effective_nanoton: number };
  reasoning_token: { effective_nanoton: number };
  cached_prompt_token: { effective_nanoton: number };
}

/** Σ tokens × published effective rate, by type. */
export function expectedCost(rates: Rates, u: { input_tokens: number; output_tokens: number; input_tokens_details: { cached_tokens: number }; output_tokens_details: { reasoning_tokens: number } }): number {
  const cached = u.input_tokens_details.cached_tokens;
  const reasoning = u.output_tokens_details.reasoning_tokens;
  return (
    (u.input_tokens - cached) * rates.prompt_token.effective_nanoton +
    cached * rates.cached_prompt_token.effective_nanoton +
    (u.output_tokens - reasoning) * rates.completion_token.effective_nanoton +
    reasoning * rates.reasoning_token.effective_nanoton
  );
}

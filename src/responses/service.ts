// The Responses API's logic (no Elysia here): a request becomes one GenerateRequest on the shared
// generation path (keys, limits, reservation, billing as on chat), its conversation is the stored
// chain of `previous_response_id` plus the new input, and finished responses are stored per owner.
import { ApiError, toApiError } from "../http/errors.ts";
import type { ChatMessage } from "../inference/chat-template.ts";
import type { GenerateRequest, ModelInfo, ResponseFormat, ToolChoice, ToolDefinition } from "../inference/types.ts";
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonOptions, pickModel, reasoningBudget, unixSeconds, type CocoonOptions } from "../generation/options.ts";
import { startGeneration, type StartedGeneration } from "../generation/start.ts";
import type { Cost, Principal } from "../platform/service.ts";
import { ownerOf } from "../sessions/service.ts";
import { newId, normalizeInput, plainReasoning, toMessages } from "./input.ts";
import type { ReasoningItem, ResponseCreateRequest, ResponseItem, ResponseObject, ResponseStreamEvent } from "./model.ts";
import { finalResponse, responseEvents } from "./output.ts";
import { ReasoningSeal } from "./seal.ts";
import type { ResponseStore, StoredResponse } from "./store.ts";

export interface ResponsesDeps {
  generation: GenerationDeps;
  store: ResponseStore;
}

export type ResponseOutcome =
  | { stream: false; body: ResponseObject; cost: Cost | null }
  | { stream: true; events: AsyncGenerator<ResponseStreamEvent> };

/** Include values we act on, and those about hosted tools, which have nothing to include here. */
const INCLUDES = new Set([
  "reasoning.encrypted_content",
  "message.output_text.logprobs",
  "file_search_call.results",
  "web_search_call.results",
  "web_search_call.action.sources",
  "message.input_image.image_url",
  "computer_call_output.output.image_url",
  "code_interpreter_call.outputs",
]);

/** The longest previous_response_id chain followed (older turns are dropped). */
const MAX_CHAIN = 1000;

export class ResponsesService {
  private sealer: Promise<ReasoningSeal> | null = null;

  constructor(private readonly deps: ResponsesDeps) {}

  /** The seal under the store's key (the same on every gateway sharing the store), read once. */
  private sealed(): Promise<ReasoningSeal> {
    const s = (this.sealer ??= this.deps.store.secret("reasoning").then((key) => new ReasoningSeal(key)));
    // A failed read (storage down) is retried by the next request.
    s.catch(() => {
      if (this.sealer === s) this.sealer = null;
    });
    return s;
  }

  async create(body: ResponseCreateRequest, signal: AbortSignal | undefined, principal: Principal | null): Promise<ResponseOutcome> {
    const cocoon = cocoonOptions(body);
    const model = pickModel(this.deps.generation, body.model, cocoon, "chat");
    refuseUnsupported(body);
    const owner = ownerOf(principal);
    const store = body.store ?? true;
    const include = new Set(body.include ?? []);
    for (const [i, v] of [...include].entries()) {
      if (!INCLUDES.has(v)) throw new ApiError("invalid_request", `Invalid value for 'include[${i}]': ${JSON.stringify(v)} is not one of ${[...INCLUDES].join(", ")}.`, `include[${i}]`);
    }
    const previous = body.previous_response_id ? await this.deps.store.get(owner, body.previous_response_id) : null;
    if (body.previous_response_id && !previous) {
      throw new ApiError("previous_response_not_found", `Previous response with id '${body.previous_response_id}' not found.`, "previous_response_id");
    }
    const seal = await this.sealed();
    const items = normalizeInput(body.input, (item, at) => {
      this.reasoningText(seal, owner, item, at);
    });
    const conversation = [...(previous ? await this.history(owner, previous) : []), ...items];
    const messages: ChatMessage[] = [...(body.instructions ? [{ role: "system" as const, content: body.instructions }] : []), ...toMessages(conversation, (item) => this.reasoningText(seal, owner, item, null))];
    if (!messages.some((m) => m.role !== "system")) throw new ApiError("invalid_request", "Missing required parameter: 'input'.", "input");

    const id = newId("resp");
    const chainId = previous?.chainId ?? id;
    const createdAt = Date.now();
    const { tools, toolChoice, echoed, callee } = toolsOf(body);
    const request: GenerateRequest = {
      model: model.id,
      messages,
      tools: tools.length ? tools.map((t) => ({ type: "function", function: t.function })) : undefined,
      toolChoice,
      parallelToolCalls: body.parallel_tool_calls ?? undefined,
      ...thinkingOf(body),
      reasoningBudget: reasoningBudget(body.reasoning_budget_tokens),
      maxTokens: body.max_output_tokens ?? undefined,
      sampling: { temperature: body.temperature ?? undefined, topP: body.top_p ?? undefined },
      responseFormat: formatOf(body),
      grammar: body.grammar || undefined,
      logprobs: include.has("message.output_text.logprobs") ? (body.top_logprobs ?? 0) : -1,
      timeoutMs: cocoon.timeoutMs || undefined,
      // The conversation's KV cache stays with it: the next response of the chain resumes from it.
      sessionKey: store || previous ? `response:${owner}:${chainId}` : undefined,
    };
    let cost: Cost | null = null;
    const started = await this.start({ request, model, principal, cocoon, signal }, body.truncation === "auto");
    const events = responseEvents(started.events, started.source, {
      base: responseBase(body, { id, model, createdAt, tools: echoed, store }),
      callee,
      settle: async (done) => (cost = await started.settle(done)),
      seal: include.has("reasoning.encrypted_content") ? (text) => seal.seal(owner, text) : undefined,
      // Stored before the final event goes out, so a follow-up sent right after it finds the response.
      onEnd: store ? (r) => this.deps.store.put(owner, { id, previousId: previous?.id ?? null, chainId, model: model.id, createdAt, input: items, body: r }) : undefined,
      failures: body.stream ? "events" : "throw",
    });
    if (body.stream) return { stream: true, events };
    const final = await finalResponse(events);
    return { stream: false, body: final, cost };
  }

  /** A stored response of the owner's; another owner's is a 404 like a missing one. */
  async get(principal: Principal | null, id: string): Promise<ResponseObject> {
    return (await this.stored(ownerOf(principal), id)).body;
  }

  /** OpenAI's deletion object; frees the conversation's KV cache once none of its responses is left. */
  async delete(principal: Principal | null, id: string): Promise<{ id: string; object: "response"; deleted: true }> {
    const owner = ownerOf(principal);
    const chainId = (await this.stored(owner, id)).chainId;
    await this.deps.store.delete(owner, id);
    if (!(await this.deps.store.chainInUse(owner, chainId))) {
      try {
        await this.deps.generation.engine.forgetSession(`response:${owner}:${chainId}`);
      } catch {
        // No engine (loading, shutting down): it holds nothing of the conversation then.
      }
    }
    return { id, object: "response", deleted: true };
  }

  /** The request's input items, a page at a time (newest first by default), as OpenAI lists them. */
  async inputItems(principal: Principal | null, id: string, q: { limit?: number; order?: "asc" | "desc"; after?: string }) {
    const items = (await this.stored(ownerOf(principal), id)).input;
    const ordered = (q.order ?? "desc") === "desc" ? [...items].reverse() : items;
    let from = 0;
    if (q.after !== undefined) {
      const at = ordered.findIndex((x) => x.id === q.after);
      if (at === -1) throw new ApiError("invalid_request", `Invalid value for 'after': no input item '${q.after}' in response '${id}'.`, "after");
      from = at + 1;
    }
    const page = ordered.slice(from, from + (q.limit ?? 20));
    return { object: "list" as const, data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: from + page.length < ordered.length };
  }

  private async stored(owner: string, id: string): Promise<StoredResponse> {
    const r = await this.deps.store.get(owner, id);
    if (!r) throw new ApiError("not_found", `Response with id '${id}' not found.`, null);
    return r;
  }

  /** The items the chain up to `last` holds, oldest first: each response's input, then its output. */
  private async history(owner: string, last: StoredResponse): Promise<ResponseItem[]> {
    // A deleted response ends the walk: the conversation then starts after it.
    const chain = await this.deps.store.chain(owner, last.id, MAX_CHAIN);
    // Deleted since it was read (another gateway): this request still continues from it.
    if (chain.length === 0) chain.push(last);
    return chain.reverse().flatMap((r) => [...r.input, ...r.body.output]);
  }

  /**
   * The reasoning an item carries: sealed here (encrypted_content, checked against the owner) or in the
   * clear. A seal that does not open is a 400 for new input (`at`), and ignored in stored history.
   */
  private reasoningText(seal: ReasoningSeal, owner: string, item: ReasoningItem, at: string | null): string {
    if (item.encrypted_content) {
      const text = seal.open(owner, item.encrypted_content);
      if (text !== null) return text;
      if (at) {
        throw new ApiError(
          "invalid_request",
          `The encrypted content of ${at} ('${item.id}') could not be verified: it was not issued by this server to this account, or it was altered.`,
          `${at}.encrypted_content`,
        );
      }
    }
    return plainReasoning(item);
  }

  /** Starts the generation; with truncation auto, drops the oldest turns while the context overflows. */
  private async start(o: { request: GenerateRequest; model: ModelInfo; principal: Principal | null; cocoon: CocoonOptions; signal: AbortSignal | undefined }, truncate: boolean): Promise<StartedGeneration> {
    for (let drop = 1; ; drop *= 2) {
      try {
        return await startGeneration(this.deps.generation, { ...o, endpoint: "responses", turn: null });
      } catch (err) {
        const api = toApiError(err);
        const messages = o.request.messages!;
        const first = messages.findIndex((m) => m.role !== "system");
        const lastUser = messages.findLastIndex((m) => m.role === "user");
        const n = Math.min(drop, lastUser - first);
        if (!truncate || api.kind !== "context_length_exceeded" || first < 0 || n <= 0) throw api;
        o.request.messages = [...messages.slice(0, first), ...messages.slice(first + n)];
      }
    }
  }
}

/** Fields asking for what this server does not do get a 400 naming them. */
function refuseUnsupported(body: ResponseCreateRequest): void {
  if (body.background) throw new ApiError("invalid_request", "background responses are not supported by this server; send the request without 'background' (use stream to follow a long one).", "background");
  const extra = body as Record<string, unknown>;
  if (extra.conversation !== undefined && extra.conversation !== null) {
    throw new ApiError("invalid_request", "conversation objects are not supported by this server; continue a conversation with previous_response_id.", "conversation");
  }
  if (extra.prompt !== undefined && extra.prompt !== null) throw new ApiError("invalid_request", "prompt templates are not supported by this server; send instructions and input.", "prompt");
}

interface Tools {
  /** What the model is offered: function tools, and a namespace's functions as `namespace.name`. */
  tools: ToolDefinition[];
  toolChoice: ToolChoice | undefined;
  /** The tools as the response echoes them. */
  echoed: ResponseObject["tools"];
  /** A called function's name and namespace, from the name the model called. */
  callee(name: string): { name: string; namespace?: string };
}

type RequestTool = { type: string; name?: string; description?: string | null; parameters?: Record<string, unknown> | null; strict?: boolean | null; tools?: unknown };

function functionTool(t: RequestTool, at: string, name = t.name): ToolDefinition {
  if (!t.name) throw new ApiError("invalid_request", `Missing required parameter: '${at}.name'.`, `${at}.name`);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(t.name)) throw new ApiError("invalid_request", `Invalid value for '${at}.name': a function name is 1 to 64 characters of A-Z a-z 0-9 _ . -`, `${at}.name`);
  return { type: "function", function: { name: name!, ...(t.description ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters } : {}), ...(typeof t.strict === "boolean" ? { strict: t.strict } : {}) } };
}

const echo = (t: ToolDefinition, name = t.function.name) => ({ type: "function" as const, name, description: t.function.description ?? null, parameters: t.function.parameters ?? null, strict: t.function.strict ?? null });

function refuseTool(type: string, at: string): never {
  throw new ApiError(
    "invalid_request",
    `The '${type}' tool is not supported by this server: it runs function tools only (${at}). Leave it out of the request (Codex CLI: set web_search = "disabled" in its config.toml).`,
    `${at}.type`,
  );
}

/** The function tools offered (hosted tools are refused by name) and the tool choice among them. */
function toolsOf(body: ResponseCreateRequest): Tools {
  let tools: ToolDefinition[] = [];
  const echoed: ResponseObject["tools"] = [];
  const namespaced = new Map<string, { name: string; namespace: string }>();
  for (const [i, t] of ((body.tools ?? []) as RequestTool[]).entries()) {
    const at = `tools[${i}]`;
    if (t.type === "function") {
      const def = functionTool(t, at);
      tools.push(def);
      echoed.push(echo(def));
    } else if (t.type === "namespace") {
      if (!t.name) throw new ApiError("invalid_request", `Missing required parameter: '${at}.name'.`, `${at}.name`);
      const inner = Array.isArray(t.tools) ? (t.tools as RequestTool[]) : [];
      const defs = inner.map((x, j) => {
        if (x?.type !== "function") refuseTool(String(x?.type), `${at}.tools[${j}]`);
        const def = functionTool(x, `${at}.tools[${j}]`, `${t.name}.${x.name}`);
        namespaced.set(def.function.name, { name: x.name!, namespace: t.name! });
        return def;
      });
      tools.push(...defs);
      echoed.push({ type: "namespace", name: t.name, description: t.description ?? "", tools: defs.map((d, j) => echo(d, inner[j]!.name)) });
    } else refuseTool(t.type, at);
  }
  const full = (name: string, namespace?: string | null) => (namespace ? `${namespace}.${name}` : name);
  const tc = body.tool_choice as (Exclude<ResponseCreateRequest["tool_choice"], string> & { namespace?: string }) | string | undefined;
  let toolChoice: ToolChoice | undefined;
  if (typeof tc === "string") toolChoice = tc as ToolChoice;
  else if (tc?.type === "function") {
    if (!tc.name) throw new ApiError("invalid_request", "Missing required parameter: 'tool_choice.name'.", "tool_choice.name");
    const name = full(tc.name, tc.namespace);
    if (!tools.some((t) => t.function.name === name)) throw new ApiError("invalid_request", `tool_choice names the function '${name}', which is not in tools.`, "tool_choice.name");
    toolChoice = { name };
  } else if (tc?.type === "allowed_tools") {
    const allowed = new Set((tc.tools ?? []).map((t) => full(t.name ?? "", (t as { namespace?: string }).namespace)));
    tools = tools.filter((t) => allowed.has(t.function.name) || allowed.has(namespaced.get(t.function.name)?.name ?? ""));
    toolChoice = tc.mode ?? "auto";
  } else if (tc) {
    throw new ApiError("invalid_request", `Invalid value for 'tool_choice.type': '${tc.type}' tools are not supported by this server; use a function tool.`, "tool_choice.type");
  }
  if ((toolChoice === "required" || typeof toolChoice === "object") && tools.length === 0) throw new ApiError("invalid_request", "tool_choice requires tools", "tool_choice");
  const offered = new Set(tools.map((t) => t.function.name));
  return {
    tools,
    toolChoice,
    echoed: echoed.filter((e) => (e.type === "function" ? offered.has(e.name) : e.tools.some((x) => offered.has(`${e.name}.${x.name}`)))),
    callee: (name) => namespaced.get(name) ?? { name },
  };
}

/** reasoning.effort: none and minimal turn thinking off, the levels turn it on (and name the level). */
function thinkingOf(body: ResponseCreateRequest): Pick<GenerateRequest, "enableThinking" | "templateVars"> {
  const kwargs = body.chat_template_kwargs;
  const effort = body.reasoning?.effort;
  if (effort === undefined || effort === null) return kwargs ? { templateVars: kwargs } : {};
  if (effort === "none" || effort === "minimal") return { enableThinking: false, ...(kwargs ? { templateVars: kwargs } : {}) };
  // gpt-oss templates read the level as `reasoning_effort` ("Reasoning: high"); others ignore it.
  return { enableThinking: true, templateVars: { reasoning_effort: effort === "xhigh" ? "high" : effort, ...kwargs } };
}

function formatOf(body: ResponseCreateRequest): ResponseFormat | undefined {
  const f = body.text?.format;
  if (!f || f.type === "text") return undefined;
  if (f.type === "json_object") return { type: "json_object" };
  return { type: "json_schema", schema: f.schema, strict: f.strict ?? false };
}

/** The response as created: every setting echoed as OpenAI does, no output yet. */
function responseBase(body: ResponseCreateRequest, o: { id: string; model: ModelInfo; createdAt: number; tools: ResponseObject["tools"]; store: boolean }): ResponseObject {
  return {
    id: o.id,
    object: "response",
    created_at: unixSeconds(o.createdAt),
    status: "in_progress",
    completed_at: null,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: null,
    model: o.model.id,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    safety_identifier: body.safety_identifier ?? null,
    service_tier: "default",
    store: o.store,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: "text" }, verbosity: body.text?.verbosity ?? "medium" },
    tool_choice: body.tool_choice ?? "auto",
    tools: o.tools,
    top_logprobs: body.top_logprobs ?? 0,
    top_p: body.top_p ?? null,
    truncation: body.truncation ?? "disabled",
    usage: null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
    access_programs: null,
  };
}

// Anthropic wire format -> engine: a Messages request becomes one GenerateRequest (messages in the
// OpenAI chat shape the chat templates take), and the engine's endings become Anthropic's. No Elysia.
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import type { TSchema } from "@sinclair/typebox";
import { ApiError } from "../http/errors.ts";
import { cappedFields } from "../generation/usage.ts";
import type { Cost } from "../platform/service.ts";
import type { CocoonOptions } from "../generation/options.ts";
import type { ChatMessage, EngineEvent, FinishReason, GenerateRequest, ModelInfo, ToolChoice, ToolDefinition, Usage } from "../inference/types.ts";
import { RedactedThinkingBlockParam, TextBlockParam, ThinkingBlockParam, ToolResultBlockParam, ToolUseBlockParam } from "./model.ts";
import type { CountTokensRequest, MessageParam, MessageUsage, MessagesRequest, StopReason } from "./model.ts";

type Block = Exclude<MessageParam["content"], string>[number];
type Conversation = Pick<CountTokensRequest, "messages" | "system" | "tools" | "tool_choice" | "thinking">;

// The schema lets any block type through so that unsupported ones get a 400 naming them; the known
// ones are checked here against their own schema.
const blockChecks: Record<string, TypeCheck<TSchema>> = {
  text: TypeCompiler.Compile(TextBlockParam),
  tool_use: TypeCompiler.Compile(ToolUseBlockParam),
  tool_result: TypeCompiler.Compile(ToolResultBlockParam),
  thinking: TypeCompiler.Compile(ThinkingBlockParam),
  redacted_thinking: TypeCompiler.Compile(RedactedThinkingBlockParam),
};

const NOT_YET: Record<string, string> = {
  image: "image content is not supported yet: this server has no vision models",
  document: "document content is not supported: send the text as a text block",
};

function checkBlock(block: Block, param: string): void {
  const check = blockChecks[block.type];
  if (!check) {
    throw new ApiError("invalid_request", `${param}: ${NOT_YET[block.type] ?? `content blocks of type '${block.type}' are not supported here`}.`, param);
  }
  const first = check.Errors(block).First();
  if (first) throw new ApiError("invalid_request", `${param}${first.path.replaceAll("/", ".")}: ${first.message}.`, param);
}

function textOfBlocks(blocks: { type: string; text?: unknown }[], param: string): string {
  return blocks
    .map((b, i) => {
      if (b.type !== "text" || typeof b.text !== "string") {
        throw new ApiError("invalid_request", `${param}[${i}]: ${NOT_YET[b.type] ?? `only text blocks are supported here, got '${b.type}'`}.`, `${param}[${i}]`);
      }
      return b.text;
    })
    .join("\n");
}

/** Anthropic's messages as chat messages: tool_use -> tool_calls, tool_result -> tool messages, thinking -> reasoning_content. */
export function chatMessages(body: Conversation): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (body.system !== undefined) {
    const system = typeof body.system === "string" ? body.system : textOfBlocks(body.system, "system");
    if (system) out.push({ role: "system", content: system });
  }
  for (const [i, m] of body.messages.entries()) {
    if (typeof m.content === "string") {
      out.push({ role: m.role, content: m.content });
      continue;
    }
    const blocks = m.content;
    if (m.role === "system") {
      out.push({ role: "system", content: textOfBlocks(blocks, `messages[${i}].content`) });
      continue;
    }
    blocks.forEach((b, j) => checkBlock(b, `messages[${i}].content[${j}]`));
    if (m.role === "assistant") out.push(assistantMessage(blocks, i));
    else out.push(...userMessages(blocks, i));
  }
  return out;
}

function assistantMessage(blocks: Block[], i: number): ChatMessage {
  let content = "";
  let reasoning = "";
  const calls: NonNullable<ChatMessage["tool_calls"]> = [];
  for (const [j, b] of blocks.entries()) {
    if (b.type === "text") content += (b as { text: string }).text;
    else if (b.type === "thinking") reasoning += (b as { thinking: string }).thinking;
    else if (b.type === "tool_use") {
      const u = b as { id: string; name: string; input: unknown };
      if (typeof u.input !== "object" || u.input === null || Array.isArray(u.input)) {
        throw new ApiError("invalid_request", `messages[${i}].content[${j}].input: expected an object.`, `messages[${i}].content[${j}].input`);
      }
      calls.push({ id: u.id, type: "function", function: { name: u.name, arguments: JSON.stringify(u.input) } });
    } else if (b.type === "tool_result") {
      throw new ApiError("invalid_request", `messages[${i}].content[${j}]: tool_result blocks belong in user messages.`, `messages[${i}].content[${j}]`);
    }
    // redacted_thinking is opaque to us (we never send one): nothing to render.
  }
  return { role: "assistant", content, ...(calls.length ? { tool_calls: calls } : {}), ...(reasoning ? { reasoning_content: reasoning } : {}) };
}

function userMessages(blocks: Block[], i: number): ChatMessage[] {
  const out: ChatMessage[] = [];
  let text: string[] = [];
  const flush = () => {
    if (text.length) out.push({ role: "user", content: text.join("\n") });
    text = [];
  };
  for (const [j, b] of blocks.entries()) {
    const param = `messages[${i}].content[${j}]`;
    if (b.type === "text") text.push((b as { text: string }).text);
    else if (b.type === "tool_result") {
      flush();
      const r = b as { tool_use_id: string; content?: string | { type: string; text?: unknown }[]; is_error?: boolean };
      const result = r.content === undefined ? "" : typeof r.content === "string" ? r.content : textOfBlocks(r.content, `${param}.content`);
      // The chat templates have no error flag on tool messages: say it in the content.
      out.push({ role: "tool", tool_call_id: r.tool_use_id, content: r.is_error ? `Error: ${result}` : result });
    } else {
      throw new ApiError("invalid_request", `${param}: ${b.type} blocks belong in assistant messages.`, param);
    }
  }
  flush();
  return out;
}

export function toolDefinitions(tools: Conversation["tools"]): ToolDefinition[] | undefined {
  if (!tools?.length) return undefined;
  return tools.map((tool, i) => {
    if (tool.type && tool.type !== "custom") {
      throw new ApiError("invalid_request", `tools[${i}]: server tool '${tool.type}' is not supported here; only custom tools (name, description, input_schema) are.`, `tools[${i}].type`);
    }
    if (!tool.input_schema) throw new ApiError("invalid_request", `tools[${i}].input_schema: Field required.`, `tools[${i}].input_schema`);
    return { type: "function" as const, function: { name: tool.name, ...(tool.description ? { description: tool.description } : {}), parameters: tool.input_schema } };
  });
}

export function toolChoice(body: Conversation): { choice: ToolChoice | undefined; parallel: boolean | undefined } {
  const c = body.tool_choice;
  if (!c) return { choice: undefined, parallel: undefined };
  const parallel = c.disable_parallel_tool_use ? false : undefined;
  if (c.type === "auto" || c.type === "none") return { choice: c.type, parallel };
  if (!body.tools?.length) throw new ApiError("invalid_request", `tool_choice.type '${c.type}' requires tools.`, "tool_choice");
  if (c.type === "any") return { choice: "required", parallel };
  if (!c.name) throw new ApiError("invalid_request", "tool_choice.name: Field required with type 'tool'.", "tool_choice.name");
  if (!body.tools.some((t) => t.name === c.name)) throw new ApiError("invalid_request", `tool_choice.name: no tool named '${c.name}' in tools.`, "tool_choice.name");
  return { choice: { name: c.name }, parallel };
}

/** Thinking as Anthropic means it: off unless asked for; `enabled` with a budget on its tokens. */
export function thinkingOf(body: Conversation): { enable: boolean; budget: number | null } {
  const t = body.thinking;
  if (!t || t.type === "disabled") return { enable: false, budget: null };
  if (t.type === "adaptive") return { enable: true, budget: null };
  if (t.budget_tokens === undefined) throw new ApiError("invalid_request", "thinking.budget_tokens: Field required.", "thinking.budget_tokens");
  return { enable: true, budget: t.budget_tokens };
}

/** The render inputs of a conversation (also what count_tokens renders). */
export function conversationRequest(body: Conversation): Pick<GenerateRequest, "messages" | "tools" | "toolChoice" | "parallelToolCalls" | "enableThinking"> {
  const tools = toolDefinitions(body.tools);
  const { choice, parallel } = toolChoice(body);
  return { messages: chatMessages(body), tools, toolChoice: choice, parallelToolCalls: parallel, enableThinking: thinkingOf(body).enable };
}

export function messagesRequest(body: MessagesRequest, model: ModelInfo, cocoon: CocoonOptions): GenerateRequest {
  const { budget } = thinkingOf(body);
  if (budget !== null && budget >= body.max_tokens) {
    throw new ApiError("invalid_request", "`max_tokens` must be greater than `thinking.budget_tokens`.", "thinking.budget_tokens");
  }
  const stop = body.stop_sequences?.filter((s) => s.length > 0);
  return {
    model: model.id,
    ...conversationRequest(body),
    maxTokens: body.max_tokens,
    sampling: { temperature: body.temperature, topP: body.top_p, topK: body.top_k },
    stop: stop?.length ? stop : undefined,
    grammar: body.grammar || undefined,
    templateVars: body.chat_template_kwargs,
    reasoningBudget: budget ?? undefined,
    timeoutMs: cocoon.timeoutMs || undefined,
  };
}

/** The engine's ending as Anthropic's stop_reason (and the stop sequence that ended it, if one did). */
export function stopReason(reason: FinishReason, stop: string | null, windowCapped = false): { stop_reason: StopReason; stop_sequence: string | null } {
  if (reason === "tool_calls") return { stop_reason: "tool_use", stop_sequence: null };
  if (reason === "stop") return stop !== null ? { stop_reason: "stop_sequence", stop_sequence: stop } : { stop_reason: "end_turn", stop_sequence: null };
  if (reason === "length" && windowCapped) return { stop_reason: "model_context_window_exceeded", stop_sequence: null };
  // length, the Cocoon timeout, and reasoning cut at its budget all ended the message early.
  return { stop_reason: "max_tokens", stop_sequence: null };
}

/** Anthropic counts cached prompt tokens apart from input_tokens; nothing is written to a cache for a fee. */
export function messageUsage(u: Usage, cost?: Cost | null): MessageUsage {
  return {
    input_tokens: u.promptTokens - u.cachedTokens,
    output_tokens: u.completionTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: u.cachedTokens,
    ...cappedFields(cost),
  };
}

const randomId = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url");

/** `msg_...` (the request_guid when given) and `toolu_...` ids. */
export const messageId = (guid: string | null) => (guid ? `msg_${guid}` : `msg_${randomId(18)}`);
export const toolUseId = () => `toolu_${randomId(18)}`;

/** A thinking block's signature: a digest of its text (we keep no secret; it only marks the block ours). */
export function thinkingSignature(thinking: string): string {
  return new Bun.CryptoHasher("sha256").update(thinking).digest("base64");
}

/** A tool call's arguments as the `input` object Anthropic sends (a call that is not a JSON object keeps its text). */
export function toolInput(args: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(args || "{}");
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { arguments: args };
}



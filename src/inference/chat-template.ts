// The model's chat format through llama.cpp's common chat library (native ChatTemplates): renders
// OpenAI chat messages with the model's own Jinja template exactly as llama-server does, and carries
// the per-format parser, lazy tool-call grammar and thinking tags each rendered prompt comes with.
import { ChatTemplateNativeError, type ChatApplied, type ChatApplyRequest, type ChatTemplates } from "../native/llama.ts";

export type ChatRole = "system" | "developer" | "user" | "assistant" | "tool";

export type ContentPart = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: ChatRole;
  content: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  reasoning_content?: string;
}

export interface ToolDefinition {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

export interface RenderOptions {
  /** Tools offered to the model. Defaults to none. */
  tools?: ToolDefinition[];
  /** "auto" | "none" | "required" (a named function arrives here as "required" with that one tool). Defaults to "auto". */
  toolChoice?: "auto" | "none" | "required";
  /** Several calls per turn. Defaults to what the template supports. */
  parallelToolCalls?: boolean;
  /** End the prompt with the assistant turn's opening. Defaults to true. */
  addGenerationPrompt?: boolean;
  /** Reasoning on or off where the template has a switch. Defaults to on where it has one (llama-server's default). */
  enableThinking?: boolean;
  /** chat_template_kwargs: further template variables (reasoning_effort, ...). Defaults to none. */
  extra?: Record<string, unknown>;
  /** The time templates print (Unix seconds). Defaults to now. */
  now?: number;
}

export interface RenderedPrompt {
  prompt: string;
  /** The generation prompt leaves the reasoning block open, so the output begins inside reasoning. */
  startsInReasoning: boolean;
  /** Everything llama.cpp derived for this prompt: parser, grammar and triggers, thinking tags, stops. */
  params: ChatApplied;
}

/** What /v1/models reports about a model's chat format. */
export interface ChatFormatInfo {
  /** llama.cpp's parser kind for this template (common_chat_format_name). */
  parser: string;
  /** The family the template's markers name (informational; parsing is llama.cpp's). */
  family: string;
  /** What starts a tool call in this format (the lazy grammar's triggers). */
  toolCallStart: string[];
  reasoningStart: string;
  reasoningEnd: string[];
}

export class ChatTemplateError extends Error {
  override readonly name = "ChatTemplateError";
}

export class ChatTemplate {
  readonly source: string;
  readonly supportsTools: boolean;
  readonly supportsThinking: boolean;
  readonly format: ChatFormatInfo;

  constructor(private readonly native: ChatTemplates) {
    const info = native.info();
    this.source = info.tool_use_source || info.source;
    this.supportsTools = info.caps.supports_tool_calls === true || info.caps.supports_tools === true;
    this.format = this.probe();
    this.supportsThinking = info.supports_thinking || this.format.reasoningEnd.length > 0;
  }

  render(messages: ChatMessage[], opts: RenderOptions = {}): RenderedPrompt {
    const request: ChatApplyRequest = {
      messages: messages.map(toWireMessage),
      tools: opts.tools && opts.tools.length > 0 ? opts.tools : null,
      tool_choice: opts.toolChoice ?? "auto",
      add_generation_prompt: opts.addGenerationPrompt ?? true,
    };
    const thinking = opts.enableThinking ?? thinkingKwarg(opts.extra);
    if (thinking !== undefined) request.enable_thinking = thinking;
    if (opts.parallelToolCalls !== undefined) request.parallel_tool_calls = opts.parallelToolCalls;
    if (opts.now !== undefined) request.now = Math.floor(opts.now);
    if (opts.extra && Object.keys(opts.extra).length > 0) request.chat_template_kwargs = opts.extra;
    let params: ChatApplied;
    try {
      params = this.native.apply(request);
    } catch (err) {
      // The template's own raise_exception lands here too, carrying the template's message.
      if (err instanceof ChatTemplateNativeError) throw new ChatTemplateError(err.message, { cause: err });
      throw err;
    }
    const start = params.thinking_start_tag;
    const startsInReasoning = (opts.addGenerationPrompt ?? true) && start !== "" && params.generation_prompt.trimEnd().endsWith(start);
    return { prompt: params.prompt, startsInReasoning, params };
  }

  dispose(): void {
    this.native.dispose();
  }

  /** Renders one small conversation with a tool to learn the format's triggers and thinking tags. */
  private probe(): ChatFormatInfo {
    const tool: ToolDefinition = { type: "function", function: { name: "probe", parameters: { type: "object", properties: {} } } };
    let p: ChatApplied | null = null;
    try {
      p = this.native.apply({ messages: [{ role: "user", content: "hi" }], tools: this.supportsTools ? [tool] : null });
    } catch {
      // A template that refuses this probe still renders real requests (or says why then).
    }
    const triggers = [...new Set((p?.grammar_triggers ?? []).map((t) => t.value).filter((v) => v && !v.includes("probe")))];
    return {
      parser: p?.format ?? "content-only",
      family: familyOf(this.source),
      toolCallStart: triggers,
      reasoningStart: p?.thinking_start_tag ?? "",
      reasoningEnd: p?.thinking_end_tags ?? [],
    };
  }
}

/** The families llama.cpp's chat library knows, by their templates' markers (first match wins). */
const FAMILIES: [string, RegExp][] = [
  ["gpt-oss", /<\|channel\|>/],
  ["deepseek", /tool▁calls▁begin|<｜Assistant｜>/],
  ["kimi-k2", /<\|tool_calls_section_begin\|>/],
  ["glm", /\[gMASK\]|<arg_key>/],
  ["minimax", /<minimax:tool_call>|\]~b\]/],
  ["qwen3-coder", /<function=/],
  ["gemma", /<start_of_turn>|<\|turn>/],
  ["llama3", /<\|start_header_id\|>/],
  ["mistral", /\[INST\]|\[TOOL_CALLS\]|\[SYSTEM_PROMPT\]/],
  ["command-r", /<\|START_OF_TURN_TOKEN\|>|<\|START_TEXT\|>/],
  ["granite", /<\|start_of_role\|>/],
  ["functionary", />>>all|<\|from\|>/],
  ["phi", /<\|im_sep\|>|<\|assistant\|>/],
  ["nemotron", /<SPECIAL_\d+>|<TOOLCALL>/],
  ["lfm2", /<\|tool_list_start\|>|List of tools: \[/],
  ["qwen3", /<think>[\s\S]*<tool_call>|enable_thinking[\s\S]*<tool_call>/],
  ["hermes", /<tool_call>/],
  ["chatml", /<\|im_start\|>/],
];

export function familyOf(source: string): string {
  for (const [name, re] of FAMILIES) if (re.test(source)) return name;
  return "generic";
}

/** The families --help and the README list: every one llama.cpp's chat library parses. */
export const SUPPORTED_FAMILIES = FAMILIES.map(([name]) => name);

function thinkingKwarg(extra: Record<string, unknown> | undefined): boolean | undefined {
  const v = extra?.enable_thinking;
  return typeof v === "boolean" ? v : undefined;
}

/** Our ChatMessage as the OpenAI JSON llama.cpp's common_chat_msgs_parse_oaicompat reads. */
function toWireMessage(message: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {
    role: message.role === "developer" ? "system" : message.role,
    content: contentValue(message.content),
  };
  if (message.name !== undefined && message.role === "tool") out.name = message.name;
  if (message.tool_call_id !== undefined) out.tool_call_id = message.tool_call_id;
  if (message.reasoning_content !== undefined && message.reasoning_content !== null) out.reasoning_content = message.reasoning_content;
  if (message.tool_calls && message.tool_calls.length > 0) {
    out.tool_calls = message.tool_calls.map((call) => ({ id: call.id, type: "function", function: { name: call.function.name, arguments: call.function.arguments } }));
  }
  return out;
}

function contentValue(content: ChatMessage["content"]): string | { type: "text"; text: string }[] {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return content.map((part) => {
    if (part.type === "text") return { type: "text" as const, text: part.text };
    if (part.type === "image_url") throw new ChatTemplateError("image content is not supported by this server yet; send text parts only");
    throw new ChatTemplateError(`unsupported content part type "${(part as { type: unknown }).type}"`);
  });
}

// Renders OpenAI chat messages into a prompt with the model's own Jinja chat template (GGUF
// `tokenizer.chat_template`), passing the variables Hugging Face's apply_chat_template passes.
import { Template } from "@huggingface/jinja";

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

/** How a model writes tool calls in its output; see tool-calls.ts for the parsers. */
export type ToolCallFormat = "hermes" | "llama3" | "mistral" | "none";

export interface RenderOptions {
  /** Tools offered to the model. Defaults to none. */
  tools?: ToolDefinition[];
  /** End the prompt with the assistant turn's opening. Defaults to true. */
  addGenerationPrompt?: boolean;
  /** Passed as `enable_thinking` (Qwen3 and similar). Defaults to leaving it undefined: the template decides. */
  enableThinking?: boolean;
  /** Further template variables (e.g. a request's `chat_template_kwargs`). Defaults to none. */
  extra?: Record<string, unknown>;
}

export interface RenderedPrompt {
  prompt: string;
  /** The generation prompt leaves a `<think>` open, so the output begins inside reasoning. */
  startsInReasoning: boolean;
}

export class ChatTemplateError extends Error {
  override readonly name = "ChatTemplateError";
}

/** Plain ChatML, for models whose GGUF carries no template. */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

export function detectToolFormat(templateSource: string): ToolCallFormat {
  if (templateSource.includes("<tool_call>")) return "hermes";
  if (templateSource.includes("[TOOL_CALLS]")) return "mistral";
  // Llama 3.1+ templates either name the python tag or describe the {"name", "parameters"} shape in a header-based prompt.
  if (templateSource.includes("<|python_tag|>")) return "llama3";
  const headers = templateSource.includes("<|start_header_id|>");
  if (headers && /\bparameters\b/.test(templateSource) && /\btools\b/.test(templateSource)) return "llama3";
  return "none";
}

export class ChatTemplate {
  readonly source: string;
  readonly supportsTools: boolean;
  readonly supportsThinking: boolean;
  readonly toolFormat: ToolCallFormat;
  private readonly template: Template;
  private readonly bosToken: string;
  private readonly eosToken: string;

  /** A null, undefined or blank source falls back to ChatML. */
  constructor(source: string | null | undefined, opts: { bosToken: string; eosToken: string }) {
    this.source = source?.trim() ? source : CHATML_TEMPLATE;
    this.bosToken = opts.bosToken;
    this.eosToken = opts.eosToken;
    try {
      this.template = new Template(this.source);
    } catch (err) {
      throw new ChatTemplateError(`chat template could not be parsed: ${errorMessage(err)}`, { cause: err });
    }
    this.supportsTools = /\btools\b/.test(this.source);
    this.supportsThinking = this.source.includes("<think>") || this.source.includes("enable_thinking");
    this.toolFormat = detectToolFormat(this.source);
  }

  render(messages: ChatMessage[], opts: RenderOptions = {}): RenderedPrompt {
    const addGenerationPrompt = opts.addGenerationPrompt ?? true;
    const context: Record<string, unknown> = {
      ...opts.extra,
      messages: messages.map(toTemplateMessage),
      // HF passes tools=None when there are none; templates test `tools is not none` as often as `tools`.
      tools: opts.tools && opts.tools.length > 0 ? opts.tools : null,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.bosToken,
      eos_token: this.eosToken,
    };
    if (opts.enableThinking !== undefined) context.enable_thinking = opts.enableThinking;
    let prompt: string;
    try {
      prompt = this.template.render(context);
    } catch (err) {
      // The template's own raise_exception lands here too, carrying the template's message.
      throw new ChatTemplateError(`chat template failed to render: ${errorMessage(err)}`, { cause: err });
    }
    return { prompt, startsInReasoning: addGenerationPrompt && /<think>\s*$/.test(prompt) };
  }
}

function toTemplateMessage(message: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {
    role: message.role === "developer" ? "system" : message.role,
    // Templates call string methods on content (Qwen3: `'</think>' in message.content`), so null becomes "".
    content: contentText(message.content),
  };
  if (message.name !== undefined) out.name = message.name;
  if (message.tool_call_id !== undefined) out.tool_call_id = message.tool_call_id;
  if (message.reasoning_content !== undefined && message.reasoning_content !== null) {
    out.reasoning_content = message.reasoning_content;
  }
  if (message.tool_calls && message.tool_calls.length > 0) {
    out.tool_calls = message.tool_calls.map((call) => ({
      id: call.id,
      type: call.type,
      function: { name: call.function.name, arguments: argumentsValue(call.function.arguments) },
    }));
  }
  return out;
}

function contentText(content: ChatMessage["content"]): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  const texts: string[] = [];
  for (const part of content) {
    if (part.type === "text") texts.push(part.text);
    else if (part.type === "image_url") throw new ChatTemplateError("image content is not supported by this server yet; send text parts only");
    else throw new ChatTemplateError(`unsupported content part type "${(part as { type: unknown }).type}"`);
  }
  // Same joining as vLLM's string content format: separate parts stay separate lines.
  return texts.join("\n");
}

// HF convention: templates receive arguments as an object, so `tojson` writes them with the spacing the
// model was trained on and generates (`{"a": 1}`), not the client's compact re-serialisation.
function argumentsValue(args: string): unknown {
  try {
    const parsed: unknown = JSON.parse(args);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed;
  } catch {
    // Not JSON: the template gets the raw string, which Hermes-style templates print as is.
  }
  return args;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// llama.cpp's common chat library through native/chat.cpp: the model's real Jinja template
// (common_chat_templates_apply), the per-format tool-call and reasoning parser (common_chat_parse,
// partial and streaming) and the format's lazy tool-call grammar. JSON crosses the boundary as text.
import { CString, type Pointer } from "bun:ffi";
import { existsSync } from "node:fs";
import { openChat, type ChatSymbols } from "./symbols.ts";
import { asPointer, cstr, Handle } from "./handle.ts";
import { LlamaError } from "./llama-error.ts";
import { CHAT_ABI_VERSION, CHAT_SHIM_FILE } from "./release.ts";

/** OpenAI-shaped chat input, passed to llama.cpp's own oaicompat parsers unchanged. */
export interface ChatApplyRequest {
  messages: unknown[];
  tools?: unknown[] | null;
  /** "auto" | "none" | "required". Defaults to "auto". */
  tool_choice?: "auto" | "none" | "required";
  /** Defaults to what the template supports. */
  parallel_tool_calls?: boolean;
  /** Defaults to true. */
  add_generation_prompt?: boolean;
  /** Defaults to true where the template has the switch (llama-server's default). */
  enable_thinking?: boolean;
  /** Template variables; each value is passed as JSON (llama-server's chat_template_kwargs). */
  chat_template_kwargs?: Record<string, unknown>;
  /** "none" | "auto" | "deepseek" | "deepseek-legacy". Defaults to "deepseek" (llama-server's default). */
  reasoning_format?: string;
  json_schema?: string;
  /** Unix seconds for templates that print today's date. Defaults to now. */
  now?: number;
}

export interface GrammarTrigger {
  type: "token" | "word" | "pattern" | "pattern_full";
  value: string;
  token: number;
}

/** common_chat_params: the prompt and everything needed to sample and parse its answer. */
export interface ChatApplied {
  prompt: string;
  /** common_chat_format_name, e.g. "peg-native". */
  format: string;
  format_id: number;
  grammar: string;
  grammar_lazy: boolean;
  generation_prompt: string;
  supports_thinking: boolean;
  thinking_start_tag: string;
  thinking_end_tags: string[];
  grammar_triggers: GrammarTrigger[];
  preserved_tokens: string[];
  additional_stops: string[];
  /** The serialized PEG parser for this prompt's answers. */
  parser: string;
}

export interface ChatTemplatesInfo {
  caps: Record<string, boolean>;
  supports_thinking: boolean;
  source: string;
  tool_use_source: string;
}

/** What the parser of one answer needs; taken from ChatApplied. */
export interface ChatParserParams {
  format_id: number;
  parser: string;
  generation_prompt: string;
  /** Defaults to "deepseek": reasoning goes to reasoning_content. */
  reasoning_format?: string;
  /** Defaults to true. */
  parse_tool_calls?: boolean;
}

export interface ChatDiff {
  content?: string;
  reasoning?: string;
  index?: number;
  id?: string;
  name?: string;
  arguments?: string;
}

export interface ParsedChatMessage {
  content: string;
  reasoning_content: string;
  tool_calls: { id: string; name: string; arguments: string }[];
}

export interface ChatStreamStep {
  diffs: ChatDiff[];
  /** Only on the final push. */
  message?: ParsedChatMessage;
  /** A final parse that failed: the output did not match the format. */
  error?: string;
}

let lib: { dir: string; fn: ChatSymbols } | null = null;

/** Opens the chat shim of a library directory once per process or worker. */
export function chatLibrary(dir: string, shim = CHAT_SHIM_FILE): ChatSymbols {
  if (lib && lib.dir === dir) return lib.fn;
  const path = `${dir}/${shim}`;
  if (!existsSync(path)) throw new LlamaError(`no chat library in ${dir} (missing ${shim})`, "library", "run `bun run setup` again");
  let opened;
  try {
    opened = openChat(path);
  } catch (err) {
    throw new LlamaError(`cannot load the llama.cpp chat library from ${dir}`, "library", String(err));
  }
  const abi = opened.symbols.cs_chat_abi_version();
  if (abi !== CHAT_ABI_VERSION) throw new LlamaError(`chat shim ABI ${abi} does not match ${CHAT_ABI_VERSION}`, "library", "run `bun run setup` again");
  lib = { dir, fn: opened.symbols };
  return lib.fn;
}

/** Reads (copies) and frees a malloc'd C string the shim returned. */
function takeString(fn: ChatSymbols, p: Pointer | null): string | null {
  if (!p) return null;
  const text = String(new CString(p));
  fn.cs_chat_free_string(p);
  return text;
}

/** An out-parameter `char ** err`: 8 bytes the shim may fill with a malloc'd message. */
function errSlot(): BigUint64Array {
  return new BigUint64Array(1);
}

function takeError(fn: ChatSymbols, slot: BigUint64Array): string {
  const p = asPointer(slot[0] ?? 0n);
  return takeString(fn, p) ?? "unknown error";
}

export class ChatTemplateNativeError extends Error {
  override readonly name = "ChatTemplateNativeError";
}

/** common_chat_templates of one model (or of a template source, for tests and overrides). */
export class ChatTemplates extends Handle {
  private readonly fn: ChatSymbols;

  private constructor(fn: ChatSymbols, handle: Pointer) {
    super(handle);
    this.fn = fn;
  }

  /** model: a llama_model pointer (its GGUF template and tokens), or null with a source. */
  static create(fn: ChatSymbols, model: Pointer | null, source: string | null, bos = "", eos = ""): ChatTemplates {
    // llama.cpp asserts (aborts the process) on no model and no source: refused here instead.
    if (!model && !source?.trim()) throw new ChatTemplateNativeError("chat template could not be parsed: no template source and no model");
    const err = errSlot();
    const h = asPointer(fn.cs_chat_templates_init(model, source === null ? null : cstr(source), cstr(bos), cstr(eos), err));
    if (!h) throw new ChatTemplateNativeError(`chat template could not be parsed: ${takeError(fn, err)}`);
    return new ChatTemplates(fn, h);
  }

  info(): ChatTemplatesInfo {
    return JSON.parse(takeString(this.fn, asPointer(this.fn.cs_chat_templates_info(this.h)))!) as ChatTemplatesInfo;
  }

  /** Renders a conversation; a template error (including its own raise_exception) throws. */
  apply(request: ChatApplyRequest): ChatApplied {
    const err = errSlot();
    const out = takeString(this.fn, asPointer(this.fn.cs_chat_templates_apply(this.h, cstr(JSON.stringify(request)), err)));
    if (out === null) throw new ChatTemplateNativeError(`chat template failed to render: ${takeError(this.fn, err)}`);
    return JSON.parse(out) as ChatApplied;
  }

  dispose(): void {
    this.release((h) => this.fn.cs_chat_templates_free(h));
  }
}

/** One answer's incremental parser: push text as it is generated, then push("", final). */
export class ChatStream extends Handle {
  private readonly fn: ChatSymbols;

  constructor(fn: ChatSymbols, params: ChatParserParams) {
    const err = errSlot();
    const h = asPointer(fn.cs_chat_stream_new(cstr(JSON.stringify(params)), err));
    if (!h) throw new ChatTemplateNativeError(`chat parser could not be built: ${takeError(fn, err)}`);
    super(h);
    this.fn = fn;
  }

  push(text: string, final: boolean): ChatStreamStep {
    const out = takeString(this.fn, asPointer(this.fn.cs_chat_stream_push(this.h, cstr(text), !final)));
    return JSON.parse(out!) as ChatStreamStep;
  }

  dispose(): void {
    this.release((h) => this.fn.cs_chat_stream_free(h));
  }
}

/** Parses one whole (or partial) answer. */
export function parseChatOutput(fn: ChatSymbols, params: ChatParserParams, text: string, partial = false): { message?: ParsedChatMessage; error?: string } {
  return JSON.parse(takeString(fn, asPointer(fn.cs_chat_parse(cstr(JSON.stringify(params)), cstr(text), partial)))!);
}

// Finds tool calls in generated text, streamed or whole. One scanner serves both, so a stream always
// adds up to exactly what the whole-text parse returns, however the deltas are split.
import type { ToolCall, ToolCallFormat } from "./chat-template.ts";

export type ToolStreamEvent =
  | { type: "content"; text: string }
  | { type: "tool_call"; index: number; id: string; name: string }
  | { type: "tool_arguments"; index: number; delta: string };

export interface ParsedToolCalls {
  content: string;
  toolCalls: ToolCall[];
}

interface FoundCall {
  name: string;
  arguments: string;
  /** An id the model wrote itself (Mistral); it must survive the round trip through the template. */
  id?: string;
}

/** What the text at a possible tool-call start turned out to be; `end` is relative to that start. */
type Region = { kind: "incomplete" } | { kind: "calls"; calls: FoundCall[]; end: number } | { kind: "text"; end: number };

interface FormatRules {
  marker: string | null;
  /** Llama 3 may answer with a bare `{"name", "parameters"}` object as its whole output, no marker. */
  bareJson: boolean;
  /** Parses text that begins at the marker (or at the bare `{`); `final` means no more text will come. */
  region(text: string, final: boolean): Region;
  newId(): string;
}

const INCOMPLETE: Region = { kind: "incomplete" };

export function parseToolCalls(text: string, format: ToolCallFormat, idFactory?: () => string): ParsedToolCalls {
  const stream = new ToolCallStream(format, idFactory);
  return collectToolEvents([...stream.push(text), ...stream.flush()]);
}

/** Folds stream events into the final message fields. */
export function collectToolEvents(events: ToolStreamEvent[]): ParsedToolCalls {
  let content = "";
  const toolCalls: ToolCall[] = [];
  for (const event of events) {
    if (event.type === "content") content += event.text;
    else if (event.type === "tool_call") toolCalls[event.index] = { id: event.id, type: "function", function: { name: event.name, arguments: "" } };
    else {
      const call = toolCalls[event.index];
      if (call) call.function.arguments += event.delta;
    }
  }
  return { content, toolCalls };
}

/**
 * Streams content through at once, holding back only a possible marker prefix (and whitespace, see
 * ContentSink). A tool-call block is held until it closes, because only then is it known to be valid;
 * its call is then emitted as one `tool_call` event and one `tool_arguments` event.
 */
export class ToolCallStream {
  private buffer = "";
  private nextIndex = 0;
  private readonly rules: FormatRules;
  private readonly sink = new ContentSink();
  private readonly idFactory: (() => string) | undefined;

  constructor(format: ToolCallFormat, idFactory?: () => string) {
    this.rules = FORMATS[format];
    this.idFactory = idFactory;
  }

  push(delta: string): ToolStreamEvent[] {
    this.buffer += delta;
    return this.drain(false);
  }

  flush(): ToolStreamEvent[] {
    const events = this.drain(true);
    this.sink.end(events);
    return mergeContent(events);
  }

  private drain(final: boolean): ToolStreamEvent[] {
    const events: ToolStreamEvent[] = [];
    for (;;) {
      const start = this.regionStart();
      if (start < 0) {
        const keep = final ? 0 : partialMarkerLength(this.buffer, this.rules.marker);
        this.sink.content(this.buffer.slice(0, this.buffer.length - keep), events);
        this.buffer = this.buffer.slice(this.buffer.length - keep);
        return mergeContent(events);
      }
      this.sink.content(this.buffer.slice(0, start), events);
      this.buffer = this.buffer.slice(start);
      const region = this.rules.region(this.buffer, final);
      if (region.kind === "incomplete") return mergeContent(events);
      if (region.kind === "text") this.sink.content(this.buffer.slice(0, region.end), events);
      else for (const call of region.calls) this.emitCall(call, events);
      this.buffer = this.buffer.slice(region.end);
    }
  }

  private regionStart(): number {
    const { marker, bareJson } = this.rules;
    let start = marker ? this.buffer.indexOf(marker) : -1;
    if (bareJson && this.sink.atBoundary) {
      const first = skipSpace(this.buffer, 0);
      if (this.buffer[first] === "{" && (start < 0 || first < start)) start = first;
    }
    return start;
  }

  private emitCall(call: FoundCall, events: ToolStreamEvent[]): void {
    this.sink.toolCall();
    const index = this.nextIndex++;
    const id = call.id ?? (this.idFactory ?? this.rules.newId)();
    events.push({ type: "tool_call", index, id, name: call.name });
    events.push({ type: "tool_arguments", index, delta: call.arguments });
  }
}

/**
 * Whitespace touching a tool-call block is not content (models put newlines around their blocks).
 * Trailing whitespace is therefore held until we know whether a block or more text follows it.
 */
class ContentSink {
  /** Nothing but whitespace since the start or the last call: where Llama 3 may begin a bare JSON call. */
  atBoundary = true;
  private heldSpace = "";
  private afterCall = false;

  content(text: string, events: ToolStreamEvent[]): void {
    if (this.afterCall) {
      text = text.slice(leadingSpace(text));
      if (text === "") return;
      this.afterCall = false;
    }
    text = this.heldSpace + text;
    const cut = text.length - trailingSpace(text);
    this.heldSpace = text.slice(cut);
    if (cut > 0) {
      events.push({ type: "content", text: text.slice(0, cut) });
      this.atBoundary = false;
    }
  }

  toolCall(): void {
    this.heldSpace = "";
    this.afterCall = true;
    this.atBoundary = true;
  }

  end(events: ToolStreamEvent[]): void {
    if (this.heldSpace && !this.afterCall) events.push({ type: "content", text: this.heldSpace });
    this.heldSpace = "";
  }
}

const HERMES_OPEN = "<tool_call>";
const HERMES_CLOSE = "</tool_call>";
const PYTHON_TAG = "<|python_tag|>";
const MISTRAL_MARKER = "[TOOL_CALLS]";

const FORMATS: Record<ToolCallFormat, FormatRules> = {
  // <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>, one block per call (Qwen2.5, Qwen3, Hermes).
  hermes: {
    marker: HERMES_OPEN,
    bareJson: false,
    region(text, final) {
      const close = text.indexOf(HERMES_CLOSE, HERMES_OPEN.length);
      if (close < 0 && !final) return INCOMPLETE;
      const bodyEnd = close < 0 ? text.length : close;
      const end = close < 0 ? text.length : close + HERMES_CLOSE.length;
      const call = callFromObject(parseJson(text.slice(HERMES_OPEN.length, bodyEnd).trim()), false);
      return call ? { kind: "calls", calls: [call], end } : { kind: "text", end };
    },
    newId: () => "call_" + randomBase62(24),
  },
  // [<|python_tag|>]{"name": "f", "parameters": {...}} (Llama 3.1+).
  llama3: {
    marker: PYTHON_TAG,
    bareJson: true,
    region(text, final) {
      const tagged = text.startsWith(PYTHON_TAG);
      const at = tagged ? skipSpace(text, PYTHON_TAG.length) : 0;
      const json = jsonAt(text, at, final);
      if (json.kind !== "json") return json.region;
      // A bare object only counts with an argument key, so a plain JSON answer stays content.
      const call = callFromObject(parseJson(text.slice(at, json.end)), !tagged);
      return call ? { kind: "calls", calls: [call], end: json.end } : { kind: "text", end: json.end };
    },
    newId: () => "call_" + randomBase62(24),
  },
  // [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...] (v3) or [TOOL_CALLS]f[ARGS]{...} (v11+).
  mistral: {
    marker: MISTRAL_MARKER,
    bareJson: false,
    region(text, final) {
      const at = skipSpace(text, MISTRAL_MARKER.length);
      if (text[at] === "[") {
        const json = jsonAt(text, at, final);
        if (json.kind !== "json") return json.region;
        const list = parseJson(text.slice(at, json.end));
        const items: unknown[] = Array.isArray(list) ? list : [];
        const calls = items.map((item) => callFromObject(item, false)).filter((c): c is FoundCall => c !== null);
        const valid = calls.length > 0 && calls.length === items.length;
        return valid ? { kind: "calls", calls, end: json.end } : { kind: "text", end: json.end };
      }
      const header = /([\w.-]+)(?:\[CALL_ID\]([\w-]+))?\[ARGS\]/y;
      header.lastIndex = at;
      const match = header.exec(text);
      if (!match) {
        if (!final && mistralHeaderPrefix(text.slice(at))) return INCOMPLETE;
        return { kind: "text", end: at };
      }
      const argsAt = skipSpace(text, header.lastIndex);
      const json = jsonAt(text, argsAt, final);
      if (json.kind !== "json") return json.region;
      const args = parseJson(text.slice(argsAt, json.end));
      const call = callFromObject({ name: match[1], arguments: args, id: match[2] }, false);
      return call ? { kind: "calls", calls: [call], end: json.end } : { kind: "text", end: json.end };
    },
    // Mistral templates reject ids that are not exactly 9 alphanumerics.
    newId: () => randomBase62(9),
  },
  // No marker and no bare JSON: region() is never reached and everything is content.
  none: { marker: null, bareJson: false, region: (text) => ({ kind: "text", end: text.length }), newId: () => "call_" + randomBase62(24) },
};

/** Locates the JSON object/array starting at `at`: its end, or the region to report instead. */
function jsonAt(text: string, at: number, final: boolean): { kind: "json"; end: number } | { kind: "other"; region: Region } {
  if (at >= text.length) return { kind: "other", region: final ? { kind: "text", end: text.length } : INCOMPLETE };
  // `at` is past a marker here (a bare region begins at its `{`); max() still guarantees progress.
  if (text[at] !== "{" && text[at] !== "[") return { kind: "other", region: { kind: "text", end: Math.max(at, 1) } };
  const end = jsonEnd(text, at);
  if (end < 0) return { kind: "other", region: final ? { kind: "text", end: text.length } : INCOMPLETE };
  return { kind: "json", end };
}

/** End (exclusive) of the bracketed JSON value opening at `start`, or -1 when the text stops first. */
function jsonEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if ((c === "}" || c === "]") && --depth === 0) return i + 1;
  }
  return -1;
}

/** Could `rest` still grow into `name[ARGS]` or `name[CALL_ID]id[ARGS]`? */
function mistralHeaderPrefix(rest: string): boolean {
  let r = rest.slice(/^[\w.-]*/.exec(rest)?.[0].length ?? 0);
  if ("[ARGS]".startsWith(r) || "[CALL_ID]".startsWith(r)) return true;
  if (!r.startsWith("[CALL_ID]")) return false;
  r = r.slice("[CALL_ID]".length);
  r = r.slice(/^[\w-]*/.exec(r)?.[0].length ?? 0);
  return "[ARGS]".startsWith(r);
}

function callFromObject(value: unknown, requireArguments: boolean): FoundCall | null {
  if (!isRecord(value) || typeof value.name !== "string" || value.name === "") return null;
  let args: unknown = "arguments" in value ? value.arguments : value.parameters;
  if (args === undefined && requireArguments) return null;
  if (args === undefined || args === null) args = {};
  if (typeof args === "string") args = parseJson(args);
  if (!isRecord(args)) return null;
  const call: FoundCall = { name: value.name, arguments: JSON.stringify(args) };
  if (typeof value.id === "string" && value.id !== "") call.id = value.id;
  return call;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Length of the longest tail of `text` that is a proper prefix of `marker`. */
function partialMarkerLength(text: string, marker: string | null): number {
  if (!marker) return 0;
  for (let k = Math.min(marker.length - 1, text.length); k > 0; k--) {
    if (text.endsWith(marker.slice(0, k))) return k;
  }
  return 0;
}

function skipSpace(text: string, from: number): number {
  let i = from;
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

function leadingSpace(text: string): number {
  return skipSpace(text, 0);
}

function trailingSpace(text: string): number {
  let i = text.length;
  while (i > 0 && isSpace(text.charCodeAt(i - 1))) i--;
  return text.length - i;
}

function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9;
}

function mergeContent(events: ToolStreamEvent[]): ToolStreamEvent[] {
  const out: ToolStreamEvent[] = [];
  for (const event of events) {
    const last = out[out.length - 1];
    if (event.type === "content" && last?.type === "content") last.text += event.text;
    else out.push(event);
  }
  return out;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      // 248 = 4 * 62: rejecting the rest keeps every character equally likely.
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

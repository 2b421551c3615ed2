// Responses API input items: what a request's `input` says, normalized to the items that are stored
// and listed (each with an id), and a conversation of items turned into the chat messages the model's
// template renders. Unsupported items and parts get a 400 naming them.
import { randomBytes } from "node:crypto";
import { ApiError } from "../http/errors.ts";
import type { ChatMessage } from "../inference/chat-template.ts";
import type { InputItem, ReasoningItem, ResponseItem } from "./model.ts";

/** OpenAI-style ids: a prefix and 48 hex digits. */
export function newId(prefix: "resp" | "msg" | "rs" | "fc" | "fco"): string {
  return `${prefix}_${randomBytes(24).toString("hex")}`;
}

type Part = { type: string; text?: string; refusal?: string };

const TEXT_PARTS: Record<"input" | "assistant" | "reasoning" | "output", readonly string[]> = {
  input: ["input_text", "text", "output_text"],
  assistant: ["output_text", "refusal", "input_text", "text"],
  reasoning: ["reasoning_text", "text"],
  output: ["input_text", "output_text", "text"],
};
const ROLES = ["user", "system", "developer", "assistant"] as const;

function bad(param: string, message: string): never {
  throw new ApiError("invalid_request", message, param);
}

/** The text of a string or a list of text parts; anything but text is refused. */
function textOf(content: string | Part[] | null | undefined, kinds: readonly string[], param: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return content
    .map((p, j) => {
      if (!kinds.includes(p.type)) {
        const what = /image|file|audio/.test(p.type) ? "the models on this server read text only" : `expected one of ${kinds.join(", ")}`;
        bad(`${param}[${j}].type`, `Invalid value for '${param}[${j}].type': '${p.type}' content is not supported here: ${what}.`);
      }
      const text = p.type === "refusal" ? p.refusal : p.text;
      if (typeof text !== "string") bad(`${param}[${j}].text`, `Missing required parameter: '${param}[${j}].${p.type === "refusal" ? "refusal" : "text"}'.`);
      return text;
    })
    .join("");
}

function required<T>(value: T | null | undefined, param: string): T {
  if (value === null || value === undefined || value === "") bad(param, `Missing required parameter: '${param}'.`);
  return value;
}

/**
 * The request's input as items with ids (a string is one user message). The reasoning of a reasoning
 * item is checked by `checkReasoning` now, so that a forged `encrypted_content` is a 400 up front.
 */
export function normalizeInput(input: string | InputItem[] | undefined, checkReasoning: (item: ReasoningItem, param: string) => void): ResponseItem[] {
  if (input === undefined) return [];
  if (typeof input === "string") return [{ id: newId("msg"), type: "message", status: "completed", role: "user", content: [{ type: "input_text", text: input }] }];
  return input.map((raw, i): ResponseItem => {
    const at = `input[${i}]`;
    const type = raw.type ?? "message";
    const id = typeof raw.id === "string" && raw.id !== "" ? raw.id : null;
    switch (type) {
      case "message": {
        const role = required(raw.role, `${at}.role`);
        if (!(ROLES as readonly string[]).includes(role)) bad(`${at}.role`, `Invalid value for '${at}.role': expected one of ${ROLES.join(", ")}, got ${JSON.stringify(role)}.`);
        if (role === "assistant") {
          const text = textOf(raw.content as string | Part[], TEXT_PARTS.assistant, `${at}.content`);
          return { id: id ?? newId("msg"), type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text, annotations: [], logprobs: [] }] };
        }
        const text = textOf(raw.content as string | Part[], TEXT_PARTS.input, `${at}.content`);
        return { id: id ?? newId("msg"), type: "message", status: "completed", role: role as "user" | "system" | "developer", content: [{ type: "input_text", text }] };
      }
      case "function_call":
        return {
          id: id ?? newId("fc"),
          type: "function_call",
          status: "completed",
          call_id: required(raw.call_id, `${at}.call_id`),
          name: required(raw.name, `${at}.name`),
          arguments: raw.arguments ?? "{}",
          ...(raw.namespace ? { namespace: raw.namespace } : {}),
        };
      case "function_call_output": {
        const output = raw.output ?? bad(`${at}.output`, `Missing required parameter: '${at}.output'.`);
        return { id: id ?? newId("fco"), type: "function_call_output", status: "completed", call_id: required(raw.call_id, `${at}.call_id`), output: textOf(output as string | Part[], TEXT_PARTS.output, `${at}.output`) };
      }
      case "reasoning": {
        const content = Array.isArray(raw.content) ? [{ type: "reasoning_text" as const, text: textOf(raw.content as Part[], TEXT_PARTS.reasoning, `${at}.content`) }] : undefined;
        const item: ReasoningItem = {
          id: id ?? newId("rs"),
          type: "reasoning",
          summary: (raw.summary ?? []).map((s) => ({ type: "summary_text" as const, text: s.text })),
          ...(content ? { content } : {}),
          ...(raw.encrypted_content ? { encrypted_content: raw.encrypted_content } : {}),
        };
        checkReasoning(item, at);
        return item;
      }
      default:
        return bad(
          `${at}.type`,
          `Invalid value for '${at}.type': '${type}' items are not supported by this server; send message, function_call, function_call_output or reasoning items (item_reference: use previous_response_id).`,
        );
    }
  });
}

/** The reasoning an item carries in the clear: its reasoning_text content, else its summary. */
export function plainReasoning(item: ReasoningItem): string {
  if (item.content?.length) return item.content.map((c) => c.text).join("");
  return item.summary.map((s) => s.text).join("\n\n");
}

/**
 * A conversation of items as chat messages: assistant messages, the function calls after them and the
 * reasoning before them make one assistant turn; a function call's output is a tool message.
 */
export function toMessages(items: ResponseItem[], reasoningOf: (item: ReasoningItem) => string): ChatMessage[] {
  const out: ChatMessage[] = [];
  // The assistant message the next function call joins, and reasoning waiting for its assistant turn.
  let turn = null as ChatMessage | null;
  let reasoning = null as string | null;
  const assistant = (): ChatMessage => {
    if (turn) return turn;
    turn = { role: "assistant", content: "", ...(reasoning ? { reasoning_content: reasoning } : {}) };
    reasoning = null;
    out.push(turn);
    return turn;
  };
  for (const item of items) {
    switch (item.type) {
      case "message": {
        const text = item.content.map((c) => c.text).join("");
        if (item.role === "assistant") {
          // A second message in one turn (rare) starts a new assistant message.
          if (turn && (turn.content || turn.tool_calls?.length)) turn = null;
          assistant().content = text;
        } else {
          turn = null;
          out.push({ role: item.role, content: text });
        }
        break;
      }
      case "function_call": {
        const t = assistant();
        // A namespace's function is offered to the model as `namespace.name`.
        const name = item.namespace ? `${item.namespace}.${item.name}` : item.name;
        (t.tool_calls ??= []).push({ id: item.call_id, type: "function", function: { name, arguments: item.arguments } });
        break;
      }
      case "function_call_output":
        turn = null;
        out.push({ role: "tool", tool_call_id: item.call_id, content: item.output });
        break;
      case "reasoning": {
        const text = reasoningOf(item);
        turn = null;
        if (text) reasoning = reasoning ? `${reasoning}\n\n${text}` : text;
        break;
      }
    }
  }
  return out;
}

// TypeBox schemas of the Anthropic Messages API: they validate requests, type the handlers and
// generate the OpenAPI document. Field names and shapes follow Anthropic's wire format.
import { t, type Static } from "elysia";
import { Type } from "@sinclair/typebox";
import { CappedUsageFields, CocoonFields } from "../generation/model.ts";

// Anthropic's clients send fields this server has no use for (cache_control, citations, context
// management...): objects accept what they do not name, and the service decides what matters.
const open = { additionalProperties: true } as const;
const Ignored = t.Optional(t.Unknown({ description: "Accepted and ignored." }));

// ---- request ---------------------------------------------------------------------------------------

export const TextBlockParam = t.Object({ type: t.Literal("text"), text: t.String(), cache_control: Ignored, citations: Ignored }, open);
export const ToolUseBlockParam = t.Object(
  { type: t.Literal("tool_use"), id: t.String({ minLength: 1 }), name: t.String({ minLength: 1 }), input: t.Unknown({ description: "The tool's arguments (an object)." }), cache_control: Ignored },
  open,
);
export const ToolResultBlockParam = t.Object(
  {
    type: t.Literal("tool_result"),
    tool_use_id: t.String({ minLength: 1 }),
    content: t.Optional(t.Union([t.String(), t.Array(t.Object({ type: t.String(), text: t.Optional(t.String()) }, open))], { description: "A string or text blocks." })),
    is_error: t.Optional(t.Boolean()),
    cache_control: Ignored,
  },
  open,
);
export const ThinkingBlockParam = t.Object({ type: t.Literal("thinking"), thinking: t.String(), signature: t.Optional(t.String()) }, open);
export const RedactedThinkingBlockParam = t.Object({ type: t.Literal("redacted_thinking"), data: t.String() }, open);
// Any other block (image, document, server tool results...) passes the schema so that the service
// can name what is not supported, rather than a union's "expected one of" on the whole content.
const OtherBlockParam = t.Object({ type: t.String({ description: "image, document and server blocks are refused with a 400 naming them." }) }, open);

export const ContentBlockParam = t.Union([TextBlockParam, ToolUseBlockParam, ToolResultBlockParam, ThinkingBlockParam, RedactedThinkingBlockParam, OtherBlockParam]);

export const MessageParam = t.Object(
  {
    role: t.Union([t.Literal("user"), t.Literal("assistant"), t.Literal("system")], { description: "`system` messages (text only) may come between turns." }),
    content: t.Union([t.String(), t.Array(ContentBlockParam)]),
  },
  open,
);

export const ToolParam = t.Object(
  {
    name: t.String({ minLength: 1, maxLength: 128 }),
    description: t.Optional(t.String()),
    input_schema: t.Optional(t.Record(t.String(), t.Unknown(), { description: "JSON Schema of the tool's input (required for custom tools)." })),
    type: t.Optional(t.Union([t.String(), t.Null()], { description: "Absent or `custom`; server tools (web_search_..., bash_..., ...) get a 400." })),
    cache_control: Ignored,
  },
  open,
);

export const ToolChoiceParam = t.Object(
  {
    type: t.Union([t.Literal("auto"), t.Literal("any"), t.Literal("tool"), t.Literal("none")]),
    name: t.Optional(t.String({ description: "With type `tool`: the tool to call." })),
    disable_parallel_tool_use: t.Optional(t.Boolean()),
  },
  open,
);

export const ThinkingParam = t.Object(
  {
    type: t.Union([t.Literal("enabled"), t.Literal("disabled"), t.Literal("adaptive")]),
    budget_tokens: t.Optional(Type.Integer({ minimum: 1, description: "With `enabled`: most tokens the reasoning may take; it is stopped there." })),
    display: Ignored,
  },
  open,
);

const System = t.Optional(t.Union([t.String(), t.Array(TextBlockParam)], { description: "A string or text blocks (cache_control accepted and ignored)." }));

/** What /v1/messages and /v1/messages/count_tokens share: the conversation and its tools. */
const Conversation = {
  model: t.String({ minLength: 1 }),
  messages: t.Array(MessageParam, { minItems: 1 }),
  system: System,
  tools: t.Optional(t.Array(ToolParam)),
  tool_choice: t.Optional(ToolChoiceParam),
  thinking: t.Optional(ThinkingParam),
};

export const MessagesRequest = t.Object(
  {
    ...Conversation,
    max_tokens: Type.Integer({ minimum: 1 }),
    stop_sequences: t.Optional(t.Array(t.String(), { maxItems: 16 })),
    temperature: t.Optional(t.Number({ minimum: 0, maximum: 1 })),
    top_p: t.Optional(t.Number({ minimum: 0, maximum: 1 })),
    top_k: t.Optional(Type.Integer({ minimum: 0 })),
    stream: t.Optional(t.Boolean()),
    metadata: t.Optional(t.Object({ user_id: t.Optional(t.Union([t.String(), t.Null()])) }, open)),
    service_tier: Ignored,
    grammar: t.Optional(t.String({ maxLength: 1 << 20, description: "llama-server extension: a GBNF grammar (root rule `root`) the output must match." })),
    chat_template_kwargs: t.Optional(t.Record(t.String(), t.Unknown(), { description: "llama-server extension: extra variables for the chat template." })),
    ...CocoonFields,
  },
  {
    ...open,
    description: "Anthropic's Messages API request; fields this server does not use are accepted and ignored.",
    examples: [{ model: "tiny-qwen3", max_tokens: 16, system: "Be brief.", messages: [{ role: "user", content: "Hello!" }] }],
  },
);

export const CountTokensRequest = t.Object(Conversation, {
  ...open,
  description: "The conversation whose prompt tokens to count (through the model's chat template).",
  examples: [{ model: "tiny-qwen3", messages: [{ role: "user", content: "Hello!" }] }],
});

// ---- response --------------------------------------------------------------------------------------

export const TextBlock = t.Object({ type: t.Literal("text"), text: t.String() });
export const ThinkingBlock = t.Object({ type: t.Literal("thinking"), thinking: t.String(), signature: t.String({ description: "Opaque; send the block back unchanged." }) });
export const ToolUseBlock = t.Object({ type: t.Literal("tool_use"), id: t.String({ description: "`toolu_...`" }), name: t.String(), input: t.Record(t.String(), t.Unknown()) });
export const ContentBlock = t.Union([ThinkingBlock, TextBlock, ToolUseBlock]);

export const MessageUsage = t.Object({
  input_tokens: Type.Integer({ description: "Prompt tokens not read from the cache." }),
  output_tokens: Type.Integer(),
  cache_creation_input_tokens: Type.Integer(),
  cache_read_input_tokens: Type.Integer({ description: "Prompt tokens served from the KV cache (billed at the cached rate)." }),
  ...CappedUsageFields,
});

export const StopReason = t.Union([t.Literal("end_turn"), t.Literal("max_tokens"), t.Literal("stop_sequence"), t.Literal("tool_use"), t.Literal("model_context_window_exceeded")]);

export const Message = t.Object(
  {
    id: t.String({ description: "`msg_...`" }),
    type: t.Literal("message"),
    role: t.Literal("assistant"),
    model: t.String(),
    content: t.Array(ContentBlock),
    stop_reason: t.Union([StopReason, t.Null()]),
    stop_sequence: t.Union([t.String(), t.Null()]),
    usage: MessageUsage,
  },
  { description: "The cost of a billed message is in the `X-Cocoon-Cost-Nanoton` header." },
);

export const MessageTokensCount = t.Object({ input_tokens: Type.Integer() });

export type MessagesRequest = Static<typeof MessagesRequest>;
export type CountTokensRequest = Static<typeof CountTokensRequest>;
export type MessageParam = Static<typeof MessageParam>;
export type ContentBlock = Static<typeof ContentBlock>;
export type Message = Static<typeof Message>;
export type MessageUsage = Static<typeof MessageUsage>;
export type StopReason = Static<typeof StopReason>;

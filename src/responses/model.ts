// TypeBox schemas of the OpenAI Responses API (/v1/responses): the request, the response object, its
// output and input items, the stream events and the stored-response routes' bodies. They validate
// requests, type the handlers and generate the OpenAPI document; shapes follow OpenAI's exactly.
import { t, type Static } from "elysia";
import { Type } from "@sinclair/typebox";
import { CappedUsageFields, CocoonFields } from "../generation/model.ts";

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);
// Clients send fields this server has no use for (OpenAI adds new ones often): accepted and ignored.
// A top-level null means "not set" (the route drops it before validation), so object fields need no
// null alternative and a bad nested value is reported by its own path.
const open = { additionalProperties: true } as const;

export const Cost = t.Object({ nanoton: Type.Integer(), ton: t.String() }, { description: "Present when the request was billed." });

// ---- request --------------------------------------------------------------------------------------

const ContentPart = t.Object(
  { type: t.String({ description: "`input_text` (user, system, developer), `output_text` or `refusal` (assistant), `reasoning_text` (reasoning items)." }), text: t.Optional(t.String()) },
  { ...open, description: "A text part. Images, files and audio get a 400: the models here read text only." },
);

const InputItem = t.Object(
  {
    type: t.Optional(t.String({ description: "`message` (the default), `function_call`, `function_call_output` or `reasoning`." })),
    id: t.Optional(Nullable(t.String())),
    role: t.Optional(t.String({ description: "Messages: `user`, `system`, `developer` or `assistant`." })),
    content: t.Optional(t.Union([t.String(), t.Array(ContentPart), t.Null()], { description: "Messages: a string or text parts; reasoning items: `reasoning_text` parts." })),
    status: t.Optional(Nullable(t.String())),
    call_id: t.Optional(Nullable(t.String({ description: "function_call and function_call_output: the call's id." }))),
    name: t.Optional(t.String()),
    namespace: t.Optional(Nullable(t.String({ description: "function_call: the namespace tool the function belongs to." }))),
    arguments: t.Optional(t.String()),
    output: t.Optional(t.Union([t.String(), t.Array(ContentPart)], { description: "function_call_output: what the function returned." })),
    summary: t.Optional(t.Array(t.Object({ type: t.String(), text: t.String() }, open))),
    encrypted_content: t.Optional(Nullable(t.String({ description: "reasoning: the opaque `encrypted_content` this server returned; it reads the reasoning back from it." }))),
  },
  { ...open, description: "An input item: a message, a function call and its output, or a reasoning item." },
);
export type InputItem = Static<typeof InputItem>;

const Tool = t.Object(
  {
    type: t.String({
      description: "`function`, or `namespace` (its `tools` are function tools, called as `namespace.name`). Hosted tools (`web_search`, `file_search`, `computer_use_preview`, `code_interpreter`, `image_generation`, `mcp`, ...) get a 400.",
    }),
    name: t.Optional(t.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$" })),
    description: t.Optional(Nullable(t.String())),
    parameters: t.Optional(Nullable(t.Record(t.String(), t.Unknown()))),
    strict: t.Optional(Nullable(t.Boolean())),
  },
  open,
);

const ToolChoice = t.Union([
  t.Literal("none"),
  t.Literal("auto"),
  t.Literal("required"),
  t.Object(
    {
      type: t.String({ description: "`function` (with `name`) or `allowed_tools` (with `mode` and `tools`)." }),
      name: t.Optional(t.String()),
      mode: t.Optional(t.Union([t.Literal("auto"), t.Literal("required")])),
      tools: t.Optional(t.Array(t.Object({ type: t.String(), name: t.Optional(t.String()) }, open))),
    },
    open,
  ),
]);

const TextFormat = t.Union([
  t.Object({ type: t.Literal("text") }),
  t.Object({ type: t.Literal("json_object") }),
  t.Object({
    type: t.Literal("json_schema"),
    name: t.String({ maxLength: 64 }),
    schema: t.Record(t.String(), t.Unknown()),
    description: t.Optional(t.String()),
    strict: t.Optional(Nullable(t.Boolean())),
  }),
]);

const Verbosity = t.Union([t.Literal("low"), t.Literal("medium"), t.Literal("high")]);
const Effort = t.Union([t.Literal("none"), t.Literal("minimal"), t.Literal("low"), t.Literal("medium"), t.Literal("high"), t.Literal("xhigh")]);

const Text = t.Object({ format: t.Optional(TextFormat), verbosity: t.Optional(Nullable(Verbosity)) }, open);
const Reasoning = t.Object(
  {
    effort: t.Optional(Nullable(Effort)),
    summary: t.Optional(Nullable(t.String())),
    generate_summary: t.Optional(Nullable(t.String())),
  },
  { ...open, description: "`effort` none or minimal turns thinking off; low, medium, high turn it on (Qwen3's `enable_thinking`, gpt-oss's `Reasoning:` level)." },
);

export const ResponseCreateRequest = t.Object(
  {
    model: t.Optional(t.String({ description: "Model id; defaults to the first served model." })),
    input: t.Optional(t.Union([t.String(), t.Array(InputItem)], { description: "A user message, or a list of input items." })),
    instructions: t.Optional(Nullable(t.String({ description: "A system message put first. Not carried over by `previous_response_id`." }))),
    tools: t.Optional(t.Array(Tool, { maxItems: 128 })),
    tool_choice: t.Optional(ToolChoice),
    parallel_tool_calls: t.Optional(Nullable(t.Boolean())),
    text: t.Optional(Text),
    reasoning: t.Optional(Reasoning),
    max_output_tokens: t.Optional(Nullable(Type.Integer({ minimum: 1, description: "Most tokens to generate, reasoning included; reaching it makes the response `incomplete`." }))),
    temperature: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 2 }))),
    top_p: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 1 }))),
    top_logprobs: t.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 20 }))),
    stream: t.Optional(Nullable(t.Boolean({ description: "Server-sent events, each `event: <type>` with a `data:` JSON object carrying `sequence_number`." }))),
    store: t.Optional(Nullable(t.Boolean({ description: "Keep the response for GET /v1/responses/{id} and `previous_response_id`. Defaults to true." }))),
    previous_response_id: t.Optional(Nullable(t.String({ maxLength: 200, description: "Continue from a stored response: the model sees its input and output, and its KV cache is reused." }))),
    metadata: t.Optional(t.Record(t.String({ maxLength: 64 }), t.String({ maxLength: 512 }), { maxProperties: 16 })),
    grammar: t.Optional(Nullable(t.String({ maxLength: 1 << 20, description: "llama-server extension: a GBNF grammar (root rule `root`) the output must match." }))),
    chat_template_kwargs: t.Optional(t.Record(t.String(), t.Unknown(), { description: "llama-server extension: extra variables for the chat template." })),
    reasoning_budget_tokens: t.Optional(Nullable(Type.Integer({ minimum: -1, maximum: 1 << 30, description: "llama-server extension: tokens the reasoning may take before its block is closed and the answer follows. -1: no limit." }))),
    include: t.Optional(t.Array(t.String(), { description: "`reasoning.encrypted_content` (reasoning you can send back with `store: false`), `message.output_text.logprobs`." })),
    truncation: t.Optional(Nullable(t.Union([t.Literal("auto"), t.Literal("disabled")], { description: "`auto` drops the oldest input items when the conversation outgrows the context. Defaults to disabled." }))),
    user: t.Optional(Nullable(t.String({ maxLength: 256 }))),
    background: t.Optional(Nullable(t.Boolean({ description: "Not supported: true gets a 400." }))),
    service_tier: t.Optional(Nullable(t.String())),
    prompt_cache_key: t.Optional(Nullable(t.String())),
    safety_identifier: t.Optional(Nullable(t.String())),
    ...CocoonFields,
  },
  {
    ...open,
    examples: [{ model: "tiny-qwen3", input: "Say hello.", instructions: "You are terse.", max_output_tokens: 8, temperature: 0.7 }],
  },
);
export type ResponseCreateRequest = Static<typeof ResponseCreateRequest>;

// ---- items ----------------------------------------------------------------------------------------

const Id = t.String();
const ItemStatus = t.Union([t.Literal("in_progress"), t.Literal("completed"), t.Literal("incomplete")]);

const TopLogprob = t.Object({ token: t.String(), logprob: t.Number(), bytes: t.Array(Type.Integer()) });
const Logprob = t.Object({ ...TopLogprob.properties, top_logprobs: t.Array(TopLogprob) });

export const OutputText = t.Object({ type: t.Literal("output_text"), text: t.String(), annotations: t.Array(t.Unknown()), logprobs: t.Array(Logprob) });
const ReasoningText = t.Object({ type: t.Literal("reasoning_text"), text: t.String() });
const InputText = t.Object({ type: t.Literal("input_text"), text: t.String() });

export const OutputMessage = t.Object({ id: Id, type: t.Literal("message"), status: ItemStatus, role: t.Literal("assistant"), content: t.Array(OutputText) });
export const ReasoningItem = t.Object({
  id: Id,
  type: t.Literal("reasoning"),
  summary: t.Array(t.Object({ type: t.Literal("summary_text"), text: t.String() })),
  content: t.Optional(t.Array(ReasoningText)),
  encrypted_content: t.Optional(Nullable(t.String({ description: "With include `reasoning.encrypted_content`: the reasoning, sealed for this server; send the item back to continue." }))),
  status: t.Optional(ItemStatus),
});
export const FunctionCall = t.Object({ id: Id, type: t.Literal("function_call"), status: ItemStatus, call_id: t.String(), name: t.String(), arguments: t.String(), namespace: t.Optional(t.String()) });
const InputMessage = t.Object({ id: Id, type: t.Literal("message"), status: ItemStatus, role: t.Union([t.Literal("user"), t.Literal("system"), t.Literal("developer")]), content: t.Array(InputText) });
const FunctionCallOutput = t.Object({ id: Id, type: t.Literal("function_call_output"), status: ItemStatus, call_id: t.String(), output: t.String() });

export const OutputItem = t.Union([ReasoningItem, OutputMessage, FunctionCall]);
/** An item as stored and listed by /input_items. */
export const ResponseItem = t.Union([InputMessage, OutputMessage, FunctionCall, FunctionCallOutput, ReasoningItem]);

export type OutputItem = Static<typeof OutputItem>;
export type ResponseItem = Static<typeof ResponseItem>;
export type OutputMessage = Static<typeof OutputMessage>;
export type ReasoningItem = Static<typeof ReasoningItem>;
export type FunctionCall = Static<typeof FunctionCall>;

// ---- the response object --------------------------------------------------------------------------

export const ResponseUsage = t.Object({
  input_tokens: Type.Integer(),
  input_tokens_details: t.Object({ cached_tokens: Type.Integer(), cache_write_tokens: Type.Integer() }),
  output_tokens: Type.Integer(),
  output_tokens_details: t.Object({ reasoning_tokens: Type.Integer() }),
  total_tokens: Type.Integer(),
  cost: t.Optional(Cost),
  ...CappedUsageFields,
});

const FunctionTool = t.Object({
  type: t.Literal("function"),
  name: t.String(),
  description: Nullable(t.String()),
  parameters: Nullable(t.Record(t.String(), t.Unknown())),
  strict: Nullable(t.Boolean()),
});
const EchoedTool = t.Union([FunctionTool, t.Object({ type: t.Literal("namespace"), name: t.String(), description: t.String(), tools: t.Array(FunctionTool) })]);

const ResponseError = t.Object({ code: t.String(), message: t.String(), param: t.Optional(Nullable(t.String())), type: t.Optional(Nullable(t.String())) });

export const ResponseObject = t.Object(
  {
    id: t.String({ description: "`resp_` and a random part." }),
    object: t.Literal("response"),
    created_at: Type.Integer(),
    status: t.Union([t.Literal("completed"), t.Literal("incomplete"), t.Literal("failed"), t.Literal("in_progress"), t.Literal("cancelled"), t.Literal("queued")]),
    completed_at: Nullable(Type.Integer()),
    background: t.Boolean(),
    error: Nullable(ResponseError),
    incomplete_details: Nullable(t.Object({ reason: t.Union([t.Literal("max_output_tokens"), t.Literal("content_filter")]) })),
    instructions: Nullable(t.String()),
    max_output_tokens: Nullable(Type.Integer()),
    max_tool_calls: Nullable(Type.Integer()),
    model: t.String(),
    output: t.Array(OutputItem),
    parallel_tool_calls: t.Boolean(),
    previous_response_id: Nullable(t.String()),
    prompt_cache_key: Nullable(t.String()),
    reasoning: t.Object({ effort: Nullable(t.String()), summary: Nullable(t.String()) }),
    safety_identifier: Nullable(t.String()),
    service_tier: t.String(),
    store: t.Boolean(),
    temperature: Nullable(t.Number()),
    text: t.Object({ format: TextFormat, verbosity: t.String() }),
    tool_choice: t.Union([t.String(), t.Record(t.String(), t.Unknown())]),
    tools: t.Array(EchoedTool),
    top_logprobs: Type.Integer(),
    top_p: Nullable(t.Number()),
    truncation: t.Union([t.Literal("auto"), t.Literal("disabled")]),
    usage: Nullable(ResponseUsage),
    user: Nullable(t.String()),
    metadata: t.Record(t.String(), t.String()),
    access_programs: t.Null(),
  },
  { description: "A model response, exactly as OpenAI shapes it; `usage.cost` is ours (when billed)." },
);
export type ResponseObject = Static<typeof ResponseObject>;

export const ResponseDeleted = t.Object({ id: t.String(), object: t.Literal("response"), deleted: t.Literal(true) });

export const ResponseItemList = t.Object({
  object: t.Literal("list"),
  data: t.Array(ResponseItem),
  first_id: Nullable(t.String()),
  last_id: Nullable(t.String()),
  has_more: t.Boolean(),
});

export const InputItemsQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, description: "Items per page, 1..100. Defaults to 20." })),
  order: t.Optional(t.Union([t.Literal("asc"), t.Literal("desc")], { description: "Defaults to desc (newest first)." })),
  after: t.Optional(t.String({ maxLength: 200, description: "An item id: list the items after it in this order." })),
  include: t.Optional(t.Union([t.String(), t.Array(t.String())])),
});

// ---- stream events --------------------------------------------------------------------------------

const Seq = { sequence_number: Type.Integer() };
const At = { output_index: Type.Integer(), item_id: t.String() };
const Part = t.Union([OutputText, ReasoningText]);

export const ResponseStreamEvent = t.Union(
  [
    t.Object({ type: t.Union([t.Literal("response.created"), t.Literal("response.in_progress"), t.Literal("response.completed"), t.Literal("response.incomplete"), t.Literal("response.failed")]), response: ResponseObject, ...Seq }),
    t.Object({ type: t.Union([t.Literal("response.output_item.added"), t.Literal("response.output_item.done")]), output_index: Type.Integer(), item: OutputItem, ...Seq }),
    t.Object({ type: t.Union([t.Literal("response.content_part.added"), t.Literal("response.content_part.done")]), ...At, content_index: Type.Integer(), part: Part, ...Seq }),
    t.Object({ type: t.Literal("response.output_text.delta"), ...At, content_index: Type.Integer(), delta: t.String(), logprobs: t.Array(Logprob), ...Seq }),
    t.Object({ type: t.Literal("response.output_text.done"), ...At, content_index: Type.Integer(), text: t.String(), logprobs: t.Array(Logprob), ...Seq }),
    t.Object({ type: t.Literal("response.reasoning_text.delta"), ...At, content_index: Type.Integer(), delta: t.String(), ...Seq }),
    t.Object({ type: t.Literal("response.reasoning_text.done"), ...At, content_index: Type.Integer(), text: t.String(), ...Seq }),
    t.Object({ type: t.Literal("response.function_call_arguments.delta"), ...At, delta: t.String(), ...Seq }),
    t.Object({ type: t.Literal("response.function_call_arguments.done"), ...At, arguments: t.String(), ...Seq }),
    t.Object({ type: t.Literal("error"), code: Nullable(t.String()), message: t.String(), param: Nullable(t.String()), ...Seq }),
  ],
  { description: "One server-sent event of a streamed response (`event: <type>`, `data: <this object>`)." },
);
export type ResponseStreamEvent = Static<typeof ResponseStreamEvent>;

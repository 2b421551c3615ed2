// TypeBox schemas of the OpenAI-compatible API: they validate requests, type the handlers and
// generate the OpenAPI document. Field names and shapes follow OpenAI's wire format exactly.
import { t, type Static } from "elysia";
import { Type } from "@sinclair/typebox";
import { CappedUsageFields, CocoonFields, MAX_TOKENS_LIMIT } from "../generation/model.ts";

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);

// ---- shared ---------------------------------------------------------------------------------------

/** What a billed request cost: integer nanoton, and the same amount in TON as an exact decimal string. */
export const Cost = t.Object({ nanoton: Type.Integer(), ton: t.String() }, { description: "Present when the request was billed." });

const Stop = t.Optional(
  t.Union([t.String(), t.Array(t.String(), { maxItems: 4 }), t.Null()], { description: "Up to 4 sequences where generation stops; not included in the output." }),
);

const Sampling = {
  temperature: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 2 }))),
  top_p: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 1 }))),
  top_k: t.Optional(Nullable(Type.Integer({ minimum: -1 }))),
  min_p: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 1 }))),
  typical_p: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 1 }))),
  frequency_penalty: t.Optional(Nullable(t.Number({ minimum: -2, maximum: 2 }))),
  presence_penalty: t.Optional(Nullable(t.Number({ minimum: -2, maximum: 2 }))),
  repeat_penalty: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 10, description: "llama.cpp's repetition penalty (1 = off)." }))),
  repetition_penalty: t.Optional(Nullable(t.Number({ minimum: 0, maximum: 10, description: "Alias of repeat_penalty." }))),
  seed: t.Optional(Nullable(Type.Integer({ minimum: -9007199254740991, maximum: 9007199254740991 }))),
  logit_bias: t.Optional(Nullable(t.Record(t.String({ pattern: "^[0-9]+$" }), t.Number({ minimum: -100, maximum: 100 })))),
  stop: Stop,
  n: t.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 16 }))),
  ignore_eos: t.Optional(t.Boolean({ description: "llama.cpp extension: keep generating past end-of-generation tokens." })),
  user: t.Optional(t.String({ maxLength: 256 })),
  stream: t.Optional(Nullable(t.Boolean())),
  stream_options: t.Optional(Nullable(t.Object({ include_usage: t.Optional(t.Boolean()), include_obfuscation: t.Optional(t.Boolean()) }))),
};

/**
 * llama-server's own request fields, for clients moving from it. Its samplers we do not have (DRY,
 * XTC, mirostat, ...) are not declared, so they are reported in X-Cocoon-Ignored-Fields.
 */
const LlamaServerFields = {
  grammar: t.Optional(Nullable(t.String({ maxLength: 1 << 20, description: "llama-server: a GBNF grammar (root rule `root`) the output must match; invalid grammars are a 400." }))),
  json_schema: t.Optional(Nullable(t.Record(t.String(), t.Unknown(), { description: "llama-server: a JSON schema the output must match, as `response_format` json_schema." }))),
  n_probs: t.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 20, description: "llama-server: log-probabilities of the chosen and this many most likely tokens (as logprobs / top_logprobs)." }))),
  repeat_last_n: t.Optional(Nullable(Type.Integer({ minimum: -1, maximum: 1 << 20, description: "llama-server: recent tokens the repetition penalties look at (0 = off, -1 = the whole context). Defaults to 64." }))),
  cache_prompt: t.Optional(Nullable(t.Boolean({ description: "llama-server: accepted; prompt prefixes are always reused." }))),
  id_slot: t.Optional(Nullable(Type.Integer({ minimum: -1, description: "llama-server: accepted and ignored; the scheduler picks the slot with the longest cached prefix." }))),
  samplers: t.Optional(Nullable(t.Union([t.Array(t.String()), t.String()], { description: "llama-server: accepted and ignored; the sampler order is fixed." }))),
};

export const Usage = t.Object(
  {
    prompt_tokens: Type.Integer(),
    completion_tokens: Type.Integer(),
    total_tokens: Type.Integer(),
    prompt_tokens_details: t.Optional(t.Object({ cached_tokens: Type.Integer() })),
    completion_tokens_details: t.Optional(t.Object({ reasoning_tokens: Type.Integer() })),
    cost: t.Optional(Cost),
    ...CappedUsageFields,
  },
);

const Debug = t.Optional(
  t.Object(
    {
      queue_ms: t.Number(),
      prompt_ms: t.Number(),
      generation_ms: t.Number(),
      tokens_per_second: t.Number(),
      prompt_tokens_per_second: t.Number(),
      cached_tokens: Type.Integer(),
      model: t.String(),
      device: t.String(),
      slot: Type.Integer({ description: "The slot that ran the request." }),
      slots: Type.Integer(),
      request_guid: t.Union([t.String(), t.Null()]),
    },
    { description: "Present when enable_debug was set." },
  ),
);

const TopLogprob = t.Object({ token: t.String(), logprob: t.Number(), bytes: Nullable(t.Array(Type.Integer())) });
const ChatLogprobs = Nullable(t.Object({ content: Nullable(t.Array(t.Object({ ...TopLogprob.properties, top_logprobs: t.Array(TopLogprob) }))), refusal: t.Optional(t.Null()) }));

// ---- chat -----------------------------------------------------------------------------------------

const ContentPart = t.Union([
  t.Object({ type: t.Literal("text"), text: t.String() }),
  t.Object({ type: t.Literal("image_url"), image_url: t.Object({ url: t.String(), detail: t.Optional(t.String()) }) }),
  t.Object({ type: t.Literal("refusal"), refusal: t.String() }, { description: "An earlier assistant refusal; read as its text." }),
  t.Object({ type: t.Literal("input_audio"), input_audio: t.Record(t.String(), t.Unknown()) }, { description: "Refused with a 400: no audio input." }),
  t.Object({ type: t.Literal("file"), file: t.Record(t.String(), t.Unknown()) }, { description: "Refused with a 400: no file input." }),
]);

const FunctionCall = t.Object({ name: t.String(), arguments: t.String() });

const ToolCall = t.Object({
  id: t.String(),
  type: t.Literal("function"),
  function: t.Object({ name: t.String(), arguments: t.String() }),
});

export const ChatMessage = t.Object(
  {
    role: t.Union([t.Literal("system"), t.Literal("developer"), t.Literal("user"), t.Literal("assistant"), t.Literal("tool"), t.Literal("function")], {
      description: "`function` (legacy) is the result of an assistant `function_call`, read as a tool message.",
    }),
    content: t.Optional(t.Union([t.String(), t.Array(ContentPart), t.Null()])),
    name: t.Optional(t.String()),
    tool_calls: t.Optional(Nullable(t.Array(ToolCall))),
    tool_call_id: t.Optional(t.String()),
    reasoning_content: t.Optional(Nullable(t.String())),
    function_call: t.Optional(Nullable(FunctionCall)),
    refusal: t.Optional(Nullable(t.String())),
    audio: t.Optional(Nullable(t.Object({ id: t.String() }))),
  },
);

const Tool = t.Object({
  type: t.Literal("function"),
  function: t.Object({
    name: t.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$" }),
    description: t.Optional(t.String()),
    parameters: t.Optional(t.Record(t.String(), t.Unknown())),
    strict: t.Optional(Nullable(t.Boolean())),
  }),
});

const FunctionDefinition = t.Object({
  name: t.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$" }),
  description: t.Optional(t.String()),
  parameters: t.Optional(t.Record(t.String(), t.Unknown())),
});

const ReasoningEffort = t.Union(["none", "minimal", "low", "medium", "high", "xhigh", "max"].map((e) => t.Literal(e)), {
  description: "none / minimal turn reasoning off, the others on; sets the template's reasoning level where it has one (gpt-oss).",
});

const ResponseFormat = t.Union([
  t.Object({ type: t.Literal("text") }),
  t.Object({ type: t.Literal("json_object") }),
  t.Object({
    type: t.Literal("json_schema"),
    json_schema: t.Object({
      name: t.String({ maxLength: 64 }),
      description: t.Optional(t.String()),
      schema: t.Optional(t.Record(t.String(), t.Unknown())),
      strict: t.Optional(Nullable(t.Boolean())),
    }),
  }),
]);

export const ChatCompletionRequest = t.Object(
  {
    model: t.Optional(t.String({ description: "Model id; defaults to the first served model." })),
    messages: t.Array(ChatMessage, { description: "At least one message, unless session_id names a session whose stored history the model should answer (regenerate)." }),
    session_id: t.Optional(
      t.String({
        pattern: "^[A-Za-z0-9._:~-]{1,128}$",
        description:
          "Cocoon extension: a server-side chat session (created on first use, private to the caller's account). The model sees the session's stored history followed by `messages`; " +
          "when the turn completes, `messages` and the assistant reply (with its usage and cost) are appended to it. With an empty `messages` the model answers the stored history (regenerate after a rollback). " +
          "A cancelled or failed turn stores nothing. The response carries `X-Cocoon-Session-Id`. Not combinable with `n` > 1 or `tools`.",
      }),
    ),
    max_tokens: t.Optional(Nullable(Type.Integer({ minimum: 1, maximum: MAX_TOKENS_LIMIT }))),
    max_completion_tokens: t.Optional(Nullable(Type.Integer({ minimum: 1, maximum: MAX_TOKENS_LIMIT }))),
    logprobs: t.Optional(Nullable(t.Boolean())),
    top_logprobs: t.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 20 }))),
    response_format: t.Optional(ResponseFormat),
    tools: t.Optional(t.Array(Tool, { maxItems: 128 })),
    tool_choice: t.Optional(
      t.Union([
        t.Literal("none"),
        t.Literal("auto"),
        t.Literal("required"),
        t.Object({ type: t.Literal("function"), function: t.Object({ name: t.String() }) }),
        t.Object({
          type: t.Literal("allowed_tools"),
          allowed_tools: t.Object({ mode: t.Union([t.Literal("auto"), t.Literal("required")]), tools: t.Array(t.Object({ type: t.Literal("function"), function: t.Object({ name: t.String() }) })) }),
        }),
      ]),
    ),
    functions: t.Optional(t.Array(FunctionDefinition, { maxItems: 128, description: "Legacy: read as `tools`." })),
    function_call: t.Optional(t.Union([t.Literal("none"), t.Literal("auto"), t.Object({ name: t.String() })], { description: "Legacy: read as `tool_choice`." })),
    reasoning_effort: t.Optional(Nullable(ReasoningEffort)),
    // Accepted; they change nothing on this server.
    store: t.Optional(Nullable(t.Boolean({ description: "Accepted and ignored (see sessions for server-side conversations)." }))),
    metadata: t.Optional(Nullable(t.Record(t.String({ maxLength: 64 }), t.String({ maxLength: 512 }), { description: "Accepted and ignored." }))),
    service_tier: t.Optional(Nullable(t.String({ maxLength: 64, description: "Accepted and ignored." }))),
    prompt_cache_key: t.Optional(Nullable(t.String({ maxLength: 1024, description: "Accepted and ignored: prompt prefixes are always reused." }))),
    prompt_cache_retention: t.Optional(Nullable(t.String({ maxLength: 64, description: "Accepted and ignored." }))),
    prompt_cache_options: t.Optional(Nullable(t.Record(t.String(), t.Unknown(), { description: "Accepted and ignored." }))),
    safety_identifier: t.Optional(Nullable(t.String({ maxLength: 256, description: "Accepted and ignored." }))),
    verbosity: t.Optional(Nullable(t.Union([t.Literal("low"), t.Literal("medium"), t.Literal("high")], { description: "Accepted and ignored." }))),
    prediction: t.Optional(Nullable(t.Object({ type: t.Literal("content"), content: t.Union([t.String(), t.Array(ContentPart)]) }, { description: "Accepted and ignored (no speculative decoding)." }))),
    modalities: t.Optional(Nullable(t.Array(t.Union([t.Literal("text"), t.Literal("audio")]), { description: '["text"] only: "audio" is a 400.' }))),
    // Asking for what this server cannot do: a 400 naming the field when set.
    audio: t.Optional(Nullable(t.Record(t.String(), t.Unknown(), { description: "Audio output: not supported (400)." }))),
    web_search_options: t.Optional(Nullable(t.Record(t.String(), t.Unknown(), { description: "Web search: not supported (400)." }))),
    moderation: t.Optional(Nullable(t.Record(t.String(), t.Unknown(), { description: "Moderation: not supported (400)." }))),
    reasoning_format: t.Optional(Nullable(t.Union([t.Literal("none"), t.Literal("auto"), t.Literal("deepseek"), t.Literal("deepseek-legacy")], { description: "llama-server: accepted; reasoning is always returned in `reasoning_content`." }))),
    parallel_tool_calls: t.Optional(t.Boolean()),
    enable_thinking: t.Optional(t.Boolean({ description: "Turns reasoning on or off where the chat template supports it." })),
    reasoning_budget_tokens: t.Optional(Nullable(Type.Integer({ minimum: -1, maximum: 1 << 30, description: "llama-server: tokens the reasoning block may hold; then its closing tag is forced and the answer follows. -1: no limit; 0: no reasoning." }))),
    thinking_budget_tokens: t.Optional(Nullable(Type.Integer({ minimum: -1, maximum: 1 << 30, description: "llama-server: another name for `reasoning_budget_tokens`." }))),
    chat_template_kwargs: t.Optional(t.Record(t.String(), t.Unknown(), { description: "Extra variables for the chat template (llama.cpp extension)." })),
    ...Sampling,
    ...LlamaServerFields,
    ...CocoonFields,
  },
  {
    
    examples: [{ model: "tiny-qwen3", messages: [{ role: "user", content: "Hello!" }], max_tokens: 64, temperature: 0.7 }],
  },
);
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>;

export const ChatCompletion = t.Object(
  {
    id: t.String(),
    object: t.Literal("chat.completion"),
    created: Type.Integer(),
    model: t.String(),
    system_fingerprint: t.String(),
    choices: t.Array(
      t.Object({
        index: Type.Integer(),
        message: t.Object({
          role: t.Literal("assistant"),
          content: Nullable(t.String()),
          reasoning_content: t.Optional(t.String()),
          tool_calls: t.Optional(t.Array(ToolCall)),
          refusal: t.Null(),
        }),
        logprobs: ChatLogprobs,
        finish_reason: t.String(),
      }),
    ),
    usage: Usage,
    debug: Debug,
  },
);

export const ChatCompletionChunk = t.Object(
  {
    id: t.String(),
    object: t.Literal("chat.completion.chunk"),
    created: Type.Integer(),
    model: t.String(),
    system_fingerprint: t.String(),
    choices: t.Array(
      t.Object({
        index: Type.Integer(),
        delta: t.Object({
          role: t.Optional(t.Literal("assistant")),
          content: t.Optional(Nullable(t.String())),
          reasoning_content: t.Optional(t.String()),
          tool_calls: t.Optional(
            t.Array(t.Object({ index: Type.Integer(), id: t.Optional(t.String()), type: t.Optional(t.Literal("function")), function: t.Optional(t.Object({ name: t.Optional(t.String()), arguments: t.Optional(t.String()) })) })),
          ),
        }),
        logprobs: t.Optional(ChatLogprobs),
        finish_reason: Nullable(t.String()),
      }),
    ),
    usage: t.Optional(Nullable(Usage)),
    debug: Debug,
  },
  { description: "One server-sent event of a streamed chat completion." },
);

// ---- completions ----------------------------------------------------------------------------------

export const CompletionRequest = t.Object(
  {
    model: t.Optional(t.String()),
    prompt: t.Union([t.String(), t.Array(t.String(), { minItems: 1 }), t.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), t.Array(t.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 })], {
      description: "Text, several texts, token ids, or several token-id lists.",
    }),
    suffix: t.Optional(Nullable(t.String())),
    max_tokens: t.Optional(Nullable(Type.Integer({ minimum: 1, maximum: MAX_TOKENS_LIMIT }))),
    echo: t.Optional(Nullable(t.Boolean())),
    best_of: t.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 16 }))),
    logprobs: t.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 20 }))),
    ...Sampling,
    ...LlamaServerFields,
    ...CocoonFields,
  },
  { examples: [{ model: "tiny-qwen3", prompt: "The meaning of life is", max_tokens: 32 }] },
);
export type CompletionRequest = Static<typeof CompletionRequest>;

const CompletionLogprobs = Nullable(
  t.Object({
    tokens: t.Array(t.String()),
    token_logprobs: t.Array(Nullable(t.Number())),
    top_logprobs: t.Array(Nullable(t.Record(t.String(), t.Number()))),
    text_offset: t.Array(Type.Integer()),
  }),
);

export const Completion = t.Object(
  {
    id: t.String(),
    object: t.Literal("text_completion"),
    created: Type.Integer(),
    model: t.String(),
    system_fingerprint: t.String(),
    choices: t.Array(t.Object({ text: t.String(), index: Type.Integer(), logprobs: CompletionLogprobs, finish_reason: Nullable(t.String()) })),
    usage: t.Optional(Nullable(Usage)),
    debug: Debug,
  },
  { description: "A completion, or one server-sent event of a streamed one." },
);

// ---- embeddings -----------------------------------------------------------------------------------

export const EmbeddingRequest = t.Object(
  {
    model: t.Optional(t.String()),
    input: t.Union([t.String(), t.Array(t.String(), { minItems: 1, maxItems: 2048 }), t.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), t.Array(t.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1, maxItems: 2048 })]),
    encoding_format: t.Optional(t.Union([t.Literal("float"), t.Literal("base64")])),
    dimensions: t.Optional(Type.Integer({ minimum: 1 })),
    user: t.Optional(t.String({ maxLength: 256 })),
  },
  { examples: [{ model: "tiny-qwen3", input: "The food was delicious", encoding_format: "float" }] },
);
export type EmbeddingRequest = Static<typeof EmbeddingRequest>;

export const EmbeddingList = t.Object(
  {
    object: t.Literal("list"),
    data: t.Array(t.Object({ object: t.Literal("embedding"), index: Type.Integer(), embedding: t.Union([t.Array(t.Number()), t.String()]) })),
    model: t.String(),
    usage: t.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer(), cost: t.Optional(Cost) }),
  },
);

// ---- models ---------------------------------------------------------------------------------------

export const Model = t.Object(
  {
    id: t.String(),
    object: t.Literal("model"),
    created: Type.Integer(),
    owned_by: t.String(),
    endpoint: t.String({ description: "Where to send requests for this model." }),
    type: t.Union([t.Literal("chat"), t.Literal("completion"), t.Literal("embedding")]),
    context_window: Type.Integer(),
    workers: t.Array(t.Object({ running_requests: Type.Integer(), max_running_requests: Type.Integer() })),
    root: t.Optional(t.String({ description: "The model id this entry runs (vLLM's field): its own id, or the model an alias names." })),
    aliases: t.Optional(t.Array(t.String(), { description: "Other names requests may use for this model; each is also listed as an entry of its own." })),
    meta: t.Optional(t.Record(t.String(), t.Unknown())),
  },
);

export const ModelList = t.Object({ object: t.Literal("list"), data: t.Array(Model) }, {});

export type ChatCompletion = Static<typeof ChatCompletion>;
export type Completion = Static<typeof Completion>;
export type EmbeddingList = Static<typeof EmbeddingList>;
export type Model = Static<typeof Model>;

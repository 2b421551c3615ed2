// TypeBox schemas of the seed 003 API, its field names kept exactly (hyphenated ones included).
// Its errors use OpenAI's shape ({"error":{...}}) rather than the seed's {"error":"..."}: the brief
// asks for one error shape on every route.
import { t, type Static } from "elysia";
import { Type } from "@sinclair/typebox";
import { CocoonFields, MAX_TOKENS_LIMIT } from "../generation/model.ts";
import { SESSION_ID_PATTERN } from "../sessions/service.ts";

const Stop = t.Array(t.String({ minLength: 1 }), { maxItems: 16, description: "Stop sequences; not included in the output. Defaults to []." });

export const SeedCompletionRequest = t.Object(
  {
    model: t.String({ description: "Model id (see GET /models)." }),
    prompt: t.String({ description: "Input prompt, completed as raw text (no chat template)." }),
    max_tokens: t.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKENS_LIMIT, description: "Defaults to 128." })),
    temperature: t.Optional(t.Number({ minimum: 0, maximum: 2, description: "Defaults to 0.7." })),
    top_p: t.Optional(t.Number({ minimum: 0, maximum: 1, description: "Defaults to 0.95." })),
    stop: t.Optional(Stop),
    stream: t.Optional(t.Boolean({ description: "Server-sent events, one `data:` event per token text. Defaults to false." })),
    // Cocoon's client fields are accepted on every inference request (ARCHITECTURE.md), here too.
    ...CocoonFields,
  },
  { examples: [{ model: "tiny-qwen3", prompt: "Once upon a time", max_tokens: 100, temperature: 0.7, top_p: 0.95, stop: ["\n\n"], stream: false }] },
);
export type SeedCompletionRequest = Static<typeof SeedCompletionRequest>;

export const SeedCompletion = t.Object({
  text: t.String(),
  model: t.String(),
  tokens: Type.Integer({ description: "Tokens generated." }),
  debug: t.Optional(t.Record(t.String(), t.Unknown(), { description: "Present when enable_debug was set: timings, slot and device, as on /v1." })),
});

export const Device = t.Union([t.Literal("cuda"), t.Literal("cpu"), t.Literal("metal")], {
  description: "Accepted and reported, but a loaded model cannot move: the response's X-Cocoon-Device says where it runs. Defaults to cpu.",
});

export const SeedChatRequest = t.Object(
  {
    "model-name": t.String({ description: "Model id (see GET /models)." }),
    prompt: t.String({ description: "The user message." }),
    "session-id": t.Optional(
      t.String({ pattern: SESSION_ID_PATTERN, description: "Session to continue (created when new). Defaults to a new random id, returned in the X-Session-Id header." }),
    ),
    "max-token": t.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKENS_LIMIT, description: "Defaults to 512, or to what the session's history leaves of the context when that is less." })),
    temperature: t.Optional(t.Number({ minimum: 0, maximum: 2, description: "Defaults to 0.7." })),
    "top-p": t.Optional(t.Number({ minimum: 0, maximum: 1, description: "Defaults to 0.95." })),
    "top-k": t.Optional(Type.Integer({ minimum: 0, description: "Defaults to 40 (0 = off)." })),
    "repeat-penalty": t.Optional(t.Number({ minimum: 1, maximum: 2, description: "Defaults to 1.1." })),
    "system-prompt": t.Optional(t.String({ description: "The session's system instruction; replaces its earlier one." })),
    stop: t.Optional(Stop),
    device: t.Optional(Device),
    ...CocoonFields,
  },
  {
    examples: [
      {
        "model-name": "tiny-qwen3",
        prompt: "What is Rust?",
        "session-id": "my-session-id",
        "max-token": 256,
        temperature: 0.7,
        "top-p": 0.95,
        "top-k": 40,
        "repeat-penalty": 1.1,
        "system-prompt": "You are a helpful assistant",
        stop: [],
        device: "cpu",
      },
    ],
  },
);
export type SeedChatRequest = Static<typeof SeedChatRequest>;

export const SeedModelList = t.Object({ models: t.Array(t.String()) });

export const SeedModel = t.Object({
  id: t.String(),
  name: t.String({ description: "The model file's name." }),
  context_length: Type.Integer({ description: "Tokens per request (prompt + completion)." }),
  quantization: t.Union([t.String(), t.Null()], { description: "The weights' type (e.g. Q8_0, F16), null when unknown." }),
});

export const SeedSessionIds = t.Array(t.String(), { description: "The caller's session ids, most recently updated first." });

export const SeedHistory = t.Array(
  t.Object({ role: t.String(), content: t.String() }),
  { description: "The session's messages, oldest first." },
);

export const RollbackRequest = t.Object({ amount: Type.Integer({ minimum: 1, description: "How many of the last messages to remove." }) });
export type RollbackRequest = Static<typeof RollbackRequest>;

export const StatusOk = t.Object({ status: t.Literal("ok") });

// The OpenAI-compatible routes: /v1/chat/completions (HTTP, SSE and WebSocket), /v1/completions,
// /v1/embeddings, /v1/models. Handlers stay thin: logic is in chat.ts, completions.ts, embeddings.ts.
import { Elysia, t } from "elysia";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { authPlugin } from "../http/auth.ts";
import { ApiError, ErrorResponse } from "../http/errors.ts";
import { fieldsPlugin, stripUnknownFields, type FieldPolicy } from "../http/fields.ts";
import { requestSocket, upgradeRequired } from "../http/socket.ts";
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonTime, unixSeconds } from "../generation/options.ts";
import { applyTemplate, runChat } from "./chat.ts";
import { runCompletion } from "./completions.ts";
import { createEmbeddings, modelObject } from "./embeddings.ts";
import { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Completion, CompletionRequest, EmbeddingList, EmbeddingRequest, Model, ModelList } from "./model.ts";
import { openaiSse } from "./sse.ts";
import { streamed } from "../http/sse.ts";
import type { Outcome } from "./service.ts";
import { costHeaders } from "../generation/usage.ts";

const errors = { 400: "ErrorResponse", 404: "ErrorResponse", 413: "ErrorResponse", 500: "ErrorResponse", 503: "ErrorResponse", 504: "ErrorResponse" } as const;
// WebSocket messages are validated here, not by Elysia: strict mode refuses unknown keys itself.
const chatValidator = TypeCompiler.Compile(ChatCompletionRequest);
const strictChatValidator = TypeCompiler.Compile({ ...ChatCompletionRequest, additionalProperties: false });

type Headers = Record<string, string | number>;


/**
 * A whole response: its body, with the Cocoon timing headers and (when billed) the cost set on the
 * response; a stream: SSE, with the end time as a comment before [DONE] (only known at the end).
 */
function respond<B>(outcome: Outcome<B>, start: number, headers: Headers): B {
  Object.assign(headers, outcome.headers, { "X-Cocoon-Client-Start": cocoonTime(start) });
  if (!outcome.stream) {
    Object.assign(headers, costHeaders(outcome.cost), { "X-Cocoon-Client-End": cocoonTime() });
    return outcome.body;
  }
  // Elysia puts the headers set on the context onto the returned Response as well.
  return streamed(openaiSse(outcome.chunks, () => [`X-Cocoon-Client-End: ${cocoonTime()}`]));
}

export function openaiRoutes(deps: GenerationDeps, fields: FieldPolicy = { strict: false }) {
  const created = unixSeconds();
  return new Elysia({ name: "openai" })
    .use(authPlugin(deps.platform))
    .use(fieldsPlugin(fields))
    // Registered models become OpenAPI components and are referenced by name below.
    .model({ ChatCompletionRequest, ChatCompletion, ChatCompletionChunk, CompletionRequest, Completion, EmbeddingRequest, EmbeddingList, Model, ModelList, ErrorResponse })
    .post(
      "/v1/chat/completions",
      async ({ body, request, principal, set }) => {
        const start = Date.now();
        return respond(await runChat(deps, body, request.signal, principal), start, set.headers);
      },
      {
        auth: "key",
        fields: ChatCompletionRequest,
        body: "ChatCompletionRequest",
        // Documents the body as JSON; our own parser (src/http/body.ts) runs first and does the parsing.
        parse: "json",
        response: { 200: "ChatCompletion", ...errors },
        detail: {
          tags: ["OpenAI"],
          summary: "Create a chat completion",
          description:
            "OpenAI-compatible. With `stream: true` the response is `text/event-stream`: one `data:` event per ChatCompletionChunk, then `data: [DONE]`; " +
            "`X-Cocoon-Client-End` arrives as an SSE comment before [DONE]. The same path accepts a WebSocket upgrade: send request bodies as JSON text, " +
            "receive ChatCompletionChunk objects and a final `[DONE]` text message per request. " +
            "Fields this schema does not define are ignored and named in `X-Cocoon-Ignored-Fields` (a 400 when the server runs with `--strict-fields`).",
        },
      },
    )
    .ws("/v1/chat/completions", {
      detail: { hide: true },
      ...requestSocket({
        auth: deps.platform,
        validator: fields.strict ? strictChatValidator : chatValidator,
        prepare: fields.strict ? undefined : (body) => void stripUnknownFields(ChatCompletionRequest, body),
        notJson: "the message is not valid JSON",
        busy: "a request is still running on this socket; wait for its [DONE]",
        error: (err) => JSON.stringify(err.body()),
        open: () => null,
        async handle({ body, principal, signal, send }) {
          const outcome = await runChat(deps, { ...body, stream: true }, signal, principal);
          if (outcome.stream) for await (const chunk of outcome.chunks) send(JSON.stringify(chunk));
        },
        after: "[DONE]",
      }),
    })
    .get("/v1/chat/completions", upgradeRequired("/v1/chat/completions"), { detail: { hide: true } })
    .post(
      "/v1/completions",
      async ({ body, request, principal, set }) => {
        const start = Date.now();
        return respond(await runCompletion(deps, body, request.signal, principal), start, set.headers);
      },
      {
        auth: "key",
        fields: CompletionRequest,
        body: "CompletionRequest",
        parse: "json",
        response: { 200: "Completion", ...errors },
        detail: { tags: ["OpenAI"], summary: "Create a completion", description: "OpenAI-compatible (legacy) completions; `stream: true` sends `text/event-stream` events. Unknown fields: as on chat completions." },
      },
    )
    .post(
      "/v1/embeddings",
      async ({ body, principal, set }) => {
        const { body: out, cost } = await createEmbeddings(deps, body, principal);
        Object.assign(set.headers, costHeaders(cost));
        return out;
      },
      {
        auth: "key",
        fields: EmbeddingRequest,
        body: "EmbeddingRequest",
        parse: "json",
        response: { 200: "EmbeddingList", ...errors },
        detail: { tags: ["OpenAI"], summary: "Create embeddings", description: "Pooled, L2-normalised embeddings; `encoding_format: base64` gives little-endian float32." },
      },
    )
    .post("/apply-template", ({ body }) => applyTemplate(deps, body), {
      auth: "key",
      fields: ChatCompletionRequest,
      body: "ChatCompletionRequest",
      parse: "json",
      response: { 200: t.Object({ prompt: t.String() }), ...errors },
      detail: {
        tags: ["llama-server"],
        summary: "Render a chat request's prompt",
        description:
          "As llama-server: `{\"prompt\": \"...\"}`, the model's chat template applied to a chat completions body (messages, tools, tool_choice, " +
          "`reasoning_effort`, `chat_template_kwargs`) exactly as generation renders it. Nothing is generated or billed.",
      },
    })
    .get(
      "/v1/models",
      () => {
        const stats = new Map(deps.engine.stats().map((s) => [s.id, s]));
        const aliases = [...(deps.aliases ?? new Map<string, string>())];
        // Each model, then each of its aliases as an entry of its own (clients pick names from this list).
        const data = deps.engine.models().flatMap((m) => {
          const names = aliases.filter(([, id]) => id === m.id).map(([alias]) => alias);
          const base = { ...modelObject(m, stats.get(m.id), created, deps.engine.workers?.(m.id)), root: m.id };
          return [names.length ? { ...base, aliases: names } : base, ...names.map((alias) => ({ ...base, id: alias }))];
        });
        return { object: "list" as const, data };
      },
      { auth: "public", response: { 200: "ModelList" }, detail: { tags: ["OpenAI"], summary: "List models" } },
    )
    .get(
      "/v1/models/:id",
      ({ params }) => {
        const id = deps.aliases?.get(params.id) ?? params.id;
        const info = deps.engine.models().find((m) => m.id === id);
        if (!info) throw new ApiError("model_not_found", `The model '${params.id}' does not exist`, "model");
        return { ...modelObject(info, deps.engine.stats().find((s) => s.id === info.id), created, deps.engine.workers?.(info.id)), id: params.id, root: info.id };
      },
      { auth: "public", response: { 200: "Model", 404: "ErrorResponse" }, detail: { tags: ["OpenAI"], summary: "Retrieve a model" } },
    );
}

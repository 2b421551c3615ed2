// The OpenAI-compatible routes: /v1/chat/completions (HTTP, SSE and WebSocket), /v1/completions,
// /v1/embeddings, /v1/models. Handlers stay thin: logic is in chat.ts, completions.ts, embeddings.ts.
import { Elysia } from "elysia";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { requestCallers } from "../http/caller.ts";
import { ApiError } from "../http/errors.ts";
import { requestSocket, upgradeRequired } from "../http/socket.ts";
import type { Cost } from "../platform/service.ts";

/** The cost of a billed response as a header (streams carry it in their usage chunk instead). */
const costHeader = (cost: Cost | null): Record<string, string> => (cost ? { "X-Cocoon-Cost-Nanoton": String(cost.nanoton) } : {});
import { runChat } from "./chat.ts";
import { runCompletion } from "./completions.ts";
import { createEmbeddings, modelObject } from "./embeddings.ts";
import { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Completion, CompletionRequest, EmbeddingList, EmbeddingRequest, ErrorResponse, Model, ModelList } from "./model.ts";
import { sseResponse } from "./sse.ts";
import { cocoonTime, unixSeconds, type InferenceDeps, type Outcome } from "./service.ts";

const errors = { 400: "ErrorResponse", 404: "ErrorResponse", 413: "ErrorResponse", 500: "ErrorResponse", 503: "ErrorResponse", 504: "ErrorResponse" } as const;
const chatValidator = TypeCompiler.Compile(ChatCompletionRequest);

/** JSON or SSE, with the Cocoon timing headers, the rate-limit headers and (when billed) the cost. */
function respond(outcome: Outcome, start: number, headers: Record<string, string>): Response {
  const startHeader = { ...headers, ...outcome.headers, "X-Cocoon-Client-Start": cocoonTime(start) };
  if (!outcome.stream) {
    return Response.json(outcome.body, { headers: { ...startHeader, ...costHeader(outcome.cost), "X-Cocoon-Client-End": cocoonTime() } });
  }
  // For a stream the end time is only known at the end: it goes out as an SSE comment before [DONE].
  return sseResponse(outcome.chunks, startHeader, { trailer: () => [`X-Cocoon-Client-End: ${cocoonTime()}`] });
}

export function openaiRoutes(deps: InferenceDeps) {
  const created = unixSeconds();
  // Authentication runs in the transform phase, before body validation: a caller without a valid
  // key learns that first, and invalid requests still count against the key's rate limits.
  const caller = requestCallers(deps.platform);
  return new Elysia({ name: "openai" })
    // Registered models become OpenAPI components and are referenced by name below.
    .onTransform(({ request }) => {
      if (request.method === "POST") caller(request);
    })
    .model({ ChatCompletionRequest, ChatCompletion, ChatCompletionChunk, CompletionRequest, Completion, EmbeddingRequest, EmbeddingList, Model, ModelList, ErrorResponse })
    .post(
      "/v1/chat/completions",
      async ({ body, request }) => {
        const start = Date.now();
        const { principal, headers } = caller(request);
        return respond(await runChat(deps, body, request.signal, principal), start, headers);
      },
      {
        body: "ChatCompletionRequest",
        // Documents the body as JSON; our own parser (app.ts) runs first and does the parsing.
        parse: "json",
        response: { 200: "ChatCompletion", ...errors },
        detail: {
          tags: ["OpenAI"],
          summary: "Create a chat completion",
          description:
            "OpenAI-compatible. With `stream: true` the response is `text/event-stream`: one `data:` event per ChatCompletionChunk, then `data: [DONE]`; " +
            "`X-Cocoon-Client-End` arrives as an SSE comment before [DONE]. The same path accepts a WebSocket upgrade: send request bodies as JSON text, " +
            "receive ChatCompletionChunk objects and a final `[DONE]` text message per request.",
        },
      },
    )
    .ws("/v1/chat/completions", {
      detail: { hide: true },
      ...requestSocket({
        platform: deps.platform,
        validator: chatValidator,
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
      async ({ body, request }) => {
        const start = Date.now();
        const { principal, headers } = caller(request);
        return respond(await runCompletion(deps, body, request.signal, principal), start, headers);
      },
      {
        body: "CompletionRequest",
        parse: "json",
        response: { 200: "Completion", ...errors },
        detail: { tags: ["OpenAI"], summary: "Create a completion", description: "OpenAI-compatible (legacy) completions; `stream: true` sends `text/event-stream` events." },
      },
    )
    .post(
      "/v1/embeddings",
      async ({ body, request }) => {
        const { principal, headers } = caller(request);
        const { body: out, cost } = await createEmbeddings(deps, body, principal);
        return Response.json(out, { headers: { ...headers, ...costHeader(cost) } });
      },
      {
      body: "EmbeddingRequest",
      parse: "json",
      response: { 200: "EmbeddingList", ...errors },
      detail: { tags: ["OpenAI"], summary: "Create embeddings", description: "Pooled, L2-normalised embeddings; `encoding_format: base64` gives little-endian float32." },
      },
    )
    .get(
      "/v1/models",
      () => {
        const stats = new Map(deps.engine.stats().map((s) => [s.id, s]));
        return Response.json({ object: "list", data: deps.engine.models().map((m) => modelObject(m, stats.get(m.id), created)) });
      },
      { response: { 200: "ModelList" }, detail: { tags: ["OpenAI"], summary: "List models" } },
    )
    .get(
      "/v1/models/:id",
      ({ params }) => {
        const info = deps.engine.models().find((m) => m.id === params.id);
        if (!info) throw new ApiError("model_not_found", `The model '${params.id}' does not exist`, "model");
        return Response.json(modelObject(info, deps.engine.stats().find((s) => s.id === info.id), created));
      },
      { response: { 200: "Model", 404: "ErrorResponse" }, detail: { tags: ["OpenAI"], summary: "Retrieve a model" } },
    );
}

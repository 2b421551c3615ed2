// The seed 003 routes, field names and framings as that service documents them: /completions,
// /chat/completions (SSE text), WS /chat/ws (text frames), /models, /sessions and /chat/history.
// Keys, rate limits and billing apply as on /v1; errors use OpenAI's shape (see model.ts).
import { Elysia, t } from "elysia";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { authPlugin } from "../http/auth.ts";
import { ApiError, ErrorResponse, toApiError } from "../http/errors.ts";
import { sseComments, sseEvent, sseResponse, streamed } from "../http/sse.ts";
import { requestSocket, upgradeRequired } from "../http/socket.ts";
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonTime } from "../generation/options.ts";
import { costHeaders, usageWire } from "../generation/usage.ts";
import { deleteSession, docResponses } from "../sessions/index.ts";
import { newSessionId, ownerOf } from "../sessions/service.ts";
import { RollbackRequest, SeedChatRequest, SeedCompletion, SeedCompletionRequest, SeedHistory, SeedModel, SeedModelList, SeedSessionIds, StatusOk } from "./model.ts";
import { deviceHeaders, seedChat, seedCompletion, seedModel, type TextRun, type TextSummary } from "./service.ts";

/**
 * Whether a request asked for our extensions of the seed's framing: `?extensions=1` on the URL (the
 * WebSocket upgrade URL for /chat/ws) or the header `X-Cocoon-Extensions: 1`. Off by default, so a
 * seed client that prints every line or frame it receives prints only the answer.
 */
export function extensionsOn(request: Request): boolean {
  const on = (v: string | null) => v !== null && ["1", "true", "yes", "on"].includes(v.trim().toLowerCase());
  return on(new URL(request.url).searchParams.get("extensions")) || on(request.headers.get("x-cocoon-extensions"));
}

/**
 * The seed's SSE text stream: `data: <text>` per piece of the answer, and nothing else, so seed
 * clients print exactly the answer. With extensions: reasoning (a thinking model's `<think>` text)
 * as `event: reasoning` events and, at the end, comment lines with the cost (when billed) and
 * X-Cocoon-Client-End. Either way a failure after the stream began is one `event: error` with the
 * OpenAI error object: a seed client prints its data line, so the failure is visible.
 */
async function* textFrames(run: TextRun, extended: boolean): AsyncGenerator<string> {
  const pieces = run.pieces;
  let completed = false;
  try {
    for (;;) {
      const r = await pieces.next();
      if (r.done) {
        completed = true;
        const summary = r.value;
        if (extended) {
          const lines = [
            ...(summary?.cost ? [`X-Cocoon-Cost-Nanoton: ${summary.cost.nanoton}`] : []),
            ...(summary?.debug ? [`X-Cocoon-Debug: ${JSON.stringify(summary.debug)}`] : []),
            `X-Cocoon-Client-End: ${cocoonTime()}`,
          ];
          yield `${sseComments(lines)}\n`;
        }
        return;
      }
      // A piece with nothing to send here (reasoning without extensions) yields nothing: read on.
      yield (extended && r.value.reasoning ? sseEvent(r.value.reasoning, "reasoning") : "") + (r.value.content ? sseEvent(r.value.content) : "");
    }
  } catch (err) {
    completed = true;
    yield sseEvent(JSON.stringify(toApiError(err).body()), "error");
  } finally {
    // The client went away: stopping the pieces cancels the generation.
    if (!completed) await pieces.return(null);
  }
}

/** The seed's SSE text stream as a response (see textFrames). */
export function textSse(run: TextRun, headers: Record<string, string>, extended: boolean): Response {
  return sseResponse(textFrames(run, extended), headers);
}

/** Reads a whole run: the answer's text and the summary. */
async function collect(run: TextRun): Promise<{ text: string; summary: TextSummary | null }> {
  let text = "";
  for (;;) {
    const r = await run.pieces.next();
    if (r.done) return { text, summary: r.value };
    text += r.value.content;
  }
}

/** The end-of-reply frame on /chat/ws: `__END__:` and a JSON summary. */
export const END_FRAME = "__END__:";
export const ERROR_FRAME = "__ERROR__:";

const chatValidator = TypeCompiler.Compile(SeedChatRequest);
const EXTENSIONS_DOC =
  "Extensions, opt-in with `?extensions=1` (or the header `X-Cocoon-Extensions: 1`): a thinking model's reasoning as `event: reasoning` events, " +
  "and `: X-Cocoon-Cost-Nanoton: N` (when billed), `: X-Cocoon-Debug: {json}` (with `enable_debug`) and `: X-Cocoon-Client-End` comment lines at the end. " +
  "Cocoon's `max_coefficient`, `timeout`, `enable_debug` and `request_guid` are accepted as on /v1.";
const tags = ["Seed 003"];
const errors = { 400: "ErrorResponse", 401: "ErrorResponse", 402: "ErrorResponse", 404: "ErrorResponse", 409: "ErrorResponse", 429: "ErrorResponse", 503: "ErrorResponse" } as const;

export function compatRoutes(deps: GenerationDeps) {
  const { sessions } = deps;
  return (
    new Elysia({ name: "compat" })
      // Key first, before body validation (as on /v1); the model routes stay public like /v1/models.
      .use(authPlugin(deps.platform))
      .model({ SeedCompletionRequest, SeedCompletion, SeedChatRequest, SeedModelList, SeedModel, SeedSessionIds, SeedHistory, RollbackRequest, StatusOk, ErrorResponse })
      .post(
        "/completions",
        async ({ body, request, principal, set }) => {
          const start = Date.now();
          const run = await seedCompletion(deps, body, principal, request.signal);
          set.headers["X-Cocoon-Client-Start"] = cocoonTime(start);
          if (body.stream) return streamed(textSse(run, {}, extensionsOn(request)));
          const { text, summary } = await collect(run);
          Object.assign(set.headers, costHeaders(summary?.cost));
          set.headers["X-Cocoon-Client-End"] = cocoonTime();
          return { text, model: run.model.id, tokens: summary?.tokens ?? 0, ...(summary?.debug ? { debug: summary.debug } : {}) };
        },
        {
          auth: "key",
          body: "SeedCompletionRequest",
          parse: "json",
          response: { 200: "SeedCompletion", ...errors },
          detail: {
            tags,
            summary: "Text completion (seed 003)",
            description:
              "Raw-text completion. With `stream: true`: `text/event-stream`, only `data: <token text>` events, as the seed sends (a piece with line breaks spans several `data:` lines, " +
              "joined with \\n by SSE clients); a failure after streaming began is one `event: error` with the OpenAI error object. " +
              EXTENSIONS_DOC +
              " Whole responses carry `X-Cocoon-Cost-Nanoton`; a streamed one's cost is in `/v1/usage`.",
          },
        },
      )
      .post(
        "/chat/completions",
        async ({ body, request, principal, set }) => {
          const start = Date.now();
          const run = await seedChat(deps, body, principal, request.signal);
          Object.assign(set.headers, deviceHeaders(run.model, body.device), {
            "X-Session-Id": run.sessionId!,
            "X-Cocoon-Session-Id": run.sessionId!,
            "X-Cocoon-Client-Start": cocoonTime(start),
          });
          return textSse(run, {}, extensionsOn(request));
        },
        {
          auth: "key",
          body: "SeedChatRequest",
          parse: "json",
          detail: {
            tags,
            responses: docResponses({ 200: { description: "The answer as server-sent events.", content: { "text/event-stream": { schema: { type: "string" } } } } }),
            summary: "Chat in a session, streamed as SSE text (seed 003)",
            description:
              "Appends `prompt` to the session (`session-id`, or a new one named in the `X-Session-Id` response header) and streams the answer as only `data: <token text>` events, " +
              "as the seed sends (multi-line pieces span several `data:` lines); a failure after streaming began is one `event: error` with the OpenAI error object. " +
              EXTENSIONS_DOC +
              " The turn's cost is also on the session (`GET /v1/sessions/{id}`) and in `/v1/usage`. " +
              "`X-Cocoon-Device` says where the model runs; `X-Cocoon-Device-Note` explains when `device` asked for another one.",
          },
        },
      )
      .ws("/chat/ws", {
        detail: { hide: true },
        ...requestSocket({
          auth: deps.platform,
          validator: chatValidator,
          notJson: "the message is not valid JSON; send a JSON object like {\"model-name\": \"...\", \"prompt\": \"Hello!\"}",
          busy: "a reply is still being generated on this socket; wait for it to finish",
          error: (err) => `${ERROR_FRAME}${err.message}`,
          // The session of messages without `session-id`: one per socket, so they continue one
          // conversation. Extensions (the __END__ frame) are chosen once, on the upgrade URL or headers.
          open: (request): { sessionId: string | null; extended: boolean } => ({ sessionId: null, extended: request ? extensionsOn(request) : false }),
          async handle({ body, principal, signal, state, send }) {
            if (!body["session-id"]) state.sessionId ??= newSessionId();
            const run = await seedChat(deps, body, principal, signal, state.sessionId ?? undefined);
            let summary: TextSummary | null = null;
            for (;;) {
              const r = await run.pieces.next();
              if (r.done) {
                summary = r.value;
                break;
              }
              if (signal.aborted) break;
              if (r.value.content) send(r.value.content);
            }
            if (signal.aborted) {
              await run.pieces.return(null);
              return;
            }
            if (!state.extended) return;
            send(
              END_FRAME +
                JSON.stringify({
                  session_id: run.sessionId,
                  model: run.model.id,
                  device: deviceHeaders(run.model, body.device)["X-Cocoon-Device"],
                  finish_reason: summary?.reason === "length" || summary?.reason === "timeout" ? "length" : "stop",
                  tokens: summary?.tokens ?? 0,
                  usage: summary ? usageWire({ promptTokens: summary.usage.promptTokens, cachedTokens: summary.usage.cachedTokens, completionTokens: summary.usage.completionTokens }, summary.cost, { withCost: false }) : null,
                  ...(summary?.cost ? { cost: { nanoton: Number(summary.cost.nanoton), ton: summary.cost.ton } } : {}),
                  ...(summary?.debug ? { debug: summary.debug } : {}),
                }),
            );
          },
        }),
      })
      .get("/chat/ws", upgradeRequired("/chat/ws"), { detail: { hide: true } })
      .get("/models", () => ({ models: deps.engine.models().map((m) => m.id) }), {
        auth: "public",
        response: { 200: "SeedModelList" },
        detail: { tags, summary: "List model ids (seed 003)" },
      })
      .get(
        "/models/:id",
        ({ params }) => {
          // "Model ID or name" (the seed): the id, or the `name` this route reports.
          const info = deps.engine.models().find((m) => m.id === params.id) ?? deps.engine.models().find((m) => seedModel(m).name === params.id);
          if (!info) throw new ApiError("model_not_found", `The model '${params.id}' does not exist`, "model");
          return seedModel(info);
        },
        { auth: "public", params: t.Object({ id: t.String() }), response: { 200: "SeedModel", 404: "ErrorResponse" }, detail: { tags, summary: "Get a model (seed 003)", description: "`id` is the model's id or its `name`." } },
      )
      .get("/sessions", async ({ principal }) => (await sessions.list(ownerOf(principal))).map((s) => s.id), {
        auth: "account",
        response: { 200: "SeedSessionIds", ...errors },
        detail: { tags, summary: "List your session ids (seed 003)" },
      })
      .get(
        "/chat/history/:id",
        async ({ principal, params }) => (await sessions.messages(ownerOf(principal), params.id)).map((m) => ({ role: m.role, content: m.content })),
        { auth: "account", params: t.Object({ id: t.String() }), response: { 200: "SeedHistory", ...errors }, detail: { tags, summary: "A session's messages (seed 003)" } },
      )
      .delete("/chat/history/:id", deleteSession(sessions), {
        auth: "account",
        params: t.Object({ id: t.String() }),
        detail: { tags, summary: "Delete a session (seed 003)", description: "Cancels a reply in progress and frees the session's KV cache in the engine.", responses: docResponses({ 204: { description: "Deleted." } }) },
      })
      .post(
        "/chat/history/:id/rollback",
        async ({ principal, params, body }) => {
          await sessions.rollback(ownerOf(principal), params.id, body.amount);
          return { status: "ok" as const };
        },
        {
          auth: "account",
          params: t.Object({ id: t.String() }),
          body: "RollbackRequest",
          parse: "json",
          response: { 200: "StatusOk", ...errors },
          detail: { tags, summary: "Remove the last N messages (seed 003)", description: "`amount` from 1 to the number of messages; anything else is a 400." },
        },
      )
  );
}

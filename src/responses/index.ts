// The OpenAI Responses API routes: POST /v1/responses (JSON or typed SSE events), and the caller's
// stored responses: GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items.
import { Elysia, t } from "elysia";
import { authPlugin } from "../http/auth.ts";
import { ErrorResponse, toApiError } from "../http/errors.ts";
import { sseComments, sseEvent, sseResponse, streamed } from "../http/sse.ts";
import { cocoonTime } from "../generation/options.ts";
import type { Platform } from "../platform/service.ts";
import { InputItemsQuery, ResponseCreateRequest, ResponseDeleted, ResponseItemList, ResponseObject, ResponseStreamEvent } from "./model.ts";
import { ResponsesService, type ResponsesDeps } from "./service.ts";
import { costHeaders } from "../generation/usage.ts";

const errors = { 400: "ErrorResponse", 401: "ErrorResponse", 402: "ErrorResponse", 404: "ErrorResponse", 429: "ErrorResponse", 500: "ErrorResponse", 503: "ErrorResponse", 504: "ErrorResponse" } as const;
const tags = ["Responses"];

/**
 * OpenAI's framing: `event: <type>` and `data: <json>` per event, no [DONE]; the end time goes in a
 * comment after the last event. A failure the events could not report still ends in an error event.
 */
async function* frames(events: AsyncGenerator<ResponseStreamEvent>): AsyncGenerator<string> {
  let seq = 0;
  try {
    for await (const e of events) {
      seq = e.sequence_number + 1;
      yield sseEvent(JSON.stringify(e), e.type);
    }
  } catch (err) {
    const api = toApiError(err);
    yield sseEvent(JSON.stringify({ type: "error", code: api.code, message: api.message, param: api.param, sequence_number: seq }), "error");
  } finally {
    await events.return(undefined);
  }
  yield sseComments([`X-Cocoon-Client-End: ${cocoonTime()}`]);
}

export function responsesRoutes(deps: ResponsesDeps & { platform: Platform | null }) {
  const service = new ResponsesService(deps);
  return (
    new Elysia({ name: "responses" })
      .use(authPlugin(deps.platform))
      .model({ ResponseCreateRequest, Response: ResponseObject, ResponseStreamEvent, ResponseDeleted, ResponseItemList, ErrorResponse })
      .post(
        "/v1/responses",
        async ({ body, request, principal, set }) => {
          const start = Date.now();
          const outcome = await service.create(body, request.signal, principal);
          set.headers["X-Cocoon-Client-Start"] = cocoonTime(start);
          if (outcome.stream) return streamed(sseResponse(frames(outcome.events), {}));
          Object.assign(set.headers, costHeaders(outcome.cost));
          set.headers["X-Cocoon-Client-End"] = cocoonTime();
          return outcome.body;
        },
        {
          auth: "key",
          // A top-level null is "not set" (clients send `"reasoning": null` and the like).
          transform({ body }) {
            if (body && typeof body === "object" && !Array.isArray(body)) {
              const fields = body as Record<string, unknown>;
              for (const k of Object.keys(fields)) if (fields[k] === null) delete fields[k];
            }
          },
          body: "ResponseCreateRequest",
          // Documents the body as JSON; our own parser (src/http/body.ts) runs first and does the parsing.
          parse: "json",
          response: { 200: "Response", ...errors },
          detail: {
            tags,
            summary: "Create a model response",
            description:
              "OpenAI's Responses API on the shared generation path: keys, rate limits and billing as on /v1/chat/completions, the cost in `usage.cost` and `X-Cocoon-Cost-Nanoton`. " +
              "With `stream: true` the response is `text/event-stream`: `event: <type>` / `data: <ResponseStreamEvent>` from `response.created` to `response.completed` " +
              "(or `response.incomplete`, `response.failed` then `error`); the cost is in the final event's `response.usage.cost`. " +
              "Stored responses (`store`, default true) are private to the account; `previous_response_id` continues one, reusing its KV cache. " +
              "With `store: false` and include `reasoning.encrypted_content`, reasoning comes back sealed for this server, to be sent back in the next input.",
          },
        },
      )
      .get("/v1/responses/:id", ({ principal, params }) => service.get(principal, params.id), {
        auth: "account",
        params: t.Object({ id: t.String() }),
        query: t.Object({ include: t.Optional(t.Union([t.String(), t.Array(t.String())])), stream: t.Optional(t.Boolean()) }, { additionalProperties: true }),
        response: { 200: "Response", ...errors },
        detail: { tags, summary: "Retrieve a stored response", description: "404 for a response that does not exist, was not stored or belongs to another account." },
      })
      .delete("/v1/responses/:id", ({ principal, params }) => service.delete(principal, params.id), {
        auth: "account",
        params: t.Object({ id: t.String() }),
        response: { 200: "ResponseDeleted", ...errors },
        detail: { tags, summary: "Delete a stored response", description: "Answers OpenAI's deletion object. The conversation's KV cache is freed once none of its responses is left." },
      })
      .get("/v1/responses/:id/input_items", ({ principal, params, query }) => service.inputItems(principal, params.id, query), {
        auth: "account",
        params: t.Object({ id: t.String() }),
        query: InputItemsQuery,
        response: { 200: "ResponseItemList", ...errors },
        detail: { tags, summary: "List a stored response's input items", description: "The items the request's `input` held (with their ids), `order` desc by default, paged with `limit` and `after`." },
      })
  );
}

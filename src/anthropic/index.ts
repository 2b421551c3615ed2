// The Anthropic Messages API: POST /v1/messages (a message object, or Anthropic's SSE events) and
// /v1/messages/count_tokens. Errors on these paths leave in Anthropic's shape (see src/app.ts).
import { Elysia } from "elysia";
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonTime } from "../generation/options.ts";
import { authPlugin } from "../http/auth.ts";
import { anthropicErrorShape, AnthropicErrorResponse, toApiError } from "../http/errors.ts";
import { sseComments, sseEvent, sseResponse, streamed } from "../http/sse.ts";
import type { Cost } from "../platform/service.ts";
import { countTokens, runMessages, type StreamEvent } from "./messages.ts";
import { CountTokensRequest, Message, MessagesRequest, MessageTokensCount } from "./model.ts";
import { costHeaders } from "../generation/usage.ts";

const errors = { 400: "AnthropicErrorResponse", 401: "AnthropicErrorResponse", 402: "AnthropicErrorResponse", 404: "AnthropicErrorResponse", 429: "AnthropicErrorResponse", 500: "AnthropicErrorResponse", 529: "AnthropicErrorResponse" } as const;


/**
 * Each event as `event: <type>` + `data: <json>`; a failure after the stream began becomes an
 * `error` event in Anthropic's shape. What is only known at the end (cost, end time) goes out as
 * comments before message_stop.
 */
async function* frames(events: AsyncGenerator<StreamEvent>, cost: () => Cost | null): AsyncGenerator<string> {
  try {
    for await (const e of events) {
      if (e.type === "message_stop") {
        const c = cost();
        yield sseComments([...Object.entries(costHeaders(c)).map(([k, v]) => `${k}: ${v}`), `X-Cocoon-Client-End: ${cocoonTime()}`]);
      }
      yield sseEvent(JSON.stringify(e), e.type);
    }
  } catch (err) {
    yield sseEvent(JSON.stringify(anthropicErrorShape(toApiError(err)).body), "error");
  }
}

export function anthropicRoutes(deps: GenerationDeps) {
  return new Elysia({ name: "anthropic" })
    .use(authPlugin(deps.platform))
    .model({ MessagesRequest, Message, CountTokensRequest, MessageTokensCount, AnthropicErrorResponse })
    .post(
      "/v1/messages",
      async ({ body, request, principal, set }) => {
        const start = Date.now();
        const outcome = await runMessages(deps, body, request.signal, principal);
        set.headers["X-Cocoon-Client-Start"] = cocoonTime(start);
        if (!outcome.stream) {
          Object.assign(set.headers, costHeaders(outcome.cost), { "X-Cocoon-Client-End": cocoonTime() });
          return outcome.body;
        }
        return streamed(sseResponse(frames(outcome.events, outcome.cost), {}));
      },
      {
        auth: "key",
        body: "MessagesRequest",
        parse: "json",
        response: { 200: "Message", ...errors },
        detail: {
          tags: ["Anthropic"],
          summary: "Create a message",
          description:
            "Anthropic's Messages API. The key goes in `x-api-key` or `Authorization: Bearer`; `anthropic-version` and `anthropic-beta` are accepted. " +
            "With `stream: true` the response is `text/event-stream` with Anthropic's events (`message_start`, `ping`, `content_block_start`, " +
            "`content_block_delta` (text_delta, thinking_delta, signature_delta, input_json_delta), `content_block_stop`, `message_delta`, `message_stop`, " +
            "or `error`); the cost and `X-Cocoon-Client-End` arrive as SSE comments before `message_stop`. `thinking.budget_tokens` closes the thinking block " +
            "at that many tokens (the format's closing tag is forced, as llama-server's reasoning budget does) and the answer follows.",
        },
      },
    )
    .post(
      "/v1/messages/count_tokens",
      async ({ body }) => ({ input_tokens: await countTokens(deps, body) }),
      {
        auth: "key",
        body: "CountTokensRequest",
        parse: "json",
        response: { 200: "MessageTokensCount", ...errors },
        detail: { tags: ["Anthropic"], summary: "Count the tokens of a message", description: "The prompt's tokens through the model's chat template, tools included; not billed." },
      },
    );
}

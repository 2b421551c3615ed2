// The /v1/sessions routes (our extension): list, read, fork and delete the caller's server-side chat
// sessions. Turns are added through /v1/chat/completions with `session_id` (src/openai/chat.ts).
import { Elysia, t } from "elysia";
import { authPlugin } from "../http/auth.ts";
import { ErrorResponse } from "../http/errors.ts";
import { usageWire } from "../generation/usage.ts";
import { formatTon } from "../platform/pricing.ts";
import type { Platform, Principal } from "../platform/service.ts";
import { ForkRequest, SessionDetail, SessionInfo, SessionList } from "./model.ts";
import { ownerOf, type SessionRow, type SessionService, type StoredMessage } from "./service.ts";

export interface SessionRouteDeps {
  sessions: SessionService;
  /** Keys and rate limits; null with --no-auth (every session then belongs to the local owner). */
  platform: Platform | null;
}

/** OpenAPI responses written by hand (non-JSON or empty success bodies) plus the error responses. */
export function docResponses(success: Record<number, { description: string; content?: Record<string, unknown> }>) {
  const error = { description: "Every error, in OpenAI's shape.", content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorResponse" } } } };
  return { ...success, 400: error, 401: error, 404: error, 409: error, 429: error };
}

/** DELETE of a session (here and the seed's /chat/history/{id}): 204, with the rate-limit headers. */
export function deleteSession(sessions: SessionService) {
  return async ({ principal, params }: { principal: Principal | null; params: { id: string } }) => {
    await sessions.delete(ownerOf(principal), params.id);
    // Elysia adds the headers set on the context (the rate-limit headers) to a returned Response.
    return new Response(null, { status: 204 });
  };
}

const seconds = (ms: number) => Math.floor(ms / 1000);
const costOf = (nanoton: bigint) => ({ nanoton: Number(nanoton), ton: formatTon(nanoton) });

export function sessionInfo(s: SessionRow) {
  return {
    id: s.id,
    object: "chat.session" as const,
    title: s.title,
    model: s.model,
    system_prompt: s.systemPrompt,
    created: seconds(s.createdAt),
    updated: seconds(s.updatedAt),
    message_count: s.messageCount,
    usage: usageWire(s.usage),
    cost: costOf(s.cost),
  };
}

export function sessionMessage(m: StoredMessage) {
  return {
    role: m.role,
    content: m.content,
    ...(m.reasoningContent ? { reasoning_content: m.reasoningContent } : {}),
    created: seconds(m.createdAt),
    ...(m.usage ? { usage: usageWire(m.usage) } : {}),
    ...(m.cost !== null ? { cost: costOf(m.cost) } : {}),
  };
}

const tags = ["Sessions"];
const errors = { 400: "ErrorResponse", 401: "ErrorResponse", 404: "ErrorResponse", 409: "ErrorResponse", 429: "ErrorResponse" } as const;

export function sessionRoutes(deps: SessionRouteDeps) {
  const { sessions } = deps;
  return (
    new Elysia({ name: "sessions" })
      // Authentication before body validation, as on /v1: a caller without a key learns that first.
      .use(authPlugin(deps.platform))
      .model({ SessionInfo, SessionDetail, SessionList, ForkRequest, ErrorResponse })
      .get(
        "/v1/sessions",
        async ({ principal, query }) => {
          const page = await sessions.page(ownerOf(principal), { limit: query.limit, after: query.after ?? null });
          const data = page.data.map(sessionInfo);
          return { object: "list" as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
        },
        {
          auth: "account",
          query: t.Object({
            limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, description: "Sessions per page, 1 to 100. Defaults to 100." })),
            after: t.Optional(t.String({ maxLength: 128, description: "A session id: the page starts after it (the previous page's last_id)." })),
          }),
          response: { 200: "SessionList", ...errors },
          detail: { tags, summary: "List your chat sessions", description: "Most recently updated first, a page at a time (OpenAI's list shape: `after`, `limit`, `has_more`). Sessions are private to the account that created them." },
        },
      )
      .get(
        "/v1/sessions/:id",
        async ({ principal, params }) => {
          const owner = ownerOf(principal);
          const s = await sessions.get(owner, params.id);
          return { ...sessionInfo(s), messages: (await sessions.messages(owner, params.id)).map(sessionMessage) };
        },
        {
          auth: "account",
          params: t.Object({ id: t.String() }),
          response: { 200: "SessionDetail", ...errors },
          detail: { tags, summary: "Get a session with its messages", description: "404 for a session that does not exist or belongs to another account." },
        },
      )
      .post("/v1/sessions/:id/fork", async ({ principal, params, body }) => sessionInfo(await sessions.fork(ownerOf(principal), params.id, body.messages, body.id)), {
        auth: "account",
        params: t.Object({ id: t.String() }),
        body: "ForkRequest",
        parse: "json",
        response: { 200: "SessionInfo", ...errors },
        detail: {
          tags,
          summary: "Fork a session",
          description: "A new session holding copies of the first `messages` messages (to edit a message and branch the conversation); the source is unchanged. Its usage and cost start at zero.",
        },
      })
      .delete("/v1/sessions/:id", deleteSession(sessions), {
        auth: "account",
        params: t.Object({ id: t.String() }),
        detail: { tags, summary: "Delete a session", description: "Cancels a reply being generated in it and frees its KV cache in the engine.", responses: docResponses({ 204: { description: "Deleted." } }) },
      })
  );
}

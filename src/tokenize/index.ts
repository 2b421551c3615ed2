// llama-server's POST /tokenize and POST /detokenize: an API key is required (and counted against its
// rate limits), nothing is billed: no tokens are generated or processed by the model.
import { Elysia } from "elysia";
import { authPlugin, type Authenticator } from "../http/auth.ts";
import { ErrorResponse } from "../http/errors.ts";
import { fieldsPlugin, type FieldPolicy } from "../http/fields.ts";
import type { Backend } from "../generation/backend.ts";
import { DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse } from "./model.ts";
import { detokenize, tokenize } from "./service.ts";

export interface TokenizeDeps<P> {
  /** May be a getter that throws 503 while models load. */
  readonly engine: Backend;
  platform: Authenticator<P> | null;
}

const errors = { 400: "ErrorResponse", 401: "ErrorResponse", 404: "ErrorResponse", 429: "ErrorResponse", 503: "ErrorResponse" } as const;

export function tokenizeRoutes<P>(deps: TokenizeDeps<P>, fields: FieldPolicy) {
  return new Elysia({ name: "tokenize" })
    .use(authPlugin(deps.platform))
    .use(fieldsPlugin(fields))
    .model({ TokenizeRequest, TokenizeResponse, DetokenizeRequest, DetokenizeResponse, ErrorResponse })
    .post("/tokenize", ({ body }) => tokenize(deps.engine, body), {
      auth: "key",
      fields: TokenizeRequest,
      body: "TokenizeRequest",
      parse: "json",
      response: { 200: "TokenizeResponse", ...errors },
      detail: {
        tags: ["llama-server"],
        summary: "Tokenize text",
        description: "As llama-server: `{\"tokens\": [ids]}`, or with `with_pieces` `{\"tokens\": [{\"id\", \"piece\"}]}` (a piece that is not whole UTF-8 characters is its byte list). Not billed.",
      },
    })
    .post("/detokenize", ({ body }) => detokenize(deps.engine, body), {
      auth: "key",
      fields: DetokenizeRequest,
      body: "DetokenizeRequest",
      parse: "json",
      response: { 200: "DetokenizeResponse", ...errors },
      detail: { tags: ["llama-server"], summary: "Detokenize token ids", description: 'As llama-server: `{"content": "..."}`. Ids outside the vocabulary are a 400. Not billed.' },
    });
}

// The closed set of API errors: each kind has one HTTP status, OpenAI error `type` and `code`. Every
// failure leaves the server in its route's error shape: OpenAI's {"error":{"message","type","param","code"}}
// by default, or another API's body for the path prefixes that speak it (Anthropic's on /v1/messages).
import { t } from "elysia";
import { EngineError } from "../inference/types.ts";

export const ERROR_KINDS = {
  invalid_request: { status: 400, type: "invalid_request_error", code: null },
  invalid_json: { status: 400, type: "invalid_request_error", code: "invalid_json" },
  context_length_exceeded: { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
  // Types and codes of 401/402/403 are the Cocoon Platform API's (seed 001).
  unauthorized: { status: 401, type: "invalid_auth", code: "invalid_api_key" },
  // A key past its expires_at: still a 401, with its own code so a client knows to get a new key.
  key_expired: { status: 401, type: "invalid_auth", code: "key_expired" },
  insufficient_balance: { status: 402, type: "insufficient_balance", code: "insufficient_balance" },
  // A key's own spending limit (max_budget or its per-day/week/month budget), not the account's balance.
  budget_exceeded: { status: 402, type: "insufficient_balance", code: "budget_exceeded" },
  forbidden: { status: 403, type: "auth_error", code: "forbidden" },
  model_not_found: { status: 404, type: "invalid_request_error", code: "model_not_found" },
  not_found: { status: 404, type: "invalid_request_error", code: "not_found" },
  // The Responses API's previous_response_id names no stored response of the caller's (OpenAI's code).
  previous_response_not_found: { status: 404, type: "invalid_request_error", code: "previous_response_not_found" },
  method_not_allowed: { status: 405, type: "invalid_request_error", code: "method_not_allowed" },
  // A session already has a turn in flight (one reply at a time per conversation).
  conflict: { status: 409, type: "invalid_request_error", code: "session_busy" },
  // An account keeps the most sessions allowed (--max-sessions).
  session_limit: { status: 409, type: "invalid_request_error", code: "session_limit_reached" },
  // Creating something under an id that is taken (e.g. forking onto an existing session).
  already_exists: { status: 409, type: "invalid_request_error", code: "already_exists" },
  payload_too_large: { status: 413, type: "invalid_request_error", code: "payload_too_large" },
  unsupported_media_type: { status: 415, type: "invalid_request_error", code: "unsupported_media_type" },
  unprocessable: { status: 422, type: "invalid_request_error", code: "unprocessable_entity" },
  // Request headers over our limit (src/http/header-size.ts).
  header_too_large: { status: 431, type: "invalid_request_error", code: "request_header_fields_too_large" },
  // A plain request to a WebSocket-only path.
  upgrade_required: { status: 426, type: "invalid_request_error", code: "upgrade_required" },
  rate_limited: { status: 429, type: "rate_limit_error", code: "rate_limit_exceeded" },
  // Which limit was hit, for a client that backs off differently per limit (all are 429s).
  rpm_limited: { status: 429, type: "rate_limit_error", code: "rpm_limit_exceeded" },
  tpm_limited: { status: 429, type: "rate_limit_error", code: "tpm_limit_exceeded" },
  rpd_limited: { status: 429, type: "rate_limit_error", code: "rpd_limit_exceeded" },
  parallel_limited: { status: 429, type: "rate_limit_error", code: "max_parallel_requests_exceeded" },
  // Sign-ups from one client address beyond --register-limit.
  signup_limited: { status: 429, type: "rate_limit_error", code: "signup_limit_exceeded" },
  server_error: { status: 500, type: "server_error", code: "internal_error" },
  // A remote worker failed after it had accepted the request: the gateway is fine, the upstream is not.
  upstream_failed: { status: 502, type: "server_error", code: "upstream_failed" },
  overloaded: { status: 503, type: "server_error", code: "server_overloaded" },
  not_ready: { status: 503, type: "server_error", code: "not_ready" },
  // The database cannot be written (disk full, read-only, I/O error): nothing that must be recorded runs.
  storage_unavailable: { status: 503, type: "server_error", code: "storage_unavailable" },
  no_eligible_worker: { status: 504, type: "timeout_error", code: "no_eligible_worker" },
  timeout: { status: 504, type: "timeout_error", code: "timeout" },
} as const;

export type ErrorKind = keyof typeof ERROR_KINDS;

export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly type: string;
  readonly code: string | null;

  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    const k = ERROR_KINDS[kind];
    this.status = k.status;
    this.type = k.type;
    this.code = k.code;
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  response(extraHeaders: Record<string, string> = {}): Response {
    return Response.json(this.body(), { status: this.status, headers: { ...this.headers, ...extraHeaders } });
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** How long a client should wait after a 503 overloaded, in seconds. */
export const RETRY_AFTER_SECONDS = 1;

/** Engine failures in API terms. */
export function fromEngineError(e: EngineError): ApiError {
  switch (e.code) {
    case "overloaded":
      return new ApiError("overloaded", e.message, null, { "Retry-After": String(RETRY_AFTER_SECONDS) });
    case "model_not_found":
      return new ApiError("model_not_found", e.message, "model");
    case "context_overflow":
      return new ApiError("context_length_exceeded", e.message, e.param ?? "messages");
    case "invalid_request":
      return new ApiError("invalid_request", e.message, e.param ?? null);
    case "shutting_down":
      return new ApiError("not_ready", e.message, null, { "Retry-After": "5" });
    case "upstream_failed":
      return new ApiError("upstream_failed", e.message);
    case "worker_crashed":
    case "internal":
      return new ApiError("server_error", e.message);
  }
}

/**
 * SQLite's codes for a database that cannot be written now (full disk, read-only file or mount, I/O
 * error, another writer holding it past the busy timeout): the operator's to fix, the client's to retry.
 */
const STORAGE_CODES = /^(SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED|PROTOCOL)|STORE_UNAVAILABLE)/;

/** Whether `err` is the database refusing a write for a reason outside the request (see STORAGE_CODES). */
export function isStorageFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && STORAGE_CODES.test(code);
}

/** The 503 for a database that cannot be written. */
export function storageUnavailable(): ApiError {
  return new ApiError("storage_unavailable", "Storage unavailable: the server cannot record this request right now (its database cannot be written). Retry later.", null, { "Retry-After": "10" });
}

/** Anything thrown anywhere, as an ApiError; unknown errors never leak their details. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineError) return fromEngineError(err);
  if (isStorageFailure(err)) return storageUnavailable();
  return new ApiError("server_error", "The server had an error while processing your request.");
}

/** The error body as a schema, registered by every route module for its error responses. */
export const ErrorResponse = t.Object(
  {
    error: t.Object({
      message: t.String(),
      type: t.String(),
      param: t.Union([t.String(), t.Null()]),
      code: t.Union([t.String(), t.Null()]),
    }),
  },
  { description: "Every error, in OpenAI's shape." },
);

/** One API's error body for the closed set: the status it answers with and the JSON it sends. */
export type ErrorShape = (e: ApiError) => { status: number; body: unknown };

/** Path prefixes and the error shape their routes answer with; every other path gets OpenAI's. */
export type ErrorShapes = readonly { prefix: string; shape: ErrorShape }[];

/** The error response for a request's path: the first prefix that matches (whole segments) decides. */
export function shapedErrorResponse(e: ApiError, path: string, shapes: ErrorShapes, extraHeaders: Record<string, string> = {}): Response {
  const match = shapes.find(({ prefix }) => path === prefix || path.startsWith(`${prefix}/`));
  if (!match) return e.response(extraHeaders);
  const { status, body } = match.shape(e);
  return Response.json(body, { status, headers: { ...e.headers, ...extraHeaders } });
}

// Anthropic's error types by our status; 503 overloaded is its 529 (what its clients retry on).
const ANTHROPIC_TYPES: Record<number, string> = {
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  429: "rate_limit_error",
  500: "api_error",
  503: "overloaded_error",
  504: "timeout_error",
};

/** Anthropic's error shape: {"type":"error","error":{"type","message"}}. */
export const anthropicErrorShape: ErrorShape = (e) => {
  const status = e.kind === "overloaded" ? 529 : e.status;
  const type = e.kind === "overloaded" ? "overloaded_error" : e.kind === "storage_unavailable" ? "api_error" : (ANTHROPIC_TYPES[e.status] ?? (e.status < 500 ? "invalid_request_error" : "api_error"));
  return { status, body: { type: "error", error: { type, message: e.message } } };
};

/** The Anthropic error body as a schema, for the Messages API's error responses. */
export const AnthropicErrorResponse = t.Object(
  { type: t.Literal("error"), error: t.Object({ type: t.String(), message: t.String() }) },
  { description: "Every error on the Anthropic Messages API routes, in Anthropic's shape." },
);

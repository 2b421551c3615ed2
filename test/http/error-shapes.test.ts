// Error shapes by path prefix: Anthropic's body and statuses on its routes, OpenAI's everywhere else.
import { describe, expect, test } from "bun:test";
import { ApiError, anthropicErrorShape, shapedErrorResponse, type ErrorShapes } from "../../src/http/errors.ts";

const shapes: ErrorShapes = [{ prefix: "/v1/messages", shape: anthropicErrorShape }];

describe("shapedErrorResponse", () => {
  test("the prefix matches whole path segments; other paths keep OpenAI's shape", async () => {
    const e = new ApiError("unauthorized", "no key");
    for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
      const r = shapedErrorResponse(e, path, shapes);
      expect(r.status).toBe(401);
      expect(await r.json()).toEqual({ type: "error", error: { type: "authentication_error", message: "no key" } });
    }
    for (const path of ["/v1/messagesx", "/v1/chat/completions"]) {
      expect(await shapedErrorResponse(e, path, shapes).json()).toEqual({ error: { message: "no key", type: "invalid_auth", param: null, code: "invalid_api_key" } });
    }
  });

  test("Anthropic's types and statuses: 529 for overloaded, billing_error for 402, the kind's headers kept", async () => {
    const cases: [ApiError, number, string][] = [
      [new ApiError("invalid_request", "x"), 400, "invalid_request_error"],
      [new ApiError("context_length_exceeded", "x"), 400, "invalid_request_error"],
      [new ApiError("insufficient_balance", "x"), 402, "billing_error"],
      [new ApiError("forbidden", "x"), 403, "permission_error"],
      [new ApiError("model_not_found", "x"), 404, "not_found_error"],
      [new ApiError("payload_too_large", "x"), 413, "invalid_request_error"],
      [new ApiError("rate_limited", "x", null, { "Retry-After": "3" }), 429, "rate_limit_error"],
      [new ApiError("server_error", "x"), 500, "api_error"],
      [new ApiError("overloaded", "x", null, { "Retry-After": "1" }), 529, "overloaded_error"],
      [new ApiError("not_ready", "x"), 503, "overloaded_error"],
      [new ApiError("timeout", "x"), 504, "timeout_error"],
    ];
    for (const [e, status, type] of cases) {
      const r = shapedErrorResponse(e, "/v1/messages", shapes);
      expect({ kind: e.kind, status: r.status, type: ((await r.json()) as { error: { type: string } }).error.type }).toEqual({ kind: e.kind, status, type });
      for (const [k, v] of Object.entries(e.headers)) expect(r.headers.get(k)).toBe(v);
    }
  });
});

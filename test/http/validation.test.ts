// Validation failures read as sentences that name the field: unknown keys as OpenAI words them,
// patterns shown, and query parameters told apart from the body.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { validationMessage } from "../../src/http/validation.ts";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";
import { billedPlatform, type BilledPlatform } from "../support/billed.ts";

setDefaultTimeout(60_000);

describe("validationMessage", () => {
  test("an unknown key is an unrecognized argument, not a wrong-typed object", () => {
    expect(validationMessage("foo", "Unexpected property", 1, { type: "object" }, 42, "body")).toBe("Unrecognized request argument supplied: foo");
    expect(validationMessage("status", "Unexpected property", "x", { type: "object" }, 42, "query")).toBe("Unrecognized query parameter: 'status'.");
    // A WebSocket message is validated by hand: no Elysia source, the body's wording.
    expect(validationMessage("foo", "Unexpected property", 1, { type: "object" }, 42)).toBe("Unrecognized request argument supplied: foo");
  });

  test("a pattern failure shows the pattern", () => {
    expect(validationMessage("id", "Expected string to match '^[a-z]+$'", "A!", { type: "string", pattern: "^[a-z]+$" }, 53)).toBe(
      `Invalid value for 'id': expected a string matching /^[a-z]+$/, got "A!".`,
    );
  });

  test("a failure without a field says whether the query or the body was wrong", () => {
    expect(validationMessage(null, "Expected integer to be greater or equal to 1", 0, undefined, 25, "property")).toBe(
      "Invalid query parameter: Expected integer to be greater or equal to 1 (got 0).",
    );
    expect(validationMessage(null, "Expected object", 5, undefined, 25, "body")).toBe("Invalid request body: Expected object.");
  });
});

describe("validation errors on real routes", () => {
  let billed: BilledPlatform;
  let app: InProcessApp;
  let key: string;
  beforeAll(async () => {
    billed = billedPlatform("validation");
    key = billed.account().key;
    // Unknown fields are ignored by default; --strict-fields restores OpenAI's rejection, asserted here.
    app = await startInProcessApp({ platform: billed.platform, strictFields: true });
  });
  afterAll(() => {
    app.close();
    billed.close();
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.request(path, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, error: ((await res.json()) as { error: { message: string; param: string | null; type: string } }).error };
  };

  test("an unknown body field is named as OpenAI names it", async () => {
    const r = await call("POST", "/v1/chat/completions", { model: TINY_ID, messages: [{ role: "user", content: "hi" }], foo: 1 });
    expect(r).toEqual({ status: 400, error: expect.objectContaining({ message: "Unrecognized request argument supplied: foo", param: "foo", type: "invalid_request_error" }) });
  });

  test("an unknown or out-of-range query parameter says it is a query parameter", async () => {
    expect((await call("GET", "/v1/deposits?status=x")).error).toMatchObject({ message: "Unrecognized query parameter: 'status'.", param: "status" });
    expect((await call("GET", "/v1/deposits?limit=0")).error.message).toStartWith("Invalid query parameter:");
  });
});

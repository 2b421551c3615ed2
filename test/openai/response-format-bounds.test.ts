// response_format schemas whose grammar would be huge, over HTTP: a quick 400 naming response_format
// (or tools), never a 500 from a stack overflow or seconds of work for one request.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

setDefaultTimeout(60_000);

let app: InProcessApp;
beforeAll(async () => {
  app = await startInProcessApp();
});
afterAll(() => app.close());

const chat = (body: Record<string, unknown>) =>
  app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 1, ...body }),
  });
const jsonSchema = (schema: unknown) => ({ response_format: { type: "json_schema", json_schema: { name: "s", schema } } });

describe("grammar bounds over HTTP", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["minItems 100000000", jsonSchema({ type: "array", minItems: 100_000_000 }), "response_format"],
    ["minItems 20000000", jsonSchema({ type: "array", items: { type: "integer" }, minItems: 20_000_000 }), "response_format"],
    ["minLength 1e15", jsonSchema({ type: "object", properties: { s: { type: "string", minLength: 1e15 } } }), "response_format"],
    ["20000 tuple items", jsonSchema({ type: "array", prefixItems: Array.from({ length: 20_000 }, () => ({ type: "integer" })) }), "response_format"],
    [
      "a forced tool whose parameters want 1e8 items",
      { tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { xs: { type: "array", minItems: 100_000_000 } }, required: ["xs"] } } }], tool_choice: "required" },
      "tools",
    ],
  ];
  for (const [name, body, param] of cases) {
    test(`${name}: 400 naming ${param}, at once`, async () => {
      const t0 = performance.now();
      const r = await chat(body);
      const ms = performance.now() - t0;
      expect(r.status).toBe(400);
      const j = (await r.json()) as { error: { param: string | null; message: string; type: string } };
      expect(j.error.type).toBe("invalid_request_error");
      expect(j.error.param).toBe(param);
      expect(j.error.message).toMatch(/not supported/);
      expect(ms).toBeLessThan(2000);
    });
  }

  test("a maximum past the bound is accepted (left open) and the request runs", async () => {
    const r = await chat(jsonSchema({ type: "array", items: { type: "integer" }, maxItems: 100_000_000 }));
    expect(r.status).toBe(200);
    expect(app.logged).toEqual([]);
  });
});

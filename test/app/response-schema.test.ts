// Response schemas are checked: a handler whose body breaks its declared schema fails loudly in
// tests (500, logged) and, in production, is logged and sent as it is (it may already be billed).
import { describe, expect, test } from "bun:test";
import { t } from "elysia";
import { createApp } from "../../src/app.ts";
import { ApiError } from "../../src/http/errors.ts";
import type { Engine } from "../../src/inference/engine.ts";

const Body = t.Object({ id: t.String(), count: t.Integer() });

function appWith(strictResponses: boolean | undefined, logged: string[]) {
  const app = createApp({
    get engine(): Engine {
      throw new ApiError("not_ready", "no engine in this test");
    },
    loadedEngine: () => null,
    platform: null,
    version: "0.0.0-test",
    log: (line) => logged.push(line),
    strictResponses,
  });
  return app
    .get("/right", () => ({ id: "a", count: 1 }), { response: { 200: Body } })
    .get("/wrong", () => ({ id: "a", count: "one" }) as unknown as { id: string; count: number }, { response: { 200: Body } });
}

describe("declared response schemas", () => {
  test("under bun test a body that breaks its schema is a logged 500 in OpenAI's error shape", async () => {
    const logged: string[] = [];
    const app = appWith(undefined, logged);
    const right = await app.handle(new Request("http://localhost/right"));
    expect(right.status).toBe(200);
    expect(await right.json()).toEqual({ id: "a", count: 1 });
    const wrong = await app.handle(new Request("http://localhost/wrong"));
    expect(wrong.status).toBe(500);
    expect(await wrong.json()).toEqual({ error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: "internal_error" } });
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain("GET /wrong: the response does not match its schema at '/count'");
  });

  test("in production the mismatch is logged and the body goes out unchanged", async () => {
    const logged: string[] = [];
    const wrong = await appWith(false, logged).handle(new Request("http://localhost/wrong"));
    expect(wrong.status).toBe(200);
    expect(await wrong.json()).toEqual({ id: "a", count: "one" });
    expect(logged[0]).toContain("the response does not match its schema at '/count'");
  });
});

// Oversized request headers on the real server: Bun's parser would answer them with an empty 431;
// the server raises that limit, so headers up to 64 KiB are served and larger ones get a 431 in the
// route's error shape (OpenAI's, Anthropic's on /v1/messages), with the access log line.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(120_000);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

describe("request header size", () => {
  test("20 KiB of headers (over Bun's default 16 KiB) are served", async () => {
    const res = await fetch(`${server.url}/v1/models`, { headers: { "x-filler": "a".repeat(20 * 1024) } });
    expect(res.status).toBe(200);
  });

  test("100 KiB of headers: a 431 with an OpenAI error body, not an empty one", async () => {
    const res = await fetch(`${server.url}/v1/models`, { headers: { "x-filler": "a".repeat(100 * 1024) } });
    expect(res.status).toBe(431);
    const body = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.code).toBe("request_header_fields_too_large");
    expect(body.error.message).toContain("the limit is 65536");
  });

  test("on /v1/messages the 431 is in Anthropic's shape", async () => {
    const res = await fetch(`${server.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json", cookie: "c=".padEnd(80 * 1024, "z") }, body: "{}" });
    expect(res.status).toBe(431);
    const body = (await res.json()) as { type: string; error: { type: string } };
    expect(body.type).toBe("error");
    expect(body.error.type).toBe("invalid_request_error");
  });
});

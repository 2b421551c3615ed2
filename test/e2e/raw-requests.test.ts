// Requests no HTTP client library sends, over a raw TCP socket to the real server: an invalid, empty
// or missing Host gets a 400 in OpenAI's shape (never Bun's development error page with paths, source
// and the URL's ?api_key=), counted in the metrics and logged without the key.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(120_000);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer([], { auth: true });
});
afterAll(() => server.stop());

/** Sends `raw` as it is and returns everything the server answered until it closed the connection. */
function exchange(raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = "";
    const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(raw.slice(0, 60))}: ${answer}`)), 10_000);
    void Bun.connect({
      hostname: "127.0.0.1",
      port: server.port,
      socket: {
        open: (s) => void s.write(raw),
        data: (_s, d) => void (answer += d.toString()),
        close: () => (clearTimeout(timer), resolve(answer)),
        error: (_s, err) => (clearTimeout(timer), reject(err)),
      },
    });
  });
}

const KEY = "ck_raw0secret0never0shown0anywhere0000000000";

describe("requests without a valid Host", () => {
  const cases: [string, string][] = [
    ["a Host with a space", `GET /v1/models?api_key=${KEY} HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n`],
    ["an empty Host", `GET /v1/models?api_key=${KEY} HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n`],
    ["HTTP/1.0 without a Host", `GET /v1/chat/completions?api_key=${KEY} HTTP/1.0\r\n\r\n`],
    ["a POST with a body", `POST /v1/chat/completions?api_key=${KEY} HTTP/1.1\r\nHost: a b\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`],
  ];
  for (const [name, raw] of cases) {
    test(`${name}: a 400 in OpenAI's shape, with no stack, path or key`, async () => {
      const answer = await exchange(raw);
      const [head, body] = answer.split("\r\n\r\n", 2) as [string, string];
      expect(head).toStartWith("HTTP/1.1 400");
      expect(head.toLowerCase()).toContain("content-type: application/json");
      const j = JSON.parse(body) as { error: { message: string; type: string; param: string | null; code: string | null } };
      expect(j.error.type).toBe("invalid_request_error");
      expect(j.error.message).toContain("Host");
      expect(answer).not.toContain(KEY);
      expect(answer).not.toMatch(/\/work\/|src\/|\.ts\b|<html/i);
      expect(answer.length).toBeLessThan(1000);
    });
  }

  test("they are counted in the metrics and logged as an access line without the key", async () => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const lines = metrics.split("\n").filter((l) => l.startsWith("cocoon_http_requests_total{") && l.includes('status="400"'));
    expect(lines.reduce((n, l) => n + Number(l.split(" ").at(-1)), 0)).toBe(4);
    expect(server.log()).toMatch(/INFO {2}GET \/v1\/models 400 /);
    expect(server.log()).not.toContain(KEY);
  });

  test("headers past our 64 KiB limit: a 431 with an OpenAI error body; past Bun's raised 1 MiB, Bun's own bare 431; neither echoes the request", async () => {
    const ours = await exchange(`GET /health?api_key=${KEY} HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(100_000)}\r\nConnection: close\r\n\r\n`);
    expect(ours).toStartWith("HTTP/1.1 431");
    expect(ours).toContain('"code":"request_header_fields_too_large"');
    expect(ours).not.toContain(KEY);
    const bun = await exchange(`GET /health?api_key=${KEY} HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(1_100_000)}\r\nConnection: close\r\n\r\n`);
    expect(bun).toStartWith("HTTP/1.1 431");
    expect(bun).not.toContain(KEY);
    expect(bun.length).toBeLessThan(200);
  });
});

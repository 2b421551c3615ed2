// --no-auth guards by the network only, so the server answers only to loopback names and configured
// hosts (no DNS rebinding) and accepts WebSocket upgrades only from its own or configured origins
// (no cross-site sockets); the rest gets a 403 in OpenAI's shape. With keys on, Host is not checked.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { noAuthExposure } from "../../src/server.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(120_000);

let open: TestServer;
let keyed: TestServer;
beforeAll(async () => {
  open = await startTestServer(["--allowed-hosts", "cocoon.lan", "--allowed-origins", "http://ui.example:8080"]);
  keyed = await startTestServer([], { auth: true });
});
afterAll(async () => {
  await open.stop();
  await keyed.stop();
});

/** Sends `raw` and resolves with the response head (status line and headers), then hangs up. */
function head(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = "";
    const timer = setTimeout(() => reject(new Error(`no answer: ${answer}`)), 10_000);
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => void s.write(raw),
        data: (s, d) => {
          answer += d.toString();
          const end = answer.indexOf("\r\n\r\n");
          if (end === -1) return;
          clearTimeout(timer);
          resolve(answer);
          s.end();
        },
        close: () => (clearTimeout(timer), resolve(answer)),
        error: (_s, err) => (clearTimeout(timer), reject(err)),
      },
    });
  });
}

const get = (port: number, host: string, path = "/v1/models") => head(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
const upgrade = (port: number, host: string, origin: string | null) =>
  head(
    port,
    `GET /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${origin ? `Origin: ${origin}\r\n` : ""}\r\n`,
  );
const status = (answer: string) => Number(answer.slice(9, 12));

describe("--no-auth: hosts", () => {
  test("loopback names, the bind address and --allowed-hosts are served", async () => {
    for (const host of ["localhost", `localhost:${open.port}`, `127.0.0.1:${open.port}`, "[::1]", `[::1]:${open.port}`, "LOCALHOST", "cocoon.lan", `cocoon.lan:${open.port}`]) {
      expect(`${host}: ${status(await get(open.port, host))}`).toBe(`${host}: 200`);
    }
  });

  test("any other name (DNS rebinding) gets a 403 in OpenAI's shape, on every route", async () => {
    for (const host of ["evil.example", `evil.example:${open.port}`, "localhost.evil.example", "127.0.0.1.nip.io", "cocoon.lan.evil.example"]) {
      for (const path of ["/v1/models", "/v1/sessions", "/health"]) {
        const answer = await get(open.port, host, path);
        expect(`${host}${path}: ${status(answer)}`).toBe(`${host}${path}: 403`);
      }
    }
    const res = await get(open.port, "evil.example");
    const body = JSON.parse(res.slice(res.indexOf("\r\n\r\n") + 4)) as { error: { message: string; type: string; code: string } };
    expect(body.error.code).toBe("forbidden");
    expect(body.error.message).toContain("--allowed-hosts");
  });

  test("a POST through a rebinding name is refused before it runs", async () => {
    const body = JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 1 });
    const answer = await head(open.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(status(answer)).toBe(403);
  });
});

describe("--no-auth: WebSocket origins", () => {
  test("the server's own origin, --allowed-origins and clients without an Origin may connect", async () => {
    for (const origin of [`http://127.0.0.1:${open.port}`, "http://ui.example:8080", "HTTP://UI.EXAMPLE:8080/", null]) {
      expect(`${origin}: ${status(await upgrade(open.port, `127.0.0.1:${open.port}`, origin))}`).toBe(`${origin}: 101`);
    }
    const ws = new WebSocket(`ws://127.0.0.1:${open.port}/chat/ws`);
    await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)));
    ws.close();
  });

  test("another site's page cannot open a socket: 403", async () => {
    for (const origin of ["http://evil.example", `http://localhost:${open.port + 1}`, "null", "http://ui.example:8081", `https://127.0.0.1:${open.port}.evil.example`]) {
      expect(`${origin}: ${status(await upgrade(open.port, `127.0.0.1:${open.port}`, origin))}`).toBe(`${origin}: 403`);
    }
  });
});

describe("with keys on", () => {
  test("Host is not checked: the key is the guard", async () => {
    expect(status(await get(keyed.port, "evil.example", "/health"))).toBe(200);
  });

  test("--no-auth beyond loopback is warned about; on loopback it is not", () => {
    for (const host of ["127.0.0.1", "localhost", "::1", "127.1.2.3"]) expect(noAuthExposure(host)).toBeNull();
    for (const host of ["0.0.0.0", "::", "192.168.1.5", "example.com"]) expect(noAuthExposure(host)).toContain("beyond loopback");
  });
});

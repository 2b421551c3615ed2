// CORS: preflights answered on every API route, the headers on successes, streams and errors alike;
// --cors-origins narrows it to a list (echoing the origin, Vary: Origin) or turns it off.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { parseCorsOrigins } from "../../src/http/cors.ts";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";
import { billedPlatform, type BilledPlatform } from "../support/billed.ts";

setDefaultTimeout(60_000);

const ORIGIN = "https://app.example";
const SDK_HEADERS = "authorization, content-type, x-stainless-os, x-stainless-retry-count, openai-organization, x-api-key, anthropic-version";

let billed: BilledPlatform;
let open: InProcessApp;
let listed: InProcessApp;
let off: InProcessApp;
let key: string;

beforeAll(async () => {
  billed = billedPlatform("cors");
  key = billed.account().key;
  open = await startInProcessApp({ platform: billed.platform, slots: 1 });
  listed = await startInProcessApp({ slots: 1, cors: parseCorsOrigins("https://app.example, http://localhost:5173/") });
  off = await startInProcessApp({ slots: 1, cors: parseCorsOrigins("off") });
});
afterAll(() => {
  open?.close();
  listed?.close();
  off?.close();
  billed?.close();
});

const preflight = (h: InProcessApp, path: string, origin = ORIGIN) =>
  h.request(path, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": SDK_HEADERS } });

const chatBody = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: TINY_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 2, ...extra });

describe("parseCorsOrigins", () => {
  test("*, empty, off and lists", () => {
    expect(parseCorsOrigins("*")).toEqual({ kind: "any" });
    expect(parseCorsOrigins("")).toEqual({ kind: "any" });
    expect(parseCorsOrigins("OFF")).toEqual({ kind: "off" });
    expect(parseCorsOrigins("https://a.example/, http://b.example:8080")).toEqual({ kind: "list", origins: new Set(["https://a.example", "http://b.example:8080"]) });
  });
});

describe("by default any origin may call the API", () => {
  for (const path of ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/tokenize", "/v1/balance", "/health"]) {
    test(`preflight on ${path}: 204 with the methods and the SDKs' headers`, async () => {
      const res = await preflight(open, path);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-methods")).toContain("POST");
      const allowed = res.headers.get("access-control-allow-headers")!.toLowerCase();
      for (const h of SDK_HEADERS.split(", ")) expect(allowed).toContain(h);
      expect(allowed).toContain("anthropic-beta");
      expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
    });
  }

  test("a successful call exposes the rate-limit and Cocoon headers", async () => {
    const res = await open.request("/v1/chat/completions", { method: "POST", headers: { origin: ORIGIN, authorization: `Bearer ${key}`, "content-type": "application/json" }, body: chatBody() });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const exposed = res.headers.get("access-control-expose-headers")!;
    for (const h of ["X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "X-Cocoon-Cost-Nanoton", "X-Cocoon-Client-Start", "X-Cocoon-Ignored-Fields"]) expect(exposed).toContain(h);
    expect(res.headers.get("x-ratelimit-remaining")).not.toBeNull();
    await res.json();
  });

  test("a stream carries the headers", async () => {
    const res = await open.request("/v1/chat/completions", { method: "POST", headers: { origin: ORIGIN, authorization: `Bearer ${key}`, "content-type": "application/json" }, body: chatBody({ stream: true }) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.text()).toContain("[DONE]");
  });

  test("errors carry them: 401, 400, 404", async () => {
    const noKey = await open.request("/v1/chat/completions", { method: "POST", headers: { origin: ORIGIN, "content-type": "application/json" }, body: chatBody() });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get("access-control-allow-origin")).toBe("*");
    expect(noKey.headers.get("access-control-expose-headers")).toContain("X-RateLimit-Limit");
    const bad = await open.request("/v1/chat/completions", { method: "POST", headers: { origin: ORIGIN, authorization: `Bearer ${key}`, "content-type": "application/json" }, body: chatBody({ max_tokens: "many" }) });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("access-control-allow-origin")).toBe("*");
    const missing = await open.request("/v1/nothing-here", { headers: { origin: ORIGIN } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("*");
  });

  test("the web UI is still served", async () => {
    const res = await open.request("/", { headers: { origin: ORIGIN } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
  });
});

describe("--cors-origins with a list", () => {
  test("a listed origin is echoed, with Vary: Origin", async () => {
    const pre = await preflight(listed, "/v1/chat/completions", "http://localhost:5173");
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(pre.headers.get("vary")).toContain("Origin");
    const res = await listed.request("/v1/chat/completions", { method: "POST", headers: { origin: ORIGIN, "content-type": "application/json" }, body: chatBody() });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(res.headers.get("vary")).toContain("Origin");
    await res.json();
  });

  test("another origin gets no CORS headers (the browser blocks it)", async () => {
    const pre = await preflight(listed, "/v1/chat/completions", "https://evil.example");
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect(pre.headers.get("access-control-allow-headers")).toBeNull();
    const res = await listed.request("/v1/models", { headers: { origin: "https://evil.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("vary")).toContain("Origin");
  });
});

describe("--cors-origins off", () => {
  test("no preflight answer and no CORS headers", async () => {
    const pre = await preflight(off, "/v1/chat/completions");
    expect(pre.status).toBe(404);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    const res = await off.request("/v1/models", { headers: { origin: ORIGIN } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });
});

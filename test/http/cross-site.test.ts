// What a web page on another site can make a browser send without asking (no CORS preflight): a
// text/plain or form POST, or a URL with ?api_key=. None of it reaches a billed route: JSON bodies
// must say so (415 otherwise), and a query key counts only on WebSocket upgrades.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { billedApp } from "../support/billed.ts";

setDefaultTimeout(120_000);

const h = billedApp("cross-site");
const billed = h.billed;

const chatBody = JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 1 });
const usageRows = (accountId: number) => Number(billed.db.query<{ n: bigint }, [number]>("SELECT count(*) AS n FROM usage WHERE account_id = ?").get(accountId)!.n);

describe("cross-site requests", () => {
  test("a JSON route refuses a body that is not declared JSON with 415, before anything is billed", async () => {
    const a = billed.account("1");
    const types: (string | null)[] = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", null];
    for (const type of types) {
      for (const path of ["/v1/chat/completions", "/v1/completions", "/chat/completions", "/v1/embeddings"]) {
        const headers: Record<string, string> = { authorization: `Bearer ${a.key}` };
        // A Blob without a type is how a page sends a body with no Content-Type at all.
        const body = type === null ? new Blob([chatBody]) : chatBody;
        if (type !== null) headers["content-type"] = type;
        const r = await h.app.request(path, { method: "POST", headers, body });
        expect(`${path} ${type}: ${r.status}`).toBe(`${path} ${type}: 415`);
        const j = (await r.json()) as { error: { code: string; message: string } };
        expect(j.error.code).toBe("unsupported_media_type");
        expect(j.error.message).toContain("application/json");
      }
    }
    expect(usageRows(a.id)).toBe(0);
    expect(billed.platform.balance(a.id)!.balance).toBe(1_000_000_000n);
  });

  test("?api_key= is not a key on HTTP routes, JSON or not", async () => {
    const a = billed.account("1");
    const post = await h.app.request(`/v1/chat/completions?api_key=${a.key}`, { method: "POST", headers: { "content-type": "application/json" }, body: chatBody });
    expect(post.status).toBe(401);
    const get = await h.app.request(`/v1/balance?api_key=${a.key}`);
    expect(get.status).toBe(401);
    expect(usageRows(a.id)).toBe(0);
  });

  test("JSON with parameters and +json types are accepted, and a body-less POST where the body is optional still works", async () => {
    const a = billed.account("1");
    for (const type of ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"]) {
      const r = await h.app.request("/v1/chat/completions", { method: "POST", headers: { "content-type": type, authorization: `Bearer ${a.key}` }, body: chatBody });
      expect(`${type}: ${r.status}`).toBe(`${type}: 200`);
    }
    expect(usageRows(a.id)).toBe(4);
    const register = await h.app.request("/api/register", { method: "POST" });
    expect(register.status).toBe(200);
    const login = await h.app.request("/api/login", { method: "POST", headers: { authorization: `Bearer ${a.key}` } });
    expect(login.status).toBe(200);
  });
});

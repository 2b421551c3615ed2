// GET / serves the chat UI from the process itself: an HTML page whose every script and stylesheet is
// one of our own hashed, cacheable assets, with no URL of another host anywhere.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

setDefaultTimeout(60_000);

let h: InProcessApp;
beforeAll(async () => {
  h = await startInProcessApp();
});
afterAll(() => h?.close());

/** Every src= and href= value in the page. */
const references = (html: string) => [...html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']*)["']/g)].map((m) => m[1]!);

describe("GET /", () => {
  test("serves the chat UI page as UTF-8 HTML that must be revalidated, with a strict content security policy", async () => {
    const res = await h.request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    const html = await res.text();
    expect(html).toStartWith("<!doctype html>");
    for (const id of ["composer-input", "send-button", "session-list", "settings-panel", "account-panel", "token-counter", "conn-status", "model-select", "export-json", "export-markdown"]) {
      expect(html).toContain(`data-testid="${id}"`);
    }
  });

  test("references no external script, stylesheet or other URL: only its own /ui/ assets and a data: icon", async () => {
    const html = await (await h.request("/")).text();
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/(?:src|href)\s*=\s*["']?\/\//i);
    const refs = references(html);
    expect(refs.length).toBe(3);
    for (const ref of refs) expect(ref.startsWith("/ui/") || ref.startsWith("data:image/svg+xml,")).toBe(true);
    // No inline script: everything runs from the one served module.
    const scripts = [...html.matchAll(/<script\b[^>]*>[\s\S]*?<\/script>/g)].map((m) => m[0]);
    expect(scripts).toHaveLength(1);
    expect(scripts[0]).toMatch(/^<script type="module" src="\/ui\/app\.[a-z0-9]+\.js"><\/script>$/);
  });

  test("serves each referenced asset with its content type and an immutable cache header; the assets load nothing from elsewhere", async () => {
    const html = await (await h.request("/")).text();
    const assets = references(html).filter((r) => r.startsWith("/ui/"));
    const types = new Map<string, string>();
    for (const path of assets) {
      const res = await h.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      types.set(path.split(".").pop()!, res.headers.get("content-type") ?? "");
      const body = await res.text();
      expect(body.length).toBeGreaterThan(1000);
      // No stylesheet import, url() or script import/fetch of an absolute URL.
      expect(body).not.toMatch(/@import|url\(\s*["']?https?:/i);
      expect(body).not.toMatch(/(?:import\s*\(?|from|fetch\()\s*["'`]https?:/i);
      expect(body).not.toMatch(/["'`]https?:\/\/[^"'`]/i);
    }
    expect(types.get("js")).toBe("text/javascript; charset=utf-8");
    expect(types.get("css")).toBe("text/css; charset=utf-8");
  });

  test("an unknown asset name is a 404 in the OpenAI error shape", async () => {
    const res = await h.request("/ui/app.nothere.js");
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    expect(body.error.message).toBe("No UI asset named 'app.nothere.js'.");
    expect(body.error.code).toBe("not_found");
  });

  test("the OpenAPI document lists / with a short description and hides the asset route", async () => {
    const doc = (await (await h.request("/swagger/json")).json()) as { paths: Record<string, Record<string, { summary?: string }>> };
    expect(doc.paths["/"]?.get?.summary).toBe("The built-in chat UI");
    expect(Object.keys(doc.paths).some((p) => p.startsWith("/ui/"))).toBe(false);
  });
});

// GET /admin serves the dashboard shell from the process itself (no data in it, no URL of another host,
// the chat UI's strict CSP), and only where an admin token is configured: otherwise a 403.
import { describe, expect, test } from "bun:test";
import { webAssets, webRoutes } from "../../src/web/index.ts";

const get = (app: ReturnType<typeof webRoutes>, path: string) => app.handle(new Request(`http://localhost${path}`));
const references = (html: string) => [...html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']*)["']/g)].map((m) => m[1]!);

describe("GET /admin", () => {
  test("with an admin token configured: the page, revalidated, under a strict policy, referencing only its own assets", async () => {
    const app = webRoutes({ adminEnabled: () => true });
    const res = await get(app, "/admin");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//i);
    const refs = references(html);
    expect(refs.sort()).toEqual([webAssets.adminScript, webAssets.adminStyle, refs.find((r) => r.startsWith("data:"))!].sort());
    for (const id of ["login-form", "admin-token", "actor-name", "tab-accounts", "tab-deposits", "tab-audit", "chart-tokens-day", "chart-revenue-model", "load-table"]) expect(html).toContain(`data-testid="${id}"`);
  });

  test("its script and stylesheet are served, immutable, and the script names no other host", async () => {
    const app = webRoutes({ adminEnabled: () => true });
    const js = await get(app, webAssets.adminScript);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toContain("immutable");
    const text = await js.text();
    expect(text).toContain("/admin/audit");
    // The SVG namespace is a name, not a request; nothing else looks like a URL.
    expect(text.replaceAll("http://www.w3.org/2000/svg", "")).not.toMatch(/https?:\/\//);
    const css = await get(app, webAssets.adminStyle);
    expect(css.status).toBe(200);
    expect(await css.text()).not.toMatch(/url\(|@import/);
  });

  test("without an admin token (or with --no-auth) there is no dashboard: 403", async () => {
    for (const app of [webRoutes(), webRoutes({ adminEnabled: () => false })]) {
      const res = await get(app, "/admin");
      expect(res.status).toBe(403);
      expect(await res.text()).toContain("no admin token is configured");
    }
  });
});

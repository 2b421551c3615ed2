// The built-in chat UI (`GET /`) and operator dashboard (`GET /admin`): HTML pages whose scripts (bundled
// at load or compile time) and stylesheets (imported as text) are embedded in the executable, so both
// work on a box with no internet.
import { Elysia } from "elysia";
import { ApiError } from "../http/errors.ts";
import style from "./assets/app.css" with { type: "text" };
import adminStyle from "./assets/admin.css" with { type: "text" };
import { renderAdminPage } from "./admin-page.ts";
import { renderPage } from "./page.ts";
import { bundleAdmin, bundleClient } from "./bundle.ts" with { type: "macro" };

// The browser code is TypeScript modules in ./client, bundled into one module by a macro (see
// bundle.ts): one request, and no build artifact in the repository. Model output is rendered by
// building DOM nodes with textContent only: no string of it is ever parsed as HTML.
const script: string = bundleClient();
const adminScript: string = bundleAdmin();

interface Asset {
  body: string;
  type: string;
}

/** Content-hashed file name, so a new build is never served from a stale browser cache. */
const hashed = (base: string, ext: string, body: string) => `${base}.${Bun.hash(body).toString(36)}.${ext}`;

const scriptName = hashed("app", "js", script);
const styleName = hashed("app", "css", style);
const adminScriptName = hashed("admin", "js", adminScript);
const adminStyleName = hashed("admin", "css", adminStyle);

const ASSETS: Record<string, Asset> = {
  [scriptName]: { body: script, type: "text/javascript; charset=utf-8" },
  [styleName]: { body: style, type: "text/css; charset=utf-8" },
  [adminScriptName]: { body: adminScript, type: "text/javascript; charset=utf-8" },
  [adminStyleName]: { body: adminStyle, type: "text/css; charset=utf-8" },
};

const PAGE = renderPage({ script: `/ui/${scriptName}`, style: `/ui/${styleName}` });
const ADMIN_PAGE = renderAdminPage({ script: `/ui/${adminScriptName}`, style: `/ui/${adminStyleName}` });

// The page renders model output: the policy forbids anything but our own script and style, so even a
// rendering bug cannot run injected code or load from another host.
const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

export interface WebOptions {
  /** Whether the dashboard is served: an admin token is configured. Defaults to false (403). */
  adminEnabled?: () => boolean;
}

const html = (body: string) =>
  new Response(body, {
    // The page names the hashed assets, so it must be revalidated to pick up a new build.
    headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", ...SECURITY_HEADERS },
  });

export function webRoutes(o: WebOptions = {}) {
  return new Elysia({ name: "web-ui" })
    .get(
      "/admin",
      () => {
        // The page holds no data (every figure needs the token), but without a token there is nothing to open.
        if (!(o.adminEnabled?.() ?? false)) throw new ApiError("forbidden", "The admin dashboard is off: no admin token is configured (--admin-token).");
        return html(ADMIN_PAGE);
      },
      {
        detail: {
          tags: ["Web UI"],
          summary: "The operator dashboard",
          description:
            "An HTML page (no external resources) that asks for the admin token, then shows accounts and keys (search, credit/debit, revoke, limits), deposits (assign unmatched ones), the audit log, " +
            "tokens and revenue per day and per model, and live slot and queue load, all read from the admin routes. 403 when no admin token is configured.",
          responses: { 200: { description: "The dashboard page.", content: { "text/html": { schema: { type: "string" } } } } },
        },
      },
    )
    .get(
      "/",
      () =>
        new Response(PAGE, {
          // The page names the hashed assets, so it must be revalidated to pick up a new build.
          headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", ...SECURITY_HEADERS },
        }),
      {
        detail: {
          tags: ["Web UI"],
          summary: "The built-in chat UI",
          description: "An HTML page (no external resources): chat with streaming, server-side sessions, settings, API key entry or registration, balance and deposits.",
          responses: { 200: { description: "The chat UI page.", content: { "text/html": { schema: { type: "string" } } } } },
        },
      },
    )
    .get(
      "/ui/:file",
      ({ params }) => {
        const asset = ASSETS[params.file];
        if (!asset) throw new ApiError("not_found", `No UI asset named '${params.file}'.`);
        return new Response(asset.body, {
          headers: { "Content-Type": asset.type, "Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff" },
        });
      },
      { detail: { hide: true } },
    );
}

/** The asset URLs the pages reference (for tests). */
export const webAssets = { script: `/ui/${scriptName}`, style: `/ui/${styleName}`, adminScript: `/ui/${adminScriptName}`, adminStyle: `/ui/${adminStyleName}` };

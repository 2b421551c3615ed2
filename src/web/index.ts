// The built-in chat UI: `GET /` serves one HTML page whose script (bundled at load or compile time) and
// stylesheet (imported as text) are embedded in the executable, so the UI works on a box with no internet.
import { Elysia } from "elysia";
import { ApiError } from "../http/errors.ts";
import style from "./assets/app.css" with { type: "text" };
import { renderPage } from "./page.ts";
import { bundleClient } from "./bundle.ts" with { type: "macro" };

// The browser code is TypeScript modules in ./client, bundled into one module by a macro (see
// bundle.ts): one request, and no build artifact in the repository. Model output is rendered by
// building DOM nodes with textContent only: no string of it is ever parsed as HTML.
const script: string = bundleClient();

interface Asset {
  body: string;
  type: string;
}

/** Content-hashed file name, so a new build is never served from a stale browser cache. */
const hashed = (base: string, ext: string, body: string) => `${base}.${Bun.hash(body).toString(36)}.${ext}`;

const scriptName = hashed("app", "js", script);
const styleName = hashed("app", "css", style);

const ASSETS: Record<string, Asset> = {
  [scriptName]: { body: script, type: "text/javascript; charset=utf-8" },
  [styleName]: { body: style, type: "text/css; charset=utf-8" },
};

const PAGE = renderPage({ script: `/ui/${scriptName}`, style: `/ui/${styleName}` });

// The page renders model output: the policy forbids anything but our own script and style, so even a
// rendering bug cannot run injected code or load from another host.
const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

export function webRoutes() {
  return new Elysia({ name: "web-ui" })
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

/** The asset URLs the page references (for tests). */
export const webAssets = { script: `/ui/${scriptName}`, style: `/ui/${styleName}` };

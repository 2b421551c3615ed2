// Swagger UI served from our own process: the swagger-ui-dist assets are embedded in the executable
// (imported as files), so /swagger works on a box with no internet access.
import { Elysia } from "elysia";
import css from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import preset from "swagger-ui-dist/swagger-ui-standalone-preset.js" with { type: "file" };

const ASSETS: Record<string, { path: string; type: string }> = {
  "swagger-ui.css": { path: css, type: "text/css; charset=utf-8" },
  "swagger-ui-bundle.js": { path: bundle, type: "text/javascript; charset=utf-8" },
  "swagger-ui-standalone-preset.js": { path: preset, type: "text/javascript; charset=utf-8" },
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>cocoon-server API</title>
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js"></script>
  <script src="/swagger/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/swagger/json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      deepLinking: true,
      validatorUrl: null,
    });
  </script>
</body>
</html>`;

export function swaggerRoutes() {
  return new Elysia({ name: "swagger-ui" })
    .get("/swagger", () => new Response(PAGE, { headers: { "Content-Type": "text/html; charset=utf-8" } }), { detail: { hide: true } })
    .get(
      "/swagger/assets/:file",
      ({ params }) => {
        const asset = ASSETS[params.file];
        if (!asset) return new Response("not found", { status: 404 });
        return new Response(Bun.file(asset.path), { headers: { "Content-Type": asset.type, "Cache-Control": "public, max-age=86400" } });
      },
      { detail: { hide: true } },
    );
}

// The OpenAPI document validates and lists every route with schemas and examples; Swagger UI needs no other host.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
// The examples test runs every POST example through the real model: minutes when the 2 cores are shared.
setDefaultTimeout(240_000);

type Json = Record<string, unknown>;
interface Operation {
  requestBody?: { content?: Record<string, { schema?: Json; example?: unknown; examples?: Record<string, { value?: unknown }> }> };
  responses?: Record<string, { content?: Record<string, { schema?: Json }> }>;
}

let h: InProcessApp;
let doc: Json & { openapi: string; paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Json> } };

beforeAll(async () => {
  h = await startInProcessApp();
  const res = await h.request("/swagger/json");
  expect(res.status).toBe(200);
  doc = (await res.json()) as typeof doc;
});
afterAll(() => h?.close());

const HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/** Elysia's path syntax (/v1/models/:id) in OpenAPI's (/v1/models/{id}). */
const openapiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** Follows a local $ref (#/components/schemas/X) once. */
function resolve(schema: Json | undefined): Json | undefined {
  const ref = schema?.$ref;
  if (typeof ref !== "string") return schema;
  const name = ref.replace("#/components/schemas/", "");
  return doc.components?.schemas?.[name];
}

function servedRoutes(): { method: string; path: string; hidden: boolean }[] {
  return h.app.routes.map((r) => {
    const hooks = (r as unknown as { hooks?: { detail?: { hide?: boolean } } }).hooks;
    return { method: r.method, path: r.path, hidden: hooks?.detail?.hide === true };
  });
}

describe("OpenAPI document", () => {
  test("is OpenAPI 3 and passes @apidevtools/swagger-parser validation", async () => {
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    // validate() dereferences in place, so it gets a copy.
    const validated = await SwaggerParser.validate(structuredClone(doc) as never);
    expect(Object.keys((validated as { paths: object }).paths).length).toBeGreaterThan(0);
  });

  test("lists every non-hidden HTTP route the app serves, with its method, and nothing else", () => {
    const routes = servedRoutes();
    const visible = routes.filter((r) => HTTP_METHODS.includes(r.method) && !r.hidden);
    expect(visible.length).toBeGreaterThanOrEqual(10);
    const missing = visible.filter((r) => !doc.paths[openapiPath(r.path)]?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
    // The core API is among them.
    for (const p of ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/models/{id}", "/health", "/readiness", "/stats", "/jsonstats", "/metrics"]) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    // Every documented operation is a route the app really serves.
    const served = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openapiPath(r.path)}`));
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).filter((k) => HTTP_METHODS.includes(k.toUpperCase())).map((m) => `${m} ${p}`));
    expect(documented.filter((d) => !served.has(d))).toEqual([]);
    // Hidden routes (Swagger UI itself) stay out.
    expect(doc.paths["/swagger"]).toBeUndefined();
  });

  test("every POST route has a JSON request schema with examples, and each example is a request the server accepts", async () => {
    const posts = Object.entries(doc.paths).filter(([, item]) => item.post);
    expect(posts.map(([p]) => p).sort()).toEqual([
      "/apply-template",
      "/chat/completions",
      "/chat/history/{id}/rollback",
      "/completions",
      "/detokenize",
      "/tokenize",
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/embeddings",
      "/v1/messages",
      "/v1/messages/count_tokens",
      "/v1/responses",
      "/v1/sessions/{id}/fork",
    ]);
    for (const [path, item] of posts) {
      const media = item.post!.requestBody?.content?.["application/json"];
      expect({ path, hasSchema: !!media?.schema }).toEqual({ path, hasSchema: true });
      const schema = resolve(media!.schema)!;
      expect(schema.type).toBe("object");
      // Session management: small bodies on a session that must exist first (tested in test/sessions, test/compat).
      if (path.includes("{id}")) {
        expect(resolve(item.post!.responses?.["400"]?.content?.["application/json"]?.schema)?.properties).toHaveProperty("error");
        continue;
      }
      // /detokenize takes only its tokens (and a model).
      expect(Object.keys(schema.properties as object).length).toBeGreaterThan(path === "/detokenize" ? 1 : 3);
      const examples = [
        ...((schema.examples as unknown[] | undefined) ?? []),
        ...(media!.example !== undefined ? [media!.example] : []),
        ...Object.values(media!.examples ?? {}).map((e) => e.value),
      ];
      expect({ path, examples: examples.length > 0 }).toEqual({ path, examples: true });
      for (const example of examples) {
        const res = await h.request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(example) });
        expect({ path, example, status: res.status }).toEqual({ path, example, status: 200 });
        await res.arrayBuffer();
      }
      // The 200 response and the error responses have schemas too.
      const responses = item.post!.responses ?? {};
      expect((responses["200"]?.content?.["application/json"] ?? responses["200"]?.content?.["text/event-stream"])?.schema).toBeDefined();
      expect(resolve(responses["400"]?.content?.["application/json"]?.schema)?.properties).toHaveProperty("error");
    }
  });

  test("path parameters are declared as {id} with a parameter entry", () => {
    const op = doc.paths["/v1/models/{id}"]?.get as (Operation & { parameters?: { name: string; in: string; required?: boolean }[] }) | undefined;
    expect(op).toBeDefined();
    expect(op!.parameters?.some((p) => p.name === "id" && p.in === "path" && p.required === true)).toBe(true);
  });
});

describe("Swagger UI", () => {
  test("/swagger is HTML whose assets are all local and load with 200", async () => {
    const res = await h.request("/swagger");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    const html = await res.text();
    const refs = [...html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']+)["']/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThanOrEqual(2);
    // No absolute URL to any host, anywhere in the page (tags or inline script).
    expect(html.match(/(?:https?:)?\/\/[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g) ?? []).toEqual([]);
    for (const ref of refs) {
      expect(ref.startsWith("/")).toBe(true);
      const asset = await h.request(ref);
      expect({ ref, status: asset.status }).toEqual({ ref, status: 200 });
      const body = await asset.arrayBuffer();
      expect(body.byteLength).toBeGreaterThan(1000);
      expect(asset.headers.get("content-type")).toMatch(ref.endsWith(".css") ? /^text\/css/ : /javascript/);
    }
    // The page loads the document from this server.
    expect(html).toContain("/swagger/json");
  });

  test("the page turns off Swagger UI's online validator badge (it would load from validator.swagger.io)", async () => {
    const html = await (await h.request("/swagger")).text();
    expect(html).toMatch(/validatorUrl\s*:\s*(null|["']none["'])/);
  });
});

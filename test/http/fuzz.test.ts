// Fuzz: over 10,000 generated bad requests across every route of the OpenAPI document (bad path and
// query parameters, mutated and broken bodies, wrong methods, content types and credentials) and bad
// frames on both WebSockets, against the in-process app with billing on: none is answered with a 5xx.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { pricingConfig } from "../../src/platform/pricing.ts";
import { Platform } from "../../src/platform/service.ts";
import { openStore } from "../../src/store/db.ts";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

setDefaultTimeout(600_000);

const HTTP_REQUESTS = 9_600;
const WS_FRAMES = 200; // per WebSocket route
const ADMIN = "fuzz-admin-token";

type Json = Record<string, unknown>;
interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema?: Json }[];
  requestBody?: { content?: Record<string, { schema?: Json; example?: unknown; examples?: Record<string, { value?: unknown }> }> };
}

/** A seeded PRNG (mulberry32): the same requests every run, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = prng(17);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

let deep: unknown = 0;
for (let i = 0; i < 2000; i++) deep = [deep];

/** Values of every wrong kind: types, bounds, sizes, encodings. */
const JUNK: readonly unknown[] = [
  null, true, false, 0, -1, 1.5, -0.5, 1e308, -1e308, 9007199254740993, 2 ** 63, "", "x", "a".repeat(20_000), "\u0000", "\ud800", "🙂",
  "-1", "1e308", "NaN", "null", [], [null], [1, "a", {}], {}, { a: { b: { c: {} } } }, deep, { role: "user" }, [{ role: "nobody", content: 5 }],
  { $ref: "#/x" }, { __proto__: { polluted: true } }, { constructor: { prototype: {} } },
];

/** Path and query parameter values. */
const PARAM_JUNK = ["", "x", "%00", "..%2F..%2Fetc%2Fpasswd", "9".repeat(40), "-1", "0", "1.5", "1e308", "9223372036854775808", "null", "%F0%9F%99%82", "a".repeat(3000), "%27%20OR%201%3D1%20--", "%E0%80%80", "true", "[]"];

/** Raw bodies that are not the JSON a route wants. */
const RAW_BODIES: readonly (string | Uint8Array)[] = [
  "", "{", "}", "[]", "null", "1", '"s"', '{"a":', "{'a':1}", '{"messages":[}', "\u0000\u0001", "[".repeat(5000) + "]".repeat(5000),
  new Uint8Array([0xff, 0xfe, 0xfd, 0x7b, 0x7d]), new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
  JSON.stringify({ messages: "a".repeat(100) }), `{"max_tokens":1e400}`, `{"a":1,"a":2}`,
];

/** Follows a local $ref once. */
function resolved(doc: Json, schema: Json | undefined): Json | undefined {
  const ref = schema?.$ref;
  if (typeof ref !== "string") return schema;
  return (doc as { components?: { schemas?: Record<string, Json> } }).components?.schemas?.[ref.replace("#/components/schemas/", "")];
}

/** A starting body: the route's example, else its required properties with plain values. */
function baseBody(doc: Json, op: Operation): Json {
  const content = op.requestBody?.content?.["application/json"];
  const example = content?.example ?? Object.values(content?.examples ?? {})[0]?.value;
  if (example && typeof example === "object" && !Array.isArray(example)) return structuredClone(example) as Json;
  const schema = resolved(doc, content?.schema);
  const body: Json = {};
  for (const name of (schema?.required as string[] | undefined) ?? []) body[name] = "x";
  return body;
}

/** Generation stays tiny whatever else a mutation leaves valid: at most one token. */
function capped(body: Json): Json {
  const out: Json = { ...body };
  for (const k of ["max_tokens", "max_completion_tokens", "max_output_tokens", "max-token", "n_predict"]) if (k in out || k === "max_tokens") out[k] = 1;
  return out;
}

/** One mutation of a body: a field of the wrong kind, a missing or unknown field, nested junk. */
function mutate(doc: Json, op: Operation, body: Json): Json {
  const schema = resolved(doc, op.requestBody?.content?.["application/json"]?.schema);
  const props = Object.keys((schema?.properties as Json | undefined) ?? body);
  const out = capped(body);
  const r = rand();
  if (r < 0.6 && props.length) out[pick(props)] = pick(JUNK);
  else if (r < 0.7 && props.length) delete out[pick(props)];
  else if (r < 0.8) out[`unknown_${Math.floor(rand() * 100)}`] = pick(JUNK);
  else if (r < 0.9 && Array.isArray(out.messages) && out.messages.length) {
    const m = { ...(out.messages[0] as Json) };
    m[pick(["role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content"])] = pick(JUNK);
    out.messages = [m];
  } else if (props.length) {
    for (let i = 0; i < 3; i++) out[pick(props)] = pick(JUNK);
  }
  return out;
}

interface Target {
  method: string;
  path: string;
  op: Operation;
}

let h: InProcessApp;
let db: Database;
let dir: string;
let key = "";
let doc: Json & { paths: Record<string, Record<string, Operation>> };
let targets: Target[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "cocoon-fuzz-"));
  db = openStore(join(dir, "fuzz.sqlite"));
  const platform = new Platform(db, {
    auth: true,
    adminToken: ADMIN,
    pricing: pricingConfig({ baseNanoton: 20n }),
    rateLimits: { rpm: 10_000_000, tpm: 1_000_000_000, rpd: 10_000_000 },
    signupCredit: 0n,
  });
  const account = createAccount(db);
  credit(db, account.id, 1_000_000_000_000n, "adjustment", "fuzz");
  key = createKey(db, account.id).key;
  h = await startInProcessApp({ platform, maxQueue: 1000 });
  doc = (await (await h.request("/swagger/json")).json()) as typeof doc;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) targets.push({ method: method.toUpperCase(), path, op });
  }
});

afterAll(() => {
  h?.close();
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One generated bad request for a route. */
function badRequest(t: Target): { url: string; init: RequestInit } {
  let path = t.path.replace(/\{[^}]+\}/g, () => (rand() < 0.8 ? pick(PARAM_JUNK) : "x"));
  const query = (t.op.parameters ?? []).filter((p) => p.in === "query");
  const q: string[] = [];
  for (const p of query) if (rand() < 0.5) q.push(`${encodeURIComponent(p.name)}=${pick(PARAM_JUNK)}`);
  if (rand() < 0.1) q.push(`${pick(["limit", "after", "before", "offset", "order", "api_key"])}=${pick(PARAM_JUNK)}`);
  if (q.length) path += `?${q.join("&")}`;
  const headers: Record<string, string> = {};
  const auth = rand();
  if (auth < 0.55) headers.authorization = `Bearer ${t.path.startsWith("/admin") ? ADMIN : key}`;
  else if (auth < 0.65) headers["x-api-key"] = key;
  else if (auth < 0.8) headers.authorization = pick(["Bearer ", "Bearer ck_junk", "Basic YTpi", `Bearer ${"k".repeat(5000)}`, "bearer"]);
  let method = t.method;
  if (rand() < 0.05) method = pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
  let body: string | Uint8Array | undefined;
  if (t.op.requestBody && method !== "GET") {
    const c = rand();
    headers["content-type"] = c < 0.85 ? "application/json" : pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", ""]);
    body = rand() < 0.8 ? JSON.stringify(mutate(doc, t.op, baseBody(doc, t.op))) : pick(RAW_BODIES);
  }
  return { url: path, init: { method, headers, body, signal: AbortSignal.timeout(5_000) } };
}

describe("fuzz", () => {
  test(`${HTTP_REQUESTS} bad requests across every route: no 5xx`, async () => {
    expect(targets.length).toBeGreaterThan(20);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    const worker = async () => {
      while (sent < HTTP_REQUESTS) {
        const t = targets[sent++ % targets.length]!;
        const { url, init } = badRequest(t);
        let status = 0;
        try {
          const res = await h.request(url, init);
          status = res.status;
          // A stream that started is cancelled (it frees its slot); its head is what matters here.
          if ((res.headers.get("content-type") ?? "").includes("event-stream")) await res.body?.cancel();
          else await res.arrayBuffer();
        } catch (err) {
          if ((err as Error).name === "TimeoutError" || (err as Error).name === "AbortError") continue;
          failures.push(`${init.method} ${url.slice(0, 200)}: threw ${(err as Error).message}`);
          continue;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500) failures.push(`${init.method} ${url.slice(0, 200)} ${String(init.body ?? "").slice(0, 300)} → ${status}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    if (process.env.FUZZ_DEBUG) console.log(targets.length, [...statuses.entries()].sort());
    expect(failures.slice(0, 20)).toEqual([]);
    expect(h.logged.filter((l) => !l.includes("aborted")).slice(0, 5)).toEqual([]);
    expect(checkInvariants(db)).toEqual([]);
    expect([...statuses.keys()].some((s) => s >= 400 && s < 500)).toBe(true);
  });

  test(`${WS_FRAMES} bad frames on each WebSocket route: refused in the API's shape, never a server error`, async () => {
    const server = h.app.listen({ hostname: "127.0.0.1", port: 0 });
    const port = server.server!.port;
    const failures: string[] = [];
    try {
      for (const path of ["/v1/chat/completions", "/chat/ws"]) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?api_key=${key}`);
        const frames: string[] = [];
        let closeCode = 0;
        ws.onmessage = (e) => frames.push(typeof e.data === "string" ? e.data : "<binary>");
        const closed = new Promise<void>((r) => (ws.onclose = (e) => ((closeCode = e.code), r())));
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error(`${path}: the socket did not open`));
        });
        for (let i = 0; i < WS_FRAMES && ws.readyState === WebSocket.OPEN; i++) {
          const r = rand();
          if (r < 0.15) ws.send(pick(RAW_BODIES));
          else if (r < 0.2) ws.send(new Uint8Array([0xff, 0x00, 0x7b]));
          else {
            const body = capped({ messages: [{ role: "user", content: "hi" }] });
            const bad = rand() < 0.5 ? { ...body, [pick(["messages", "max_tokens", "temperature", "n", "stream", "tools", "stop", "model", "session_id", "response_format"])]: pick(JUNK) } : pick(JUNK);
            ws.send(JSON.stringify(bad));
          }
          await Bun.sleep(2);
        }
        // Let the replies arrive, then close.
        await Bun.sleep(1_500);
        ws.close();
        await closed;
        if (closeCode === 1011) failures.push(`${path}: closed with 1011 (internal error)`);
        const serverErrors = frames.filter((f) => /"type":"server_error"|"code":"internal_error"/.test(f));
        if (serverErrors.length) failures.push(`${path}: ${serverErrors.length} server errors, e.g. ${serverErrors[0]!.slice(0, 300)}`);
        if (frames.length === 0) failures.push(`${path}: no reply at all`);
      }
    } finally {
      server.server?.stop(true);
    }
    expect(failures).toEqual([]);
  });
});

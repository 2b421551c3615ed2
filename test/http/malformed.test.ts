// 500 seeded malformed bodies to the POST inference routes: each a 4xx OpenAI-shaped error, never a 5xx.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startInProcessApp, type InProcessApp } from "../support/app.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const SEED = 0xc0c00;
const COUNT = 500;
type Path = "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings";
const PATHS: Path[] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

interface Case {
  name: string;
  path: Path;
  body: string | Uint8Array;
  contentType?: string;
}

/** mulberry32: a small seeded PRNG, so the 500 bodies are the same on every run. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}

const VALID: Record<Path, Record<string, unknown>> = {
  "/v1/chat/completions": { model: "tiny-qwen3", messages: [{ role: "user", content: "hi" }], max_tokens: 2, temperature: 0 },
  "/v1/completions": { model: "tiny-qwen3", prompt: "hi", max_tokens: 2, temperature: 0 },
  "/v1/embeddings": { model: "tiny-qwen3", input: "hi" },
};

type Kind = "string" | "int" | "number" | "bool" | "array" | "object" | "messages" | "prompt";

// Every field each route accepts, by kind; wrong types are drawn from the kinds it does not accept.
const SAMPLING: Record<string, Kind> = {
  model: "string",
  max_tokens: "int",
  temperature: "number",
  top_p: "number",
  top_k: "int",
  min_p: "number",
  typical_p: "number",
  frequency_penalty: "number",
  presence_penalty: "number",
  repeat_penalty: "number",
  repetition_penalty: "number",
  seed: "int",
  logit_bias: "object",
  n: "int",
  ignore_eos: "bool",
  user: "string",
  stream: "bool",
  stream_options: "object",
  max_coefficient: "int",
  timeout: "number",
  enable_debug: "bool",
  request_guid: "string",
};
const FIELDS: Record<Path, Record<string, Kind>> = {
  "/v1/chat/completions": {
    ...SAMPLING,
    messages: "messages",
    max_completion_tokens: "int",
    logprobs: "bool",
    top_logprobs: "int",
    response_format: "object",
    tools: "array",
    parallel_tool_calls: "bool",
    enable_thinking: "bool",
    chat_template_kwargs: "object",
  },
  "/v1/completions": { ...SAMPLING, prompt: "prompt", suffix: "string", echo: "bool", best_of: "int", logprobs: "int" },
  "/v1/embeddings": { model: "string", input: "prompt", encoding_format: "string", dimensions: "int", user: "string" },
};

/** Values of the wrong JSON type for a field of the given kind (numeric strings included: "3" is not 3). */
function wrongValues(kind: Kind): unknown[] {
  const all: Record<string, unknown[]> = {
    string: ["hot", "3", "", "true"],
    number: [3, -7, 0.5],
    bool: [true, false],
    array: [["x"], [1, 2], []],
    object: [{ a: 1 }, {}],
  };
  const accepted: Record<Kind, string[]> = {
    string: ["string"],
    int: ["number"],
    number: ["number"],
    bool: ["bool"],
    array: ["array"],
    object: ["object"],
    messages: ["array"],
    // A prompt or input is a string or an array (of strings, ids or id lists), never an empty one.
    prompt: ["string", "array"],
  };
  const wrong = Object.entries(all)
    .filter(([k]) => !accepted[kind].includes(k))
    .flatMap(([, v]) => v);
  return kind === "prompt" ? [...wrong, [], [{}], [true]] : wrong;
}

const enc = new TextEncoder();
const json = (v: unknown) => JSON.stringify(v);

/** Splices raw bytes into a valid body in place of the marker inside a string value. */
function withBytes(path: Path, bytes: number[]): Uint8Array {
  const marker = "@@BYTES@@";
  const body = structuredClone(VALID[path]);
  if (path === "/v1/chat/completions") body.messages = [{ role: "user", content: `a${marker}b` }];
  else if (path === "/v1/completions") body.prompt = `a${marker}b`;
  else body.input = `a${marker}b`;
  const [before, after] = json(body).split(marker) as [string, string];
  return new Uint8Array([...enc.encode(before), ...bytes, ...enc.encode(after)]);
}

const INVALID_UTF8: [string, number[]][] = [
  ["lone 0xFF", [0xff]],
  ["0xFE 0xFF", [0xfe, 0xff]],
  ["lone continuation 0x80", [0x80]],
  ["bad 2-byte C3 28", [0xc3, 0x28]],
  ["overlong C0 AF", [0xc0, 0xaf]],
  ["UTF-16 surrogate ED A0 80", [0xed, 0xa0, 0x80]],
  ["truncated 4-byte F0 9F 98", [0xf0, 0x9f, 0x98]],
  ["beyond U+10FFFF F4 90 80 80", [0xf4, 0x90, 0x80, 0x80]],
];

const DEEP = 100_000;

function fixedCases(): Case[] {
  const out: Case[] = [];
  const add = (name: string, path: Path, body: string | Uint8Array, contentType?: string) => out.push({ name, path, body, contentType });
  for (const path of PATHS) {
    const main = path === "/v1/chat/completions" ? "messages" : path === "/v1/completions" ? "prompt" : "input";
    // Structure: not an object at all.
    for (const b of ["null", "[]", "[{}]", `[${json(VALID[path])}]`, '"a string"', "42", "1e308", "-1e308", "true", "{}", ""]) add(`body ${b.slice(0, 20) || "(empty)"}`, path, b);
    add("body of whitespace", path, " \n\t ");
    add("body with a BOM only", path, "\ufeff");
    add("two JSON objects", path, json(VALID[path]) + json(VALID[path]));
    add("trailing comma", path, json(VALID[path]).slice(0, -1) + ",}");
    add("single quotes", path, json(VALID[path]).replaceAll('"', "'"));
    add("NaN literal", path, json({ ...VALID[path], temperature: 0 }).replace('"temperature":0', '"temperature":NaN'));
    add("Infinity literal", path, json(VALID[path]).slice(0, -1) + ',"max_tokens":Infinity}');
    add("comment in JSON", path, "/* c */" + json(VALID[path]));
    // Deep nesting.
    add(`${DEEP} unclosed [`, path, "[".repeat(DEEP));
    add(`${DEEP} nested arrays`, path, "[".repeat(DEEP) + "]".repeat(DEEP));
    add(`${DEEP} nested arrays in ${main}`, path, `{"${main}":${"[".repeat(DEEP)}${"]".repeat(DEEP)}}`);
    add(`${DEEP} unclosed {"a":`, path, '{"a":'.repeat(DEEP));
    // Required field missing or null.
    const missing = structuredClone(VALID[path]);
    delete missing[main];
    add(`${main} missing`, path, json(missing));
    add(`${main} null`, path, json({ ...VALID[path], [main]: null }));
    add(`${main} [null]`, path, json({ ...VALID[path], [main]: [null] }));
    add(`${main} []`, path, json({ ...VALID[path], [main]: [] }));
    add(`${main} {}`, path, json({ ...VALID[path], [main]: {} }));
    // Invalid UTF-8 inside a string that is otherwise a valid request, and as the whole body.
    for (const [label, bytes] of INVALID_UTF8) {
      add(`invalid UTF-8 in ${main}: ${label}`, path, withBytes(path, bytes));
      add(`invalid UTF-8 body: ${label}`, path, new Uint8Array(bytes));
    }
    // Unknown model, with a very long name.
    add("unknown model", path, json({ ...VALID[path], model: "no-such-model" }));
    add("model name of 100k chars", path, json({ ...VALID[path], model: "m".repeat(100_000) }));
    if (path !== "/v1/embeddings") add("user over 256 chars", path, json({ ...VALID[path], user: "u".repeat(5000) }));
  }

  const chat = (extra: Record<string, unknown>) => json({ ...VALID["/v1/chat/completions"], ...extra });
  const C: Path = "/v1/chat/completions";
  for (const role of ["wizard", "", "USER", "function", "System ", "bot"]) add(`unknown role "${role}"`, C, chat({ messages: [{ role, content: "hi" }] }));
  add("role missing", C, chat({ messages: [{ content: "hi" }] }));
  add("role null", C, chat({ messages: [{ role: null, content: "hi" }] }));
  add("message is a string", C, chat({ messages: ["hi"] }));
  add("message is an array", C, chat({ messages: [["user", "hi"]] }));
  add("content is a number", C, chat({ messages: [{ role: "user", content: 42 }] }));
  add("content is an object", C, chat({ messages: [{ role: "user", content: { text: "hi" } }] }));
  add("content part of unknown type", C, chat({ messages: [{ role: "user", content: [{ type: "audio", audio: "x" }] }] }));
  add("content part without text", C, chat({ messages: [{ role: "user", content: [{ type: "text" }] }] }));
  add("content part null", C, chat({ messages: [{ role: "user", content: [null] }] }));
  add("image content on a text model", C, chat({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }] }));
  add("tool message without tool_call_id", C, chat({ messages: [{ role: "user", content: "hi" }, { role: "tool", content: "42" }] }));
  add("tool_calls not an array", C, chat({ messages: [{ role: "assistant", content: null, tool_calls: "x" }, { role: "user", content: "hi" }] }));
  add("tool_call without function", C, chat({ messages: [{ role: "assistant", tool_calls: [{ id: "1", type: "function" }] }, { role: "user", content: "hi" }] }));
  add("prompt of 1 MB", C, chat({ messages: [{ role: "user", content: "lorem ipsum ".repeat(90_000) }] }));
  add("stop with 5 strings", C, chat({ stop: ["a", "b", "c", "d", "e"] }));
  add("stop [null]", C, chat({ stop: [null] }));
  add("stop number", C, chat({ stop: 5 }));
  add("response_format unknown type", C, chat({ response_format: { type: "xml" } }));
  add("response_format json_schema without json_schema", C, chat({ response_format: { type: "json_schema" } }));
  add("response_format json_schema without schema", C, chat({ response_format: { type: "json_schema", json_schema: { name: "x" } } }));
  add("response_format schema of unknown type", C, chat({ response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "wat" } } } }));
  add("response_format schema with dangling $ref", C, chat({ response_format: { type: "json_schema", json_schema: { name: "x", schema: { $ref: "#/nope" } } } }));
  add("response_format string", C, chat({ response_format: "json_object" }));
  add("tools not an array", C, chat({ tools: { type: "function" } }));
  add("tool of unknown type", C, chat({ tools: [{ type: "retrieval" }] }));
  add("tool name with spaces", C, chat({ tools: [{ type: "function", function: { name: "get weather" } }] }));
  add("tool name of 65 chars", C, chat({ tools: [{ type: "function", function: { name: "f".repeat(65) } }] }));
  add("tool parameters of unknown type", C, chat({ tools: [{ type: "function", function: { name: "f", parameters: { type: 5 } } }], tool_choice: "required" }));
  add("tools over 128", C, chat({ tools: Array.from({ length: 129 }, (_, i) => ({ type: "function", function: { name: `f${i}` } })) }));
  add("tool_choice unknown string", C, chat({ tool_choice: "always" }));
  add("tool_choice object without function", C, chat({ tool_choice: { type: "function" } }));
  add("logit_bias token outside the vocabulary", C, chat({ logit_bias: { "99999999999": 5 } }));
  add("logit_bias key not a number", C, chat({ logit_bias: { abc: 5 } }));
  add("logit_bias value 1e308", C, chat({ logit_bias: { "1": 1e308 } }));
  add("logit_bias array", C, chat({ logit_bias: [1, 2] }));
  add("request_guid with spaces", C, chat({ request_guid: "has spaces" }));
  add("request_guid of 129 chars", C, chat({ request_guid: "g".repeat(129) }));
  add("max_tokens beyond the context", C, chat({ max_tokens: 5000 }));
  add("stream_options array", C, chat({ stream: true, stream_options: [] }));

  const cmpl = (extra: Record<string, unknown>) => json({ ...VALID["/v1/completions"], ...extra });
  const P: Path = "/v1/completions";
  add("prompt token id outside the vocabulary", P, cmpl({ prompt: [999_999_999] }));
  add("prompt negative token id", P, cmpl({ prompt: [-1] }));
  add("prompt fractional token id", P, cmpl({ prompt: [1.5] }));
  add("prompt with an empty token list", P, cmpl({ prompt: [[1, 2], []] }));
  add("prompt mixing strings and ids", P, cmpl({ prompt: ["a", 1] }));
  add("prompt empty string", P, cmpl({ prompt: "" }));
  add("prompt of 1 MB", P, cmpl({ prompt: "dolor sit amet ".repeat(70_000) }));
  add("best_of below n", P, cmpl({ best_of: 1, n: 2 }));
  add("best_of with stream", P, cmpl({ best_of: 3, n: 1, stream: true }));
  add("best_of 0", P, cmpl({ best_of: 0 }));
  add("logprobs 21", P, cmpl({ logprobs: 21 }));
  add("logprobs true", P, cmpl({ logprobs: true }));
  add("echo string", P, cmpl({ echo: "yes" }));

  const emb = (extra: Record<string, unknown>) => json({ ...VALID["/v1/embeddings"], ...extra });
  const E: Path = "/v1/embeddings";
  add("input token id outside the vocabulary", E, emb({ input: [999_999_999] }));
  add("input token lists with one outside the vocabulary", E, emb({ input: [[1, 2], [999_999_999]] }));
  add("input negative token id", E, emb({ input: [-5] }));
  add("input empty string", E, emb({ input: "" }));
  add("input with an empty string", E, emb({ input: ["a", ""] }));
  add("input [[]]", E, emb({ input: [[]] }));
  add("input of 2049 strings", E, emb({ input: Array.from({ length: 2049 }, () => "a") }));
  add("input longer than the context", E, emb({ input: "consectetur ".repeat(60_000) }));
  add("dimensions unsupported", E, emb({ dimensions: 32 }));
  add("dimensions 0", E, emb({ dimensions: 0 }));
  add("encoding_format hex", E, emb({ encoding_format: "hex" }));
  return out;
}

/** Out-of-range numbers per field; only values the schema or the engine must refuse. */
const BAD_NUMBERS: Record<string, unknown[]> = {
  max_tokens: [0, -1, -1e308, 1.5, 1e308, 2 ** 63, 2 ** 31],
  max_completion_tokens: [0, -5, 1e308],
  temperature: [-0.1, 2.5, 1e308, -1e308],
  top_p: [-1, 1.5, 1e308],
  top_k: [-2, 1.5, -1e308],
  min_p: [-0.5, 2],
  typical_p: [1.01, -1],
  frequency_penalty: [-3, 2.5, 1e308],
  presence_penalty: [3, -1e308],
  repeat_penalty: [-1, 11, 1e308],
  repetition_penalty: [-0.1, 1e308],
  seed: [2 ** 63, -(2 ** 63), 1e308, 0.5],
  n: [0, -1, 17, 1e308, 1.5],
  top_logprobs: [-1, 21, 2 ** 63],
  max_coefficient: [-1, -1e308, 0.5],
  timeout: [0, -1, 1e308, 86401],
  best_of: [0, 17, -1e308],
  logprobs: [-1, 21, 2 ** 63],
  dimensions: [0, -1, 2 ** 63, 1e308, 1.5],
};

/** Fills up to COUNT with seeded random cases: wrong types, bad numbers, truncations, random bytes. */
function randomCases(n: number, r: ReturnType<typeof rng>): Case[] {
  const out: Case[] = [];
  const contentTypes = ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"];
  while (out.length < n) {
    const path = r.pick(PATHS);
    const contentType = r.pick(contentTypes);
    const flavour = r.int(0, 9);
    if (flavour <= 3) {
      // A wrong type for one field.
      const [field, kind] = r.pick(Object.entries(FIELDS[path]));
      const value = r.pick(wrongValues(kind));
      out.push({ name: `${field} (${kind}) = ${json(value)}`, path, body: json({ ...VALID[path], [field]: value }), contentType });
    } else if (flavour <= 5) {
      // An out-of-range number.
      const fields = Object.keys(BAD_NUMBERS).filter((f) => f in FIELDS[path]);
      const field = r.pick(fields);
      const value = r.pick(BAD_NUMBERS[field]!);
      out.push({ name: `${field} = ${value}`, path, body: json({ ...VALID[path], [field]: value }), contentType });
    } else if (flavour <= 7) {
      // Valid JSON cut short anywhere.
      const text = json({ ...VALID[path], user: "someone" });
      const cut = r.int(1, text.length - 1);
      out.push({ name: `truncated at ${cut}/${text.length}`, path, body: text.slice(0, cut), contentType });
    } else {
      // Random bytes (mostly invalid UTF-8), sometimes starting like JSON.
      const len = r.int(1, 600);
      const bytes = new Uint8Array(len);
      for (let i = 0; i < len; i++) bytes[i] = r.int(0, 255);
      if (r.next() < 0.5) bytes[0] = 0x7b; // "{"
      out.push({ name: `${len} random bytes`, path, body: bytes, contentType });
    }
  }
  return out;
}

function buildCases(): Case[] {
  const fixed = fixedCases();
  return [...fixed, ...randomCases(COUNT - fixed.length, rng(SEED))];
}

let h: InProcessApp;
beforeAll(async () => {
  h = await startInProcessApp();
});
afterAll(() => h?.close());

describe("malformed request bodies", () => {
  test(
    `${COUNT} seeded malformed bodies all get 4xx {"error":{message,type,param,code}} and no 5xx`,
    async () => {
      const cases = buildCases();
      expect(cases).toHaveLength(COUNT);
      expect(new Set(cases.map((c) => c.path)).size).toBe(3);
      const failures: string[] = [];
      for (const c of cases) {
        const res = await h.request(c.path, { method: "POST", headers: c.contentType ? { "Content-Type": c.contentType } : {}, body: c.body });
        const text = await res.text();
        const label = `${c.path} [${c.name}] -> ${res.status}`;
        if (res.status < 400 || res.status >= 500) {
          failures.push(`${label}: ${text.slice(0, 160)}`);
          continue;
        }
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          failures.push(`${label}: body is not JSON: ${text.slice(0, 80)}`);
          continue;
        }
        const e = (body as { error?: Record<string, unknown> }).error;
        const shaped =
          Object.keys(body as object).join() === "error" &&
          !!e &&
          typeof e.message === "string" &&
          e.message.length > 0 &&
          typeof e.type === "string" &&
          (e.param === null || typeof e.param === "string") &&
          (e.code === null || typeof e.code === "string") &&
          ["message", "type", "param", "code"].every((k) => k in e);
        if (!shaped) failures.push(`${label}: not an OpenAI error object: ${text.slice(0, 160)}`);
        if (res.headers.get("content-type")?.startsWith("application/json") !== true) failures.push(`${label}: content-type ${res.headers.get("content-type")}`);
        // Never a stack trace or a file path.
        if (/\bat .+:\d+:\d+|node_modules|\/src\//.test(text)) failures.push(`${label}: leaks internals: ${text.slice(0, 160)}`);
      }
      expect(failures).toEqual([]);
    },
    // Deep-nesting bodies can be slow to refuse; everything else takes milliseconds.
    180_000,
  );

  test("the server stays healthy: valid requests to all three routes succeed afterwards", async () => {
    for (const path of PATHS) {
      const res = await h.request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: json(VALID[path]) });
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      const body = (await res.json()) as { object: string };
      expect(body.object).toBe(path === "/v1/chat/completions" ? "chat.completion" : path === "/v1/completions" ? "text_completion" : "list");
    }
    const health = await h.request("/health");
    expect(health.status).toBe(200);
    const stats = (await (await h.request("/jsonstats")).json()) as { models: { slots_busy: number; worker_restarts: number }[] };
    expect(stats.models[0]!.slots_busy).toBe(0);
    expect(stats.models[0]!.worker_restarts).toBe(0);
  });
});

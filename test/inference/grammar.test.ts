// JSON Schema -> GBNF: grammars checked by llama.cpp's own parser and sampler on the tiny random model.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { LlamaBatch, LlamaError, type LlamaSampler, type SamplerStep } from "../../src/native/llama.ts";
import { GrammarError, JSON_OBJECT_GRAMMAR, expandedRepetitions, jsonSchemaToGrammar } from "../../src/inference/grammar.ts";
import { loadTinyModel } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const model = loadTinyModel();
// One thread: the model is tiny, and a multi-threaded decode crawls when other processes hold the cores.
const ctx = model.createContext({ nCtx: 2048, nBatch: 512, threads: 1 });
/** A second context holding one decoded token: its logits row feeds the grammar checks below. */
const probeCtx = model.createContext({ nCtx: 64, nBatch: 8, threads: 1 });
{
  const b = new LlamaBatch(1);
  b.add(model.tokenize("x")[0]!, 0, 0, true);
  probeCtx.decode(b);
}
afterAll(() => model.dispose());
/** Tests that sample over the 151,936-token vocabulary take seconds; leave room for a busy machine. */
const SAMPLING_TIMEOUT = 30_000;

// ---- helpers: llama.cpp as the judge ----------------------------------------------------------

function grammarSampler(grammar: string, extra: SamplerStep[] = [{ type: "greedy" }], before: SamplerStep[] = []): LlamaSampler {
  return model.createSampler([...before, { type: "grammar", grammar, root: "root" }, ...extra]);
}

/**
 * Whether llama.cpp's grammar sampler lets `text` through and then allows end-of-generation: at each
 * step the expected token gets a huge bias, so greedy picks it exactly when the grammar allows it.
 */
function llamaAccepts(grammar: string, text: string): boolean {
  const tokens = [...model.tokenize(text, { parseSpecial: false })];
  for (let i = 0; i <= tokens.length; i++) {
    const want = i < tokens.length ? tokens[i]! : model.eos;
    const s = grammarSampler(grammar, [{ type: "greedy" }], [{ type: "logit_bias", bias: [[want, 1e4]] }]);
    try {
      for (const t of tokens.slice(0, i)) s.accept(t);
      if (s.sample(probeCtx, 0) !== want) return false;
    } finally {
      s.dispose();
    }
  }
  return true;
}

interface Generation {
  tokens: number[];
  ended: boolean;
  row: number;
  pos: number;
}

function startGeneration(prompt: string): Generation {
  ctx.clearMemory();
  const batch = new LlamaBatch(512);
  const toks = model.tokenize(prompt);
  toks.forEach((t, i) => batch.add(t, i, 0, i === toks.length - 1));
  ctx.decode(batch);
  return { tokens: [], ended: false, row: toks.length - 1, pos: toks.length };
}

/** Samples up to maxTokens more tokens; stops at end-of-generation. */
function continueGeneration(g: Generation, sampler: LlamaSampler, maxTokens: number): Generation {
  const batch = new LlamaBatch(1);
  for (let i = 0; i < maxTokens && !g.ended; i++) {
    const t = sampler.sample(ctx, g.row);
    if (model.isEog(t)) {
      g.ended = true;
      break;
    }
    g.tokens.push(t);
    batch.clear();
    g.row = batch.add(t, g.pos++, 0, true);
    ctx.decode(batch);
  }
  return g;
}

function generate(grammar: string, seed: number, maxTokens: number, temperature = 1.0): { text: string; ended: boolean; count: number } {
  const sampler = grammarSampler(grammar, [{ type: "temp", temperature }, { type: "dist", seed }]);
  try {
    const g = continueGeneration(startGeneration("Reply with JSON:"), sampler, maxTokens);
    return { text: model.detokenize(g.tokens), ended: g.ended, count: g.tokens.length };
  } finally {
    sampler.dispose();
  }
}

// ---- helpers: an independent reading of the grammar and of the schema ---------------------------

/** Translates a grammar without recursive rules into an anchored RegExp, to check its language exhaustively. */
function grammarRegExp(gbnf: string): RegExp {
  const rules = new Map<string, string>();
  for (const line of gbnf.split("\n").filter(Boolean)) {
    const at = line.indexOf(" ::= ");
    rules.set(line.slice(0, at), line.slice(at + 5));
  }
  const unescape = (s: string, i: number): [string, number] => {
    const c = s[i + 1]!;
    const hex = { x: 2, u: 4, U: 8 }[c];
    if (hex) return [String.fromCodePoint(parseInt(s.slice(i + 2, i + 2 + hex), 16)), 2 + hex];
    return [{ n: "\n", r: "\r", t: "\t" }[c] ?? c, 2];
  };
  const expand = (name: string, stack: string[]): string => {
    if (stack.includes(name)) throw new Error(`rule ${name} is recursive`);
    const body = rules.get(name);
    if (body === undefined) throw new Error(`rule ${name} is undefined`);
    stack = [...stack, name];
    let out = "";
    for (let i = 0; i < body.length; ) {
      const c = body[i]!;
      if (c === " ") i++;
      else if (c === '"') {
        let text = "";
        for (i++; body[i] !== '"'; ) {
          if (body[i] === "\\") {
            const [ch, len] = unescape(body, i);
            text += ch;
            i += len;
          } else text += body[i++];
        }
        i++;
        out += `(?:${text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")})`;
      } else if (c === "[") {
        let j = i + 1;
        while (body[j] !== "]") j += body[j] === "\\" ? 2 : 1;
        out += body.slice(i, j + 1).replace(/\\U([0-9a-fA-F]{8})/g, (_, h: string) => `\\u{${parseInt(h, 16).toString(16)}}`);
        i = j + 1;
      } else if (c === "{") {
        const j = body.indexOf("}", i);
        out += body.slice(i, j + 1);
        i = j + 1;
      } else if ("()|?*+".includes(c)) {
        out += c === "(" ? "(?:" : c;
        i++;
      } else {
        const name = /^[A-Za-z0-9-]+/.exec(body.slice(i))![0];
        out += expand(name, stack);
        i += name.length;
      }
    }
    return `(?:${out})`;
  };
  return new RegExp(`^${expand("root", [])}$`, "u");
}

type Schema = Record<string, any> | boolean;

const FORMAT_RE: Record<string, RegExp> = {
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
};

function isType(v: unknown, t: string): boolean {
  switch (t) {
    case "null": return v === null;
    case "integer": return Number.isInteger(v);
    case "object": return typeof v === "object" && v !== null && !Array.isArray(v);
    case "array": return Array.isArray(v);
    default: return typeof v === t;
  }
}

/** What in `value` breaks `schema` (the subset of JSON Schema these tests use); empty when valid. */
function violations(value: any, schema: Schema, root: Schema, path = "$"): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: no value is allowed`];
  if (schema.$ref) {
    const target = schema.$ref.slice(2).split("/").reduce((node: any, key: string) => node[key], root);
    return violations(value, target, root, path);
  }
  const errs: string[] = [];
  if (schema.anyOf && !schema.anyOf.some((s: Schema) => violations(value, s, root, path).length === 0)) errs.push(`${path}: matches no anyOf branch`);
  for (const s of schema.allOf ?? []) errs.push(...violations(value, s, root, path));
  if ("const" in schema && !Bun.deepEquals(value, schema.const)) errs.push(`${path}: is not the const`);
  if (schema.enum && !schema.enum.some((e: unknown) => Bun.deepEquals(e, value))) errs.push(`${path}: is not in the enum`);
  if (schema.type !== undefined && ![schema.type].flat().some((t: string) => isType(value, t))) return [...errs, `${path}: is not ${schema.type}`];
  if (typeof value === "string") {
    const length = [...value].length;
    if (length < (schema.minLength ?? 0) || length > (schema.maxLength ?? Infinity)) errs.push(`${path}: length ${length}`);
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) errs.push(`${path}: does not match ${schema.pattern}`);
    if (schema.format && !FORMAT_RE[schema.format]!.test(value)) errs.push(`${path}: is not a ${schema.format}`);
  }
  if (typeof value === "number") {
    if (value < (schema.minimum ?? -Infinity) || value > (schema.maximum ?? Infinity)) errs.push(`${path}: ${value} out of range`);
    if (value <= (schema.exclusiveMinimum ?? -Infinity) || value >= (schema.exclusiveMaximum ?? Infinity)) errs.push(`${path}: ${value} out of range`);
  }
  if (Array.isArray(value)) {
    if (value.length < (schema.minItems ?? 0) || value.length > (schema.maxItems ?? Infinity)) errs.push(`${path}: ${value.length} items`);
    const prefix: Schema[] = schema.prefixItems ?? [];
    value.forEach((v, i) => errs.push(...violations(v, i < prefix.length ? prefix[i]! : (schema.items ?? true), root, `${path}[${i}]`)));
  }
  if (isType(value, "object")) {
    for (const r of schema.required ?? []) if (!(r in value)) errs.push(`${path}: misses ${r}`);
    for (const [k, v] of Object.entries(value)) {
      const s = schema.properties?.[k] ?? schema.additionalProperties ?? true;
      errs.push(...violations(v, s, root, `${path}.${k}`));
    }
  }
  return errs;
}

// ---- conversion ---------------------------------------------------------------------------------

const VARIED_SCHEMAS: Array<[string, unknown]> = [
  ["empty schema (any value)", {}],
  ["boolean schema true", true],
  ["every primitive type", { type: "object", properties: { s: { type: "string" }, n: { type: "number" }, i: { type: "integer" }, b: { type: "boolean" }, z: { type: "null" } } }],
  ["type array", { type: ["string", "integer", "null"] }],
  ["nested objects and arrays", { type: "object", properties: { a: { type: "array", items: { type: "object", properties: { b: { type: "array", items: { type: "number" } } } } } }, required: ["a"] }],
  ["additionalProperties schema", { type: "object", properties: { id: { type: "integer" } }, additionalProperties: { type: "string" } }],
  ["only optional properties", { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" }, c: { type: "integer" }, d: { type: "integer" }, e: { type: "integer" }, f: { type: "integer" } } }],
  ["enum and const", { type: "object", properties: { e: { enum: ["x", 1, true, null, { k: [1] }] }, c: { const: "fixed \"quoted\"" } } }],
  ["tuple", { type: "array", prefixItems: [{ type: "string" }, { type: "number" }], items: { type: "boolean" }, minItems: 1, maxItems: 5 }],
  ["draft-4 tuple", { type: "array", items: [{ type: "string" }, { type: "number" }], additionalItems: false }],
  ["long arrays and strings", { type: "array", items: { type: "string", minLength: 1500, maxLength: 2500 }, minItems: 1100, maxItems: 2100 }],
  ["formats", { type: "array", items: { anyOf: ["date", "time", "date-time", "uuid", "ipv4", "email"].map((format) => ({ type: "string", format })) } }],
  ["patterns", { type: "array", items: { anyOf: ["^\\d+(\\.\\d+)?$", "^(?:[a-z]+-)*[a-z]+$", "[\\s\\S]", "^[^\"\\\\]{2,4}$", "^\\w+@\\w+\\.(com|org)$", "^\\u00e9\\x41\\t\\.$"].map((pattern) => ({ type: "string", pattern })) } }],
  ["integer bounds", { type: "array", items: { anyOf: [{ type: "integer", minimum: -1000000, maximum: 123456789 }, { type: "integer", exclusiveMinimum: 0 }, { type: "integer", maximum: -7 }] } }],
  ["nullable", { type: "object", properties: { a: { type: "string", nullable: true } } }],
  ["allOf", { allOf: [{ type: "object", properties: { a: { type: "string" } }, required: ["a"] }, { properties: { b: { type: "integer" } } }] }],
  ["anyOf with siblings", { type: "object", properties: { a: { type: "string" }, b: { type: "string" } }, anyOf: [{ required: ["a"] }, { required: ["b"] }] }],
  ["recursive tree with $defs", { $defs: { Node: { type: "object", properties: { name: { type: "string" }, children: { type: "array", items: { $ref: "#/$defs/Node" } } }, required: ["name"] } }, $ref: "#/$defs/Node" }],
  ["recursion through the root", { type: "object", properties: { child: { anyOf: [{ $ref: "#" }, { type: "null" }] } } }],
  ["definitions and odd property names", { definitions: { "a b": { type: "integer" } }, type: "object", properties: { "first name": { $ref: "#/definitions/a b" }, "日本": { type: "boolean" }, string: { type: "integer" }, root: { type: "string" }, "": { type: "null" } } }],
  ["pydantic-style model", {
    $defs: { Item: { properties: { sku: { title: "Sku", type: "string" }, qty: { anyOf: [{ type: "integer" }, { type: "null" }], default: null } }, required: ["sku"], title: "Item", type: "object" } },
    properties: { items: { items: { $ref: "#/$defs/Item" }, title: "Items", type: "array" }, note: { anyOf: [{ type: "string" }, { type: "null" }], default: null } },
    required: ["items"], title: "Order", type: "object",
  }],
];

describe("jsonSchemaToGrammar", () => {
  test("every grammar built from a list of varied schemas is accepted by llama.cpp's grammar parser", () => {
    for (const [name, schema] of VARIED_SCHEMAS) {
      for (const strict of [false, true]) {
        const grammar = jsonSchemaToGrammar(schema, { strict });
        expect(grammar.startsWith("root ::= ")).toBe(true);
        let error: unknown;
        try {
          grammarSampler(grammar).dispose();
        } catch (err) {
          error = err;
        }
        expect({ name, strict, error }).toEqual({ name, strict, error: undefined });
      }
    }
    expect(() => grammarSampler(JSON_OBJECT_GRAMMAR).dispose()).not.toThrow();
  });

  test("llama.cpp refuses a malformed or left-recursive grammar, so acceptance above means something", () => {
    expect(() => grammarSampler('root ::= "a" undefined-rule')).toThrow(LlamaError);
    expect(() => grammarSampler("root ::= root \"a\" | \"b\"")).toThrow(LlamaError);
  });

  test("JSON_OBJECT_GRAMMAR matches JSON objects only, with bounded whitespace and nothing after the closing brace", () => {
    expect(JSON_OBJECT_GRAMMAR).toContain(`space ::= | " " | "\\n" [ \\t]{0,20}`);
    const yes = ["{}", '{"a": 1}', '{ "a" : [1, "x\\n", {"b": null}], "c": true, "d": -0.5e3 }', '{\n  "k": "é ü"\n}'];
    const no = ["[]", '"a"', '{"a":1,}', '{"a" 1}', "{} ", '{"a": 01}', '{"a": "\\q"}', `{${" ".repeat(30)}}`, "{'a': 1}"];
    for (const text of yes) expect({ text, ok: llamaAccepts(JSON_OBJECT_GRAMMAR, text) }).toEqual({ text, ok: true });
    for (const text of no) expect({ text, ok: llamaAccepts(JSON_OBJECT_GRAMMAR, text) }).toEqual({ text, ok: false });
  }, SAMPLING_TIMEOUT);

  test("object members: required ones first in declared order, then optional ones in order, each at most once", () => {
    const schema = {
      type: "object",
      properties: { z: { type: "integer" }, b: { type: "boolean" }, a: { type: "integer" }, y: { type: "null" } },
      required: ["b", "a"],
      additionalProperties: false,
    };
    const re = grammarRegExp(jsonSchemaToGrammar(schema));
    for (const text of ['{"b":true,"a":1}', '{"b":true,"a":1,"z":3}', '{"b":true,"a":1,"y":null}', '{ "b" : false, "a":-2, "z":0,"y":null }']) expect(text).toMatch(re);
    for (const text of ['{"a":1,"b":true}', '{"b":true}', '{"b":true,"a":1,"y":null,"z":3}', '{"b":true,"a":1,"z":3,"z":4}', '{"b":true,"a":1,"q":1}', '{"b":true ,"a":1}']) {
      expect(text).not.toMatch(re); // the last one: no whitespace before a comma, to keep the choices few
    }
    // No required members: any one may come first.
    const loose = grammarRegExp(jsonSchemaToGrammar({ type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } }, additionalProperties: false }));
    for (const text of ["{}", '{"a":1}', '{"b":2}', '{"a":1,"b":2}']) expect(text).toMatch(loose);
    for (const text of ['{"b":2,"a":1}', '{,"b":2}', '{"a":1,}']) expect(text).not.toMatch(loose);
  });

  test("extra keys: forbidden by additionalProperties false or strict mode, else allowed but never a declared name", () => {
    const schema = { type: "object", properties: { name: { type: "integer" } }, required: ["name"] };
    const strict = jsonSchemaToGrammar(schema, { strict: true });
    const loose = jsonSchemaToGrammar(schema, { strict: false });
    const typed = grammarRegExp(jsonSchemaToGrammar({ ...schema, additionalProperties: { type: "boolean" } }, { strict: true }));
    expect(llamaAccepts(strict, '{"name":1}')).toBe(true);
    expect(llamaAccepts(strict, '{"name":1,"x":2}')).toBe(false);
    expect(llamaAccepts(loose, '{"name":1,"nam":[2],"names":{}}')).toBe(true);
    expect(llamaAccepts(loose, '{"name":1,"name":2}')).toBe(false);
    for (const text of ['{"name":1,"n":true}', '{"name":1,"nam":false}', '{"name":1,"namex":true}', '{"name":1,"x":true,"y":false}', '{"name":1,"":true}']) expect(text).toMatch(typed);
    for (const text of ['{"name":1,"name":true}', '{"name":1,"x":1}', '{"name":1,"n\\u0061me":true}']) expect(text).not.toMatch(typed);
    expect(jsonSchemaToGrammar({ type: "object", properties: { a: { type: "integer" } }, additionalProperties: false }, { strict: false })).not.toContain("additional");
  }, SAMPLING_TIMEOUT);

  test("integer bounds admit exactly the integers in range, in canonical form", () => {
    const cases: Array<[Record<string, unknown>, number, number, number, number]> = [
      // schema keywords, lowest and highest allowed, window checked
      [{ minimum: -20, maximum: 7 }, -20, 7, -300, 300],
      [{ minimum: 0, maximum: 150 }, 0, 150, -300, 1200],
      [{ minimum: 1000, maximum: 12345 }, 1000, 12345, 0, 20000],
      [{ minimum: -1000, maximum: -990 }, -1000, -990, -2000, 100],
      [{ exclusiveMinimum: 0, exclusiveMaximum: 100 }, 1, 99, -200, 1200],
      [{ minimum: 2.5, maximum: 9.5 }, 3, 9, -50, 50],
      [{ minimum: 5, maximum: 5 }, 5, 5, -50, 200],
      [{ minimum: 95 }, 95, Infinity, -500, 5000],
      [{ maximum: -3 }, -Infinity, -3, -5000, 500],
      [{ minimum: 10, exclusiveMinimum: true, maximum: 20, exclusiveMaximum: true }, 11, 19, 0, 40],
    ];
    for (const [bounds, lo, hi, from, to] of cases) {
      const re = grammarRegExp(jsonSchemaToGrammar({ type: "integer", ...bounds }));
      const wrong: number[] = [];
      for (let n = from; n <= to; n++) if (re.test(String(n)) !== (n >= lo && n <= hi)) wrong.push(n);
      expect({ bounds, wrong }).toEqual({ bounds, wrong: [] });
      for (const text of ["-0", "007", "+5", "", "1.0", "1e2"]) expect(re.test(text)).toBe(false);
    }
    const open = grammarRegExp(jsonSchemaToGrammar({ type: "integer", minimum: 95 }));
    expect(open.test("9".repeat(16))).toBe(true);
    expect(open.test(`1${"0".repeat(16)}`)).toBe(false); // open sides stop at 16 digits, as plain integers do
    // llama.cpp reads the grammar the same way.
    const g = jsonSchemaToGrammar({ type: "integer", minimum: -20, maximum: 7 });
    expect(["-20", "-9", "0", "7"].map((t) => llamaAccepts(g, t))).toEqual([true, true, true, true]);
    expect(["-21", "8", "-0", "05"].map((t) => llamaAccepts(g, t))).toEqual([false, false, false, false]);
  }, SAMPLING_TIMEOUT);

  test("minLength and maxLength count characters, an escape sequence being one", () => {
    const re = grammarRegExp(jsonSchemaToGrammar({ type: "string", minLength: 2, maxLength: 3 }));
    for (const s of ["ab", "abc", "a\n", 'a"b', "é\\ü"]) expect(JSON.stringify(s)).toMatch(re);
    for (const s of ["a", "abcd", "", "ab\n\t"]) expect(JSON.stringify(s)).not.toMatch(re);
  });

  test("a pattern admits exactly the JSON strings whose value the JavaScript RegExp matches", () => {
    const patterns: Array<[pattern: string, alphabet: string, ...matching: string[]]> = [
      // random candidates are drawn from the alphabet; the listed strings must match
      ["^[A-Z]{2}-\\d{3}(x|yz)?$", "AZa-19xyz", "AZ-919yz", "ZZ-111"],
      ["ab.c", 'abc"\\\n\tz', 'zab"c\n', "ab\\c"],
      ["^(?:ab){2,3}$", "abx", "abab", "ababab"],
      ["^[^a-c]+$", "abcd\"\\\n.", 'd"\\\n.'],
      ["^\\w+@\\w+\\.(com|org)$", "a_1@.comrg", "a_1@b.org"],
      ["^a|b$", "abc", "ac", "cb"],
      ["^\\d{2,}?[.]\\s*$", "12. \t\nx", "12.", "111. \t\n"],
      ["^(a|b*)c?$", "abcd", "a", "bbc", ""],
      ["^[\\s\\S]{0,2}$", ' a\n"\\', '\n"'],
      ["^\\u00e9\\x41\\t$", "éA\tx", "éA\t"],
      ["^$", "ab", ""],
      ["^[a\\-z]{2}$", "a-zb", "-z"],
    ];
    let state = 7;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    for (const [pattern, alphabet, ...matching] of patterns) {
      const re = grammarRegExp(jsonSchemaToGrammar({ type: "string", pattern }));
      const chars = [...alphabet];
      for (const s of matching) expect({ pattern, s, ok: new RegExp(pattern).test(s) }).toEqual({ pattern, s, ok: true });
      const candidates = ["", ...chars, ...matching];
      for (let i = 0; i < 400; i++) candidates.push(Array.from({ length: Math.floor(random() * 8) }, () => chars[Math.floor(random() * chars.length)]).join(""));
      const disagree = candidates.filter((s) => re.test(JSON.stringify(s)) !== new RegExp(pattern).test(s));
      expect({ pattern, disagree }).toEqual({ pattern, disagree: [] });
    }
  });

  test("formats date, time, date-time and uuid admit well-formed values only", () => {
    const check = (format: string, yes: string[], no: string[]) => {
      const re = grammarRegExp(jsonSchemaToGrammar({ type: "string", format }));
      for (const s of yes) expect({ format, s, ok: re.test(JSON.stringify(s)) }).toEqual({ format, s, ok: true });
      for (const s of no) expect({ format, s, ok: re.test(JSON.stringify(s)) }).toEqual({ format, s, ok: false });
    };
    check("date", ["2024-02-29", "1999-12-31"], ["2024-13-01", "2024-00-10", "2024-01-32", "24-01-01", "2024-1-01"]);
    check("time", ["23:59:59Z", "00:00:00.123+02:00"], ["24:00:00Z", "12:60:00Z", "12:00:00"]);
    check("date-time", ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.5-11:30"], ["2024-01-02 03:04:05Z", "2024-01-02T03:04Z"]);
    check("uuid", ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g"]);
    check("ipv4", ["0.0.0.0", "255.249.10.1"], ["256.1.1.1", "01.1.1.1", "1.1.1"]);
  });

  test("enum and const admit only the listed JSON values", () => {
    const re = grammarRegExp(jsonSchemaToGrammar({ enum: ["a", 1.5, false, null, { k: [1] }] }));
    for (const text of ['"a"', "1.5", "false", "null", '{"k":[1]}']) expect(text).toMatch(re);
    for (const text of ['"b"', "1", "true", '{"k":[2]}', "a"]) expect(text).not.toMatch(re);
    const c = grammarRegExp(jsonSchemaToGrammar({ type: "object", properties: { v: { const: 'say "hi"\n' } }, required: ["v"] }, { strict: true }));
    expect('{"v":"say \\"hi\\"\\n"}').toMatch(c);
    expect('{"v":"say hi"}').not.toMatch(c);
  });

  test("allOf merges object schemas and anyOf distributes over sibling constraints", () => {
    const merged = grammarRegExp(jsonSchemaToGrammar({
      $defs: { Base: { type: "object", properties: { id: { type: "integer", minimum: 1, maximum: 9 } }, required: ["id"] } },
      allOf: [{ $ref: "#/$defs/Base" }, { properties: { ok: { type: "boolean" }, id: { maximum: 5 } }, required: ["ok"] }],
    }, { strict: true }));
    expect('{"id":5,"ok":true}').toMatch(merged);
    for (const text of ['{"id":6,"ok":true}', '{"id":5}', '{"ok":true}']) expect(text).not.toMatch(merged);
    const either = grammarRegExp(jsonSchemaToGrammar({
      type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } }, additionalProperties: false,
      anyOf: [{ required: ["a"] }, { required: ["b"] }],
    }));
    for (const text of ['{"a":1}', '{"b":1}', '{"a":1,"b":2}']) expect(text).toMatch(either);
    expect("{}").not.toMatch(either);
  });

  test("rule names are sanitised, never shadow built-in rules, and identical sub-schemas share one rule", () => {
    const grammar = jsonSchemaToGrammar({
      type: "object",
      properties: { "first name": { type: "string", maxLength: 3 }, "last name": { type: "string", maxLength: 3 }, string: { enum: [1] } },
      required: ["first name", "last name", "string"],
    }, { strict: true });
    const names = grammar.split("\n").filter(Boolean).map((l) => l.split(" ::= ")[0]!);
    for (const n of names) expect(n).toMatch(/^[A-Za-z0-9-]+$/);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain("first-name");
    expect(names).not.toContain("last-name"); // same body as first-name
    expect(grammar).toContain(`"\\"last name\\"" space ":" space first-name`);
    expect('{"first name":"ab","last name":"","string":1}').toMatch(grammarRegExp(grammar));
  });

  test("recursive $refs become recursive rules, and a $ref cycle that consumes nothing is refused", () => {
    const tree = jsonSchemaToGrammar(VARIED_SCHEMAS.find(([n]) => n === "recursive tree with $defs")![1]);
    expect(tree).toMatch(/^Node-children ::= .*\bNode\b/m);
    expect(llamaAccepts(tree, '{"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]}')).toBe(true);
    expect(llamaAccepts(tree, '{"name":"a","children":[{"children":[]}]}')).toBe(false);
    expect(() => jsonSchemaToGrammar({ $defs: { A: { anyOf: [{ $ref: "#/$defs/A" }, { type: "null" }] } }, $ref: "#/$defs/A" })).toThrow(
      '$: $ref "#/$defs/A" refers to itself before producing any output',
    );
    expect(() => jsonSchemaToGrammar({ anyOf: [{ $ref: "#" }, { type: "integer" }] })).toThrow(GrammarError);
  }, SAMPLING_TIMEOUT);

  test("no rule refers to root, even when the schema recurses through \"#\", so callers can rename root to embed the grammar", () => {
    const grammar = jsonSchemaToGrammar({ type: "object", properties: { v: { enum: [1, 2] }, child: { $ref: "#" } }, required: ["v"] }, { strict: true });
    expect(grammar.split("\n").filter((l) => !l.startsWith("root ::=")).join("\n")).not.toMatch(/\broot\b/);
    const embedded = `root ::= "<x>" inner "</x>"\n${grammar.replace(/^root ::=/m, "inner ::=")}`;
    expect(llamaAccepts(embedded, '<x>{"v":1,"child":{"v":2}}</x>')).toBe(true);
    expect(llamaAccepts(embedded, '<x>{"v":1,"child":<x>{"v":2}</x>}</x>')).toBe(false);
  }, SAMPLING_TIMEOUT);

  test("unsupported schema parts throw GrammarError naming the schema path", () => {
    const cases: Array<[unknown, string]> = [
      [{ type: "object", properties: { age: { type: "integer", not: { const: 3 } } } }, '$.properties.age: "not" is not supported'],
      [{ type: "object", properties: { tags: { type: "array", uniqueItems: true } } }, '$.properties.tags: "uniqueItems" is not supported'],
      [{ type: "object", patternProperties: { "^x": {} } }, '$: "patternProperties" is not supported'],
      [{ if: { type: "string" }, then: { minLength: 1 } }, '$: "if" is not supported'],
      [{ type: "object", properties: { code: { type: "string", pattern: "^(?=a)b$" } } }, "$.properties.code.pattern: lookahead, lookbehind and inline flags are not supported in pattern"],
      [{ type: "string", pattern: "^(a)\\1$" }, "$.pattern: backreferences are not supported in pattern"],
      [{ type: "string", pattern: "^\\bfoo$" }, "$.pattern: word boundaries (\\b) are not supported in pattern"],
      [{ type: "string", pattern: "^\\p{L}$" }, "$.pattern: Unicode property escapes (\\p{...}) are not supported in pattern"],
      [{ type: "string", pattern: "a^b" }, "$.pattern: '^' and '$' are supported only at the start and end of the pattern"],
      [{ type: "string", pattern: "(ab" }, "$.pattern: unterminated group in pattern"],
      [{ type: "string", pattern: "^*$" }, "$.pattern: nothing to repeat before '*' in pattern"],
      [{ type: "array", items: { type: "string", pattern: "^a$", maxLength: 3 } }, "$.items: pattern together with minLength/maxLength is not supported"],
      [{ type: "object", properties: { x: { $ref: "https://example.com/s.json" } } }, '$.properties.x: only local $ref ("#/...") is supported, got "https://example.com/s.json"'],
      [{ type: "object", properties: { x: { $ref: "#/$defs/Missing" } } }, '$.properties.x: $ref "#/$defs/Missing" does not resolve'],
      [{ $defs: { N: { type: "integer", minimum: 10, maximum: 1 } }, type: "array", items: { $ref: "#/$defs/N" } }, "$.$defs.N: no integer lies between minimum and maximum"],
      [{ type: "number", multipleOf: 0.5 }, '$: "multipleOf" is not supported for numbers'],
      [{ type: "string", minLength: 5, maxLength: 2 }, "$: minLength is greater than maxLength"],
      [{ type: "object", properties: { a: false } }, "$.properties.a: the schema `false` accepts no value"],
      [{ type: "date" }, '$.type: unknown type "date"'],
      [{ type: "object", properties: { a: { anyOf: [] } } }, "$.properties.a.anyOf: must be a non-empty array"],
      [{ allOf: [{ type: "string" }, { type: "integer" }] }, "$: allOf parts have no type in common"],
      [{ type: "object", minProperties: 1 }, '$: "minProperties" above the number of required properties is not supported'],
    ];
    for (const [schema, message] of cases) {
      let error: unknown;
      try {
        jsonSchemaToGrammar(schema);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(GrammarError);
      expect((error as GrammarError).message).toBe(message);
      expect((error as GrammarError).path).toBe(message.slice(0, message.indexOf(": ")));
    }
  });
});

// ---- generation ---------------------------------------------------------------------------------

interface GenerationCase {
  behaviour: string;
  schema: Record<string, unknown>;
  seeds: number[];
  /** Token budget: far above what these runs need; only the recursive schema has no finite bound at all. */
  maxTokens: number;
  /** Extra assertions over the parsed outputs of all seeds. */
  check?: (values: any[]) => void;
}

const GENERATION_CASES: GenerationCase[] = [
  {
    behaviour: "an object with required, optional, enum and bounded members",
    schema: {
      type: "object",
      properties: {
        role: { enum: ["admin", "user", null] },
        name: { type: "string", maxLength: 4 },
        age: { type: "integer", minimum: 0, maximum: 150 },
        active: { type: "boolean" },
      },
      required: ["name", "age"],
      additionalProperties: false,
    },
    seeds: [1, 2, 3],
    maxTokens: 260,
    check: (values) => values.forEach((v) => expect(Object.keys(v).slice(0, 2)).toEqual(["name", "age"])),
  },
  {
    behaviour: "nested arrays with minItems and maxItems",
    schema: {
      type: "object",
      properties: { rows: { type: "array", minItems: 1, maxItems: 3, items: { type: "array", maxItems: 2, items: { type: "integer", minimum: -5, maximum: 5 } } } },
      required: ["rows"],
    },
    seeds: [1, 2],
    maxTokens: 320,
  },
  {
    behaviour: "a pattern, a date and a short string",
    schema: {
      type: "object",
      properties: { code: { type: "string", pattern: "^[A-Z]{2}-\\d{3}$" }, day: { type: "string", format: "date" }, note: { type: "string", minLength: 1, maxLength: 3 } },
      required: ["code", "day", "note"],
    },
    seeds: [1, 2],
    maxTokens: 200,
  },
  {
    behaviour: "anyOf items and nullable values",
    schema: {
      type: "array",
      maxItems: 4,
      items: { anyOf: [{ type: "integer", minimum: 10, maximum: 99 }, { type: "boolean" }, { type: "string", maxLength: 2 }, { type: ["integer", "null"], minimum: -3, maximum: -1 }] },
    },
    seeds: [4, 9],
    maxTokens: 200,
    check: (values) => expect(new Set(values.flat().map((v) => (v === null ? "null" : typeof v))).size).toBeGreaterThan(2),
  },
  {
    behaviour: "integer bounds and a tuple",
    schema: {
      type: "array",
      prefixItems: [{ type: "integer", minimum: -1000, maximum: -990 }, { type: "integer", exclusiveMinimum: 99, exclusiveMaximum: 1000 }, { const: 7 }],
      items: false,
      minItems: 2,
    },
    seeds: [1, 2],
    maxTokens: 120,
  },
  {
    behaviour: "allOf over a $ref",
    schema: {
      $defs: { Base: { type: "object", properties: { id: { type: "integer", minimum: 1, maximum: 9 } }, required: ["id"] } },
      allOf: [{ $ref: "#/$defs/Base" }, { properties: { ok: { type: "boolean" } }, required: ["ok"] }],
    },
    seeds: [1, 2],
    maxTokens: 120,
  },
  {
    behaviour: "a recursive $ref (a linked list)",
    schema: {
      $defs: { Node: { type: "object", properties: { v: { type: "integer", minimum: 0, maximum: 9 }, next: { $ref: "#/$defs/Node" } }, required: ["v"], additionalProperties: false } },
      $ref: "#/$defs/Node",
    },
    seeds: [3, 5],
    maxTokens: 300,
    check: (values) => expect(values.some((v) => v.next !== undefined)).toBe(true), // the recursion was taken
  },
];

describe("bounded work per schema", () => {
  /** The GrammarError a schema gets, and how long converting it took. */
  const refusal = (schema: unknown): { error: unknown; ms: number } => {
    const t0 = performance.now();
    let error: unknown = null;
    try {
      jsonSchemaToGrammar(schema);
    } catch (err) {
      error = err;
    }
    return { error, ms: performance.now() - t0 };
  };

  test("huge minItems and minLength are refused at once with a GrammarError naming them, not a stack overflow", () => {
    const cases: [unknown, string][] = [
      [{ type: "array", minItems: 100_000_000 }, "$.minItems: minItems above 10000 is not supported"],
      [{ type: "array", items: { type: "integer" }, minItems: 20_000_000 }, "$.minItems: minItems above 10000 is not supported"],
      [{ type: "object", properties: { s: { type: "string", minLength: 1e15 } } }, "$.properties.s.minLength: minLength above 10000 is not supported"],
      [{ type: "array", prefixItems: Array.from({ length: 20_000 }, () => ({ type: "integer" })) }, "$.prefixItems: more than 10000 tuple items are not supported"],
      [{ type: "string", pattern: "^a{20000}$" }, "$.pattern: pattern repetition counts above 10000 are not supported"],
    ];
    for (const [schema, message] of cases) {
      const { error, ms } = refusal(schema);
      expect(error).toBeInstanceOf(GrammarError);
      expect((error as GrammarError).message).toBe(message);
      expect(ms).toBeLessThan(1000);
    }
  });

  test("counts that add up past the budget, a grammar too long and a $ref chain too deep are refused too", () => {
    const many = { type: "object", properties: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`p${i}`, { type: "string", minLength: 10_000 - i }])), required: [] };
    const long = { enum: Array.from({ length: 40_000 }, (_, i) => `value number ${i} of a very long enumeration`) };
    const defs: Record<string, unknown> = {};
    for (let i = 0; i < 50_000; i++) defs[`d${i}`] = { type: "array", items: { $ref: `#/$defs/d${i + 1}` } };
    defs.d50000 = { type: "integer" };
    const chain = { $defs: defs, $ref: "#/$defs/d0" };
    for (const [schema, pattern] of [
      [many, /^\$: the schema's counts .* add up to 2\d{5} repeated elements; at most 200000 are supported$/],
      [long, /^\$: the schema's grammar would be \d+ characters; at most 1048576 are supported$/],
      [chain, /^\$: the schema is nested too deeply to convert$|at most 1048576 are supported$/],
    ] as const) {
      const { error, ms } = refusal(schema);
      expect(error).toBeInstanceOf(GrammarError);
      expect((error as GrammarError).message).toMatch(pattern);
      expect(ms).toBeLessThan(5000);
    }
  });

  test("a maximum above the bound leaves the count open; counts at the bound still work in llama.cpp", () => {
    const open = jsonSchemaToGrammar({ type: "array", items: { type: "integer" }, maxItems: 1e12 });
    expect(open).toBe(jsonSchemaToGrammar({ type: "array", items: { type: "integer" } }));
    expect(jsonSchemaToGrammar({ type: "string", maxLength: 1e9 })).toBe(jsonSchemaToGrammar({ type: "string" }));
    const atBound = jsonSchemaToGrammar({ type: "array", items: { const: 1 }, minItems: 10_000 });
    expect(expandedRepetitions(atBound)).toBeLessThanOrEqual(200_000);
    // llama.cpp parses and expands it (a sampler is made) in bounded time.
    const t0 = performance.now();
    grammarSampler(atBound).dispose();
    expect(performance.now() - t0).toBeLessThan(10_000);
  }, SAMPLING_TIMEOUT);

  test("expandedRepetitions counts repetitions outside literals and classes", () => {
    expect(expandedRepetitions('root ::= x{3} y{2,5} z{4,} "a{99}" [{}]{2}')).toBe(3 + 5 + 5 + 2);
  });
});

describe("constrained generation on the tiny random model", () => {
  for (const c of GENERATION_CASES) {
    test(`${c.behaviour}: each seed ends with EOG within ${c.maxTokens} tokens and the JSON satisfies the schema`, () => {
      const grammar = jsonSchemaToGrammar(c.schema, { strict: true });
      const texts = new Set<string>();
      const values: unknown[] = [];
      for (const seed of c.seeds) {
        const out = generate(grammar, seed, c.maxTokens);
        expect({ seed, ended: out.ended }).toEqual({ seed, ended: true });
        const value = JSON.parse(out.text);
        expect({ seed, text: out.text, violations: violations(value, c.schema, c.schema) }).toEqual({ seed, text: out.text, violations: [] });
        values.push(value);
        texts.add(out.text);
      }
      c.check?.(values);
      expect(texts.size).toBe(c.seeds.length); // the seeds really sampled different outputs
    }, SAMPLING_TIMEOUT);
  }

  test("JSON_OBJECT_GRAMMAR: any sampled prefix (temperature 0.7) can be closed into a JSON object that JSON.parse accepts", () => {
    // Unbounded strings rarely close under random weights, so runs are cut after 10 tokens and then
    // steered toward closing tokens; the grammar must still lead to a complete object.
    const closers = ['"', "}", "]", "0", ":"].map((s): [number, number] => [model.tokenize(s, { parseSpecial: false })[0]!, 100]);
    for (const seed of [1, 2, 3]) {
      const sampler = grammarSampler(JSON_OBJECT_GRAMMAR, [{ type: "temp", temperature: 0.7 }, { type: "dist", seed }]);
      const closer = grammarSampler(JSON_OBJECT_GRAMMAR, [{ type: "dist", seed }], [{ type: "logit_bias", bias: closers }]);
      try {
        const g = continueGeneration(startGeneration("Reply with JSON:"), sampler, 10);
        for (const t of g.tokens) closer.accept(t);
        continueGeneration(g, closer, 150);
        const text = model.detokenize(g.tokens);
        expect({ seed, ended: g.ended }).toEqual({ seed, ended: true });
        const value = JSON.parse(text);
        expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
      } finally {
        sampler.dispose();
        closer.dispose();
      }
    }
  }, SAMPLING_TIMEOUT);
});

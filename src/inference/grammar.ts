// JSON Schema -> llama.cpp GBNF, so response_format json_object / json_schema constrains generation.
//
// Supported: type (and type arrays), enum, const, properties/required/additionalProperties, items,
// prefixItems (and draft-4 array items/additionalItems), minItems/maxItems, minLength/maxLength,
// pattern (a regex subset), format date/time/date-time/uuid/ipv4, anyOf/oneOf (oneOf is not checked
// for exclusivity), allOf (merged), local $ref (recursion allowed), nullable, integer bounds.
// Deliberately ignored, never enforced: number (non-integer) minimum/maximum, unknown formats (they
// are annotations in JSON Schema), unknown keywords. Everything else that constrains values
// (not, if/then/else, uniqueItems, patternProperties, ...) throws a GrammarError naming the path.
// Note: a date such as 2023-02-31 passes the date rule (months and days are checked separately).
// Bounded work: minItems/minLength, tuple lengths and pattern counts above 10000 are refused (a
// maxItems/maxLength above it leaves the count open), and so is a grammar over 1 MiB or whose
// repetitions llama.cpp would expand into more than 200000 elements.

/** A schema the converter cannot express; the message starts with the JSON path of the culprit. */
export class GrammarError extends Error {
  override name = "GrammarError";
  constructor(
    message: string,
    /** Where in the schema, e.g. `$.properties.age`. */
    readonly path = "$",
  ) {
    super(message);
  }
}

export interface GrammarOptions {
  /** OpenAI strict mode: an object without `additionalProperties` accepts no extra keys. Defaults to false. */
  strict?: boolean;
}

type Schema = Record<string, unknown>;
type Range = [lo: number, hi: number];

// ---- GBNF building blocks ---------------------------------------------------------------------

/** Built-in rules with fixed names; the whitespace rule is bounded so a model cannot pad forever. */
const PRIMITIVES: Record<string, { body: string; deps: string[] }> = {
  space: { body: String.raw`| " " | "\n" [ \t]{0,20}`, deps: [] },
  char: { body: String.raw`[^"\\\x00-\x1F\x7F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )`, deps: [] },
  keychar: { body: String.raw`[^"\\\x00-\x1F\x7F]`, deps: [] },
  string: { body: String.raw`"\"" char* "\""`, deps: ["char"] },
  integral: { body: String.raw`"0" | [1-9] [0-9]{0,15}`, deps: [] },
  integer: { body: String.raw`"-"? integral`, deps: ["integral"] },
  number: { body: String.raw`"-"? integral ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?`, deps: ["integral"] },
  boolean: { body: String.raw`"true" | "false"`, deps: [] },
  null: { body: String.raw`"null"`, deps: [] },
  value: { body: "object | array | string | number | boolean | null", deps: ["object", "array", "string", "number", "boolean", "null"] },
  object: { body: String.raw`"{" space ( member ( "," space member )* space )? "}"`, deps: ["space", "member"] },
  member: { body: String.raw`string space ":" space value`, deps: ["string", "space", "value"] },
  array: { body: String.raw`"[" space ( value ( "," space value )* space )? "]"`, deps: ["space", "value"] },
  date: { body: String.raw`[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )`, deps: [] },
  time: {
    body: String.raw`( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [-+] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`,
    deps: [],
  },
  "date-time": { body: String.raw`date "T" time`, deps: ["date", "time"] },
  uuid: { body: String.raw`[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}`, deps: [] },
  ipv4: { body: String.raw`octet "." octet "." octet "." octet`, deps: ["octet"] },
  octet: { body: String.raw`"25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9]`, deps: [] },
};

const FORMATS = new Set(["date", "time", "date-time", "uuid", "ipv4"]);
const RESERVED = new Set(["root", ...Object.keys(PRIMITIVES)]);

/** Named rules in insertion order; identical bodies share one rule, names never collide. */
class RuleSet {
  private readonly rules = new Map<string, string>();
  private readonly byBody = new Map<string, string>();

  /** A rule for `body` named after `hint` (sanitised, suffixed when taken), or the existing rule with that body. */
  add(hint: string, body: string): string {
    const existing = this.byBody.get(body);
    if (existing) return existing;
    const name = this.reserve(hint);
    this.define(name, body);
    return name;
  }

  /** Claims a free name now and defines it later (recursive $refs need their name before their body). */
  reserve(hint: string, exact = false): string {
    const base = exact ? hint : sanitize(hint);
    let name = base;
    for (let i = 1; !exact && (this.rules.has(name) || RESERVED.has(name)); i++) name = `${base}-${i}`;
    this.rules.set(name, "");
    return name;
  }

  define(name: string, body: string): void {
    this.rules.set(name, body);
    if (!this.byBody.has(body)) this.byBody.set(body, name);
  }

  primitive(name: string): string {
    if (!this.rules.has(name)) {
      const p = PRIMITIVES[name]!;
      this.rules.set(name, p.body);
      for (const dep of p.deps) this.primitive(dep);
    }
    return name;
  }

  render(): string {
    return [...this.rules].map(([name, body]) => `${name} ::= ${body}\n`).join("");
  }
}

function sanitize(hint: string): string {
  return hint.replace(/[^A-Za-z0-9-]+/g, "-").replace(/-{2,}/g, "-").replace(/^-|-$/g, "") || "rule";
}

function joinHint(parent: string, child: string): string {
  return parent ? `${parent}-${child}` : child;
}

/** A GBNF string literal matching exactly `text`. */
function literal(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (cp < 0x20 || cp === 0x7f || (cp >= 0xd800 && cp <= 0xdfff)) out += hexEscape(cp);
    else out += ch;
  }
  return `"${out}"`;
}

function hexEscape(cp: number): string {
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\U${cp.toString(16).padStart(8, "0")}`;
}

/** One code point inside [...]: letters and digits as they are, everything else escaped. */
function classChar(cp: number): string {
  return /^[A-Za-z0-9]$/.test(String.fromCodePoint(cp)) ? String.fromCodePoint(cp) : hexEscape(cp);
}

/** Alternatives as one embeddable expression. */
function group(alts: string[]): string {
  return alts.length === 1 ? alts[0]! : `( ${alts.join(" | ")} )`;
}

/** Largest count one GBNF repetition carries here (llama.cpp refuses more than 2000). */
const REPEAT_CHUNK = 1000;

/** Most repetitions one count asks for (minItems, minLength, a pattern's {n}): llama.cpp expands each one. */
const MAX_COUNT = 10_000;
/** Bounds on a whole grammar, so that one request cannot make building or loading it slow or large. */
const MAX_GRAMMAR_CHARS = 1 << 20;
const MAX_EXPANDED = 200_000;

/**
 * How many elements llama.cpp makes of the grammar's repetitions (`x{n}`, `x{n,m}`, `x{n,}`), outside
 * literals and character classes: every repetition is expanded into that many copies.
 */
export function expandedRepetitions(grammar: string): number {
  let total = 0;
  for (let i = 0; i < grammar.length; i++) {
    const c = grammar[i];
    if (c === '"' || c === "[") {
      const close = c === '"' ? '"' : "]";
      for (i++; i < grammar.length && grammar[i] !== close; i++) if (grammar[i] === "\\") i++;
    } else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(grammar.slice(i, i + 24));
      if (m) total += m[3] ? Number(m[3]) : Number(m[1]) + (m[2] ? 1 : 0);
    }
  }
  return total;
}

/** `atom` repeated min..max times (max may be Infinity); atom must be a name, literal, class or flat group. */
function repeat(atom: string, min: number, max: number): string {
  if (max === 0) return "";
  if (min === 0 && max === 1) return `${atom}?`;
  if (min === 0 && max === Infinity) return `${atom}*`;
  if (min === 1 && max === Infinity) return `${atom}+`;
  if (min > REPEAT_CHUNK) return `${atom}{${REPEAT_CHUNK}} ${repeat(atom, min - REPEAT_CHUNK, max - REPEAT_CHUNK)}`.trim();
  if (max === Infinity) return `${atom}{${min},}`;
  if (max <= REPEAT_CHUNK) return min === max ? `${atom}{${min}}` : `${atom}{${min},${max}}`;
  const long = `${atom}{${REPEAT_CHUNK}} ${repeat(atom, 0, max - REPEAT_CHUNK)}`;
  return min === REPEAT_CHUNK ? long : `( ${repeat(atom, min, REPEAT_CHUNK - 1)} | ${long} )`;
}

function isAtom(expr: string): boolean {
  return /^[A-Za-z0-9-]+$/.test(expr) || /^"(?:[^"\\]|\\.)*"$/.test(expr) || /^\[(?:[^\]\\]|\\.)*\]$/.test(expr);
}

// ---- code point sets (for regex classes) --------------------------------------------------------

const MAX_CP = 0x10ffff;

function normalize(ranges: Range[]): Range[] {
  const sorted = ranges.filter(([lo, hi]) => lo <= hi).sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(ranges: Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of normalize(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

function intersect(a: Range[], b: Range[]): Range[] {
  const out: Range[] = [];
  for (const [alo, ahi] of a) for (const [blo, bhi] of b) if (Math.max(alo, blo) <= Math.min(ahi, bhi)) out.push([Math.max(alo, blo), Math.min(ahi, bhi)]);
  return normalize(out);
}

function contains(ranges: Range[], cp: number): boolean {
  return ranges.some(([lo, hi]) => lo <= cp && cp <= hi);
}

function setSize(ranges: Range[]): number {
  return ranges.reduce((n, [lo, hi]) => n + hi - lo + 1, 0);
}

const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE_CHARS: Range[] = normalize([
  [0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a],
  [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff],
]);
const DOT: Range[] = complement([[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]]);
/** Characters a JSON string may hold unescaped (as the `char` rule allows them). */
const RAW_DOMAIN: Range[] = [[0x20, 0x21], [0x23, 0x5b], [0x5d, 0x7e], [0x80, 0xd7ff], [0xe000, MAX_CP]];
/** Characters written as a short JSON escape. */
const SHORT_ESCAPES: Array<[number, string]> = [[0x22, '\\"'], [0x5c, "\\\\"], [0x08, "\\b"], [0x0c, "\\f"], [0x0a, "\\n"], [0x0d, "\\r"], [0x09, "\\t"]];

function classOf(ranges: Range[], negated: boolean): string {
  const body = ranges.map(([lo, hi]) => (lo === hi ? classChar(lo) : `${classChar(lo)}-${classChar(hi)}`)).join("");
  return negated ? `[^"\\\\\\x00-\\x1F\\x7F${body}]` : `[${body}]`;
}

/** The JSON-encoded form of one character from `set`: raw where JSON allows it, escaped otherwise. */
function encodeSet(set: Range[], path: string): string {
  const alts: string[] = [];
  const raw = intersect(set, RAW_DOMAIN);
  if (raw.length === 1 && raw[0]![0] === raw[0]![1]) alts.push(literal(String.fromCodePoint(raw[0]![0])));
  else if (raw.length > 0) {
    const rest = intersect(complement(raw), RAW_DOMAIN);
    alts.push(rest.length < raw.length ? classOf(rest, true) : classOf(raw, false));
  }
  for (const [cp, escape] of SHORT_ESCAPES) if (contains(set, cp)) alts.push(literal(escape));
  if (setSize(set) < 1000) {
    // Other control characters only as \u00XX, and only for small explicit sets like [\x01-\x03].
    for (const cp of [...Array(0x20).keys(), 0x7f]) {
      if (contains(set, cp) && !SHORT_ESCAPES.some(([c]) => c === cp)) alts.push(literal(`\\u${cp.toString(16).padStart(4, "0")}`));
    }
  }
  if (alts.length === 0) throw new GrammarError(`${path}: a character class in the pattern matches no character`, path);
  return group(alts);
}

// ---- regular expressions (JSON Schema `pattern`) -----------------------------------------------

type RegexNode =
  | { t: "chars"; set: Range[] }
  | { t: "seq"; items: RegexNode[] }
  | { t: "alt"; alts: RegexNode[] }
  | { t: "repeat"; node: RegexNode; min: number; max: number };

interface TopAlternative {
  node: RegexNode;
  start: boolean;
  end: boolean;
}

/** Parses the ECMAScript regex subset we can express: literals, classes, . \d \w \s, groups, |, quantifiers, ^ $. */
class RegexParser {
  private readonly cps: string[];
  private i = 0;
  private depth = 0;

  constructor(
    pattern: string,
    private readonly path: string,
  ) {
    this.cps = Array.from(pattern);
  }

  private fail(reason: string): never {
    throw new GrammarError(`${this.path}: ${reason}`, this.path);
  }

  private peek(offset = 0): string | undefined {
    return this.cps[this.i + offset];
  }

  parse(): TopAlternative[] {
    const alts: TopAlternative[] = [];
    for (;;) {
      let start = false;
      if (this.peek() === "^") {
        start = true;
        this.i++;
      }
      const node = this.sequence(true);
      let end = false;
      if (this.peek() === "$") {
        end = true;
        this.i++;
      }
      alts.push({ node, start, end });
      if (this.peek() === undefined) return alts;
      if (this.peek() === "|") this.i++;
      else if (this.peek() === ")") this.fail("unbalanced ')' in pattern");
      else this.fail("'^' and '$' are supported only at the start and end of the pattern");
    }
  }

  private alternation(): RegexNode {
    const alts = [this.sequence(false)];
    while (this.peek() === "|") {
      this.i++;
      alts.push(this.sequence(false));
    }
    return alts.length === 1 ? alts[0]! : { t: "alt", alts };
  }

  private sequence(top: boolean): RegexNode {
    const items: RegexNode[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === "|" || c === ")") break;
      if (c === "$" && top && (this.peek(1) === undefined || this.peek(1) === "|")) break;
      if (c === "^" || c === "$") this.fail("'^' and '$' are supported only at the start and end of the pattern");
      if (c === "*" || c === "+" || c === "?" || (c === "{" && this.quantifierAhead())) {
        const last = items.pop();
        if (!last) this.fail(`nothing to repeat before '${c}' in pattern`);
        items.push(this.quantifier(last));
        continue;
      }
      items.push(this.atom());
    }
    return items.length === 1 ? items[0]! : { t: "seq", items };
  }

  private quantifierAhead(): boolean {
    return /^\{\d+(,\d*)?\}/.test(this.cps.slice(this.i, this.i + 24).join(""));
  }

  private quantifier(node: RegexNode): RegexNode {
    const c = this.cps[this.i++]!;
    let min = 0;
    let max = Infinity;
    if (c === "+") min = 1;
    else if (c === "?") max = 1;
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.cps.slice(this.i - 1, this.i + 23).join(""))!;
      this.i += m[0].length - 1;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] ? Number(m[3]) : Infinity;
      if (min > max) this.fail(`quantifier {${min},${max}} out of order in pattern`);
      if (min > MAX_COUNT || (max !== Infinity && max > MAX_COUNT)) this.fail(`pattern repetition counts above ${MAX_COUNT} are not supported`);
    }
    if (this.peek() === "?") this.i++; // lazy: the same set of strings
    if (this.peek() === "*" || this.peek() === "+" || this.peek() === "?" || (this.peek() === "{" && this.quantifierAhead())) {
      this.fail("nothing to repeat (double quantifier) in pattern");
    }
    return { t: "repeat", node, min, max };
  }

  private atom(): RegexNode {
    const c = this.cps[this.i++]!;
    if (c === "(") return this.group();
    if (c === "[") return { t: "chars", set: this.charClass() };
    if (c === ".") return { t: "chars", set: DOT };
    if (c === "\\") {
      const e = this.escape(false);
      return { t: "chars", set: e };
    }
    const cp = c.codePointAt(0)!;
    return { t: "chars", set: [[cp, cp]] };
  }

  private group(): RegexNode {
    if (this.peek() === "?") {
      const next = this.peek(1);
      if (next === ":") this.i += 2;
      else if (next === "<" && this.peek(2) !== "=" && this.peek(2) !== "!") {
        const close = this.cps.indexOf(">", this.i);
        if (close < 0) this.fail("unterminated group name in pattern");
        this.i = close + 1;
      } else this.fail("lookahead, lookbehind and inline flags are not supported in pattern");
    }
    if (++this.depth > 50) this.fail("pattern nests groups too deeply");
    const node = this.alternation();
    this.depth--;
    if (this.cps[this.i++] !== ")") this.fail("unterminated group in pattern");
    return node;
  }

  /** After a backslash; inClass changes \b (backspace there, a word boundary outside). */
  private escape(inClass: boolean): Range[] {
    const c = this.cps[this.i++];
    if (c === undefined) this.fail("pattern ends with a lone backslash");
    const single = (cp: number): Range[] => [[cp, cp]];
    switch (c) {
      case "d": return DIGIT;
      case "D": return complement(DIGIT);
      case "w": return WORD;
      case "W": return complement(WORD);
      case "s": return SPACE_CHARS;
      case "S": return complement(SPACE_CHARS);
      case "t": return single(0x09);
      case "n": return single(0x0a);
      case "v": return single(0x0b);
      case "f": return single(0x0c);
      case "r": return single(0x0d);
      case "0":
        if (/[0-9]/.test(this.peek() ?? "")) this.fail("octal escapes are not supported in pattern");
        return single(0);
      case "b":
        if (inClass) return single(0x08);
        return this.fail("word boundaries (\\b) are not supported in pattern");
      case "B": return this.fail("word boundaries (\\B) are not supported in pattern");
      case "x": return single(this.hex(2));
      case "u":
        if (this.peek() === "{") {
          const close = this.cps.indexOf("}", this.i);
          const digits = close > 0 ? this.cps.slice(this.i + 1, close).join("") : "";
          if (!/^[0-9a-fA-F]{1,6}$/.test(digits) || parseInt(digits, 16) > MAX_CP) this.fail("bad \\u{...} escape in pattern");
          this.i = close + 1;
          return single(parseInt(digits, 16));
        }
        return single(this.hex(4));
      case "c": {
        const letter = this.cps[this.i++] ?? "";
        if (!/^[A-Za-z]$/.test(letter)) this.fail("bad \\c escape in pattern");
        return single(letter.codePointAt(0)! % 32);
      }
      case "p":
      case "P":
        return this.fail("Unicode property escapes (\\p{...}) are not supported in pattern");
      case "k":
        return this.fail("named backreferences are not supported in pattern");
      default:
        if (/[1-9]/.test(c)) this.fail("backreferences are not supported in pattern");
        if (/[A-Za-z0-9]/.test(c)) this.fail(`unknown escape \\${c} in pattern`);
        return single(c.codePointAt(0)!);
    }
  }

  private hex(n: number): number {
    const digits = this.cps.slice(this.i, this.i + n).join("");
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(digits)) this.fail(`bad hex escape in pattern`);
    this.i += n;
    return parseInt(digits, 16);
  }

  private charClass(): Range[] {
    let negated = false;
    if (this.peek() === "^") {
      negated = true;
      this.i++;
    }
    const ranges: Range[] = [];
    // One class member: a single code point (may start a range) or a class escape like \d.
    const member = (): { cp: number } | { set: Range[] } => {
      const c = this.cps[this.i++]!;
      if (c !== "\\") return { cp: c.codePointAt(0)! };
      const set = this.escape(true);
      return set.length === 1 && set[0]![0] === set[0]![1] ? { cp: set[0]![0] } : { set };
    };
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail("unterminated character class in pattern");
      if (c === "]") {
        this.i++;
        break;
      }
      const from = member();
      if ("set" in from) {
        ranges.push(...from.set);
        continue;
      }
      if (this.peek() === "-" && this.peek(1) !== "]" && this.peek(1) !== undefined) {
        this.i++;
        const to = member();
        if ("set" in to) {
          ranges.push([from.cp, from.cp], [0x2d, 0x2d], ...to.set);
          continue;
        }
        if (to.cp < from.cp) this.fail("character class range out of order in pattern");
        ranges.push([from.cp, to.cp]);
      } else ranges.push([from.cp, from.cp]);
    }
    const set = normalize(ranges);
    return negated ? complement(set) : set;
  }
}

/** Emits GBNF for a parsed pattern; repeated sub-expressions become named rules. */
class PatternEmitter {
  private counter = 0;

  constructor(
    private readonly rules: RuleSet,
    private readonly path: string,
    private readonly hint: string,
  ) {}

  emit(node: RegexNode): string {
    switch (node.t) {
      case "chars":
        return encodeSet(node.set, this.path);
      case "alt":
        return group(node.alts.map((a) => this.emit(a) || '""'));
      case "repeat": {
        let atom = this.emit(node.node);
        if (!atom) return "";
        if (!isAtom(atom)) atom = this.rules.add(`${this.hint}-${++this.counter}`, atom);
        return repeat(atom, node.min, node.max);
      }
      case "seq": {
        // Adjacent single characters join into one literal for readability.
        const parts: string[] = [];
        let text = "";
        for (const item of node.items) {
          const single = item.t === "chars" && item.set.length === 1 && item.set[0]![0] === item.set[0]![1] ? item.set[0]![0] : -1;
          if (single >= 0 && contains(RAW_DOMAIN, single)) {
            text += String.fromCodePoint(single);
            continue;
          }
          if (text) parts.push(literal(text));
          text = "";
          const e = this.emit(item);
          if (e) parts.push(e);
        }
        if (text) parts.push(literal(text));
        return parts.join(" ");
      }
    }
  }
}

// ---- integer ranges -----------------------------------------------------------------------------

/** Digits an unbounded side of an integer range may use, as the plain integer rule allows. */
const INTEGER_DIGITS = 16;

function digitClass(from: number, to: number): string {
  return from === to ? `"${from}"` : `[${from}-${to}]`;
}

/** Alternatives matching exactly the decimal strings from x to y, both of the same length. */
function sameLength(x: string, y: string): string[] {
  if (x === y) return [`"${x}"`];
  let i = 0;
  while (x[i] === y[i]) i++;
  const prefix = x.slice(0, i);
  const xd = Number(x[i]);
  const yd = Number(y[i]);
  const xs = x.slice(i + 1);
  const ys = y.slice(i + 1);
  const k = xs.length;
  let alts: string[];
  if (k === 0) alts = [digitClass(xd, yd)];
  else {
    alts = [];
    const lowFull = /^0*$/.test(xs);
    const highFull = /^9*$/.test(ys);
    if (!lowFull) alts.push(`"${xd}" ${group(sameLength(xs, "9".repeat(k)))}`);
    const midLo = lowFull ? xd : xd + 1;
    const midHi = highFull ? yd : yd - 1;
    if (midLo <= midHi) alts.push(`${digitClass(midLo, midHi)} ${k === 1 ? "[0-9]" : `[0-9]{${k}}`}`);
    if (!highFull) alts.push(`"${yd}" ${group(sameLength("0".repeat(k), ys))}`);
  }
  return prefix ? [`"${prefix}" ${group(alts)}`] : alts;
}

/** Alternatives matching the canonical decimal form of every integer in [a, b], 0 <= a <= b. */
function nonNegativeRange(a: bigint, b: bigint): string[] {
  const out: string[] = [];
  const da = String(a).length;
  const db = String(b).length;
  for (let d = da; d <= db; d++) {
    const from = d === da ? a : 10n ** BigInt(d - 1);
    const to = d === db ? b : 10n ** BigInt(d) - 1n;
    out.push(...sameLength(String(from), String(to)));
  }
  return out;
}

/** GBNF matching exactly the integers in [lo, hi], written without leading zeros or "-0". */
function integerRange(lo: bigint, hi: bigint): string {
  const alts: string[] = [];
  if (lo < 0n) alts.push(`"-" ${group(nonNegativeRange(hi < 0n ? -hi : 1n, -lo))}`);
  if (hi >= 0n) alts.push(...nonNegativeRange(lo < 0n ? 0n : lo, hi));
  return group(alts);
}

// ---- the converter ------------------------------------------------------------------------------

/** Keywords that describe a schema without constraining the value. */
const ANNOTATIONS = new Set([
  "title", "description", "default", "examples", "example", "$schema", "$id", "$comment", "$defs", "definitions",
  "deprecated", "readOnly", "writeOnly", "$anchor", "contentEncoding", "contentMediaType", "discriminator", "xml", "externalDocs",
]);
const SUPPORTED = new Set([
  "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems", "additionalItems",
  "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "anyOf", "oneOf", "allOf", "$ref", "nullable",
  "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minProperties", "maxProperties", "uniqueItems",
]);
const UNSUPPORTED = new Set([
  "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies", "patternProperties", "propertyNames",
  "unevaluatedProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "$dynamicRef", "$recursiveRef",
]);
const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
const OBJECT_KEYWORDS = ["properties", "required", "additionalProperties", "minProperties", "maxProperties"];
const ARRAY_KEYWORDS = ["items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"];
const STRING_KEYWORDS = ["minLength", "maxLength", "pattern", "format"];
const NUMBER_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];

function isObject(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function omit(schema: Schema, keys: string[]): Schema {
  return Object.fromEntries(Object.entries(schema).filter(([k]) => !keys.includes(k)));
}

function constrains(schema: Schema): boolean {
  return Object.keys(schema).some((k) => SUPPORTED.has(k) || UNSUPPORTED.has(k));
}

function pathSegment(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Schema)[k], (b as Schema)[k]));
}

class Converter {
  readonly rules = new RuleSet();
  private readonly refNames = new Map<string, string>();

  constructor(
    private readonly root: unknown,
    private readonly strict: boolean,
  ) {}

  /** No rule refers to `root` (a "#" $ref gets a rule of its own), so callers may rename it to embed the grammar. */
  convert(): string {
    this.rules.reserve("root", true);
    if (this.leftRecursive(this.root, "#", new Set(), 0)) this.fail("$", 'the schema refers to itself ("#") before producing any output');
    const body = this.visit(this.root, "$", "");
    this.rules.define("root", this.refNames.get("#") ?? body);
    return this.rules.render();
  }

  private fail(path: string, reason: string): never {
    throw new GrammarError(`${path}: ${reason}`, path);
  }

  /** A rule name for the schema (primitives and $refs are names already). */
  private ruleFor(schema: unknown, path: string, hint: string): string {
    const body = this.visit(schema, path, hint);
    return /^[A-Za-z0-9-]+$/.test(body) ? body : this.rules.add(hint, body);
  }

  /** GBNF expression for the schema, embeddable in a sequence. */
  private visit(schema: unknown, path: string, hint: string): string {
    if (schema === true) return this.rules.primitive("value");
    if (schema === false) this.fail(path, "the schema `false` accepts no value");
    if (!isObject(schema)) this.fail(path, "a schema must be an object or a boolean");
    this.checkKeywords(schema, path);

    if (schema.$ref !== undefined) {
      if (typeof schema.$ref !== "string") this.fail(`${path}.$ref`, "must be a string");
      const rest = omit(schema, ["$ref"]);
      if (constrains(rest)) return this.visit(this.merge([{ $ref: schema.$ref }, rest], path), path, hint);
      return this.ref(schema.$ref, path);
    }
    if (schema.allOf !== undefined) return this.visit(this.merge([schema], path), path, hint);

    if (schema.anyOf !== undefined || schema.oneOf !== undefined) {
      if (schema.anyOf !== undefined && schema.oneOf !== undefined) this.fail(path, "anyOf and oneOf in the same schema are not supported");
      const key = schema.anyOf !== undefined ? "anyOf" : "oneOf";
      const alts = schema[key];
      if (!Array.isArray(alts) || alts.length === 0) this.fail(`${path}.${key}`, "must be a non-empty array");
      const rest = omit(schema, [key]);
      const names = alts.map((alt: unknown, i) => {
        const altPath = `${path}.${key}[${i}]`;
        return this.ruleFor(constrains(rest) ? this.merge([rest, alt], altPath) : alt, altPath, joinHint(hint || "alt", String(i)));
      });
      return group([...new Set(names)]);
    }

    if (schema.nullable === true) return group([this.visit(omit(schema, ["nullable"]), path, hint), this.rules.primitive("null")]);
    if ("const" in schema) return literal(JSON.stringify(schema.const));
    if (schema.enum !== undefined) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) this.fail(`${path}.enum`, "must be a non-empty array");
      return group([...new Set(schema.enum.map((v) => literal(JSON.stringify(v))))]);
    }

    const types = this.typesOf(schema, path);
    if (types.length === 0) return this.rules.primitive("value");
    return group(types.map((t) => this.visitType(schema, t, path, hint)));
  }

  private checkKeywords(schema: Schema, path: string): void {
    for (const key of Object.keys(schema)) {
      if (UNSUPPORTED.has(key)) this.fail(path, `"${key}" is not supported`);
    }
    if (schema.uniqueItems === true) this.fail(path, '"uniqueItems" is not supported');
  }

  /** The types to generate: `type` as given, or guessed from the keywords present (none = any value). */
  private typesOf(schema: Schema, path: string): string[] {
    const t = schema.type;
    if (t === undefined) {
      const has = (keys: string[]) => keys.some((k) => k in schema);
      const out: string[] = [];
      if (has(OBJECT_KEYWORDS)) out.push("object");
      if (has(ARRAY_KEYWORDS)) out.push("array");
      if (has(STRING_KEYWORDS)) out.push("string");
      if (has(NUMBER_KEYWORDS)) out.push("number");
      return out;
    }
    const list = Array.isArray(t) ? t : [t];
    if (list.length === 0) this.fail(`${path}.type`, "must not be empty");
    for (const x of list) if (typeof x !== "string" || !TYPES.has(x)) this.fail(`${path}.type`, `unknown type ${JSON.stringify(x)}`);
    const set = new Set(list as string[]);
    if (set.has("number")) set.delete("integer");
    return [...set];
  }

  private visitType(schema: Schema, type: string, path: string, hint: string): string {
    switch (type) {
      case "string":
        return this.visitString(schema, path, hint);
      case "integer":
        return this.visitInteger(schema, path);
      case "number":
        if (schema.multipleOf !== undefined) this.fail(path, '"multipleOf" is not supported for numbers');
        return this.rules.primitive("number"); // minimum/maximum on numbers are not enforced (see the header)
      case "object":
        return this.visitObject(schema, path, hint);
      case "array":
        return this.visitArray(schema, path, hint);
      default:
        return this.rules.primitive(type); // boolean, null
    }
  }

  private count(schema: Schema, key: string, path: string): number | undefined {
    const v = schema[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) this.fail(`${path}.${key}`, "must be a non-negative integer");
    if (v > MAX_COUNT && (key === "minLength" || key === "minItems")) this.fail(`${path}.${key}`, `${key} above ${MAX_COUNT} is not supported`);
    // A maximum that large only bounds what the token limit bounds anyway: the grammar leaves it open.
    if (v > MAX_COUNT && (key === "maxLength" || key === "maxItems")) return undefined;
    return v;
  }

  private visitString(schema: Schema, path: string, hint: string): string {
    const min = this.count(schema, "minLength", path) ?? 0;
    const max = this.count(schema, "maxLength", path) ?? Infinity;
    if (min > max) this.fail(path, "minLength is greater than maxLength");
    const format = typeof schema.format === "string" && FORMATS.has(schema.format) ? schema.format : undefined;
    if (schema.pattern !== undefined) {
      if (typeof schema.pattern !== "string") this.fail(`${path}.pattern`, "must be a string");
      if (min > 0 || max !== Infinity) this.fail(path, "pattern together with minLength/maxLength is not supported");
      if (format) this.fail(path, "pattern together with format is not supported");
      return this.visitPattern(schema.pattern, `${path}.pattern`, hint);
    }
    if (format) {
      if (min > 0 || max !== Infinity) this.fail(path, `format "${format}" together with minLength/maxLength is not supported`);
      return `"\\"" ${this.rules.primitive(format)} "\\""`;
    }
    if (min === 0 && max === Infinity) return this.rules.primitive("string");
    return `"\\"" ${repeat(this.rules.primitive("char"), min, max)} "\\""`;
  }

  private visitPattern(pattern: string, path: string, hint: string): string {
    const alternatives = new RegexParser(pattern, path).parse();
    const emitter = new PatternEmitter(this.rules, path, joinHint(hint, "pattern"));
    const anything = () => `${this.rules.primitive("char")}*`; // an unanchored side admits any text
    const alts = alternatives.map(({ node, start, end }) =>
      [start ? "" : anything(), emitter.emit(node), end ? "" : anything()].filter(Boolean).join(" ") || '""',
    );
    return `"\\"" ${group(alts)} "\\""`;
  }

  private visitInteger(schema: Schema, path: string): string {
    if (schema.multipleOf !== undefined && schema.multipleOf !== 1) this.fail(path, '"multipleOf" is not supported');
    const bound = (key: string): number | undefined => {
      const v = schema[key];
      if (v === undefined || typeof v === "boolean") return undefined;
      if (typeof v !== "number" || !Number.isFinite(v)) this.fail(`${path}.${key}`, "must be a number");
      return v;
    };
    const lows: bigint[] = [];
    const highs: bigint[] = [];
    const min = bound("minimum");
    const max = bound("maximum");
    const exMin = bound("exclusiveMinimum");
    const exMax = bound("exclusiveMaximum");
    // Draft 4 writes exclusive bounds as booleans next to minimum/maximum.
    if (min !== undefined) lows.push(schema.exclusiveMinimum === true ? BigInt(Math.floor(min)) + 1n : BigInt(Math.ceil(min)));
    if (exMin !== undefined) lows.push(BigInt(Math.floor(exMin)) + 1n);
    if (max !== undefined) highs.push(schema.exclusiveMaximum === true ? BigInt(Math.ceil(max)) - 1n : BigInt(Math.floor(max)));
    if (exMax !== undefined) highs.push(BigInt(Math.ceil(exMax)) - 1n);
    let lo = lows.length ? lows.reduce((a, b) => (b > a ? b : a)) : undefined;
    let hi = highs.length ? highs.reduce((a, b) => (b < a ? b : a)) : undefined;
    if (lo === undefined && hi === undefined) return this.rules.primitive("integer");
    // An open side stops at 16 digits (or the other bound's length), like the plain integer rule.
    const width = (v: bigint | undefined) => BigInt(Math.max(INTEGER_DIGITS, v === undefined ? 0 : String(v < 0n ? -v : v).length));
    lo ??= -(10n ** width(hi) - 1n);
    hi ??= 10n ** width(lo) - 1n;
    if (lo > hi) this.fail(path, "no integer lies between minimum and maximum");
    return integerRange(lo, hi);
  }

  private visitObject(schema: Schema, path: string, hint: string): string {
    const properties = schema.properties ?? {};
    if (!isObject(properties)) this.fail(`${path}.properties`, "must be an object");
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) this.fail(`${path}.required`, "must be an array of strings");
    const additional = schema.additionalProperties;
    const extra: unknown = additional === undefined ? !this.strict : additional;
    if (typeof extra !== "boolean" && !isObject(extra)) this.fail(`${path}.additionalProperties`, "must be a boolean or a schema");

    const names = [...Object.keys(properties), ...(required as string[]).filter((r) => !(r in properties))];
    const requiredSet = new Set(required as string[]);
    const minProps = this.count(schema, "minProperties", path);
    const maxProps = this.count(schema, "maxProperties", path);
    if (minProps !== undefined && minProps > requiredSet.size) this.fail(path, '"minProperties" above the number of required properties is not supported');
    if (maxProps !== undefined && (extra !== false || names.length > maxProps)) this.fail(path, '"maxProperties" is not supported unless every allowed property fits');

    if (names.length === 0 && extra === true) return this.rules.primitive("object");

    const kv = (name: string): string => {
      const inProps = name in properties;
      const valuePath = inProps ? `${path}.properties${pathSegment(name)}` : `${path}.required`;
      const value = this.ruleFor(inProps ? properties[name] : true, valuePath, joinHint(hint, name));
      return this.rules.add(`${joinHint(hint, name)}-kv`, `${literal(JSON.stringify(name))} space ":" space ${value}`);
    };
    this.rules.primitive("space");
    const req = names.filter((n) => requiredSet.has(n)).map(kv);
    const opt = names.filter((n) => !requiredSet.has(n)).map(kv);
    let extraKv: string | undefined;
    if (extra !== false) {
      const value = extra === true ? this.rules.primitive("value") : this.ruleFor(extra, `${path}.additionalProperties`, joinHint(hint, "additional"));
      const key = names.length === 0 ? this.rules.primitive("string") : this.rules.add(joinHint(hint, "additional-key"), this.notStrings(names));
      extraKv = this.rules.add(joinHint(hint, "additional-kv"), `${key} space ":" space ${value}`);
    }
    if (req.length === 0 && opt.length === 0 && !extraKv) return String.raw`"{" space "}"`;

    const extraTail = extraKv ? `( "," space ${extraKv} )*` : "";
    if (req.length > 0) {
      const parts = [req.join(' "," space '), ...opt.map((o) => `( "," space ${o} )?`), extraTail];
      return `"{" space ${parts.filter(Boolean).join(" ")} space "}"`;
    }
    // Only optional members: the first one present has no comma before it; order is kept.
    const rest: string[] = [];
    for (let i = opt.length - 1; i >= 0; i--) {
      const after = i === opt.length - 1 ? extraTail : `( "," space ${opt[i + 1]} )? ${rest[i + 1]}`.trim();
      rest[i] = opt.length > 4 && after.includes(" ") && i < opt.length - 1 ? this.rules.add(joinHint(hint, "rest"), after) : after;
    }
    const firsts = opt.map((o, i) => `${o} ${rest[i]}`.trim());
    if (extraKv) firsts.push(`${extraKv} ${extraTail}`);
    return `"{" space ( ${group(firsts)} space )? "}"`;
  }

  /** A JSON string key that is none of `names` (keys needing escapes cannot collide: keychar has none). */
  private notStrings(names: string[]): string {
    type Node = { end: boolean; children: Map<number, Node> };
    const root: Node = { end: false, children: new Map() };
    for (const name of names.filter((n) => !/["\\\x00-\x1F\x7F]/.test(n))) {
      let node = root;
      for (const ch of name) {
        const cp = ch.codePointAt(0)!;
        let next = node.children.get(cp);
        if (!next) node.children.set(cp, (next = { end: false, children: new Map() }));
        node = next;
      }
      node.end = true;
    }
    const keychar = this.rules.primitive("keychar");
    const visit = (node: Node): string => {
      const alts = [...node.children].map(([cp, child]) => `${literal(String.fromCodePoint(cp))} ${visit(child)}`.trim());
      const taken = [...node.children.keys()].map(classChar).join("");
      alts.push(`[^"\\\\\\x00-\\x1F\\x7F${taken}] ${keychar}*`);
      return node.end ? group(alts) : `( ${alts.join(" | ")} )?`;
    };
    return `"\\"" ${visit(root)} "\\""`;
  }

  private visitArray(schema: Schema, path: string, hint: string): string {
    let prefix: unknown[] = [];
    let rest: unknown = true;
    let prefixKey = "prefixItems";
    let restKey = "items";
    if (Array.isArray(schema.items)) {
      prefix = schema.items; // draft 4 tuple form
      rest = schema.additionalItems ?? true;
      prefixKey = "items";
      restKey = "additionalItems";
    } else {
      if (schema.prefixItems !== undefined) {
        if (!Array.isArray(schema.prefixItems)) this.fail(`${path}.prefixItems`, "must be an array");
        prefix = schema.prefixItems;
      }
      if (schema.items !== undefined) rest = schema.items;
    }
    if (prefix.length > MAX_COUNT) this.fail(`${path}.${prefixKey}`, `more than ${MAX_COUNT} tuple items are not supported`);
    const min = this.count(schema, "minItems", path) ?? 0;
    let max = this.count(schema, "maxItems", path) ?? Infinity;
    if (rest === false) max = Math.min(max, prefix.length);
    if (min > max) this.fail(path, rest === false && min > prefix.length ? "minItems exceeds the allowed tuple length" : "minItems is greater than maxItems");
    if (prefix.length === 0 && rest === true && min === 0 && max === Infinity) return this.rules.primitive("array");

    this.rules.primitive("space");
    const prefixNames = prefix.slice(0, Math.min(prefix.length, max)).map((p, i) => this.ruleFor(p, `${path}.${prefixKey}[${i}]`, joinHint(hint, `tuple-${i}`)));
    const restName = max > prefix.length ? this.ruleFor(rest, `${path}.${restKey}`, joinHint(hint, "item")) : "";

    // Element i is present; what may follow it honours minItems/maxItems.
    const present = (i: number): string => {
      const head = i < prefix.length ? prefixNames[i]! : restName;
      return [i === 0 ? "" : '"," space', head, after(i)].filter(Boolean).join(" ");
    };
    const after = (i: number): string => {
      const j = i + 1;
      if (j >= max) return "";
      if (j >= prefix.length) return repeat(`( "," space ${restName} )`, Math.max(min - j, 0), max - j);
      return j >= min ? `( ${present(j)} )?` : present(j);
    };
    if (max === 0) return String.raw`"[" space "]"`;
    return min === 0 ? `"[" space ( ${present(0)} space )? "]"` : `"[" space ${present(0)} space "]"`;
  }

  // ---- $ref and allOf ----

  private resolve(ref: string, path: string): { schema: unknown; path: string } {
    if (!ref.startsWith("#")) this.fail(path, `only local $ref ("#/...") is supported, got ${JSON.stringify(ref)}`);
    const pointer = ref.slice(1);
    if (pointer !== "" && !pointer.startsWith("/")) this.fail(path, `$ref ${JSON.stringify(ref)} is not a JSON pointer`);
    let node: unknown = this.root;
    let where = "$";
    for (const raw of pointer === "" ? [] : pointer.slice(1).split("/")) {
      let seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
      try {
        seg = decodeURIComponent(seg);
      } catch {
        // keep it as written
      }
      if (Array.isArray(node) && /^\d+$/.test(seg) && Number(seg) < node.length) {
        node = node[Number(seg)];
        where += `[${seg}]`;
      } else if (isObject(node) && Object.hasOwn(node, seg)) {
        node = node[seg];
        where += pathSegment(seg);
      } else this.fail(path, `$ref ${JSON.stringify(ref)} does not resolve`);
    }
    return { schema: node, path: where };
  }

  /** The rule of a referenced schema, created once so recursive references work. */
  private ref(ref: string, path: string): string {
    const known = this.refNames.get(ref);
    if (known) return known;
    const target = this.resolve(ref, path);
    if (this.leftRecursive(target.schema, ref, new Set(), 0)) this.fail(path, `$ref ${JSON.stringify(ref)} refers to itself before producing any output`);
    const name = this.rules.reserve(ref === "#" ? "schema" : ref.split("/").pop() || "ref");
    this.refNames.set(ref, name);
    this.rules.define(name, this.visit(target.schema, target.path, name));
    return name;
  }

  /** Whether `schema` reaches `ref` through $ref/anyOf/oneOf/allOf alone (a cycle that consumes no input). */
  private leftRecursive(schema: unknown, ref: string, seen: Set<string>, depth: number): boolean {
    if (!isObject(schema) || depth > 200) return false;
    if (typeof schema.$ref === "string") {
      if (schema.$ref === ref) return true;
      if (!seen.has(schema.$ref)) {
        seen.add(schema.$ref);
        try {
          if (this.leftRecursive(this.resolve(schema.$ref, "$").schema, ref, seen, depth + 1)) return true;
        } catch {
          // an unresolvable $ref fails later with its real path
        }
      }
    }
    return ["anyOf", "oneOf", "allOf"].some((k) => Array.isArray(schema[k]) && (schema[k] as unknown[]).some((s) => this.leftRecursive(s, ref, seen, depth + 1)));
  }

  /** One schema with the constraints of all parts (allOf); anyOf/oneOf parts distribute over the rest. */
  private merge(parts: unknown[], path: string, depth = 0): Schema {
    if (depth > 16) this.fail(path, "allOf/$ref nesting is too deep (a recursive allOf?)");
    const flat: Schema[] = [];
    const flatten = (s: unknown, where: string, inlined: Set<string>): void => {
      if (s === true) return;
      if (s === false) this.fail(where, "the schema `false` accepts no value");
      if (!isObject(s)) this.fail(where, "a schema must be an object or a boolean");
      this.checkKeywords(s, where);
      let rest = s;
      if (rest.$ref !== undefined) {
        if (typeof rest.$ref !== "string") this.fail(`${where}.$ref`, "must be a string");
        if (inlined.has(rest.$ref)) this.fail(where, `$ref ${JSON.stringify(rest.$ref)} includes itself through allOf`);
        const target = this.resolve(rest.$ref, where);
        if (this.leftRecursive(target.schema, rest.$ref, new Set(), 0)) this.fail(where, `$ref ${JSON.stringify(rest.$ref)} refers to itself before producing any output`);
        flatten(target.schema, target.path, new Set([...inlined, rest.$ref]));
        rest = omit(rest, ["$ref"]);
      }
      if (rest.allOf !== undefined) {
        if (!Array.isArray(rest.allOf) || rest.allOf.length === 0) this.fail(`${where}.allOf`, "must be a non-empty array");
        rest.allOf.forEach((x: unknown, i) => flatten(x, `${where}.allOf[${i}]`, inlined));
        rest = omit(rest, ["allOf"]);
      }
      flat.push(rest);
    };
    for (const p of parts) flatten(p, path, new Set());

    const split = flat.findIndex((s) => s.anyOf !== undefined || s.oneOf !== undefined);
    if (split >= 0) {
      const s = flat[split]!;
      const key = s.anyOf !== undefined ? "anyOf" : "oneOf";
      const alts = s[key];
      if (!Array.isArray(alts) || alts.length === 0) this.fail(`${path}.${key}`, "must be a non-empty array");
      const others = [...flat.slice(0, split), omit(s, [key]), ...flat.slice(split + 1)];
      const merged = alts.map((alt: unknown) => this.merge([...others, alt], path, depth + 1));
      if (merged.length > 64) this.fail(path, "allOf over anyOf/oneOf expands to too many alternatives");
      return { anyOf: merged };
    }
    return flat.reduce<Schema>((acc, s) => this.mergeTwo(acc, s, path), {});
  }

  private mergeTwo(a: Schema, b: Schema, path: string): Schema {
    const out: Schema = { ...a };
    for (const [key, v] of Object.entries(b)) {
      if (ANNOTATIONS.has(key)) continue;
      if (!(key in out)) {
        out[key] = v;
        continue;
      }
      const u = out[key];
      if (deepEqual(u, v)) continue;
      switch (key) {
        case "type": {
          const list = (x: unknown) => new Set<unknown>(Array.isArray(x) ? x : [x]);
          const [x, y] = [list(u), list(v)];
          const both = [...x].filter((t) => y.has(t) || (t === "integer" && y.has("number")));
          for (const t of y) if (t === "integer" && x.has("number") && !both.includes(t)) both.push(t);
          if (both.length === 0) this.fail(path, "allOf parts have no type in common");
          out.type = both.length === 1 ? both[0] : both;
          break;
        }
        case "properties": {
          if (!isObject(u) || !isObject(v)) this.fail(path, "properties must be objects");
          const props: Schema = { ...u };
          for (const [name, s] of Object.entries(v)) props[name] = name in props && !deepEqual(props[name], s) ? { allOf: [props[name], s] } : s;
          out.properties = props;
          break;
        }
        case "required":
          out.required = [...new Set([...(u as string[]), ...(v as string[])])];
          break;
        case "items":
          if (Array.isArray(u) || Array.isArray(v)) this.fail(path, "allOf parts with different tuple items cannot be merged");
          out.items = u === false || v === false ? false : { allOf: [u, v] };
          break;
        case "additionalProperties":
          out.additionalProperties = u === false || v === false ? false : u === true ? v : v === true ? u : { allOf: [u, v] };
          break;
        case "enum": {
          const common = (u as unknown[]).filter((x) => (v as unknown[]).some((y) => deepEqual(x, y)));
          if (common.length === 0) this.fail(path, "allOf parts have no enum value in common");
          out.enum = common;
          break;
        }
        case "minLength": case "minItems": case "minimum": case "minProperties":
          out[key] = Math.max(u as number, v as number);
          break;
        case "maxLength": case "maxItems": case "maximum": case "maxProperties":
          out[key] = Math.min(u as number, v as number);
          break;
        case "exclusiveMinimum":
          if (typeof u !== "number" || typeof v !== "number") this.fail(path, `allOf parts disagree on "${key}"`);
          out[key] = Math.max(u, v);
          break;
        case "exclusiveMaximum":
          if (typeof u !== "number" || typeof v !== "number") this.fail(path, `allOf parts disagree on "${key}"`);
          out[key] = Math.min(u, v);
          break;
        case "nullable":
          out.nullable = u === true && v === true;
          break;
        default:
          this.fail(path, `allOf parts disagree on "${key}"`);
      }
    }
    return out;
  }
}

/** Converts a JSON Schema to a GBNF grammar whose start rule is `root`; throws GrammarError for what it cannot express. */
export function jsonSchemaToGrammar(schema: unknown, options: GrammarOptions = {}): string {
  let grammar: string;
  try {
    grammar = new Converter(schema, options.strict ?? false).convert();
  } catch (err) {
    // Deep recursion (long $ref chains, nested combinators) ends here rather than as a crash.
    if (err instanceof RangeError) throw new GrammarError("$: the schema is nested too deeply to convert");
    throw err;
  }
  if (grammar.length > MAX_GRAMMAR_CHARS) throw new GrammarError(`$: the schema's grammar would be ${grammar.length} characters; at most ${MAX_GRAMMAR_CHARS} are supported`);
  const expanded = expandedRepetitions(grammar);
  if (expanded > MAX_EXPANDED) throw new GrammarError(`$: the schema's counts (minItems, minLength, patterns) add up to ${expanded} repeated elements; at most ${MAX_EXPANDED} are supported`);
  return grammar;
}

function objectGrammar(): string {
  const rules = new RuleSet();
  rules.reserve("root", true);
  rules.define("root", rules.primitive("object"));
  return rules.render();
}

/** Any JSON object (response_format json_object); whitespace between tokens is bounded, none after the end. */
export const JSON_OBJECT_GRAMMAR: string = objectGrammar();

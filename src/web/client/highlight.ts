// Syntax highlighting for code blocks, by a small lexer per language family; tokens become spans whose
// text is set with textContent.
import { el } from "./dom.ts";

interface LangSpec {
  comment: string | null;
  strings: string[];
  kw: Set<string>;
  lit: Set<string>;
  /** Keywords match in any case (SQL). */
  caseless?: boolean;
  /** A string followed by `:` is an object key (JSON). */
  keys?: boolean;
}

type TokenKind = "com" | "str" | "num" | "word";

interface Lexer {
  re: RegExp;
  kinds: TokenKind[];
  spec: LangSpec;
}

const words = (s: string): Set<string> => new Set(s.split(" "));
const C_COMMENTS = String.raw`\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$)`;
const HASH_COMMENT = String.raw`#[^\n]*`;
const DQ = String.raw`"(?:[^"\\\n]|\\.)*"?`;
const SQ = String.raw`'(?:[^'\\\n]|\\.)*'?`;
const BT = String.raw`\x60(?:[^\x60\\]|\\[\s\S])*\x60?`;
const TRIPLE = String.raw`"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)`;
const NUM = String.raw`\b(?:0[xX][\da-fA-F_]+|0[bB][01_]+|\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)\b`;
const WORD = String.raw`[A-Za-z_$][\w$]*`;

const JS_KW = words(
  "break case catch class const continue debugger default delete do else export extends finally for from function if import in instanceof let new of return static super switch this throw try typeof var void while with yield async await as interface type enum implements private protected public readonly declare namespace abstract keyof satisfies",
);
const GENERIC: LangSpec = { comment: null, strings: [DQ, SQ], kw: words("if else for while return function def class import export const let var"), lit: words("true false null None nil") };
const LANGS: Record<string, LangSpec> = {
  generic: GENERIC,
  js: { comment: C_COMMENTS, strings: [BT, DQ, SQ], kw: JS_KW, lit: words("true false null undefined NaN Infinity") },
  python: {
    comment: HASH_COMMENT,
    strings: [TRIPLE, DQ, SQ],
    kw: words("and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case"),
    lit: words("True False None self"),
  },
  shell: {
    comment: String.raw`(?:^|(?<=\s))#[^\n]*`,
    strings: [DQ, SQ],
    kw: words("if then else elif fi for while until do done case esac function in return export local readonly set unset echo cd exit source sudo"),
    lit: words("true false"),
  },
  c: {
    comment: C_COMMENTS + "|" + String.raw`#\s*\w+[^\n]*`,
    strings: [DQ, SQ],
    kw: words("auto break case char const continue default do double else enum extern float for goto if inline int long register return short signed sizeof static struct switch typedef union unsigned void volatile while class namespace template typename public private protected virtual override new delete using bool nullptr constexpr noexcept std"),
    lit: words("true false NULL nullptr"),
  },
  rust: {
    comment: C_COMMENTS,
    strings: [DQ],
    kw: words("as async await break const continue crate dyn else enum extern fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait type unsafe use where while"),
    lit: words("true false None Some Ok Err"),
  },
  go: {
    comment: C_COMMENTS,
    strings: [BT, DQ, SQ],
    kw: words("break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var"),
    lit: words("true false nil iota"),
  },
  java: {
    comment: C_COMMENTS,
    strings: [DQ, SQ],
    kw: words("abstract assert boolean break byte case catch char class const continue default do double else enum extends final finally float for if implements import instanceof int interface long native new package private protected public return short static super switch synchronized this throw throws try void volatile while var val fun when object override"),
    lit: words("true false null"),
  },
  sql: {
    comment: String.raw`--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)`,
    strings: [SQ, DQ],
    kw: words("select from where insert into values update set delete create table drop alter add index primary key foreign references join left right inner outer on group by order having limit offset as and or not null is in exists union all distinct case when then else end begin commit rollback transaction default integer text real blob"),
    lit: words("true false null"),
    caseless: true,
  },
  json: { comment: null, strings: [DQ], kw: words(""), lit: words("true false null"), keys: true },
  css: { comment: String.raw`\/\*[\s\S]*?(?:\*\/|$)`, strings: [DQ, SQ], kw: words("important media import supports keyframes font-face"), lit: words("") },
};
const ALIASES: Record<string, string> = {
  javascript: "js", jsx: "js", ts: "js", typescript: "js", tsx: "js", mjs: "js", cjs: "js",
  py: "python", python3: "python",
  sh: "shell", bash: "shell", zsh: "shell", console: "shell", shell: "shell",
  cpp: "c", "c++": "c", cc: "c", h: "c", hpp: "c", cs: "c", csharp: "c", c: "c",
  rs: "rust", rust: "rust", go: "go", golang: "go",
  java: "java", kotlin: "java", kt: "java", scala: "java", swift: "java",
  sql: "sql", sqlite: "sql", postgres: "sql", mysql: "sql",
  json: "json", jsonc: "json", css: "css", scss: "css",
};
const lexers = new Map<string, Lexer>();

/** o[key] only for o's own keys: a fence's language is model output, and ```constructor must not reach Object.prototype. */
const own = <T>(o: Record<string, T>, key: string): T | undefined => (Object.hasOwn(o, key) ? o[key] : undefined);

function lexerFor(name: string): Lexer {
  const lower = name.toLowerCase();
  const key = own(ALIASES, lower) ?? (own(LANGS, lower) ? lower : "generic");
  let lx = lexers.get(key);
  if (lx) return lx;
  const spec = own(LANGS, key) ?? GENERIC;
  const parts: string[] = [];
  const kinds: TokenKind[] = [];
  if (spec.comment) (parts.push(`(${spec.comment})`), kinds.push("com"));
  parts.push(`(${spec.strings.join("|")})`), kinds.push("str");
  parts.push(`(${NUM})`), kinds.push("num");
  parts.push(`(${WORD})`), kinds.push("word");
  lx = { re: new RegExp(parts.join("|"), "gm"), kinds, spec };
  lexers.set(key, lx);
  return lx;
}

/** Highlighted code as spans of text: classes come from our own token kinds, text via textContent. */
export function highlight(code: string, lang: string): DocumentFragment {
  if (/^(html|xml|svg|vue)$/i.test(lang)) return highlightMarkup(code);
  const { re, kinds, spec } = lexerFor(lang);
  const frag = document.createDocumentFragment();
  let last = 0;
  re.lastIndex = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    if (m[0] === "") {
      re.lastIndex++;
      continue;
    }
    if (m.index > last) frag.append(code.slice(last, m.index));
    const g = m.slice(1).findIndex((x) => x !== undefined);
    const text = m[0];
    let kind: string | null = kinds[g] ?? null;
    if (kind === "word") {
      const w = spec.caseless ? text.toLowerCase() : text;
      if (spec.kw.has(w)) kind = "kw";
      else if (spec.lit.has(w)) kind = "lit";
      else if (code[m.index + text.length] === "(") kind = "fn";
      else kind = null;
    } else if (kind === "str" && spec.keys && /^\s*:/.test(code.slice(m.index + text.length, m.index + text.length + 8))) kind = "key";
    frag.append(kind ? el("span", { class: `tok-${kind}`, text }) : text);
    last = m.index + text.length;
  }
  if (last < code.length) frag.append(code.slice(last));
  return frag;
}

function highlightMarkup(code: string): DocumentFragment {
  const frag = document.createDocumentFragment();
  const re = /(<!--[\s\S]*?(?:-->|$))|(<\/?[A-Za-z][\w:-]*)|("[^"]*"|'[^']*')|(\/?>)/g;
  let last = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    if (m.index > last) frag.append(code.slice(last, m.index));
    const kind = m[1] ? "com" : m[2] || m[4] ? "tag" : "str";
    frag.append(el("span", { class: `tok-${kind}`, text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last < code.length) frag.append(code.slice(last));
  return frag;
}

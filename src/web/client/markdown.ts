// Model output as Markdown (CommonMark and GFM: tables, nested and task lists, strikethrough): marked's
// lexer parses it and the tokens become DOM nodes here, so no HTML string is ever parsed; raw HTML shows
// as its text, and links go only to http(s) and mailto.
import { Lexer, getDefaults, type MarkedToken, type Token, type Tokens } from "marked";
import { copyText, el, flash } from "./dom.ts";
import { highlight } from "./highlight.ts";

function codeBlock(code: string, lang: string): HTMLElement {
  const copy = el("button", { type: "button", class: "btn small", "data-testid": "copy-code", "aria-label": `Copy ${lang || "code"}` }, "Copy");
  copy.addEventListener("click", async () => flash(copy, (await copyText(code)) ? "Copied" : "Copy failed"));
  const codeEl = el("code", { class: lang ? `lang-${lang.replace(/[^\w-]/g, "")}` : null });
  codeEl.append(highlight(code, lang));
  return el(
    "div",
    { class: "code-block", "data-testid": "code-block", "data-lang": lang || "text" },
    el("div", { class: "code-head" }, el("span", { class: "code-lang", text: lang || "text" }), copy),
    el("pre", {}, codeEl),
  );
}

const SAFE_URL = /^(https?:|mailto:)/i;

/** A link that opens outside the chat, or null for any other scheme (javascript:, data:, relative). */
function linkTo(href: string): HTMLAnchorElement | null {
  return SAFE_URL.test(href) ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }) : null;
}

/** A paragraph of text with its line breaks kept. */
function lines(text: string): HTMLElement {
  const p = el("p");
  text.split("\n").forEach((line, i) => {
    if (i > 0) p.append(el("br"));
    if (line) p.append(line);
  });
  return p;
}

type Align = Tokens.TableCell["align"];
// A class, not a style attribute: the page's CSP (style-src 'self') refuses inline styles.
const cell = (tag: "th" | "td", c: Tokens.TableCell, align: Align) => append(el(tag, { class: align ? `align-${align}` : null }), c.tokens);

function table(t: Tokens.Table): HTMLElement {
  const head = el("tr", {}, ...t.header.map((c, i) => cell("th", c, t.align[i] ?? null)));
  const rows = t.rows.map((r) => el("tr", {}, ...r.map((c, i) => cell("td", c, t.align[i] ?? null))));
  // The wrapper scrolls a table wider than the message, instead of the whole conversation.
  return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function list(t: Tokens.List): HTMLElement {
  const node = el(t.ordered ? "ol" : "ul");
  if (t.ordered && t.start !== "" && t.start !== 1) node.setAttribute("start", String(t.start));
  for (const item of t.items) node.append(append(el("li", { class: item.task ? "task" : null }), item.tokens));
  return node;
}

/** Appends the nodes of block and inline tokens alike; a token of a kind not handled here shows as its source. */
function append<T extends ParentNode>(parent: T, tokens: Token[]): T {
  // No extensions are loaded, so every token is one of marked's own kinds.
  for (const t of tokens as MarkedToken[]) {
    switch (t.type) {
      case "paragraph":
        parent.append(append(el("p"), t.tokens));
        break;
      case "heading":
        // The chat's own headings use h1 and h2: a reply's start at h3.
        parent.append(append(el(`h${Math.min(t.depth + 2, 6)}`), t.tokens));
        break;
      case "code":
        parent.append(codeBlock(t.text.replace(/\n$/, ""), t.lang?.split(/\s/)[0] ?? ""));
        break;
      case "blockquote":
        parent.append(append(el("blockquote"), t.tokens));
        break;
      case "list":
        parent.append(list(t));
        break;
      case "table":
        parent.append(table(t));
        break;
      case "hr":
        parent.append(el("hr"));
        break;
      case "checkbox":
        parent.append(el("input", { type: "checkbox", disabled: true, checked: t.checked }), " ");
        break;
      case "text":
        if (t.tokens) append(parent, t.tokens);
        else parent.append(t.text);
        break;
      case "escape":
      case "codespan":
        parent.append(t.type === "codespan" ? el("code", { text: t.text }) : t.text);
        break;
      case "strong":
      case "em":
      case "del":
        parent.append(append(el(t.type), t.tokens));
        break;
      case "br":
        parent.append(el("br"));
        break;
      case "link": {
        const a = linkTo(t.href);
        parent.append(a ? append(a, t.tokens) : t.raw);
        break;
      }
      case "image": {
        // Never loaded (a remote image in a reply would be a tracking pixel): a link to it, labelled with its alt text.
        const a = linkTo(t.href);
        if (a) a.textContent = t.text || t.href;
        parent.append(a ?? t.raw);
        break;
      }
      case "html":
        // Raw HTML in model output is shown as the text it is, never parsed as markup.
        parent.append(t.block ? lines(t.raw.replace(/\n+$/, "")) : t.raw);
        break;
      case "space":
      case "def":
        break;
      default:
        parent.append((t as Tokens.Generic).raw);
    }
  }
  return parent;
}

// GFM, and a single newline is a line break: a model means the lines it writes.
const OPTIONS = { ...getDefaults(), gfm: true, breaks: true };

/** Renders model output; a fenced code block still streaming (not yet closed) shows as a code block. */
export function renderMarkdown(src: string): DocumentFragment {
  return append(document.createDocumentFragment(), Lexer.lex(src, OPTIONS));
}

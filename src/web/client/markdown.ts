// A safe Markdown subset rendered straight to DOM nodes: model output is never parsed as HTML, and
// links go only to http(s) and mailto.
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
const INLINE =
  /(`+)([\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|(?<!\w)__(?=\S)([\s\S]*?\S)__(?!\w)|~~(?=\S)([\s\S]*?\S)~~|\*(?=[^\s*])([^*\n]*?[^\s*])\*|(?<![\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\w])|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"\]])/g;

function appendText(parent: Node & ParentNode, text: string): void {
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (i > 0) parent.append(el("br"));
    if (line) parent.append(line);
  });
}

function inline(text: string, parent: Node & ParentNode): void {
  let last = 0;
  const re = new RegExp(INLINE.source, "g");
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) appendText(parent, text.slice(last, m.index));
    const [whole, ticks, code, strong, strong2, del, em, em2, label, href, bare] = m;
    if (ticks) parent.append(el("code", { text: (code ?? "").replace(/^ (.*) $/, "$1") }));
    else if (strong !== undefined || strong2 !== undefined) inline(strong ?? strong2 ?? "", parent.appendChild(el("strong")));
    else if (del !== undefined) inline(del, parent.appendChild(el("del")));
    else if (em !== undefined || em2 !== undefined) inline(em ?? em2 ?? "", parent.appendChild(el("em")));
    else if (label !== undefined && href !== undefined) {
      if (SAFE_URL.test(href)) inline(label, parent.appendChild(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" })));
      else appendText(parent, whole);
    } else if (bare !== undefined) parent.append(el("a", { href: bare, target: "_blank", rel: "noopener noreferrer nofollow", text: bare }));
    last = m.index + whole.length;
  }
  if (last < text.length) appendText(parent, text.slice(last));
}

const LIST_ITEM = /^(\s{0,6})([-*+]|\d{1,9}[.)])\s+(.*)$/;

/** Renders a Markdown subset: fenced code (closed or still streaming), headings, lists, quotes, rules, paragraphs. */
export function renderMarkdown(src: string): DocumentFragment {
  const frag = document.createDocumentFragment();
  const lines = src.replace(/\r\n?/g, "\n").split("\n");
  let para: string[] = [];
  const flush = () => {
    if (!para.length) return;
    const p = el("p");
    inline(para.join("\n"), p);
    frag.append(p);
    para = [];
  };
  // Every index read below is checked against lines.length first.
  const at = (i: number) => lines[i] ?? "";
  for (let i = 0; i < lines.length; ) {
    const line = at(i);
    const fence = /^\s{0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
    if (fence) {
      flush();
      const marker = fence[1] ?? "```";
      const closing = new RegExp(`^\\${marker[0]}+`);
      const body: string[] = [];
      i++;
      while (i < lines.length && !(at(i).trim().startsWith(marker) && at(i).trim().replace(closing, "") === "")) body.push(at(i++));
      i++;
      frag.append(codeBlock(body.join("\n"), fence[2] ?? ""));
      continue;
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flush();
      const h = el(`h${Math.min((heading[1] ?? "").length + 2, 6)}`);
      inline(heading[2] ?? "", h);
      frag.append(h);
      i++;
      continue;
    }
    if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      frag.append(el("hr"));
      i++;
      continue;
    }
    if (/^\s{0,3}>/.test(line)) {
      flush();
      const quoted: string[] = [];
      while (i < lines.length && /^\s{0,3}>/.test(at(i))) quoted.push(at(i++).replace(/^\s{0,3}>\s?/, ""));
      const q = el("blockquote");
      q.append(renderMarkdown(quoted.join("\n")));
      frag.append(q);
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      flush();
      const ordered = /\d/.test(item[2] ?? "");
      const list = el(ordered ? "ol" : "ul");
      const start = parseInt(item[2] ?? "", 10);
      if (ordered && start !== 1) list.setAttribute("start", String(start));
      while (i < lines.length) {
        const it = LIST_ITEM.exec(at(i));
        if (!it || /\d/.test(it[2] ?? "") !== ordered) break;
        const parts = [it[3] ?? ""];
        i++;
        // Indented lines continue the item.
        while (i < lines.length && /^\s{2,}\S/.test(at(i)) && !LIST_ITEM.test(at(i))) parts.push(at(i++).trim());
        const li = el("li");
        inline(parts.join("\n"), li);
        list.append(li);
      }
      frag.append(list);
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line);
    i++;
  }
  flush();
  return frag;
}

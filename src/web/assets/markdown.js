// Chat UI, part 3: a safe Markdown subset rendered straight to DOM nodes (model output is never parsed
// as HTML; links only to http(s) and mailto).

// ---- Markdown (a safe subset, rendered to DOM nodes) -------------------------------------------------

function codeBlock(code, lang) {
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

function appendText(parent, text) {
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (i > 0) parent.append(el("br"));
    if (line) parent.append(line);
  });
}

function inline(text, parent) {
  let last = 0;
  const re = new RegExp(INLINE.source, "g");
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) appendText(parent, text.slice(last, m.index));
    if (m[1]) parent.append(el("code", { text: m[2].replace(/^ (.*) $/, "$1") }));
    else if (m[3] !== undefined || m[4] !== undefined) inline(m[3] ?? m[4], parent.appendChild(el("strong")));
    else if (m[5] !== undefined) inline(m[5], parent.appendChild(el("del")));
    else if (m[6] !== undefined || m[7] !== undefined) inline(m[6] ?? m[7], parent.appendChild(el("em")));
    else if (m[8] !== undefined) {
      if (SAFE_URL.test(m[9])) inline(m[8], parent.appendChild(el("a", { href: m[9], target: "_blank", rel: "noopener noreferrer nofollow" })));
      else appendText(parent, m[0]);
    } else if (m[10] !== undefined) parent.append(el("a", { href: m[10], target: "_blank", rel: "noopener noreferrer nofollow", text: m[10] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) appendText(parent, text.slice(last));
}

const LIST_ITEM = /^(\s{0,6})([-*+]|\d{1,9}[.)])\s+(.*)$/;

/** Renders a Markdown subset: fenced code (closed or still streaming), headings, lists, quotes, rules, paragraphs. */
function renderMarkdown(src) {
  const frag = document.createDocumentFragment();
  const lines = src.replace(/\r\n?/g, "\n").split("\n");
  let para = [];
  const flush = () => {
    if (!para.length) return;
    const p = el("p");
    inline(para.join("\n"), p);
    frag.append(p);
    para = [];
  };
  for (let i = 0; i < lines.length; ) {
    const line = lines[i];
    const fence = /^\s{0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
    if (fence) {
      flush();
      const marker = fence[1];
      const body = [];
      i++;
      while (i < lines.length && !(lines[i].trim().startsWith(marker) && lines[i].trim().replace(new RegExp(`^\\${marker[0]}+`), "") === "")) body.push(lines[i++]);
      i++;
      frag.append(codeBlock(body.join("\n"), fence[2]));
      continue;
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flush();
      const h = el(`h${Math.min(heading[1].length + 2, 6)}`);
      inline(heading[2], h);
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
      const quoted = [];
      while (i < lines.length && /^\s{0,3}>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s{0,3}>\s?/, ""));
      const q = el("blockquote");
      q.append(renderMarkdown(quoted.join("\n")));
      frag.append(q);
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      flush();
      const ordered = /\d/.test(item[2]);
      const list = el(ordered ? "ol" : "ul");
      if (ordered && parseInt(item[2], 10) !== 1) list.setAttribute("start", String(parseInt(item[2], 10)));
      while (i < lines.length) {
        const it = LIST_ITEM.exec(lines[i]);
        if (!it || /\d/.test(it[2]) !== ordered) break;
        const parts = [it[3]];
        i++;
        // Indented lines continue the item.
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !LIST_ITEM.test(lines[i])) parts.push(lines[i++].trim());
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

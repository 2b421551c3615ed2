// Chat UI, part 1 of 8 (the server joins the parts in order into one module): DOM and storage helpers,
// clipboard and downloads.

// ---- small helpers --------------------------------------------------------------------------------

const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = String(v);
    else if (k === "text") node.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
};

const storage = {
  get(key, fallback) {
    try {
      const v = localStorage.getItem(`cocoon.${key}`);
      return v === null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      if (value === undefined || value === null) localStorage.removeItem(`cocoon.${key}`);
      else localStorage.setItem(`cocoon.${key}`, JSON.stringify(value));
    } catch {
      // Private mode or a full quota: the UI still works for this page's life.
    }
  },
};

/** Random hex from crypto.getRandomValues, which (unlike randomUUID) works on plain-http origins too. */
function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

const formatTime = (seconds) => {
  if (!seconds) return "";
  const d = new Date(seconds * (seconds < 1e12 ? 1000 : 1));
  const today = new Date();
  return d.toDateString() === today.toDateString() ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleDateString();
};

/** TON from the server's exact decimal string, trimmed for display (never recomputed from floats). */
function tonText(cost) {
  if (!cost) return "";
  const s = typeof cost.ton === "string" ? cost.ton : typeof cost.ton === "number" ? String(cost.ton) : null;
  if (s !== null) return `${s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s} TON`;
  if (cost.nanoton !== undefined) return `${cost.nanoton} nanoton`;
  return "";
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection-based copy
  }
  const ta = el("textarea", { class: "offscreen", readonly: true });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

function flash(button, text) {
  const old = button.textContent;
  button.textContent = text;
  setTimeout(() => (button.textContent = old), 1200);
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name, class: "offscreen" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

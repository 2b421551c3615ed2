// DOM and storage helpers for the chat UI: element lookup and creation, localStorage, clipboard,
// downloads and small formatters.
import type { Cost } from "./types.ts";

/** The page's element with this id; the page and the script ship together, so a missing one is a bug. */
export function byId(id: string): HTMLElement;
export function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T;
export function byId(id: string, type: { new (): HTMLElement; prototype: HTMLElement } = HTMLElement): HTMLElement {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`The page has no ${type.name} #${id}`);
  return node;
}

type Attr = string | number | boolean | null | undefined;
type Child = Node | string | null | undefined;

/** An element with attributes (`class`; `text` sets textContent) and children; never parses HTML. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Record<string, Attr>, ...children: Child[]): HTMLElementTagNameMap[K];
export function el(tag: string, attrs?: Record<string, Attr>, ...children: Child[]): HTMLElement;
export function el(tag: string, attrs?: Record<string, Attr>, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = String(v);
    else if (k === "text") node.textContent = String(v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** localStorage under a `cocoon.` prefix, as JSON; the fallback stands in for a missing or unreadable value. */
export const storage = {
  get<T>(key: string, fallback: T): T {
    try {
      const v = localStorage.getItem(`cocoon.${key}`);
      return v === null ? fallback : (JSON.parse(v) as T);
    } catch {
      return fallback;
    }
  },
  set(key: string, value: unknown): void {
    try {
      if (value === undefined || value === null) localStorage.removeItem(`cocoon.${key}`);
      else localStorage.setItem(`cocoon.${key}`, JSON.stringify(value));
    } catch {
      // Private mode or a full quota: the UI still works for this page's life.
    }
  },
};

/** Random hex from crypto.getRandomValues, which (unlike randomUUID) works on plain-http origins too. */
export function randomHex(bytes: number): string {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const formatTime = (seconds: number | undefined): string => {
  if (!seconds) return "";
  const d = new Date(seconds * (seconds < 1e12 ? 1000 : 1));
  const today = new Date();
  return d.toDateString() === today.toDateString() ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleDateString();
};

/** TON from the server's exact decimal string, trimmed for display (never recomputed from floats). */
export function tonText(cost: Cost | null | undefined): string {
  if (!cost) return "";
  const s = typeof cost.ton === "string" ? cost.ton : typeof cost.ton === "number" ? String(cost.ton) : null;
  if (s !== null) return `${s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s} TON`;
  if (cost.nanoton !== undefined) return `${cost.nanoton} nanoton`;
  return "";
}

export async function copyText(text: string): Promise<boolean> {
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

/** Shows `text` on a button for a moment, then its label again. */
export function flash(button: HTMLElement, text: string): void {
  const old = button.textContent;
  button.textContent = text;
  setTimeout(() => (button.textContent = old), 1200);
}

export function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name, class: "offscreen" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Grows a textarea with its text, up to 40% of the window. */
export function autosize(ta: HTMLTextAreaElement): void {
  ta.style.height = "auto";
  ta.style.height = `${Math.min(ta.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

// API key entry and registration, balance and deposit, the model picker, the settings panel, side
// panels, the conversation drawer and the theme.
import { byId, copyText, el, flash, storage, tonText } from "./dom.ts";
import { DEFAULTS, INTEGER, LIMITS, NUMERIC_SETTINGS, clearError, failureOf, hooks, messageOf, request, requestJson, showError, state, type NumericSetting } from "./state.ts";
import type { Balance, Deposit, List, ModelEntry, Registered } from "./types.ts";

// ---- account: key, registration, balance, deposit -----------------------------------------------------

const AUTH_TEXT: Record<typeof state.auth, string> = {
  unknown: "Checking the server\u2026",
  open: "This server runs without API keys: no key is needed.",
  key: "Signed in with your API key.",
  "needs-key": "This server needs an API key: enter yours or register.",
};

export function renderAuth(message?: string): void {
  byId("auth-status").textContent = message ?? AUTH_TEXT[state.auth];
  byId("api-key-clear").hidden = !state.apiKey;
  byId("app").dataset.auth = state.auth;
}

export function needKey(message?: string): void {
  if (state.auth === "open") return;
  state.auth = "needs-key";
  state.billing = false;
  byId("balance").hidden = true;
  renderAuth(message);
  openPanel("account-panel");
}

/** Asks the server who we are: /v1/balance answers 200 with a key, 401 without one, 404 when keys are off. */
export async function refreshAccount(): Promise<void> {
  let res: Response;
  try {
    res = await request("/v1/balance");
  } catch {
    return;
  }
  if (res.status === 404) {
    state.auth = "open";
    state.billing = false;
    byId("balance").hidden = true;
    byId("balance-details").hidden = true;
    byId("deposit-info").hidden = true;
    renderAuth();
    return;
  }
  if (res.status === 401) return; // request() already asked for a key
  if (!res.ok) {
    showError((await failureOf(res)).message);
    return;
  }
  const b = (await res.json()) as Balance;
  state.auth = "key";
  state.billing = true;
  renderAuth();
  const chip = byId("balance");
  chip.hidden = false;
  chip.textContent = tonText({ ton: String(b.balance_ton) });
  chip.title = `Balance: ${b.balance_nanoton} nanoton`;
  const details = byId("balance-details");
  details.hidden = false;
  details.replaceChildren(
    el("h3", { text: "Balance" }),
    el(
      "dl",
      { class: "kv" },
      el("dt", { text: "TON" }),
      el("dd", { "data-testid": "balance-ton", text: String(b.balance_ton) }),
      el("dt", { text: "nanoton" }),
      el("dd", { text: String(b.balance_nanoton) }),
      ...(b.balance_usd !== null && b.balance_usd !== undefined ? [el("dt", { text: "USD" }), el("dd", { text: `$${b.balance_usd}` })] : []),
      ...(b.reserved_nanoton ? [el("dt", { text: "in use" }), el("dd", { text: `${b.reserved_nanoton} nanoton` })] : []),
    ),
  );
  void refreshDeposit();
}

function copyButton(label: string, text: string): HTMLButtonElement {
  const button = el("button", { type: "button", class: "btn small", "aria-label": label }, "Copy");
  button.addEventListener("click", async () => flash(button, (await copyText(text)) ? "Copied" : "Copy failed"));
  return button;
}

export async function refreshDeposit(): Promise<void> {
  const box = byId("deposit-info");
  let d: Deposit;
  try {
    d = await requestJson<Deposit>("/v1/deposit");
  } catch (e) {
    box.hidden = false;
    box.replaceChildren(el("h3", { text: "Deposit" }), el("p", { class: "muted", text: messageOf(e) }));
    return;
  }
  box.hidden = false;
  const parts: HTMLElement[] = [el("h3", { text: "Deposit" })];
  if (d.wallet) {
    const link = typeof d.link === "string" && d.link.startsWith("ton://") ? d.link : `ton://transfer/${encodeURIComponent(d.wallet)}?text=${encodeURIComponent(d.memo)}`;
    parts.push(
      el("p", { class: "small", "data-testid": "deposit-instructions", text: d.instructions }),
      el(
        "dl",
        { class: "kv" },
        el("dt", { text: "Wallet" }),
        el("dd", {}, el("code", { class: "break", "data-testid": "deposit-wallet", text: d.wallet }), " ", copyButton("Copy the wallet address", d.wallet)),
        el("dt", { text: "Memo" }),
        el("dd", {}, el("code", { "data-testid": "deposit-memo", text: d.memo }), " ", copyButton("Copy the memo", d.memo)),
      ),
      el("p", {}, el("a", { class: "btn primary", href: link, "data-testid": "deposit-link", rel: "noopener" }, "Open in a TON wallet")),
      el("p", { class: "hint", text: "The memo is required: a transfer without it cannot be matched to your account." }),
    );
  } else {
    parts.push(el("p", { class: "small", "data-testid": "deposit-instructions", text: d.instructions }));
  }
  box.replaceChildren(...parts);
}

/** Whether requests can go through: a working key, or a server without keys. (A function, so it reads
 * state.auth after an await rather than TypeScript's narrowing from before it.) */
const signedIn = () => state.auth === "key" || state.auth === "open";

export async function saveKey(key: string): Promise<void> {
  state.apiKey = key || null;
  storage.set("apiKey", state.apiKey);
  state.auth = "unknown";
  renderAuth();
  clearError();
  await refreshAccount();
  if (signedIn()) {
    closePanels();
    await hooks.onSignedIn();
  }
}

export async function register(): Promise<void> {
  const button = byId("register-button", HTMLButtonElement);
  button.disabled = true;
  try {
    const res = await fetch("/api/register", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    if (!res.ok) throw await failureOf(res);
    const r = (await res.json()) as Registered;
    byId("new-key").hidden = false;
    byId("new-key-value").textContent = r.api_key;
    byId("api-key-input", HTMLInputElement).value = "";
    state.apiKey = r.api_key;
    storage.set("apiKey", r.api_key);
    await refreshAccount();
    await hooks.onSignedIn();
  } catch (e) {
    renderAuth(`Registration failed: ${messageOf(e)}`);
  } finally {
    button.disabled = false;
  }
}

// ---- models ---------------------------------------------------------------------------------------------

export async function loadModels(): Promise<void> {
  const select = byId("model-select", HTMLSelectElement);
  try {
    const body = await requestJson<List<ModelEntry>>("/v1/models");
    const models = (body.data ?? []).filter((m) => !m.type || m.type === "chat" || m.type === "llm");
    select.replaceChildren(...models.map((m) => el("option", { value: m.id, text: m.id })));
    if (!models.length) select.append(el("option", { value: "", text: "(no chat model)" }));
    const wanted = state.model && models.some((m) => m.id === state.model) ? state.model : (models[0]?.id ?? "");
    select.value = wanted;
    state.model = wanted || null;
  } catch {
    if (!select.options.length) select.append(el("option", { value: "", text: "(models unavailable)" }));
  }
}

// ---- settings -------------------------------------------------------------------------------------------

function clampSetting(name: NumericSetting, value: string): number {
  const [lo, hi] = LIMITS[name];
  let v = Number(value);
  if (!Number.isFinite(v)) v = DEFAULTS[name];
  v = Math.min(hi, Math.max(lo, v));
  return INTEGER.has(name) ? Math.round(v) : Math.round(v * 100) / 100;
}

const settingBox = (name: NumericSetting) => byId(`setting-${name}`, HTMLInputElement);
const settingSlider = (name: NumericSetting) => byId(`setting-${name}-range`, HTMLInputElement);
const systemPromptBox = () => byId("setting-system-prompt", HTMLTextAreaElement);
const stopBox = () => byId("setting-stop", HTMLTextAreaElement);

export function renderSettings(): void {
  for (const name of NUMERIC_SETTINGS) {
    const v = String(state.settings[name]);
    settingBox(name).value = v;
    settingSlider(name).value = v;
  }
  systemPromptBox().value = state.settings.systemPrompt;
  stopBox().value = state.settings.stop;
}

export function bindSettings(): void {
  for (const name of NUMERIC_SETTINGS) {
    const box = settingBox(name);
    const slider = settingSlider(name);
    const apply = (raw: string, commit: boolean) => {
      const v = clampSetting(name, raw);
      state.settings[name] = v;
      storage.set("settings", state.settings);
      slider.value = String(v);
      if (commit) box.value = String(v);
    };
    slider.addEventListener("input", () => apply(slider.value, true));
    box.addEventListener("input", () => box.value !== "" && apply(box.value, false));
    box.addEventListener("change", () => apply(box.value, true));
  }
  const prompt = systemPromptBox();
  prompt.addEventListener("input", () => {
    state.settings.systemPrompt = prompt.value;
    storage.set("settings", state.settings);
  });
  const stop = stopBox();
  stop.addEventListener("input", () => {
    state.settings.stop = stop.value;
    storage.set("settings", state.settings);
  });
  byId("settings-reset").addEventListener("click", () => {
    state.settings = { ...DEFAULTS };
    storage.set("settings", state.settings);
    renderSettings();
  });
}

/** The request's sampling fields, from the settings panel. */
export function samplingParams() {
  const s = state.settings;
  const stop = s.stop.split("\n").filter((x) => x.length > 0).slice(0, 4);
  return {
    temperature: s.temperature,
    top_p: s["top-p"],
    top_k: s["top-k"],
    max_tokens: s["max-tokens"],
    repeat_penalty: s["repeat-penalty"],
    ...(stop.length ? { stop } : {}),
  };
}

// ---- panels, drawer, theme ----------------------------------------------------------------------------------

/** What had focus when a panel opened: it gets focus back when the panel closes. */
let panelOpener: HTMLElement | null = null;
const panels = () => document.querySelectorAll<HTMLElement>(".panel");

export function openPanel(id: string): void {
  for (const p of panels()) if (p.id !== id) p.hidden = true;
  const panel = byId(id);
  if (panel.hidden) panelOpener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  panel.hidden = false;
  byId("settings-toggle").setAttribute("aria-expanded", String(id === "settings-panel"));
  byId("account-toggle").setAttribute("aria-expanded", String(id === "account-panel"));
  const first = panel.querySelector<HTMLElement>("input:not([tabindex='-1']), textarea, select, button:not([data-close-panel])");
  if (first && !panel.contains(document.activeElement)) first.focus();
}

/** Closes any open panel; true when one was open. */
export function closePanels(): boolean {
  let closed = false;
  for (const p of panels()) {
    if (!p.hidden) closed = true;
    p.hidden = true;
  }
  byId("settings-toggle").setAttribute("aria-expanded", "false");
  byId("account-toggle").setAttribute("aria-expanded", "false");
  if (closed && panelOpener && document.contains(panelOpener)) panelOpener.focus();
  panelOpener = null;
  return closed;
}

export function togglePanel(id: string): void {
  if (byId(id).hidden) openPanel(id);
  else closePanels();
}

export const isPhone = (): boolean => window.matchMedia("(max-width: 760px)").matches;

export function setDrawer(open: boolean): void {
  const app = byId("app");
  const toggle = byId("sidebar-toggle");
  if (isPhone()) {
    app.classList.toggle("drawer-open", open);
    app.classList.remove("sidebar-collapsed");
    byId("scrim").hidden = !open;
  } else {
    app.classList.toggle("sidebar-collapsed", !open);
    app.classList.remove("drawer-open");
    byId("scrim").hidden = true;
  }
  toggle.setAttribute("aria-expanded", String(open));
  toggle.setAttribute("aria-label", open ? "Hide conversations" : "Show conversations");
  if (open && isPhone()) byId("new-chat").focus();
}

export const drawerOpen = (): boolean => (isPhone() ? byId("app").classList.contains("drawer-open") : !byId("app").classList.contains("sidebar-collapsed"));

export type Theme = "dark" | "light";

export function applyTheme(theme: Theme): void {
  document.documentElement.dataset.theme = theme;
  const toggle = byId("theme-toggle");
  toggle.textContent = theme === "dark" ? "\u263C" : "\u263E";
  toggle.setAttribute("aria-label", theme === "dark" ? "Switch to light mode" : "Switch to dark mode");
  toggle.setAttribute("aria-pressed", String(theme === "light"));
}

// Chat UI, part 5: API key entry and registration, balance and deposit, the model picker, the settings
// panel, side panels, the conversation drawer and the theme.

// ---- account: key, registration, balance, deposit -----------------------------------------------------

function renderAuth(message) {
  const status = byId("auth-status");
  const text =
    message ??
    {
      unknown: "Checking the server\u2026",
      open: "This server runs without API keys: no key is needed.",
      key: "Signed in with your API key.",
      "needs-key": "This server needs an API key: enter yours or register.",
    }[state.auth];
  status.textContent = text;
  byId("api-key-clear").hidden = !state.apiKey;
  byId("app").dataset.auth = state.auth;
}

function needKey(message) {
  if (state.auth === "open") return;
  state.auth = "needs-key";
  state.billing = false;
  byId("balance").hidden = true;
  renderAuth(message);
  openPanel("account-panel");
}

/** Asks the server who we are: /v1/balance answers 200 with a key, 401 without one, 404 when keys are off. */
async function refreshAccount() {
  let res;
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
  const b = await res.json();
  state.auth = "key";
  state.billing = true;
  renderAuth();
  const chip = byId("balance");
  chip.hidden = false;
  chip.textContent = `${tonText({ ton: String(b.balance_ton) })}`;
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

async function refreshDeposit() {
  const box = byId("deposit-info");
  let d;
  try {
    d = await requestJson("/v1/deposit");
  } catch (e) {
    box.hidden = false;
    box.replaceChildren(el("h3", { text: "Deposit" }), el("p", { class: "muted", text: e.message }));
    return;
  }
  box.hidden = false;
  const parts = [el("h3", { text: "Deposit" })];
  if (d.wallet) {
    const link = typeof d.link === "string" && d.link.startsWith("ton://") ? d.link : `ton://transfer/${encodeURIComponent(d.wallet)}?text=${encodeURIComponent(d.memo)}`;
    const copyWallet = el("button", { type: "button", class: "btn small", "aria-label": "Copy the wallet address" }, "Copy");
    copyWallet.addEventListener("click", async () => flash(copyWallet, (await copyText(d.wallet)) ? "Copied" : "Copy failed"));
    const copyMemo = el("button", { type: "button", class: "btn small", "aria-label": "Copy the memo" }, "Copy");
    copyMemo.addEventListener("click", async () => flash(copyMemo, (await copyText(d.memo)) ? "Copied" : "Copy failed"));
    parts.push(
      el("p", { class: "small", "data-testid": "deposit-instructions", text: d.instructions }),
      el(
        "dl",
        { class: "kv" },
        el("dt", { text: "Wallet" }),
        el("dd", {}, el("code", { class: "break", "data-testid": "deposit-wallet", text: d.wallet }), " ", copyWallet),
        el("dt", { text: "Memo" }),
        el("dd", {}, el("code", { "data-testid": "deposit-memo", text: d.memo }), " ", copyMemo),
      ),
      el("p", {}, el("a", { class: "btn primary", href: link, "data-testid": "deposit-link", rel: "noopener" }, "Open in a TON wallet")),
      el("p", { class: "hint", text: "The memo is required: a transfer without it cannot be matched to your account." }),
    );
  } else {
    parts.push(el("p", { class: "small", "data-testid": "deposit-instructions", text: d.instructions }));
  }
  box.replaceChildren(...parts);
}

async function saveKey(key) {
  state.apiKey = key || null;
  storage.set("apiKey", state.apiKey);
  state.auth = "unknown";
  renderAuth();
  clearError();
  await refreshAccount();
  if (state.auth === "key" || state.auth === "open") {
    closePanels();
    await loadSessions();
  }
}

async function register() {
  const button = byId("register-button");
  button.disabled = true;
  try {
    const res = await fetch("/api/register", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    if (!res.ok) throw await failureOf(res);
    const r = await res.json();
    byId("new-key").hidden = false;
    byId("new-key-value").textContent = r.api_key;
    byId("api-key-input").value = "";
    state.apiKey = r.api_key;
    storage.set("apiKey", r.api_key);
    await refreshAccount();
    await loadSessions();
  } catch (e) {
    renderAuth(`Registration failed: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---- models ---------------------------------------------------------------------------------------------

async function loadModels() {
  const select = /** @type {HTMLSelectElement} */ (byId("model-select"));
  try {
    const body = await requestJson("/v1/models");
    const models = (body.data ?? []).filter((m) => !m.type || m.type === "chat" || m.type === "llm");
    select.replaceChildren(...models.map((m) => el("option", { value: m.id, text: m.id })));
    if (!models.length) select.append(el("option", { value: "", text: "(no chat model)" }));
    const wanted = state.model && models.some((m) => m.id === state.model) ? state.model : models[0]?.id ?? "";
    select.value = wanted;
    state.model = wanted || null;
  } catch {
    if (!select.options.length) select.append(el("option", { value: "", text: "(models unavailable)" }));
  }
}

// ---- settings -------------------------------------------------------------------------------------------

function clampSetting(name, value) {
  const [lo, hi] = LIMITS[name];
  let v = Number(value);
  if (!Number.isFinite(v)) v = DEFAULTS[name];
  v = Math.min(hi, Math.max(lo, v));
  return INTEGER.has(name) ? Math.round(v) : Math.round(v * 100) / 100;
}

function renderSettings() {
  for (const name of Object.keys(LIMITS)) {
    const v = state.settings[name];
    byId(`setting-${name}`).value = String(v);
    byId(`setting-${name}-range`).value = String(v);
  }
  byId("setting-system-prompt").value = state.settings.systemPrompt;
  byId("setting-stop").value = state.settings.stop;
}

function bindSettings() {
  for (const name of Object.keys(LIMITS)) {
    const box = /** @type {HTMLInputElement} */ (byId(`setting-${name}`));
    const slider = /** @type {HTMLInputElement} */ (byId(`setting-${name}-range`));
    const apply = (raw, commit) => {
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
  byId("setting-system-prompt").addEventListener("input", (e) => {
    state.settings.systemPrompt = e.target.value;
    storage.set("settings", state.settings);
  });
  byId("setting-stop").addEventListener("input", (e) => {
    state.settings.stop = e.target.value;
    storage.set("settings", state.settings);
  });
  byId("settings-reset").addEventListener("click", () => {
    state.settings = { ...DEFAULTS };
    storage.set("settings", state.settings);
    renderSettings();
  });
}

function samplingParams() {
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

let panelOpener = null;
function openPanel(id) {
  for (const p of document.querySelectorAll(".panel")) if (p.id !== id) p.hidden = true;
  const panel = byId(id);
  if (panel.hidden) panelOpener = document.activeElement;
  panel.hidden = false;
  byId("settings-toggle").setAttribute("aria-expanded", String(id === "settings-panel"));
  byId("account-toggle").setAttribute("aria-expanded", String(id === "account-panel"));
  const first = panel.querySelector("input:not([tabindex='-1']), textarea, select, button:not([data-close-panel])");
  if (first && !panel.contains(document.activeElement)) first.focus();
}
function closePanels() {
  let closed = false;
  for (const p of document.querySelectorAll(".panel")) {
    if (!p.hidden) closed = true;
    p.hidden = true;
  }
  byId("settings-toggle").setAttribute("aria-expanded", "false");
  byId("account-toggle").setAttribute("aria-expanded", "false");
  if (closed && panelOpener && document.contains(panelOpener)) panelOpener.focus();
  panelOpener = null;
  return closed;
}
function togglePanel(id) {
  if (byId(id).hidden) openPanel(id);
  else closePanels();
}

const isPhone = () => window.matchMedia("(max-width: 760px)").matches;
function setDrawer(open) {
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
const drawerOpen = () => (isPhone() ? byId("app").classList.contains("drawer-open") : !byId("app").classList.contains("sidebar-collapsed"));

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const toggle = byId("theme-toggle");
  toggle.textContent = theme === "dark" ? "\u263C" : "\u263E";
  toggle.setAttribute("aria-label", theme === "dark" ? "Switch to light mode" : "Switch to dark mode");
  toggle.setAttribute("aria-pressed", String(theme === "light"));
}

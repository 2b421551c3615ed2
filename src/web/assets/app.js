// Chat UI, part 8: wires the controls and keyboard shortcuts, then starts: theme, settings, health
// polling, models, account and the conversation list.

// ---- wiring ----------------------------------------------------------------------------------------------------------

function autosize(ta) {
  ta.style.height = "auto";
  ta.style.height = `${Math.min(ta.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

function bind() {
  const input = /** @type {HTMLTextAreaElement} */ (byId("composer-input"));
  byId("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || state.stream) return;
    if (state.auth === "needs-key") {
      needKey();
      return;
    }
    input.value = "";
    autosize(input);
    void sendTurn(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      byId("composer").requestSubmit();
    }
  });
  input.addEventListener("input", () => autosize(input));
  byId("stop-button").addEventListener("click", () => state.stream?.controller.abort());
  byId("new-chat").addEventListener("click", () => {
    newChat();
    if (isPhone()) setDrawer(false);
  });
  byId("sidebar-toggle").addEventListener("click", () => setDrawer(!drawerOpen()));
  byId("scrim").addEventListener("click", () => setDrawer(false));
  byId("settings-toggle").addEventListener("click", () => togglePanel("settings-panel"));
  byId("account-toggle").addEventListener("click", () => togglePanel("account-panel"));
  for (const b of document.querySelectorAll("[data-close-panel]")) b.addEventListener("click", () => closePanels());
  byId("theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    storage.set("theme", next);
    applyTheme(next);
  });
  byId("model-select").addEventListener("change", (e) => {
    state.model = e.target.value || null;
    storage.set("model", state.model);
  });
  byId("api-key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = byId("api-key-input").value.trim();
    byId("api-key-input").value = "";
    void saveKey(key);
  });
  byId("api-key-clear").addEventListener("click", () => {
    state.sessions = [];
    renderSessionList();
    newChat();
    void saveKey("");
  });
  byId("register-button").addEventListener("click", () => void register());
  byId("new-key-copy").addEventListener("click", async (e) => flash(e.target, (await copyText(byId("new-key-value").textContent ?? "")) ? "Copied" : "Copy failed"));
  byId("export-json").addEventListener("click", () => void exportConversation("json"));
  byId("export-markdown").addEventListener("click", () => void exportConversation("markdown"));
  byId("error-close").addEventListener("click", clearError);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    if (closePanels()) return;
    if (isPhone() && drawerOpen()) setDrawer(false);
    else if (state.stream) state.stream.controller.abort();
  });
  window.matchMedia("(max-width: 760px)").addEventListener("change", () => setDrawer(!isPhone()));
}

async function start() {
  applyTheme(storage.get("theme", "dark"));
  renderSettings();
  bindSettings();
  bind();
  setDrawer(!isPhone());
  renderAuth();
  renderConn();
  void pollHealth();
  setInterval(() => void pollHealth(), 5000);
  await loadModels();
  await refreshAccount();
  await loadSessions();
  const last = storage.get("session", null);
  if (last && state.sessions.some((s) => s.id === last)) await openSession(last);
  else renderConversation();
  byId("app").dataset.ready = "true";
}

void start();

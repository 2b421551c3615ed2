// The chat UI's entry: wires the controls and keyboard shortcuts, then starts: theme, settings, health
// polling, models, account and the conversation list.
import { applyTheme, bindSettings, closePanels, drawerOpen, isPhone, needKey, refreshAccount, register, renderAuth, renderSettings, saveKey, setDrawer, togglePanel, loadModels, type Theme } from "./account.ts";
import { autosize, byId, copyText, flash, storage } from "./dom.ts";
import { loadSessions, newChat, openSession, renderConversation, renderSessionList } from "./sessions.ts";
import { clearError, pollHealth, renderConn, state, wireHooks } from "./state.ts";
import { exportConversation, regenerate, sendTurn, streamReply } from "./stream.ts";

function bind(): void {
  const input = byId("composer-input", HTMLTextAreaElement);
  const composer = byId("composer", HTMLFormElement);
  composer.addEventListener("submit", (e) => {
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
      composer.requestSubmit();
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
    const next: Theme = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    storage.set("theme", next);
    applyTheme(next);
  });
  const picker = byId("model-select", HTMLSelectElement);
  picker.addEventListener("change", () => {
    state.model = picker.value || null;
    storage.set("model", state.model);
  });
  const keyInput = byId("api-key-input", HTMLInputElement);
  byId("api-key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = keyInput.value.trim();
    keyInput.value = "";
    void saveKey(key);
  });
  byId("api-key-clear").addEventListener("click", () => {
    state.sessions = [];
    renderSessionList();
    newChat();
    void saveKey("");
  });
  byId("register-button").addEventListener("click", () => void register());
  const copyKey = byId("new-key-copy");
  copyKey.addEventListener("click", async () => flash(copyKey, (await copyText(byId("new-key-value").textContent ?? "")) ? "Copied" : "Copy failed"));
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

async function start(): Promise<void> {
  wireHooks({
    onNeedKey: needKey,
    onModelsChanged: () => void loadModels(),
    onSignedIn: loadSessions,
    onSend: sendTurn,
    onRetry: () => void streamReply([], { base: state.current?.messages.length ?? 0 }),
    onRegenerate: () => void regenerate(),
  });
  applyTheme(storage.get<Theme>("theme", "dark") === "light" ? "light" : "dark");
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
  const last = storage.get<string | null>("session", null);
  if (last && state.sessions.some((s) => s.id === last)) await openSession(last);
  else renderConversation();
  byId("app").dataset.ready = "true";
}

void start();

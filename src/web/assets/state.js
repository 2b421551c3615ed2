// Chat UI, part 4: the page's state, the API client (Bearer key, OpenAI-shaped errors), the error banner
// and the connection indicator.

// ---- state ---------------------------------------------------------------------------------------------

const DEFAULTS = { temperature: 0.7, "top-p": 0.9, "top-k": 40, "max-tokens": 512, "repeat-penalty": 1.1, systemPrompt: "", stop: "" };
const LIMITS = { temperature: [0, 2], "top-p": [0, 1], "top-k": [1, 100], "max-tokens": [128, 2048], "repeat-penalty": [1, 2] };
const INTEGER = new Set(["top-k", "max-tokens"]);

const state = {
  apiKey: storage.get("apiKey", null),
  /** "unknown" | "open" (server without keys) | "key" (a working key) | "needs-key" */
  auth: "unknown",
  billing: false,
  model: storage.get("model", null),
  settings: { ...DEFAULTS, ...storage.get("settings", {}) },
  sessions: [],
  /** The open conversation: { id, title, model, system_prompt, messages, usage, cost, local } (local: not on the server yet). */
  current: null,
  /** Live tokens/s per reply, keyed "sessionId:index": the server stores tokens and cost, not speed. */
  speeds: new Map(),
  stream: null,
  health: "connecting",
};

// ---- API ---------------------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failureOf(res) {
  let message = `${res.status} ${res.statusText}`;
  let code = null;
  try {
    const body = await res.json();
    if (body?.error?.message) message = body.error.message;
    code = body?.error?.code ?? null;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiFailure(res.status, message, code);
}

async function request(path, { method = "GET", body, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.apiKey) headers.Authorization = `Bearer ${state.apiKey}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (res.status === 401) needKey(state.apiKey ? "This API key was not accepted. Enter a valid key or register." : "This server needs an API key: enter yours or register.");
  return res;
}

async function requestJson(path, opts) {
  const res = await request(path, opts);
  if (!res.ok) throw await failureOf(res);
  return res.status === 204 ? null : res.json();
}

// ---- error banner ----------------------------------------------------------------------------------------

function showError(message) {
  byId("error-text").textContent = message;
  byId("error-banner").hidden = false;
}
function clearError() {
  byId("error-banner").hidden = true;
}

// ---- connection status ---------------------------------------------------------------------------------

function renderConn() {
  const conn = byId("conn-status");
  const s = state.stream ? "streaming" : state.health;
  conn.dataset.state = s;
  const label = { online: "Connected", offline: "Offline", connecting: "Connecting\u2026", loading: "Loading model\u2026", streaming: "Streaming\u2026" }[s] ?? s;
  conn.querySelector(".conn-label").textContent = label;
  conn.setAttribute("aria-label", `Connection: ${label}`);
  conn.title = `Server connection: ${label}`;
}

async function pollHealth() {
  try {
    const res = await fetch("/health", { cache: "no-store" });
    const body = res.ok ? await res.json() : null;
    const was = state.health;
    state.health = !body ? "offline" : body.model_info && body.model_info.loaded === false ? "loading" : "online";
    if (was !== "online" && state.health === "online" && was !== "connecting") void loadModels();
  } catch {
    state.health = "offline";
  }
  renderConn();
}

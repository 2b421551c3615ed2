// The chat UI's state, the API client (Bearer key, OpenAI-shaped errors), the error banner, the
// connection indicator, and the hooks through which the other modules reach the ones above them.
import { byId, storage } from "./dom.ts";
import type { Conversation, Health, SessionInfo } from "./types.ts";

export const NUMERIC_SETTINGS = ["temperature", "top-p", "top-k", "max-tokens", "repeat-penalty"] as const;
export type NumericSetting = (typeof NUMERIC_SETTINGS)[number];
export type Settings = Record<NumericSetting, number> & { systemPrompt: string; stop: string };

export const DEFAULTS: Settings = { temperature: 0.7, "top-p": 0.9, "top-k": 40, "max-tokens": 512, "repeat-penalty": 1.1, systemPrompt: "", stop: "" };
export const LIMITS: Record<NumericSetting, readonly [number, number]> = { temperature: [0, 2], "top-p": [0, 1], "top-k": [1, 100], "max-tokens": [128, 2048], "repeat-penalty": [1, 2] };
export const INTEGER = new Set<NumericSetting>(["top-k", "max-tokens"]);

/** "open": a server without keys; "key": a working key. */
export type Auth = "unknown" | "open" | "key" | "needs-key";
type HealthState = "connecting" | "online" | "offline" | "loading";

export interface State {
  apiKey: string | null;
  auth: Auth;
  billing: boolean;
  model: string | null;
  settings: Settings;
  sessions: SessionInfo[];
  /** The open conversation. */
  current: Conversation | null;
  /** Live tokens/s per reply, keyed "sessionId:index": the server stores tokens and cost, not speed. */
  speeds: Map<string, number>;
  stream: { controller: AbortController } | null;
  health: HealthState;
}

export const state: State = {
  apiKey: storage.get<string | null>("apiKey", null),
  auth: "unknown",
  billing: false,
  model: storage.get<string | null>("model", null),
  settings: { ...DEFAULTS, ...storage.get<Partial<Settings>>("settings", {}) },
  sessions: [],
  current: null,
  speeds: new Map(),
  stream: null,
  health: "connecting",
};

// ---- hooks ---------------------------------------------------------------------------------------------

/**
 * What a module asks of one above it (account, sessions, stream import this file, so this file may not
 * import them, nor may account import sessions or sessions import stream): app.ts wires every hook with
 * `wireHooks` before anything runs.
 */
export interface Hooks {
  /** The server wants a key, or refused ours: ask for one, with this message. */
  onNeedKey(message?: string): void;
  /** The server is back online after being away: its models may have changed. */
  onModelsChanged(): void;
  /** A key is now in use: load what belongs to its account. */
  onSignedIn(): Promise<void>;
  /** Send this text as the next user turn of the open conversation. */
  onSend(text: string): Promise<void>;
  /** Answer the open conversation's last user message (after a reply that failed or was stopped). */
  onRetry(): void;
  /** Replace the open conversation's last reply with a new one. */
  onRegenerate(): void;
}

const unwired = (): never => {
  throw new Error("a hook ran before app.ts wired it");
};
export const hooks: Hooks = { onNeedKey: unwired, onModelsChanged: unwired, onSignedIn: unwired, onSend: unwired, onRetry: unwired, onRegenerate: unwired };

export function wireHooks(wired: Hooks): void {
  Object.assign(hooks, wired);
}

// ---- API ---------------------------------------------------------------------------------------------

/** A request the server refused, with its OpenAI-shaped error's message and code. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

export async function failureOf(res: Response): Promise<ApiFailure> {
  let message = `${res.status} ${res.statusText}`;
  let code: string | null = null;
  try {
    const body = (await res.json()) as { error?: { message?: string; code?: string | null } } | null;
    if (body?.error?.message) message = body.error.message;
    code = body?.error?.code ?? null;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiFailure(res.status, message, code);
}

/** The message of anything a try block threw. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

export async function request(path: string, { method = "GET", body, signal }: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.apiKey) headers.Authorization = `Bearer ${state.apiKey}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (res.status === 401) hooks.onNeedKey(state.apiKey ? "This API key was not accepted. Enter a valid key or register." : "This server needs an API key: enter yours or register.");
  return res;
}

/** A request that must succeed: its response, or the server's error as an ApiFailure. */
export async function requestOk(path: string, opts?: RequestOptions): Promise<Response> {
  const res = await request(path, opts);
  if (!res.ok) throw await failureOf(res);
  return res;
}

/** The JSON body of a request that must succeed; its shape is the server's (see types.ts). */
export async function requestJson<T>(path: string, opts?: RequestOptions): Promise<T> {
  return (await (await requestOk(path, opts)).json()) as T;
}

// ---- error banner ----------------------------------------------------------------------------------------

export function showError(message: string): void {
  byId("error-text").textContent = message;
  byId("error-banner").hidden = false;
}
export function clearError(): void {
  byId("error-banner").hidden = true;
}

// ---- connection status ---------------------------------------------------------------------------------

const CONN_LABEL: Record<HealthState | "streaming", string> = {
  online: "Connected",
  offline: "Offline",
  connecting: "Connecting\u2026",
  loading: "Loading model\u2026",
  streaming: "Streaming\u2026",
};

export function renderConn(): void {
  const conn = byId("conn-status");
  const s = state.stream ? "streaming" : state.health;
  conn.dataset.state = s;
  const label = CONN_LABEL[s];
  const text = conn.querySelector(".conn-label");
  if (text) text.textContent = label;
  conn.setAttribute("aria-label", `Connection: ${label}`);
  conn.title = `Server connection: ${label}`;
}

export async function pollHealth(): Promise<void> {
  try {
    const res = await fetch("/health", { cache: "no-store" });
    const body = res.ok ? ((await res.json()) as Health | null) : null;
    const was = state.health;
    state.health = !body ? "offline" : body.model_info && body.model_info.loaded === false ? "loading" : "online";
    if (was !== "online" && state.health === "online" && was !== "connecting") hooks.onModelsChanged();
  } catch {
    state.health = "offline";
  }
  renderConn();
}

// The conversation list (/v1/sessions), opening and deleting conversations, rendering messages, and
// editing a message into a new branch (fork).
import { isPhone, setDrawer } from "./account.ts";
import { byId, copyText, el, flash, formatTime, storage, tonText } from "./dom.ts";
import { renderMarkdown } from "./markdown.ts";
import { ApiFailure, clearError, hooks, messageOf, requestJson, requestOk, showError, state } from "./state.ts";
import type { List, Message, SessionDetail, SessionInfo } from "./types.ts";

// ---- sessions -------------------------------------------------------------------------------------------------

export function renderSessionList(): void {
  const list = byId("session-list");
  const items = state.sessions.map((s) => {
    const open = el(
      "button",
      { type: "button", class: "session-open", "data-testid": "session-item", "data-session-id": s.id, "aria-current": state.current?.id === s.id ? "true" : null },
      el("span", { class: "session-title", text: s.title || "Untitled" }),
      el("span", { class: "session-sub", text: [`${s.message_count ?? 0} messages`, formatTime(s.updated), s.cost && Number(s.cost.nanoton) > 0 ? tonText(s.cost) : ""].filter(Boolean).join(" \u00B7 ") }),
    );
    open.addEventListener("click", () => {
      void openSession(s.id);
      if (isPhone()) setDrawer(false);
    });
    const del = el("button", { type: "button", class: "session-delete", "data-testid": "session-delete", "aria-label": `Delete conversation ${s.title || s.id}`, title: "Delete" }, "\u00D7");
    del.addEventListener("click", () => {
      // Two clicks, so one stray click or key press never deletes a conversation.
      if (!del.classList.contains("confirm")) {
        del.classList.add("confirm");
        del.textContent = "Delete?";
        setTimeout(() => {
          del.classList.remove("confirm");
          del.textContent = "\u00D7";
        }, 3000);
        return;
      }
      void deleteSession(s.id);
    });
    return el("li", { class: state.current?.id === s.id ? "active" : null }, open, del);
  });
  list.replaceChildren(...items);
  byId("session-list-status").textContent = state.sessions.length ? "" : "No saved conversations yet.";
}

export async function loadSessions(): Promise<void> {
  if (state.auth === "needs-key") return;
  try {
    const body = await requestJson<List<SessionInfo>>("/v1/sessions");
    state.sessions = (body.data ?? []).slice().sort((a, b) => (b.updated ?? 0) - (a.updated ?? 0));
    renderSessionList();
  } catch (e) {
    if (!(e instanceof ApiFailure && e.status === 401)) byId("session-list-status").textContent = `Conversations are unavailable: ${messageOf(e)}`;
  }
}

export async function fetchSession(id: string): Promise<SessionDetail> {
  return requestJson<SessionDetail>(`/v1/sessions/${encodeURIComponent(id)}`);
}

export async function openSession(id: string): Promise<void> {
  if (state.stream) return;
  clearError();
  try {
    const s = await fetchSession(id);
    state.current = { ...s, messages: s.messages ?? [], local: false };
    storage.set("session", id);
    // A conversation continues with the model it last used, when this server still serves it.
    const picker = byId("model-select", HTMLSelectElement);
    const model = s.model;
    if (model && [...picker.options].some((o) => o.value === model)) {
      picker.value = model;
      state.model = model;
    }
    renderConversation();
    renderSessionList();
    resetCounters();
    byId("composer-input").focus();
  } catch (e) {
    showError(`Could not open the conversation: ${messageOf(e)}`);
    if (e instanceof ApiFailure && e.status === 404) {
      storage.set("session", null);
      await loadSessions();
    }
  }
}

export function newChat(): void {
  if (state.stream) return;
  state.current = null;
  storage.set("session", null);
  clearError();
  resetCounters();
  renderConversation();
  renderSessionList();
  byId("composer-input").focus();
}

async function deleteSession(id: string): Promise<void> {
  try {
    await requestOk(`/v1/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (e) {
    showError(`Could not delete the conversation: ${messageOf(e)}`);
    return;
  }
  if (state.current?.id === id) newChat();
  await loadSessions();
}

/** Re-reads the open conversation from the server, the source of truth for messages, tokens and cost. */
export async function syncCurrent(): Promise<void> {
  if (!state.current) return;
  try {
    const s = await fetchSession(state.current.id);
    state.current = { ...s, messages: s.messages ?? [], local: false };
  } catch {
    // Keep what we showed; the list refresh below reports a server problem.
  }
  renderConversation();
}

// ---- rendering the conversation ----------------------------------------------------------------------------

/** The last reply's counters under the composer: a conversation opened or started shows none yet. */
export function resetCounters(): void {
  byId("token-counter").textContent = "0 tokens";
  byId("tokens-per-second").textContent = "\u2013 tok/s";
  byId("reply-cost").hidden = true;
}

export const ROLE_LABEL: Record<string, string> = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };

/** What a message's content shows as: our server's are strings; anything else is shown as its JSON. */
export const contentText = (content: unknown): string => (typeof content === "string" ? content : JSON.stringify(content));

export function messageView(m: Message, index: number, { last = false, streaming = false }: { last?: boolean; streaming?: boolean } = {}): HTMLElement {
  const role = m.role ?? "assistant";
  const article = el("article", { class: `msg msg-${role}${streaming ? " streaming" : ""}`, "data-testid": "message", "data-role": role, "data-index": String(index), "aria-label": `${ROLE_LABEL[role] ?? role} message` });
  article.append(el("div", { class: "msg-role", text: ROLE_LABEL[role] ?? role }));
  const reasoningBody = el("div", { class: "reasoning-body" });
  if (m.reasoning_content) reasoningBody.append(renderMarkdown(m.reasoning_content));
  article.append(el("details", { class: "reasoning", "data-testid": "reasoning", hidden: !m.reasoning_content }, el("summary", { text: streaming && !m.content ? "Thinking\u2026" : "Reasoning" }), reasoningBody));
  const content = el("div", { class: `msg-content${role === "assistant" ? "" : " plain"}`, "data-testid": "message-content" });
  if (role === "assistant") content.append(renderMarkdown(m.content === null || m.content === undefined ? "" : contentText(m.content)));
  else content.textContent = contentText(m.content);
  article.append(content);

  const meta = el("div", { class: "msg-meta", "data-testid": "message-meta" });
  if (role === "assistant" && m.usage) meta.append(el("span", { "data-testid": "message-tokens", text: `${m.usage.completion_tokens ?? 0} tokens` }));
  const speed = state.current && state.speeds.get(`${state.current.id}:${index}`);
  if (role === "assistant" && speed) meta.append(el("span", { text: `${speed.toFixed(1)} tok/s` }));
  if (m.cost && Number(m.cost.nanoton) > 0) meta.append(el("span", { "data-testid": "message-cost", text: `cost ${tonText(m.cost)}` }));
  if (m.created) meta.append(el("time", { text: formatTime(m.created) }));
  if (meta.childNodes.length) article.append(meta);

  if (!streaming && role !== "system") {
    const actions = el("div", { class: "msg-actions" });
    const copy = el("button", { type: "button", class: "btn small", "data-testid": "copy-message", "aria-label": "Copy this message" }, "Copy");
    copy.addEventListener("click", async () => flash(copy, (await copyText(typeof m.content === "string" ? m.content : "")) ? "Copied" : "Copy failed"));
    actions.append(copy);
    if (role === "user") {
      const edit = el("button", { type: "button", class: "btn small", "data-testid": "edit-message", "aria-label": "Edit this message and branch the conversation" }, "Edit & branch");
      edit.addEventListener("click", () => startEdit(article, m, index));
      actions.append(edit);
      if (last) {
        const retry = el("button", { type: "button", class: "btn small", "data-testid": "retry", "aria-label": "Generate a reply to this message" }, "Reply");
        retry.addEventListener("click", () => hooks.onRetry());
        actions.append(retry);
      }
    }
    if (role === "assistant" && last) {
      const regen = el("button", { type: "button", class: "btn small", "data-testid": "regenerate", "aria-label": "Regenerate this reply" }, "Regenerate");
      regen.addEventListener("click", () => hooks.onRegenerate());
      actions.append(regen);
    }
    article.append(actions);
  }
  return article;
}

export function renderConversation(): void {
  const box = byId("messages");
  const c = state.current;
  const nodes: HTMLElement[] = [];
  // The empty state is a page element while it is shown; once replaced, it is built again.
  if (!c || (!c.messages.length && !c.system_prompt)) nodes.push(document.getElementById("empty-state") ?? emptyState());
  else {
    const hasSystemMessage = c.messages.some((m) => m.role === "system");
    if (c.system_prompt && !hasSystemMessage) nodes.push(messageView({ role: "system", content: c.system_prompt }, -1));
    c.messages.forEach((m, i) => nodes.push(messageView(m, i, { last: i === c.messages.length - 1 })));
  }
  box.replaceChildren(...nodes);
  byId("chat-title").textContent = c?.title || (c ? "Untitled" : "New chat");
  document.title = c?.title ? `${c.title} \u00B7 cocoon chat` : "cocoon chat";
  const usage = c?.usage;
  byId("session-usage").textContent =
    usage && usage.total_tokens ? `Conversation: ${usage.total_tokens} tokens${c?.cost && Number(c.cost.nanoton) > 0 ? ` \u00B7 ${tonText(c.cost)}` : ""}` : "";
  box.scrollTop = box.scrollHeight;
}

function emptyState(): HTMLElement {
  return el(
    "div",
    { class: "empty", id: "empty-state", "data-testid": "empty-state" },
    el("p", { class: "empty-title", text: "Start a conversation" }),
    el("p", { class: "muted", text: "Enter sends, Shift+Enter adds a new line. Conversations are saved on the server." }),
  );
}

function startEdit(article: HTMLElement, m: Message, index: number): void {
  if (state.stream) return;
  const content = article.querySelector(".msg-content");
  const actions = article.querySelector<HTMLElement>(".msg-actions");
  if (!content) return;
  const box = el("textarea", { "data-testid": "edit-input", "aria-label": "Edited message", rows: "4" });
  box.value = typeof m.content === "string" ? m.content : "";
  const save = el("button", { type: "submit", class: "btn primary small", "data-testid": "edit-save" }, "Send as a new branch");
  const cancel = el("button", { type: "button", class: "btn small", "data-testid": "edit-cancel" }, "Cancel");
  const form = el("form", { class: "msg-edit" }, box, el("div", { class: "inline-row" }, save, cancel));
  const restore = () => {
    form.replaceWith(content);
    if (actions) actions.hidden = false;
  };
  cancel.addEventListener("click", restore);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = box.value.trim();
    if (text) void branchFrom(index, text);
  });
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      restore();
    } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  content.replaceWith(form);
  if (actions) actions.hidden = true;
  box.focus();
}

/** Edit = a new conversation holding the messages before the edited one, then the edited message sent in it. */
async function branchFrom(index: number, text: string): Promise<void> {
  const c = state.current;
  if (!c || state.stream) return;
  let forked: SessionDetail;
  try {
    forked = await requestJson<SessionDetail>(`/v1/sessions/${encodeURIComponent(c.id)}/fork`, { method: "POST", body: { messages: index } });
  } catch (e) {
    showError(`Could not branch the conversation: ${messageOf(e)}`);
    return;
  }
  state.current = { ...forked, messages: forked.messages ?? c.messages.slice(0, index), local: false };
  storage.set("session", forked.id);
  renderConversation();
  await loadSessions();
  await hooks.onSend(text);
}

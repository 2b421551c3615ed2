// Sending a turn and streaming the reply (SSE over fetch, with usage and cost), the live token counter,
// regenerate (rollback + answer again), and export as JSON or Markdown.
import { refreshAccount, refreshDeposit, samplingParams } from "./account.ts";
import { autosize, byId, download, randomHex, tonText } from "./dom.ts";
import { ROLE_LABEL, contentText, fetchSession, loadSessions, messageView, renderConversation, resetCounters, syncCurrent } from "./sessions.ts";
import { ApiFailure, clearError, failureOf, messageOf, renderConn, request, requestOk, showError, state } from "./state.ts";
import type { ChunkEvent, Message, SessionDetail, Usage } from "./types.ts";

// ---- streaming -------------------------------------------------------------------------------------------------

function setStreaming(on: boolean): void {
  byId("send-button").hidden = on;
  byId("stop-button").hidden = !on;
  byId("composer-input").setAttribute("aria-busy", String(on));
  for (const b of document.querySelectorAll<HTMLButtonElement>("[data-testid=regenerate], [data-testid=edit-message], [data-testid=retry]")) b.disabled = on;
  renderConn();
}

/** Reads an SSE body: yields each parsed `data:` JSON until [DONE]. */
async function* readSse(res: Response): AsyncGenerator<ChunkEvent> {
  if (!res.body) throw new Error("The server sent no stream.");
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      const data = block
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      let event: ChunkEvent;
      try {
        event = JSON.parse(data) as ChunkEvent;
      } catch {
        continue;
      }
      yield event;
    }
  }
}

export async function sendTurn(text: string): Promise<void> {
  if (state.stream) return;
  if (!state.current) {
    state.current = {
      id: `web-${randomHex(12)}`,
      title: text.slice(0, 60),
      model: state.model,
      system_prompt: state.settings.systemPrompt.trim() || null,
      messages: [],
      local: true,
    };
  }
  const c = state.current;
  const outgoing: Message[] = [];
  // The system prompt goes with the first turn; the server keeps it with the session.
  if (c.local && c.system_prompt) outgoing.push({ role: "system", content: c.system_prompt });
  outgoing.push({ role: "user", content: text });
  const base = c.messages.length;
  c.messages.push({ role: "user", content: text, created: Math.floor(Date.now() / 1000) });
  renderConversation();
  await streamReply(outgoing, { base, text });
}

export async function regenerate(): Promise<void> {
  const c = state.current;
  if (!c || state.stream || c.messages.at(-1)?.role !== "assistant") return;
  clearError();
  try {
    await requestOk(`/chat/history/${encodeURIComponent(c.id)}/rollback`, { method: "POST", body: { amount: 1 } });
  } catch (e) {
    showError(`Could not regenerate: ${messageOf(e)}`);
    return;
  }
  c.messages.pop();
  renderConversation();
  await streamReply([], { base: c.messages.length });
}

const isAbort = (e: unknown) => e instanceof Error && e.name === "AbortError";

/**
 * Streams the next assistant reply of the open session; `messages` are the new turns to append first,
 * `base` is how many messages the conversation had before them and `text` what the user typed (put back
 * in the box if the turn fails). Resolves true when the server stored the turn.
 */
export async function streamReply(messages: Message[], { base, text }: { base: number; text?: string }): Promise<boolean> {
  const c = state.current;
  if (!c || state.stream) return false;
  clearError();
  const controller = new AbortController();
  state.stream = { controller };
  setStreaming(true);
  resetCounters();
  const reply = { role: "assistant" as const, content: "", reasoning_content: "" };
  const index = c.messages.length;
  let view = messageView(reply, index, { streaming: true });
  const box = byId("messages");
  document.getElementById("empty-state")?.remove();
  box.append(view);
  box.scrollTop = box.scrollHeight;

  let pieces = 0;
  let firstAt = 0;
  let usage: Usage | null = null;
  let failure: Error | null = null;
  let aborted = false;
  let frame = 0;
  const counter = byId("token-counter");
  const speed = byId("tokens-per-second");
  const paint = () => {
    frame = 0;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const fresh = messageView(reply, index, { streaming: true });
    // Keep the reasoning open if the reader opened it.
    const details = fresh.querySelector("details");
    if (details && view.querySelector("details")?.open) details.open = true;
    view.replaceWith(fresh);
    view = fresh;
    if (nearBottom) box.scrollTop = box.scrollHeight;
    counter.textContent = `${pieces} tokens`;
    const secs = (performance.now() - firstAt) / 1000;
    if (pieces > 1 && secs > 0) speed.textContent = `${(pieces / secs).toFixed(1)} tok/s`;
  };

  const body = { model: state.model ?? undefined, messages, stream: true, stream_options: { include_usage: true }, session_id: c.id, ...samplingParams() };
  try {
    const res = await request("/v1/chat/completions", { method: "POST", body, signal: controller.signal });
    if (!res.ok) throw await failureOf(res);
    for await (const event of readSse(res)) {
      if (event.error) {
        failure = new ApiFailure(500, event.error.message ?? "The server reported an error.", event.error.code ?? null);
        continue;
      }
      if (event.usage) usage = event.usage;
      const delta = event.choices?.[0]?.delta;
      if (!delta) continue;
      const said = delta.content ?? "";
      const thought = delta.reasoning_content ?? "";
      if (!said && !thought) continue;
      if (!firstAt) firstAt = performance.now();
      pieces++;
      reply.content += said;
      reply.reasoning_content += thought;
      if (!frame) frame = requestAnimationFrame(paint);
    }
  } catch (e) {
    if (isAbort(e)) aborted = true;
    else failure = e instanceof Error ? e : new Error(messageOf(e));
  } finally {
    if (frame) cancelAnimationFrame(frame);
    state.stream = null;
  }

  const secs = firstAt ? (performance.now() - firstAt) / 1000 : 0;
  const tokens = usage?.completion_tokens ?? pieces;
  counter.textContent = `${tokens} tokens`;
  const tps = tokens > 0 && secs > 0 ? tokens / secs : 0;
  speed.textContent = tps ? `${tps.toFixed(1)} tok/s` : "\u2013 tok/s";
  if (usage?.cost) {
    const cost = byId("reply-cost");
    cost.hidden = false;
    cost.textContent = `reply cost ${tonText(usage.cost)}`;
  }
  if (tps) state.speeds.set(`${c.id}:${index}`, tps);
  const stored = !failure && !aborted;
  if (stored) {
    c.messages.push({ ...reply, usage: usage ?? undefined, cost: usage?.cost });
    c.local = false;
  } else {
    c.messages.length = base;
    if (c.local && !c.messages.length) state.current = null;
    // A failed or stopped turn stores nothing on the server: give the text back to edit or resend.
    const input = byId("composer-input", HTMLTextAreaElement);
    if (text !== undefined && !input.value.trim()) {
      input.value = text;
      autosize(input);
    }
  }
  if (failure) {
    const payment = failure instanceof ApiFailure && failure.status === 402;
    showError(payment ? `${failure.message} Open Account to see how to deposit.` : failure.message);
    if (payment && state.billing) void refreshDeposit();
  }
  setStreaming(false);
  renderConversation();
  // The server holds the truth (what was stored, exact tokens and cost): re-read it.
  if (state.current && !state.current.local) await syncCurrent();
  await loadSessions();
  if (state.billing) void refreshAccount();
  byId("composer-input").focus();
  return stored;
}

// ---- export --------------------------------------------------------------------------------------------------------

export async function exportConversation(kind: "json" | "markdown"): Promise<void> {
  const c = state.current;
  if (!c || !c.messages.length) {
    showError("Nothing to export yet: send a message first.");
    return;
  }
  // What the server stored, when it has the conversation; `local` is this page's own bookkeeping.
  const { local: _local, ...shown } = c;
  let clean: SessionDetail = shown;
  if (!c.local) {
    try {
      clean = await fetchSession(c.id);
    } catch {
      clean = shown;
    }
  }
  const safe = String(c.id).replace(/[^\w.-]/g, "_");
  if (kind === "json") {
    download(`cocoon-chat-${safe}.json`, "application/json", JSON.stringify(clean, null, 2) + "\n");
    return;
  }
  const lines = [`# ${clean.title || "Conversation"}`, ""];
  if (clean.model) lines.push(`Model: ${clean.model}  `);
  if (clean.created) lines.push(`Started: ${new Date(clean.created * 1000).toISOString()}  `);
  if (clean.cost && Number(clean.cost.nanoton) > 0) lines.push(`Cost: ${tonText(clean.cost)}  `);
  lines.push("");
  if (clean.system_prompt && !(clean.messages ?? []).some((m) => m.role === "system")) lines.push("## System", "", clean.system_prompt, "");
  for (const m of clean.messages ?? []) {
    lines.push(`## ${ROLE_LABEL[m.role] ?? m.role}`, "");
    if (m.reasoning_content) lines.push("<details><summary>Reasoning</summary>", "", m.reasoning_content, "", "</details>", "");
    lines.push(contentText(m.content), "");
  }
  download(`cocoon-chat-${safe}.md`, "text/markdown", lines.join("\n"));
}

// Accounts: search, one account's balance and keys (with their limits), credit or debit with a
// reason (an idempotency reference per booking, so a double click books once), and key revocation.
import { byId, el, randomHex } from "../dom.ts";
import { api, type Account, type Key } from "./api.ts";
import { errorText, showError, time, ton, tonOfNanoton } from "./format.ts";

let current: number | null = null;
let reference = randomHex(12);

export async function searchAccounts(): Promise<void> {
  const q = byId("account-query", HTMLInputElement).value.trim();
  const status = byId("accounts-status");
  try {
    const page = await api<{ data: Account[]; total: number }>(`/admin/accounts?limit=100${q ? `&q=${encodeURIComponent(q)}` : ""}`);
    byId("accounts-body").replaceChildren(
      ...page.data.map((a) => {
        const open = el("button", { type: "button", class: "btn small", "data-testid": `open-account-${a.id}`, text: "Open" });
        open.addEventListener("click", () => void openAccount(a.id));
        return el(
          "tr",
          { "data-account": a.id, class: a.id === current ? "selected" : null },
          el("td", { text: String(a.id) }),
          el("td", { "data-testid": "account-label", text: a.label ?? "" }),
          el("td", {}, el("code", { text: a.deposit_code })),
          el("td", { class: "num", text: ton(a.balance_ton) }),
          el("td", { class: "num", text: tonOfNanoton(a.reserved_nanoton) }),
          el("td", { text: time(a.created_at) }),
          el("td", {}, open),
        );
      }),
    );
    status.textContent = `${page.data.length} of ${page.total} account${page.total === 1 ? "" : "s"}${q ? ` matching "${q}"` : ""}`;
  } catch (err) {
    status.textContent = "";
    showError(`Accounts: ${errorText(err)}`);
  }
}

function limitsText(limits: Record<string, unknown>): string {
  const set = Object.entries(limits).filter(([, v]) => v !== null && v !== undefined);
  return set.length ? set.map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`).join(", ") : "server default";
}

function keyRow(k: Key): HTMLTableRowElement {
  const revoke = el("button", { type: "button", class: "btn small danger", "data-testid": `revoke-key-${k.id}`, text: "Revoke" });
  // Two clicks: the first asks, the second revokes (no window.confirm, which a CSP page may not rely on).
  revoke.addEventListener("click", async () => {
    if (revoke.dataset.armed !== "1") {
      revoke.dataset.armed = "1";
      revoke.textContent = "Click again to revoke";
      return;
    }
    revoke.disabled = true;
    try {
      await api(`/admin/keys/${k.id}/revoke`, { method: "POST" });
      if (current !== null) await openAccount(current);
    } catch (err) {
      showError(`Revoke: ${errorText(err)}`);
      revoke.disabled = false;
    }
  });
  return el(
    "tr",
    { "data-key": k.id, class: k.revoked_at ? "revoked" : null },
    el("td", { text: String(k.id) }),
    el("td", {}, el("code", { text: k.prefix })),
    el("td", { text: k.name ?? "" }),
    el("td", { text: time(k.created_at) }),
    el("td", { text: time(k.last_used_at) || "never" }),
    el("td", { "data-testid": "key-limits", text: limitsText(k.limits) }),
    el("td", { "data-testid": "key-status", text: k.revoked_at ? `revoked ${time(k.revoked_at)}` : "active" }),
    el("td", {}, k.revoked_at ? null : revoke),
  );
}

export async function openAccount(id: number): Promise<void> {
  try {
    const a = await api<Account & { keys: Key[] }>(`/admin/accounts/${id}`);
    current = id;
    byId("account-detail").hidden = false;
    byId("account-title").textContent = `Account ${a.id}${a.label ? ` · ${a.label}` : ""}${a.disabled ? " (disabled)" : ""}`;
    byId("account-balance").textContent = `balance ${ton(a.balance_ton)} TON · reserved ${tonOfNanoton(a.reserved_nanoton)} TON · deposit code ${a.deposit_code}`;
    byId("keys-body").replaceChildren(...a.keys.map(keyRow));
    for (const tr of document.querySelectorAll<HTMLTableRowElement>("#accounts-body tr")) tr.classList.toggle("selected", tr.dataset.account === String(id));
  } catch (err) {
    showError(`Account ${id}: ${errorText(err)}`);
  }
}

export async function bookCredit(): Promise<void> {
  if (current === null) return;
  const amount = byId("credit-amount", HTMLInputElement);
  const reason = byId("credit-reason", HTMLInputElement);
  const result = byId("credit-result");
  const submit = byId("credit-form").querySelector("button[type=submit]") as HTMLButtonElement;
  submit.disabled = true;
  try {
    const r = await api<{ booked: boolean; amount_ton: string; balance_ton: string }>(`/admin/accounts/${current}/credit`, {
      json: { amount_ton: amount.value.trim(), reason: reason.value.trim(), reference: `dashboard-${reference}` },
    });
    result.className = "small ok-text";
    result.textContent = r.booked ? `Booked ${ton(r.amount_ton)} TON; balance ${ton(r.balance_ton)} TON.` : `Already booked; balance ${ton(r.balance_ton)} TON.`;
    reference = randomHex(12);
    amount.value = "";
    reason.value = "";
    await Promise.all([openAccount(current), searchAccounts()]);
  } catch (err) {
    result.className = "small error-text";
    result.textContent = errorText(err);
  } finally {
    submit.disabled = false;
  }
}

/** A new amount or reason is a new booking: a new idempotency reference. */
export function creditEdited(): void {
  reference = randomHex(12);
}

// Deposits: the transfers the watcher recorded, by status, with assignment of an unmatched one to an
// account (who = the signed-in operator's name, why = the reason typed).
import { byId, el } from "../dom.ts";
import { api, session, type Deposit } from "./api.ts";
import { errorText, showError, time, ton } from "./format.ts";

function assignCell(d: Deposit): HTMLElement {
  const account = el("input", { type: "text", inputmode: "numeric", placeholder: "account id", "aria-label": "Account id", "data-testid": "assign-account" });
  const reason = el("input", { type: "text", placeholder: "reason", maxlength: 500, "aria-label": "Reason", "data-testid": "assign-reason" });
  const go = el("button", { type: "button", class: "btn small primary", "data-testid": "assign-submit", text: "Assign" });
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      await api(`/admin/deposits/${d.tx_hash}/assign`, { json: { account_id: Number(account.value.trim()), reason: reason.value.trim(), assigned_by: session.actor || "admin" } });
      await loadDeposits();
    } catch (err) {
      showError(`Assign: ${errorText(err)}`);
      go.disabled = false;
    }
  });
  return el("div", { class: "assign" }, account, reason, go);
}

export async function loadDeposits(): Promise<void> {
  const status = byId("deposit-status", HTMLSelectElement).value;
  try {
    const page = await api<{ data: Deposit[]; counts: Record<string, number> }>(`/admin/deposits?limit=200${status ? `&status=${status}` : ""}`);
    byId("deposit-counts").textContent = `${page.counts.unmatched ?? 0} unmatched · ${page.counts.credited ?? 0} credited · ${page.counts.ignored ?? 0} ignored`;
    byId("deposits-body").replaceChildren(
      ...(page.data.length
        ? page.data.map((d) =>
            el(
              "tr",
              { "data-hash": d.tx_hash },
              el("td", { text: time(d.time) }),
              el("td", { class: "num", text: ton(d.amount_ton) }),
              el("td", { text: d.comment ?? "" }),
              el("td", {}, el("code", { text: d.sender ?? "" })),
              el("td", { "data-testid": "deposit-status-cell", text: d.status === "credited" ? `credited${d.assigned_by ? ` (by ${d.assigned_by})` : ""}` : `${d.status}: ${d.reason}` }),
              el("td", { text: d.account_id === null ? "" : String(d.account_id) }),
              el("td", {}, d.status === "unmatched" ? assignCell(d) : null),
            ),
          )
        : [el("tr", {}, el("td", { colspan: 7, class: "muted", text: "none" }))]),
    );
  } catch (err) {
    showError(`Deposits: ${errorText(err)}`);
  }
}

// The audit log: newest first, a page at a time ("Older entries" follows next_before).
import { byId, el } from "../dom.ts";
import { api, type AuditEntry } from "./api.ts";
import { errorText, showError, time } from "./format.ts";

let next: number | null = null;

const json = (v: unknown) => (v === null || v === undefined ? "–" : JSON.stringify(v));

function row(e: AuditEntry): HTMLTableRowElement {
  return el(
    "tr",
    { "data-audit": e.id },
    el("td", { text: time(e.created_at) }),
    el("td", { "data-testid": "audit-actor", text: e.actor }),
    el("td", { "data-testid": "audit-action", text: e.action }),
    el("td", { text: `${e.object_type} ${e.object_id.length > 16 ? `${e.object_id.slice(0, 12)}…` : e.object_id}` }),
    el("td", { text: e.account_id === null ? "" : String(e.account_id) }),
    el("td", { "data-testid": "audit-reason", text: e.reason ?? "" }),
    el("td", { class: "change", text: `${json(e.before)} → ${json(e.after)}` }),
  );
}

export async function loadAudit(more = false): Promise<void> {
  try {
    const page = await api<{ data: AuditEntry[]; has_more: boolean; next_before: number | null }>(`/admin/audit?limit=50${more && next !== null ? `&before=${next}` : ""}`);
    const body = byId("audit-body");
    if (more) body.append(...page.data.map(row));
    else body.replaceChildren(...(page.data.length ? page.data.map(row) : [el("tr", {}, el("td", { colspan: 7, class: "muted", text: "no admin actions yet" }))]));
    next = page.next_before;
    byId("audit-more").hidden = !page.has_more;
  } catch (err) {
    showError(`Audit log: ${errorText(err)}`);
  }
}

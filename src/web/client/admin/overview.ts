// The overview: live slot and queue load per model (polled from /api/stats), and tokens and revenue
// per day and per model over the last 30 days (from /admin/usage).
import { byId, el } from "../dom.ts";
import { api, type ModelLoad, type Totals } from "./api.ts";
import { columns, rows } from "./charts.ts";
import { count, showError, errorText, ton, time } from "./format.ts";

const DAYS = 30;
const DAY_MS = 86_400_000;

/** The UTC days from `DAYS - 1` days ago to today, as YYYY-MM-DD. */
function lastDays(now = Date.now()): string[] {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  return Array.from({ length: DAYS }, (_, i) => new Date(today - (DAYS - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

export async function loadUsage(): Promise<void> {
  const days = lastDays();
  const since = days[0]!;
  try {
    const [byDay, byModel] = await Promise.all([
      api<{ data: Totals[]; totals: Totals }>(`/admin/usage?group_by=day&start_time=${since}`),
      api<{ data: Totals[] }>(`/admin/usage?group_by=model&start_time=${since}`),
    ]);
    const perDay = new Map(byDay.data.map((r) => [r.day!, r]));
    columns(byId("chart-tokens-day"), days.map((d) => ({ label: d, value: perDay.get(d)?.total_tokens ?? 0, text: `${count(perDay.get(d)?.total_tokens ?? 0)} tokens` })));
    columns(byId("chart-revenue-day"), days.map((d) => ({ label: d, value: perDay.get(d)?.cost.nanoton ?? 0, text: `${ton(perDay.get(d)?.cost.ton ?? "0")} TON` })), true);
    const models = [...byModel.data].sort((a, b) => b.total_tokens - a.total_tokens);
    rows(byId("chart-tokens-model"), models.map((m) => ({ label: m.model ?? "", value: m.total_tokens, text: `${count(m.total_tokens)} tokens` })));
    rows(byId("chart-revenue-model"), models.map((m) => ({ label: m.model ?? "", value: m.cost.nanoton, text: `${ton(m.cost.ton)} TON` })), true);
    const t = byDay.totals;
    byId("usage-totals").textContent = `${count(t.requests)} requests · ${count(t.total_tokens)} tokens · ${ton(t.cost.ton)} TON`;
  } catch (err) {
    showError(`Usage: ${errorText(err)}`);
  }
}

export async function loadLoad(): Promise<void> {
  try {
    const res = await fetch("/api/stats", { cache: "no-store", credentials: "omit" });
    const stats = (await res.json()) as { models: ModelLoad[]; status: string; cached_at: string | null };
    const body = byId("load-body");
    body.replaceChildren(
      ...(stats.models.length
        ? stats.models.map((m) =>
            el("tr", { "data-model": m.id }, el("td", { text: m.id }), el("td", { class: "num", text: `${m.running} / ${m.capacity}` }), el("td", { class: "num", text: `${m.load_pct}%` }), el("td", { class: "num", text: String(m.queued) })),
          )
        : [el("tr", {}, el("td", { colspan: 4, class: "muted", text: stats.status === "offline" ? "no model loaded yet" : "no models" }))]),
    );
    byId("load-updated").textContent = stats.cached_at ? `at ${time(stats.cached_at)}` : "";
  } catch (err) {
    byId("load-updated").textContent = `unavailable: ${errorText(err)}`;
  }
}

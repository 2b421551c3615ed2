// The operator dashboard's entry: sign-in with the admin token (checked against an admin route before
// anything is shown), tabs, and the refresh loops. Every figure comes from the admin routes of this
// origin; a 403 at any time signs out and clears the page.
import { byId } from "../dom.ts";
import { bookCredit, creditEdited, openAccount, searchAccounts } from "./accounts.ts";
import { api, ApiFailure, hooks, session } from "./api.ts";
import { loadAudit } from "./audit.ts";
import { loadDeposits } from "./deposits.ts";
import { errorText, showError } from "./format.ts";
import { loadLoad, loadUsage } from "./overview.ts";

type Tab = "overview" | "accounts" | "deposits" | "audit";
const TABS: Tab[] = ["overview", "accounts", "deposits", "audit"];
let timer: ReturnType<typeof setInterval> | null = null;
let tab: Tab = "overview";

function show(next: Tab): void {
  tab = next;
  for (const t of TABS) {
    byId(`view-${t}`).hidden = t !== next;
    document.querySelector(`[data-tab="${t}"]`)?.setAttribute("aria-selected", String(t === next));
  }
  showError(null);
  if (next === "overview") void Promise.all([loadUsage(), loadLoad()]);
  if (next === "accounts") void searchAccounts();
  if (next === "deposits") void loadDeposits();
  if (next === "audit") void loadAudit();
}

/** Back to the sign-in form, with nothing of the last session left on the page. */
function signOut(message = ""): void {
  session.clear();
  if (timer) clearInterval(timer);
  timer = null;
  for (const id of ["load-body", "accounts-body", "keys-body", "deposits-body", "audit-body", "chart-tokens-day", "chart-revenue-day", "chart-tokens-model", "chart-revenue-model"]) byId(id).replaceChildren();
  for (const id of ["usage-totals", "accounts-status", "account-title", "account-balance", "deposit-counts", "whoami", "credit-result"]) byId(id).textContent = "";
  for (const t of TABS) byId(`view-${t}`).hidden = true;
  byId("account-detail").hidden = true;
  byId("tabs").hidden = true;
  byId("sign-out").hidden = true;
  byId("login-form").hidden = false;
  byId("login-error").textContent = message;
  showError(null);
  document.body.dataset.session = "signed-out";
}

function signedIn(): void {
  byId("login-form").hidden = true;
  byId("tabs").hidden = false;
  byId("sign-out").hidden = false;
  byId("whoami").textContent = `signed in as ${session.actor || "admin"}`;
  document.body.dataset.session = "signed-in";
  show("overview");
  // Live load every 2 s; usage with it every 30 s while the overview is open.
  let ticks = 0;
  timer = setInterval(() => {
    if (tab !== "overview") return;
    void loadLoad();
    if (++ticks % 15 === 0) void loadUsage();
  }, 2000);
}

/** Checks a token against an admin route: only the admin token gets past the sign-in form. */
async function tryToken(token: string): Promise<boolean> {
  try {
    await api("/admin/accounts?limit=1", { token });
    return true;
  } catch (err) {
    const message = err instanceof ApiFailure && err.status === 403 ? `Not signed in: ${err.message}.` : `Could not check the token: ${errorText(err)}`;
    signOut(message);
    return false;
  }
}

function bind(): void {
  hooks.forbidden = (message) => signOut(`Signed out: ${message}.`);
  byId("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = byId("admin-token", HTMLInputElement);
    const token = input.value.trim();
    const actor = byId("actor-name", HTMLInputElement).value.trim();
    input.value = "";
    if (await tryToken(token)) {
      session.save(token, actor);
      signedIn();
    }
  });
  byId("sign-out").addEventListener("click", () => signOut());
  for (const t of TABS) document.querySelector(`[data-tab="${t}"]`)?.addEventListener("click", () => show(t));
  byId("account-search").addEventListener("submit", (e) => {
    e.preventDefault();
    void searchAccounts();
  });
  byId("credit-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void bookCredit();
  });
  for (const id of ["credit-amount", "credit-reason"]) byId(id).addEventListener("input", creditEdited);
  byId("deposit-status").addEventListener("change", () => void loadDeposits());
  byId("audit-more").addEventListener("click", () => void loadAudit(true));
  void openAccount; // opened from the account rows
}

async function start(): Promise<void> {
  bind();
  const saved = session.token;
  if (saved && (await tryToken(saved))) signedIn();
  else if (!saved) signOut();
  document.body.dataset.ready = "true";
}

void start();

// The operator dashboard's HTML shell (`GET /admin`): static markup with data-testid hooks and no data;
// client/admin/app.ts fills it in once the admin token is given. Nothing loads from another host.
const ICON =
  "data:image/svg+xml," +
  encodeURIComponent(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="3" y="3" width="26" height="26" rx="6" fill="#6c8cff"/><rect x="9" y="15" width="4" height="8" fill="#0f1115"/><rect x="15" y="10" width="4" height="13" fill="#0f1115"/><rect x="21" y="6" width="4" height="17" fill="#0f1115"/></svg>`);

export function renderAdminPage(assets: { script: string; style: string }): string {
  return `<!doctype html>
<html lang="en" data-theme="dark">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="dark light">
  <meta name="referrer" content="no-referrer">
  <title>cocoon admin</title>
  <link rel="icon" href="${ICON}">
  <link rel="stylesheet" href="${assets.style}">
</head>
<body>
<header class="topbar">
  <span class="brand">cocoon admin</span>
  <nav class="tabs" id="tabs" data-testid="tabs" aria-label="Sections" hidden>
    <button type="button" class="tab" data-tab="overview" data-testid="tab-overview" aria-selected="true">Overview</button>
    <button type="button" class="tab" data-tab="accounts" data-testid="tab-accounts" aria-selected="false">Accounts</button>
    <button type="button" class="tab" data-tab="deposits" data-testid="tab-deposits" aria-selected="false">Deposits</button>
    <button type="button" class="tab" data-tab="audit" data-testid="tab-audit" aria-selected="false">Audit log</button>
  </nav>
  <span class="spacer"></span>
  <span class="muted small" id="whoami" data-testid="whoami"></span>
  <button type="button" class="btn small" id="sign-out" data-testid="sign-out" hidden>Sign out</button>
</header>

<main class="admin">
  <div class="error-banner" id="error-banner" data-testid="error-banner" role="alert" hidden></div>

  <form class="card login" id="login-form" data-testid="login-form" hidden>
    <h1>Operator sign-in</h1>
    <p class="muted small">The admin token (<code>--admin-token</code> / <code>COCOON_ADMIN_TOKEN</code>). It stays in this tab only.</p>
    <label for="admin-token">Admin token</label>
    <input type="password" id="admin-token" data-testid="admin-token" autocomplete="off" spellcheck="false" required>
    <label for="actor-name">Your name (recorded in the audit log)</label>
    <input type="text" id="actor-name" data-testid="actor-name" maxlength="100" autocomplete="nickname" placeholder="admin">
    <button type="submit" class="btn primary" data-testid="sign-in">Sign in</button>
    <p class="error-text" id="login-error" data-testid="login-error" role="alert"></p>
  </form>

  <section id="view-overview" data-testid="view-overview" class="view" hidden>
    <div class="card">
      <div class="card-head"><h2>Live load</h2><span class="muted small" id="load-updated" data-testid="load-updated"></span></div>
      <table class="grid" data-testid="load-table"><thead><tr><th>Model</th><th>Running / slots</th><th>Load</th><th>Queued</th></tr></thead><tbody id="load-body"></tbody></table>
    </div>
    <div class="card">
      <div class="card-head">
        <h2>Usage, last <span id="range-days">30</span> days (UTC)</h2>
        <span class="muted small" id="usage-totals" data-testid="usage-totals"></span>
      </div>
      <div class="charts">
        <figure><figcaption>Tokens per day</figcaption><div class="chart" id="chart-tokens-day" data-testid="chart-tokens-day"></div></figure>
        <figure><figcaption>Revenue per day (TON)</figcaption><div class="chart" id="chart-revenue-day" data-testid="chart-revenue-day"></div></figure>
        <figure><figcaption>Tokens per model</figcaption><div class="chart" id="chart-tokens-model" data-testid="chart-tokens-model"></div></figure>
        <figure><figcaption>Revenue per model (TON)</figcaption><div class="chart" id="chart-revenue-model" data-testid="chart-revenue-model"></div></figure>
      </div>
    </div>
  </section>

  <section id="view-accounts" data-testid="view-accounts" class="view" hidden>
    <div class="card">
      <form class="inline-row" id="account-search" data-testid="account-search">
        <label class="sr-only" for="account-query">Search accounts</label>
        <input type="text" id="account-query" data-testid="account-query" placeholder="id, deposit code, label or key prefix (ck_...)">
        <button type="submit" class="btn">Search</button>
      </form>
      <table class="grid" data-testid="accounts-table"><thead><tr><th>Id</th><th>Label</th><th>Deposit code</th><th>Balance (TON)</th><th>Reserved (TON)</th><th>Created</th><th></th></tr></thead><tbody id="accounts-body"></tbody></table>
      <p class="muted small" id="accounts-status" data-testid="accounts-status"></p>
    </div>
    <div class="card" id="account-detail" data-testid="account-detail" hidden>
      <div class="card-head"><h2 id="account-title" data-testid="account-title"></h2><span class="muted" id="account-balance" data-testid="account-balance"></span></div>
      <form class="inline-row" id="credit-form" data-testid="credit-form">
        <label for="credit-amount">Amount (TON, negative to debit)</label>
        <input type="text" id="credit-amount" data-testid="credit-amount" inputmode="decimal" placeholder="1.5 or -0.25" required>
        <label for="credit-reason">Reason</label>
        <input type="text" id="credit-reason" data-testid="credit-reason" maxlength="500" required>
        <button type="submit" class="btn primary" data-testid="credit-submit">Book</button>
      </form>
      <p class="small" id="credit-result" data-testid="credit-result" aria-live="polite"></p>
      <h3>Keys</h3>
      <table class="grid" data-testid="keys-table"><thead><tr><th>Id</th><th>Prefix</th><th>Name</th><th>Created</th><th>Last used</th><th>Limits</th><th>Status</th><th></th></tr></thead><tbody id="keys-body"></tbody></table>
    </div>
  </section>

  <section id="view-deposits" data-testid="view-deposits" class="view" hidden>
    <div class="card">
      <div class="card-head">
        <h2>Recorded transfers</h2>
        <label class="sr-only" for="deposit-status">Status</label>
        <select id="deposit-status" data-testid="deposit-status">
          <option value="unmatched">unmatched</option><option value="credited">credited</option><option value="ignored">ignored</option><option value="">all</option>
        </select>
        <span class="muted small" id="deposit-counts" data-testid="deposit-counts"></span>
      </div>
      <table class="grid" data-testid="deposits-table"><thead><tr><th>Time</th><th>Amount (TON)</th><th>Comment</th><th>Sender</th><th>Status</th><th>Account</th><th>Assign</th></tr></thead><tbody id="deposits-body"></tbody></table>
    </div>
  </section>

  <section id="view-audit" data-testid="view-audit" class="view" hidden>
    <div class="card">
      <div class="card-head"><h2>Audit log</h2><span class="muted small">append-only, newest first</span></div>
      <table class="grid" data-testid="audit-table"><thead><tr><th>Time</th><th>Actor</th><th>Action</th><th>Object</th><th>Account</th><th>Reason</th><th>Change</th></tr></thead><tbody id="audit-body"></tbody></table>
      <button type="button" class="btn" id="audit-more" data-testid="audit-more" hidden>Older entries</button>
    </div>
  </section>
</main>
<script type="module" src="${assets.script}"></script>
</body>
</html>
`;
}

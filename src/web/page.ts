// The chat UI's HTML shell: static markup with stable data-testid hooks; client/app.ts fills it in. Nothing in
// it loads from another host (the favicon is a data: URI).
const ICON =
  "data:image/svg+xml," +
  encodeURIComponent(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="14" fill="#6c8cff"/><circle cx="16" cy="16" r="6" fill="#0f1115"/></svg>`);

/** A setting with a slider and a number box that stay in step. */
function range(id: string, label: string, min: number, max: number, step: number, hint: string): string {
  return `<div class="field">
        <label for="setting-${id}">${label}</label>
        <div class="range-row">
          <input type="range" id="setting-${id}-range" data-testid="setting-${id}-range" min="${min}" max="${max}" step="${step}" aria-label="${label} slider" tabindex="-1">
          <input type="number" id="setting-${id}" data-testid="setting-${id}" data-setting="${id}" min="${min}" max="${max}" step="${step}" inputmode="decimal" aria-describedby="hint-${id}">
        </div>
        <p class="hint" id="hint-${id}">${hint}</p>
      </div>`;
}

export function renderPage(assets: { script: string; style: string }): string {
  return `<!doctype html>
<html lang="en" data-theme="dark">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="dark light">
  <title>cocoon chat</title>
  <link rel="icon" href="${ICON}">
  <link rel="stylesheet" href="${assets.style}">
</head>
<body>
<div class="app" id="app" data-testid="app">
  <header class="topbar">
    <button type="button" class="icon-btn" id="sidebar-toggle" data-testid="sidebar-toggle" aria-controls="sidebar" aria-expanded="true" aria-label="Hide conversations">&#9776;</button>
    <span class="brand">cocoon</span>
    <label class="sr-only" for="model-select">Model</label>
    <select id="model-select" data-testid="model-select" aria-label="Model"></select>
    <span class="spacer"></span>
    <span class="conn" id="conn-status" data-testid="conn-status" data-state="connecting" role="status" aria-live="polite" title="Server connection">
      <span class="dot" aria-hidden="true"></span><span class="conn-label">Connecting&hellip;</span>
    </span>
    <span class="balance-chip" id="balance" data-testid="balance" hidden></span>
    <button type="button" class="btn" id="account-toggle" data-testid="account-toggle" aria-controls="account-panel" aria-expanded="false">Account</button>
    <button type="button" class="btn" id="settings-toggle" data-testid="settings-toggle" aria-controls="settings-panel" aria-expanded="false">Settings</button>
    <button type="button" class="icon-btn" id="theme-toggle" data-testid="theme-toggle" aria-label="Switch to light mode">&#9788;</button>
  </header>

  <aside class="sidebar" id="sidebar" data-testid="sidebar" aria-label="Conversations">
    <button type="button" class="btn primary wide" id="new-chat" data-testid="new-chat">+ New chat</button>
    <ul class="session-list" id="session-list" data-testid="session-list" aria-label="Saved conversations"></ul>
    <p class="muted small" id="session-list-status" data-testid="session-list-status" aria-live="polite"></p>
  </aside>
  <div class="scrim" id="scrim" data-testid="scrim" hidden></div>

  <main class="chat" aria-label="Chat">
    <div class="chat-head">
      <h1 class="chat-title" id="chat-title" data-testid="chat-title">New chat</h1>
      <div class="chat-actions">
        <button type="button" class="btn small" id="export-json" data-testid="export-json" aria-label="Export this conversation as JSON"><span class="wide-only">Export </span>JSON</button>
        <button type="button" class="btn small" id="export-markdown" data-testid="export-markdown" aria-label="Export this conversation as Markdown"><span class="wide-only">Export </span>Markdown</button>
      </div>
    </div>
    <div class="messages" id="messages" data-testid="messages" role="log" aria-live="polite" aria-label="Messages" tabindex="0">
      <div class="empty" id="empty-state" data-testid="empty-state">
        <p class="empty-title">Start a conversation</p>
        <p class="muted">Enter sends, Shift+Enter adds a new line. Conversations are saved on the server.</p>
      </div>
    </div>
    <div class="error-banner" id="error-banner" data-testid="error-banner" role="alert" hidden>
      <span class="error-text" id="error-text" data-testid="error-text"></span>
      <button type="button" class="icon-btn" id="error-close" aria-label="Dismiss error">&times;</button>
    </div>
    <div class="statusbar" aria-label="Generation statistics">
      <span id="token-counter" data-testid="token-counter" aria-live="off">0 tokens</span>
      <span id="tokens-per-second" data-testid="tokens-per-second">&ndash; tok/s</span>
      <span id="reply-cost" data-testid="reply-cost" hidden></span>
      <span class="spacer"></span>
      <span id="session-usage" data-testid="session-usage" class="muted"></span>
    </div>
    <form class="composer" id="composer" data-testid="composer">
      <label class="sr-only" for="composer-input">Message</label>
      <textarea id="composer-input" data-testid="composer-input" rows="1" placeholder="Message&hellip; (Enter to send, Shift+Enter for a new line)" aria-keyshortcuts="Enter"></textarea>
      <button type="submit" class="btn primary" id="send-button" data-testid="send-button">Send</button>
      <button type="button" class="btn danger" id="stop-button" data-testid="stop-button" hidden>Stop</button>
    </form>
  </main>

  <section class="panel" id="settings-panel" data-testid="settings-panel" aria-labelledby="settings-heading" hidden>
    <div class="panel-head">
      <h2 id="settings-heading">Settings</h2>
      <button type="button" class="icon-btn" data-close-panel aria-label="Close settings">&times;</button>
    </div>
    <form id="settings-form" class="panel-body">
      ${range("temperature", "Temperature", 0, 2, 0.05, "0 to 2: higher is more random.")}
      ${range("top-p", "Top-P", 0, 1, 0.01, "0 to 1: nucleus sampling.")}
      ${range("top-k", "Top-K", 1, 100, 1, "1 to 100: sample among the K likeliest tokens.")}
      ${range("max-tokens", "Max tokens", 128, 2048, 1, "128 to 2048: the longest reply.")}
      ${range("repeat-penalty", "Repeat penalty", 1, 2, 0.01, "1 to 2: 1 is off.")}
      <div class="field">
        <label for="setting-system-prompt">System prompt</label>
        <textarea id="setting-system-prompt" data-testid="setting-system-prompt" rows="4" aria-describedby="hint-system"></textarea>
        <p class="hint" id="hint-system">Used when a new conversation starts.</p>
      </div>
      <div class="field">
        <label for="setting-stop">Stop sequences</label>
        <textarea id="setting-stop" data-testid="setting-stop" rows="2" aria-describedby="hint-stop"></textarea>
        <p class="hint" id="hint-stop">One per line, at most 4; generation stops before them.</p>
      </div>
      <button type="button" class="btn" id="settings-reset" data-testid="settings-reset">Reset to defaults</button>
    </form>
  </section>

  <section class="panel" id="account-panel" data-testid="account-panel" aria-labelledby="account-heading" hidden>
    <div class="panel-head">
      <h2 id="account-heading">Account</h2>
      <button type="button" class="icon-btn" data-close-panel aria-label="Close account">&times;</button>
    </div>
    <div class="panel-body">
      <p id="auth-status" data-testid="auth-status" aria-live="polite"></p>
      <form id="api-key-form" data-testid="api-key-form" class="field">
        <label for="api-key-input">API key</label>
        <div class="inline-row">
          <input type="password" id="api-key-input" data-testid="api-key-input" autocomplete="off" spellcheck="false" placeholder="ck_...">
          <button type="submit" class="btn primary" id="api-key-save" data-testid="api-key-save">Use key</button>
        </div>
        <button type="button" class="btn small" id="api-key-clear" data-testid="api-key-clear" hidden>Forget this key</button>
      </form>
      <div id="register-box" class="field">
        <p class="muted small">No key yet? Register: you get a new account and key.</p>
        <button type="button" class="btn" id="register-button" data-testid="register-button">Register a new account</button>
      </div>
      <div id="new-key" data-testid="new-key" class="notice" hidden>
        <p><strong>Your new API key.</strong> It is shown only once: save it now.</p>
        <div class="inline-row"><code id="new-key-value" data-testid="new-key-value" class="break"></code><button type="button" class="btn small" id="new-key-copy" data-testid="new-key-copy">Copy</button></div>
      </div>
      <div id="balance-details" data-testid="balance-details" hidden></div>
      <div id="deposit-info" data-testid="deposit-info" hidden></div>
    </div>
  </section>
</div>
<script type="module" src="${assets.script}"></script>
</body>
</html>
`;
}

// The chat UI in headless Chromium (playwright-core driving Debian's /usr/bin/chromium) against the real
// server with keys and billing: key entry, a streamed reply with live token counter, the session list,
// settings carried by the request, regenerate, export, edit-and-branch, safe rendering, phone width,
// and the same page on a server without keys.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { ROOT } from "../support/model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// Browser globals for the callbacks given to page.evaluate: they run in the page, not in Bun, and the
// project's lib has no DOM types.
declare const window: any;
declare const document: any;
declare const MutationObserver: any;
declare const navigator: any;
declare const localStorage: any;

// Starts servers and a browser, and runs the real model: slower than bun's 5 s default.
setDefaultTimeout(120_000);

const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"].filter((p): p is string => !!p);
const CHROMIUM = CANDIDATES.find((p) => existsSync(p)) ?? null;
const SKIP_REASON = `no Chromium found (looked at ${CANDIDATES.join(", ")}); install it with \`apt-get install chromium\` (.ci/run does)`;
if (!CHROMIUM) {
  const line = "!".repeat(100);
  console.warn(`\n${line}\n!!! SKIPPING THE WEB UI BROWSER TESTS: ${SKIP_REASON}\n${line}\n`);
}
const browserTest = test.skipIf(!CHROMIUM);
/** Suite names carry the skip reason, so reports (junit) say why too. */
const suite = (name: string) => (CHROMIUM ? name : `${name} [SKIPPED: ${SKIP_REASON}]`);

const dir = mkdtempSync(join(tmpdir(), "cocoon-web-ui-"));
let server: TestServer;
let browser: Browser;
let apiKey: string;

/** A funded key made by the create-key command, as an operator would. */
function createKey(dataDir: string, credit: string): string {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", credit, "--data-dir", dataDir], { stdout: "pipe", stderr: "pipe" });
  const key = r.stdout.toString().match(/^api_key: (ck_\w+)$/m)?.[1];
  if (!key) throw new Error(`create-key failed: ${r.stderr.toString()}${r.stdout.toString()}`);
  return key;
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  const dataDir = join(dir, "data");
  apiKey = createKey(dataDir, "1");
  server = await startTestServer(["--data-dir", dataDir], { auth: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface SessionMessage {
  role: string;
  content: string;
  usage?: { completion_tokens: number };
  cost?: { nanoton: number; ton: string };
}
interface SessionDetail {
  id: string;
  title: string;
  messages: SessionMessage[];
  usage: { total_tokens: number };
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", ...(init.headers ?? {}) } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** JSON bodies of the page's POSTs to the given path, in order. */
function recordPosts(page: Page, suffix: string): Record<string, unknown>[] {
  const seen: Record<string, unknown>[] = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname.endsWith(suffix)) seen.push(JSON.parse(r.postData() ?? "null"));
  });
  return seen;
}

/**
 * Records, at every DOM change while a reply streams, the reply's text length and the token counter, so
 * the test can tell text arrived piece by piece (not all at once at the end).
 */
async function watchStreaming(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __frames: { len: number; counter: string }[] };
    w.__frames = [];
    const box = document.querySelector('[data-testid="messages"]')!;
    new MutationObserver(() => {
      const live = box.querySelector(".msg.streaming [data-testid=message-content]");
      if (!live) return;
      const len = (live.textContent ?? "").length;
      const counter = document.querySelector('[data-testid="token-counter"]')!.textContent ?? "";
      const last = w.__frames.at(-1);
      if (len > 0 && (!last || last.len !== len)) w.__frames.push({ len, counter });
    }).observe(box, { childList: true, subtree: true, characterData: true });
  });
}
const frames = (page: Page) => page.evaluate(() => (window as unknown as { __frames: { len: number; counter: string }[] }).__frames);

/** Waits until a reply has finished: the send button is back and no message is streaming. */
async function replyDone(page: Page): Promise<void> {
  await page.waitForSelector('[data-testid="stop-button"]', { state: "hidden" });
  await page.waitForSelector(".msg.streaming", { state: "detached" });
  await page.waitForSelector('[data-testid="send-button"]', { state: "visible" });
}

/** Polls `check` every 50 ms until it holds (the test's timeout ends a wait that never does). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await Bun.sleep(50);
}

const currentSessionId = (page: Page) => page.evaluate(() => localStorage.getItem("cocoon.session")).then((v) => (v ? (JSON.parse(v) as string) : null));

describe(suite("web chat UI (Chromium)"), () => {
  let context: BrowserContext;
  let page: Page;
  let chats: Record<string, unknown>[];
  let sessionId: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!CHROMIUM) return;
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
    page = await context.newPage();
    // The machine may be busy: generous waits, the test's own timeout still bounds each test.
    page.setDefaultTimeout(100_000);
    page.on("pageerror", (e) => pageErrors.push(e.message));
    chats = recordPosts(page, "/v1/chat/completions");
  });
  afterAll(async () => {
    await context?.close();
  });

  /**
   * Stores a conversation whose assistant turn is `reply` (sent as history through the API, so it is
   * model output the page did not stream), opens it in the page and returns that assistant message.
   */
  async function openStoredReply(sessionId: string, question: string, reply: { content: string; reasoning_content?: string }) {
    await api("/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify({
        session_id: sessionId,
        messages: [{ role: "user", content: question }, { role: "assistant", ...reply }, { role: "user", content: "Thanks" }],
        max_tokens: 4,
        temperature: 0,
      }),
    });
    await page.reload();
    await page.waitForSelector('[data-ready="true"]');
    await page.click(`[data-testid="session-item"][data-session-id="${sessionId}"]`);
    await page.waitForSelector(`[data-testid="chat-title"]:text-is("${question}")`);
    const msg = page.locator('[data-testid="message"][data-role="assistant"]').first();
    await msg.waitFor();
    return msg;
  }

  browserTest("opens /, reports the connection, and asks for an API key on a server with keys", async () => {
    await page.goto(server.url);
    await page.waitForSelector('[data-ready="true"]');
    expect(await page.getAttribute("html", "data-theme")).toBe("dark");
    await page.waitForSelector('[data-testid="conn-status"][data-state="online"]');
    expect(await page.isVisible('[data-testid="account-panel"]')).toBe(true);
    expect(await page.textContent('[data-testid="auth-status"]')).toContain("needs an API key");
    // The model picker lists the served model.
    expect(await page.$$eval('[data-testid="model-select"] option', (o) => o.map((x: any) => x.value as string))).toContain("tiny-qwen3");
  });

  browserTest("entering a key signs in and shows the balance", async () => {
    await page.fill('[data-testid="api-key-input"]', apiKey);
    await page.press('[data-testid="api-key-input"]', "Enter");
    await page.waitForSelector('[data-testid="balance"]:not([hidden])');
    expect(await page.textContent('[data-testid="balance"]')).toBe("1 TON");
    expect(await page.isVisible('[data-testid="account-panel"]')).toBe(false);
    await page.waitForSelector('[data-testid="session-list-status"]:has-text("No saved conversations")');
  });

  browserTest("settings change what the next request carries", async () => {
    await page.click('[data-testid="settings-toggle"]');
    await page.fill('[data-testid="setting-temperature"]', "0.35");
    await page.fill('[data-testid="setting-max-tokens"]', "128");
    // Out of range is clamped to the documented bounds when the field is left.
    await page.fill('[data-testid="setting-top-k"]', "500");
    await page.press('[data-testid="setting-top-k"]', "Tab");
    expect(await page.inputValue('[data-testid="setting-top-k"]')).toBe("100");
    expect(await page.inputValue('[data-testid="setting-temperature-range"]')).toBe("0.35");
    await page.keyboard.press("Escape");
    expect(await page.isVisible('[data-testid="settings-panel"]')).toBe(false);
  });

  browserTest("Enter sends a message; the reply streams in with a live token counter and its cost", async () => {
    // Shift+Enter is a new line, not a send.
    await page.click('[data-testid="composer-input"]');
    await page.keyboard.type("line one");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("line two");
    expect(await page.inputValue('[data-testid="composer-input"]')).toBe("line one\nline two");
    expect(chats.length).toBe(0);
    await watchStreaming(page);
    await page.fill('[data-testid="composer-input"]', "Hello there");
    await page.press('[data-testid="composer-input"]', "Enter");
    await page.waitForSelector('.msg.streaming');
    await replyDone(page);

    // Text grew over several DOM updates while the counter counted up.
    const seen = await frames(page);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)!.len).toBeGreaterThan(seen[0]!.len);
    const counts = seen.map((f) => Number(f.counter.match(/^(\d+) tokens$/)?.[1]));
    expect(counts.every(Number.isFinite)).toBe(true);
    expect(counts.at(-1)!).toBeGreaterThan(counts[0]!);

    const body = chats[0]!;
    expect(body.temperature).toBe(0.35);
    expect(body.max_tokens).toBe(128);
    expect(body.top_k).toBe(100);
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
    expect(body.messages).toEqual([{ role: "user", content: "Hello there" }]);
    expect(typeof body.session_id).toBe("string");
    sessionId = body.session_id as string;

    // The final count is the server's own usage for the stored reply, and the page shows a speed and cost.
    const stored = await api<SessionDetail>(`/v1/sessions/${sessionId}`);
    expect(stored.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    const reply = stored.messages[1]!;
    expect(reply.content.length).toBeGreaterThan(0);
    expect(await page.textContent('[data-testid="token-counter"]')).toBe(`${reply.usage!.completion_tokens} tokens`);
    expect(await page.textContent('[data-testid="tokens-per-second"]')).toMatch(/^\d+(\.\d)? tok\/s$/);
    expect(reply.cost!.nanoton).toBeGreaterThan(0);
    expect(await page.textContent('[data-testid="reply-cost"]')).toContain(" TON");
    const messages = page.locator('[data-testid="message"]');
    expect(await messages.count()).toBe(2);
    expect(await messages.nth(0).locator('[data-testid="message-content"]').textContent()).toBe("Hello there");
    expect(await messages.nth(1).getAttribute("data-role")).toBe("assistant");
    expect(await messages.nth(1).locator('[data-testid="message-cost"]').textContent()).toContain(" TON");
    // The balance went down by what the reply cost.
    await page.waitForFunction(() => document.querySelector('[data-testid="balance"]')?.textContent !== "1 TON");
  });

  browserTest("the conversation appears in the session list, titled from the first message", async () => {
    const item = page.locator('[data-testid="session-item"]');
    await item.first().waitFor();
    expect(await item.count()).toBe(1);
    expect(await item.first().getAttribute("data-session-id")).toBe(sessionId);
    expect(await item.first().locator(".session-title").textContent()).toBe("Hello there");
    expect(await item.first().getAttribute("aria-current")).toBe("true");
  });

  browserTest("regenerate rolls the reply back on the server and streams a new one for the same history", async () => {
    const before = await api<SessionDetail>(`/v1/sessions/${sessionId}`);
    const rollbacks = recordPosts(page, "/rollback");
    const sent = chats.length;
    await page.click('[data-testid="regenerate"]');
    await until(() => chats.length === sent + 1);
    await replyDone(page);
    expect(rollbacks).toEqual([{ amount: 1 }]);
    expect(chats[sent]).toMatchObject({ session_id: sessionId, messages: [], temperature: 0.35 });
    const after = await api<SessionDetail>(`/v1/sessions/${sessionId}`);
    // Still one question and one answer, and the session paid for both generations.
    expect(after.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    expect(after.messages[0]!.content).toBe("Hello there");
    expect(after.usage.total_tokens).toBeGreaterThan(before.usage.total_tokens);
    expect(await page.locator('[data-testid="message"]').count()).toBe(2);
  });

  browserTest("export downloads the conversation as JSON and as Markdown", async () => {
    const stored = await api<SessionDetail>(`/v1/sessions/${sessionId}`);
    const [json] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="export-json"]')]);
    expect(json.suggestedFilename()).toBe(`cocoon-chat-${sessionId}.json`);
    const exported = JSON.parse(readFileSync((await json.path())!, "utf8")) as SessionDetail;
    expect(exported.id).toBe(sessionId);
    expect(exported.title).toBe("Hello there");
    expect(exported.messages.map((m) => [m.role, m.content])).toEqual(stored.messages.map((m) => [m.role, m.content]));

    const [md] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="export-markdown"]')]);
    expect(md.suggestedFilename()).toBe(`cocoon-chat-${sessionId}.md`);
    const text = readFileSync((await md.path())!, "utf8");
    expect(text).toStartWith("# Hello there\n");
    expect(text).toContain("## You\n\nHello there\n");
    expect(text).toContain(`## Assistant\n\n`);
    expect(text).toContain(stored.messages[1]!.content);
  });

  browserTest("editing a message branches: a new session with the history before it, then the edited turn", async () => {
    const forks = recordPosts(page, "/fork");
    const sent = chats.length;
    await page.locator('[data-testid="message"][data-role="user"] [data-testid="edit-message"]').click();
    await page.fill('[data-testid="edit-input"]', "Hello again");
    await page.press('[data-testid="edit-input"]', "Enter");
    await until(() => chats.length === sent + 1);
    await replyDone(page);
    expect(forks).toEqual([{ messages: 0 }]);
    const branchId = await currentSessionId(page);
    expect(branchId).not.toBe(sessionId);
    expect(chats[sent]).toMatchObject({ session_id: branchId, messages: [{ role: "user", content: "Hello again" }] });
    const branch = await api<SessionDetail>(`/v1/sessions/${branchId}`);
    expect(branch.messages.map((m) => [m.role, m.role === "user" ? m.content : ""])).toEqual([
      ["user", "Hello again"],
      ["assistant", ""],
    ]);
    // The original conversation is untouched, and both are listed.
    const original = await api<SessionDetail>(`/v1/sessions/${sessionId}`);
    expect(original.messages[0]!.content).toBe("Hello there");
    await until(async () => (await page.locator('[data-testid="session-item"]').count()) === 2);
    expect(await page.locator('[data-testid="message"]').first().locator('[data-testid="message-content"]').textContent()).toBe("Hello again");
  });

  browserTest("model output is rendered as Markdown without HTML injection; code blocks are highlighted with a copy button", async () => {
    // A session whose history holds a hostile assistant message (stored through the API as a turn).
    const hostile = [
      "Here is **bold** and `inline` text.",
      '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>',
      "[click](javascript:window.__pwned=3) and [docs](https://example.com/docs)",
      "```js",
      "const answer = 42; // the answer",
      "```",
      // A fence's language is model output too: one named like an Object.prototype key still renders.
      "```constructor",
      "x = 1",
      "```",
    ].join("\n");
    const msg = await openStoredReply("web-ui-render-test", "Show me", { content: hostile, reasoning_content: "First I *think* <b>hard</b>." });
    const content = msg.locator('[data-testid="message-content"]');
    expect(await content.locator("img, script, iframe").count()).toBe(0);
    expect(await content.textContent()).toContain('<img src=x onerror="window.__pwned=1">');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await content.locator("strong").textContent()).toBe("bold");
    expect(await content.locator("p code").first().textContent()).toBe("inline");
    // Only the http(s) link became a link.
    expect(await content.locator("a").evaluateAll((as) => as.map((a: any) => a.getAttribute("href") as string))).toEqual(["https://example.com/docs"]);
    const block = content.locator('[data-testid="code-block"]').first();
    expect(await block.getAttribute("data-lang")).toBe("js");
    expect(await block.locator(".tok-kw").first().textContent()).toBe("const");
    expect(await block.locator(".tok-num").first().textContent()).toBe("42");
    expect(await block.locator(".tok-com").first().textContent()).toBe("// the answer");
    const odd = content.locator('[data-testid="code-block"]').nth(1);
    expect(await odd.getAttribute("data-lang")).toBe("constructor");
    expect(await odd.locator("code").textContent()).toBe("x = 1");
    // Reasoning is shown folded, rendered as safely as the answer.
    const reasoning = msg.locator('[data-testid="reasoning"]');
    expect(await reasoning.isVisible()).toBe(true);
    expect(await reasoning.evaluate((d: any) => d.open as boolean)).toBe(false);
    expect(await reasoning.locator("summary").textContent()).toBe("Reasoning");
    await reasoning.locator("summary").click();
    expect(await reasoning.locator(".reasoning-body").textContent()).toBe("First I think <b>hard</b>.");
    expect(await reasoning.locator(".reasoning-body em").textContent()).toBe("think");
    await block.locator('[data-testid="copy-code"]').click();
    await block.locator('[data-testid="copy-code"]:text-is("Copied")').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe("const answer = 42; // the answer");
  });

  browserTest("GFM in model output: aligned tables, lists nested three deep, code, safe links and images, raw HTML as text", async () => {
    const reply = [
      "| Item | Qty | Price |",
      "|:-----|:---:|------:|",
      "| apple | 2 | **1.50** |",
      "| `pear` | 10 | 0.25 |",
      "",
      "- fruit",
      "  1. apples",
      "     - green",
      "     - red",
      "  2. pears",
      "- vegetables",
      "",
      "Run `npm test`, read [the docs](http://example.com/a?b=1), not [this](javascript:window.__pwned=4).",
      "![chart](https://example.com/c.png) ![pixel](data:image/png;base64,AAAA)",
      "",
      '<img src=x onerror="window.__pwned=5">',
      "",
      "<script>window.__pwned=6</script>",
      "",
      "```python",
      "def f():",
      "    return 1",
      "```",
    ].join("\n");
    const content = (await openStoredReply("web-ui-gfm-test", "Tabulate", { content: reply })).locator('[data-testid="message-content"]');

    // The table: header and body cells, inline Markdown inside cells, and each column's alignment as shown.
    const table = content.locator("table");
    expect(await table.count()).toBe(1);
    const texts = (cells: string) => table.locator(cells).evaluateAll((cs) => cs.map((c: any) => c.textContent as string));
    expect(await texts("thead th")).toEqual(["Item", "Qty", "Price"]);
    expect(await texts("tbody td")).toEqual(["apple", "2", "1.50", "pear", "10", "0.25"]);
    expect(await table.locator("td strong").textContent()).toBe("1.50");
    expect(await table.locator("td code").textContent()).toBe("pear");
    const aligns = (cells: string) => table.locator(cells).evaluateAll((cs) => cs.map((c: any) => window.getComputedStyle(c).textAlign as string));
    expect(await aligns("thead th")).toEqual(["left", "center", "right"]);
    expect(await aligns("tbody tr:first-child td")).toEqual(["left", "center", "right"]);

    // The lists as a tree: an ordered list inside the first bullet, a bullet list inside its first item.
    type ListTree = { tag: string; items: { text: string; lists: ListTree[] }[] };
    const tree = await content.locator(":scope > ul").evaluate((root: any) => {
      const walk = (list: any): ListTree => ({
        tag: list.tagName.toLowerCase(),
        items: [...list.children].map((li: any) => ({
          text: [...li.childNodes].filter((n: any) => n.nodeType === 3).map((n: any) => n.textContent as string).join("").trim(),
          lists: [...li.children].filter((c: any) => c.tagName === "UL" || c.tagName === "OL").map(walk),
        })),
      });
      return walk(root);
    });
    const leaf = (text: string) => ({ text, lists: [] });
    expect(tree).toEqual({
      tag: "ul",
      items: [
        { text: "fruit", lists: [{ tag: "ol", items: [{ text: "apples", lists: [{ tag: "ul", items: [leaf("green"), leaf("red")] }] }, leaf("pears")] }] },
        leaf("vegetables"),
      ],
    });

    // Inline code; only http(s) links and images became links (an image as a link to it, never loaded).
    expect(await content.locator("p code").textContent()).toBe("npm test");
    const links = await content.locator("a").evaluateAll((as) => as.map((a: any) => [a.textContent, a.getAttribute("href"), a.getAttribute("target"), a.getAttribute("rel")]));
    expect(links).toEqual([
      ["the docs", "http://example.com/a?b=1", "_blank", "noopener noreferrer nofollow"],
      ["chart", "https://example.com/c.png", "_blank", "noopener noreferrer nofollow"],
    ]);
    const text = (await content.textContent()) ?? "";
    expect(text).toContain("[this](javascript:window.__pwned=4)");
    expect(text).toContain("![pixel](data:image/png;base64,AAAA)");

    // Raw HTML, inline or a block of its own, is shown as text and never runs.
    expect(await content.locator("img, script, iframe").count()).toBe(0);
    expect(text).toContain('<img src=x onerror="window.__pwned=5">');
    expect(text).toContain("<script>window.__pwned=6</script>");
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

    // The fence: a highlighted code block with its text as written.
    const block = content.locator('[data-testid="code-block"]');
    expect(await block.count()).toBe(1);
    expect(await block.getAttribute("data-lang")).toBe("python");
    expect(await block.locator("code").textContent()).toBe("def f():\n    return 1");
    expect(await block.locator(".tok-kw").evaluateAll((ks) => ks.map((k: any) => k.textContent as string))).toEqual(["def", "return"]);
  });

  browserTest("registering gets a new key and deposit instructions; a reply it cannot pay for is refused with a hint and the text kept", async () => {
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await fresh.newPage();
    p.setDefaultTimeout(100_000);
    await p.goto(server.url);
    await p.waitForSelector('[data-ready="true"]');
    await p.click('[data-testid="register-button"]');
    await p.waitForSelector('[data-testid="new-key"]:not([hidden])');
    const key = (await p.textContent('[data-testid="new-key-value"]')) ?? "";
    expect(key).toMatch(/^ck_\w{40,}$/);
    // The key works against the API, and the page now uses it.
    const balance = await fetch(`${server.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });
    expect(balance.status).toBe(200);
    await p.waitForSelector('[data-testid="balance"]:text-is("0 TON")');
    await p.waitForSelector('[data-testid="deposit-info"]:not([hidden])');
    expect(await p.textContent('[data-testid="deposit-instructions"]')).toContain("Deposits are not enabled on this server");
    await p.keyboard.press("Escape");
    await p.fill('[data-testid="composer-input"]', "Hi");
    await p.press('[data-testid="composer-input"]', "Enter");
    await p.waitForSelector('[data-testid="error-banner"]:not([hidden])');
    expect(await p.textContent('[data-testid="error-text"]')).toMatch(/balance.*Open Account to see how to deposit\.$/is);
    expect(await p.inputValue('[data-testid="composer-input"]')).toBe("Hi");
    expect(await p.locator('[data-testid="message"]').count()).toBe(0);
    expect(await p.locator('[data-testid="session-item"]').count()).toBe(0);
    await fresh.close();
  });

  browserTest("the theme toggle switches to light mode and is remembered", async () => {
    await page.click('[data-testid="theme-toggle"]');
    expect(await page.getAttribute("html", "data-theme")).toBe("light");
    expect(await page.getAttribute('[data-testid="theme-toggle"]', "aria-label")).toBe("Switch to dark mode");
    await page.reload();
    await page.waitForSelector('[data-ready="true"]');
    expect(await page.getAttribute("html", "data-theme")).toBe("light");
  });

  browserTest("at phone width the list collapses into a drawer and the chat fits the screen", async () => {
    const phone = await context.newPage();
    phone.setDefaultTimeout(100_000);
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(server.url);
    await phone.waitForSelector('[data-ready="true"]');
    expect(await phone.isVisible('[data-testid="session-list"]')).toBe(false);
    expect(await phone.isVisible('[data-testid="composer-input"]')).toBe(true);
    expect(await phone.isVisible('[data-testid="send-button"]')).toBe(true);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // Every control of the top bar and the composer is on screen.
    for (const id of ["sidebar-toggle", "model-select", "account-toggle", "settings-toggle", "theme-toggle", "composer-input", "send-button"]) {
      const box = (await phone.locator(`[data-testid="${id}"]`).boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    await phone.click('[data-testid="sidebar-toggle"]');
    expect(await phone.getAttribute('[data-testid="sidebar-toggle"]', "aria-expanded")).toBe("true");
    const item = phone.locator(`[data-testid="session-item"][data-session-id="${sessionId}"]`);
    await item.waitFor({ state: "visible" });
    await item.click();
    await phone.waitForSelector('[data-testid="session-list"]', { state: "hidden" });
    await phone.waitForSelector('[data-testid="chat-title"]:text-is("Hello there")');
    expect(await phone.locator('[data-testid="message"]').count()).toBe(2);
    await phone.close();
  });

  browserTest("Stop cancels a reply mid-stream: the server stores nothing and the text goes back into the box", async () => {
    await page.click('[data-testid="new-chat"]');
    await page.click('[data-testid="settings-toggle"]');
    await page.fill('[data-testid="setting-max-tokens"]', "900");
    await page.keyboard.press("Escape");
    const listed = await page.locator('[data-testid="session-item"]').count();
    const sent = chats.length;
    await page.fill('[data-testid="composer-input"]', "Stop me");
    await page.press('[data-testid="composer-input"]', "Enter");
    await page.waitForSelector('[data-testid="conn-status"][data-state="streaming"]');
    await page.waitForSelector(".msg.streaming [data-testid=message-content]:not(:empty)");
    await page.click('[data-testid="stop-button"]');
    await replyDone(page);
    const stopped = chats[sent]!;
    expect(stopped.max_tokens).toBe(900);
    expect(await page.inputValue('[data-testid="composer-input"]')).toBe("Stop me");
    expect(await page.locator('[data-testid="message"]').count()).toBe(0);
    const res = await fetch(`${server.url}/v1/sessions/${stopped.session_id}`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status).toBe(404);
    expect(await page.locator('[data-testid="session-item"]').count()).toBe(listed);
    await page.waitForSelector('[data-testid="conn-status"][data-state="online"]');
  });

  browserTest("no script error happened on the page through all of the above", () => {
    expect(pageErrors).toEqual([]);
  });
});

describe(suite("web chat UI on a server without keys (Chromium)"), () => {
  let open: TestServer;
  beforeAll(async () => {
    if (!CHROMIUM) return;
    open = await startTestServer([]);
  });
  afterAll(async () => {
    await open?.stop();
  });

  browserTest("needs no key: no account prompt, no balance, and a message gets a streamed reply", async () => {
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const page = await context.newPage();
    page.setDefaultTimeout(100_000);
    await page.goto(open.url);
    await page.waitForSelector('[data-ready="true"]');
    expect(await page.isVisible('[data-testid="account-panel"]')).toBe(false);
    await page.click('[data-testid="settings-toggle"]');
    await page.fill('[data-testid="setting-max-tokens"]', "128");
    await page.fill('[data-testid="setting-system-prompt"]', "You are terse.");
    await page.fill('[data-testid="setting-stop"]', "STOP\nEND");
    await page.keyboard.press("Escape");
    expect(await page.isVisible('[data-testid="balance"]')).toBe(false);
    const chats = recordPosts(page, "/v1/chat/completions");
    await page.fill('[data-testid="composer-input"]', "Hi");
    await page.click('[data-testid="send-button"]');
    await page.waitForSelector(".msg.streaming");
    await replyDone(page);
    expect(await page.locator('[data-testid="message"][data-role="assistant"]').count()).toBe(1);
    // The system prompt opened the conversation and is kept with it; the stop sequences went along.
    expect(chats[0]).toMatchObject({ messages: [{ role: "system", content: "You are terse." }, { role: "user", content: "Hi" }], stop: ["STOP", "END"], max_tokens: 128 });
    expect(await page.locator('[data-testid="message"]').first().getAttribute("data-role")).toBe("system");
    expect(await page.textContent('[data-testid="token-counter"]')).toMatch(/^[1-9]\d* tokens$/);
    // The list refreshes after the reply ends, asynchronously.
    await until(async () => (await page.locator('[data-testid="session-item"]').count()) >= 1);
    expect(await page.locator('[data-testid="session-item"]').count()).toBe(1);
    expect(await page.isVisible('[data-testid="error-banner"]')).toBe(false);
    await page.click('[data-testid="account-toggle"]');
    expect(await page.textContent('[data-testid="auth-status"]')).toContain("without API keys");
    await context.close();
  });
});

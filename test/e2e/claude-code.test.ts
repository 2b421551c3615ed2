// Claude Code (`claude -p`, installed on demand at a pinned version) against the real server with a
// funded key: its real requests (a ~12k-token system prompt, its tools, streaming) are served, billed
// and parsed by it. The demo model's random weights never end a reply, so a turn ends at
// CLAUDE_CODE_MAX_OUTPUT_TOKENS, which Claude Code reports in its own words after reading our stream.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { parseTon } from "../../src/platform/pricing.ts";
import { claudeCodeBinary } from "../support/npm-client.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// The first run downloads Claude Code (~360 MB); each turn prefills its long prompt on the CPU.
setDefaultTimeout(600_000);

const CLAUDE_CODE = "2.1.328";
const MODEL = "tiny-qwen3";
const dir = mkdtempSync(join(tmpdir(), "cocoon-claude-code-"));
let server: TestServer;
let key = "";
let binary = "";

beforeAll(async () => {
  binary = claudeCodeBinary(CLAUDE_CODE);
  const db = openStore(join(dir, "cocoon.sqlite"));
  const a = createAccount(db);
  credit(db, a.id, parseTon("10"), "adjustment", `test:${a.id}`);
  key = createKey(db, a.id).key;
  db.close();
  // Claude Code's own prompt needs a context of about 32k tokens.
  server = await startTestServer(["--data-dir", dir, "--ctx-size", "32768", "--parallel", "1"], { auth: true });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("Claude Code", () => {
  test("claude -p completes its requests against the server with a funded key, billed per token", async () => {
    const home = join(dir, "home");
    const work = join(dir, "work");
    mkdirSync(home, { recursive: true });
    mkdirSync(work, { recursive: true });
    const proc = Bun.spawn([binary, "-p", "Say hello", "--model", MODEL], {
      cwd: work,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: home,
        ANTHROPIC_BASE_URL: server.url,
        ANTHROPIC_API_KEY: key,
        ANTHROPIC_SMALL_FAST_MODEL: MODEL,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        CLAUDE_CODE_MAX_OUTPUT_TOKENS: "16",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 400_000);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    clearTimeout(timer);
    const said = `${out}\n${err}`;
    // It read our stream to its message_delta: the reply stopped at its own output limit.
    expect(said).toContain("exceeded the 16 output token maximum");
    expect(said).not.toContain("API Error: 4");
    expect(said).not.toContain("API Error: 5");
    expect(server.log()).toMatch(/POST \/v1\/messages 200/);
    expect(server.log()).not.toMatch(/POST \/v1\/messages [45]\d\d/);

    const usage = (await (await fetch(`${server.url}/v1/usage`, { headers: { "x-api-key": key } })).json()) as {
      data: { status: string; prompt_tokens: number; cached_tokens: number; completion_tokens: number; cost: { nanoton: number } }[];
    };
    expect(usage.data.length).toBeGreaterThan(0);
    for (const row of usage.data) {
      expect(row.status).toBe("ok");
      expect(row.prompt_tokens).toBeGreaterThan(5000);
      expect(row.completion_tokens).toBe(16);
      expect(row.cost.nanoton).toBeGreaterThan(0);
    }
    // Its retries reuse the long prompt from the KV cache.
    if (usage.data.length > 1) expect(usage.data.some((r) => r.cached_tokens > 5000)).toBe(true);
    await server.stop();
    const db = openStore(join(dir, "cocoon.sqlite"));
    try {
      expect(checkInvariants(db)).toEqual([]);
    } finally {
      db.close();
    }
  });
});

// Claude Code (`claude -p`, installed on demand at a pinned version) against the real server with a
// funded key: its real requests (a ~12k-token system prompt, its tools, streaming) are served, billed
// and parsed by it. The demo model's random weights never end a reply, so this serves its stopping
// variant (models/tiny-qwen3-stops.gguf, see writeQwen3Model's `stops`): a few random tokens, then
// <|im_end|>, and Claude Code's turn ends normally (end_turn) with exit code 0.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { checkInvariants, credit } from "../../src/platform/ledger.ts";
import { parseTon } from "../../src/platform/pricing.ts";
import { makeTestModel } from "../../scripts/make-test-model.ts";
import { claudeCodeBinary } from "../support/npm-client.ts";
import { ROOT } from "../support/model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// The first run downloads Claude Code (~360 MB); each turn prefills its long prompt on the CPU.
setDefaultTimeout(600_000);

const CLAUDE_CODE = "2.1.328";
const MODEL = "tiny-qwen3-stops";
const dir = mkdtempSync(join(tmpdir(), "cocoon-claude-code-"));
let server: TestServer;
let key = "";
let binary = "";

beforeAll(async () => {
  binary = claudeCodeBinary(CLAUDE_CODE);
  const model = await makeTestModel({ stops: true, out: join(ROOT, "models", "tiny-qwen3-stops.gguf") });
  const db = openStore(join(dir, "cocoon.sqlite"));
  const a = createAccount(db);
  credit(db, a.id, parseTon("10"), "adjustment", `test:${a.id}`);
  key = createKey(db, a.id).key;
  db.close();
  // Claude Code's own prompt needs a context of about 32k tokens.
  server = await startTestServer(["--data-dir", dir, "--model", `${MODEL}=${model.path}`, "--ctx-size", "32768", "--parallel", "1"], { auth: true });
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
    const proc = Bun.spawn([binary, "-p", "Say hello", "--model", MODEL, "--output-format", "json"], {
      cwd: work,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: home,
        ANTHROPIC_BASE_URL: server.url,
        ANTHROPIC_API_KEY: key,
        ANTHROPIC_SMALL_FAST_MODEL: MODEL,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 400_000);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    clearTimeout(timer);
    const said = `${out}\n${err}`;
    // It read our stream to its message_delta: the model ended its turn, and Claude Code with it.
    expect(said).not.toContain("API Error");
    expect(code).toBe(0);
    const result = JSON.parse(out) as { type: string; subtype: string; is_error: boolean; stop_reason: string; num_turns: number };
    expect(result.type).toBe("result");
    expect(result.stop_reason).toBe("end_turn");
    // Random weights may emit a tool call Claude Code then runs: the session ends in a normal turn either way.
    expect(result.num_turns).toBeGreaterThanOrEqual(1);
    expect(result.subtype).toBe("success");
    expect(result.is_error).toBe(false);
    expect(server.log()).toMatch(/POST \/v1\/messages 200/);
    expect(server.log()).not.toMatch(/POST \/v1\/messages [45]\d\d/);

    const usage = (await (await fetch(`${server.url}/v1/usage`, { headers: { "x-api-key": key } })).json()) as {
      data: { status: string; prompt_tokens: number; cached_tokens: number; completion_tokens: number; cost: { nanoton: number } }[];
    };
    expect(usage.data.length).toBeGreaterThan(0);
    for (const row of usage.data) {
      expect(row.status).toBe("ok");
      expect(row.prompt_tokens).toBeGreaterThan(5000);
      expect(row.completion_tokens).toBeGreaterThan(0);
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

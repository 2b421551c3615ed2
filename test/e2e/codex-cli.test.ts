// Codex CLI (`codex exec`, wire_api = "responses") completes a turn against the real server with a
// funded key: its streamed POST /v1/responses (store: false, include reasoning.encrypted_content,
// function and namespace tools, a developer prompt of ~8k tokens) is served and billed. The ~400 MB
// package is installed on demand into build/cache/clients (pinned), never as a dependency.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { openStore } from "../../src/store/db.ts";
import { ROOT } from "../support/model.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

setDefaultTimeout(480_000);

const VERSION = "0.169.0";
const PREFIX = join(ROOT, "build", "cache", "clients", `codex-${VERSION}`);
const CODEX = join(PREFIX, "node_modules", ".bin", "codex");

/** Installs the pinned CLI once; null when it is there, else why it could not be installed. */
function installCodex(): string | null {
  if (existsSync(CODEX)) return null;
  mkdirSync(PREFIX, { recursive: true });
  const r = Bun.spawnSync(["npm", "install", "--prefix", PREFIX, "--no-save", "--no-audit", "--no-fund", "--loglevel", "error", `@openai/codex@${VERSION}`], { stdout: "pipe", stderr: "pipe", timeout: 600_000 });
  if (r.exitCode === 0 && existsSync(CODEX)) return null;
  const why = `${r.stdout.toString()}${r.stderr.toString()}`.trim();
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|socket hang up/i.test(why)) return why;
  throw new Error(`npm could not install @openai/codex@${VERSION}:\n${why}`);
}

const offline = installCodex();
if (offline) console.warn(`skipping the Codex CLI e2e test: @openai/codex@${VERSION} could not be installed (no network?):\n${offline.slice(0, 500)}`);

const dir = mkdtempSync(join(tmpdir(), "cocoon-codex-"));
let server: TestServer;
let key: string;

beforeAll(async () => {
  if (offline) return;
  const created = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", "0.2", "--data-dir", join(dir, "state")], { stdout: "pipe", stderr: "pipe" });
  key = /ck_[A-Za-z0-9_-]+/.exec(created.stdout.toString())?.[0] ?? "";
  if (!key) throw new Error(`create-key failed: ${created.stderr.toString()}`);
  // Codex's own prompt (instructions, tools, environment) is ~8k tokens: one slot with room for it.
  // Codex sends no max_output_tokens: at this price a 0.04 TON balance (no overdraft) pays for the
  // prompt and ~2,500 tokens, so the balance caps the generation below what the context leaves, and
  // the test does not depend on how billing sizes a request without a limit (issue 17 changes that).
  server = await startTestServer(["--data-dir", join(dir, "state"), "--parallel", "1", "--ctx-size", "12288", "--price-nanoton", "1000", "--max-overdraft", "0"], { auth: true });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(offline !== null)("Codex CLI", () => {
  test("codex exec completes a turn through POST /v1/responses, billed to the key", async () => {
    const home = join(dir, "codex-home");
    const work = join(dir, "work");
    mkdirSync(home, { recursive: true });
    mkdirSync(work, { recursive: true });
    // The set-up the README shows. Codex offers its hosted web_search tool unless it is disabled.
    writeFileSync(
      join(home, "config.toml"),
      [
        'model = "tiny-qwen3"',
        'model_provider = "cocoon"',
        'web_search = "disabled"',
        "",
        "[model_providers.cocoon]",
        'name = "cocoon-server"',
        `base_url = "${server.url}/v1"`,
        'env_key = "COCOON_API_KEY"',
        'wire_api = "responses"',
        "",
      ].join("\n"),
    );
    // The demo model's random weights never stop on their own; a JSON schema (grammar-constrained
    // here) makes its answer end, so the turn completes instead of filling the context.
    const schema = join(dir, "schema.json");
    writeFileSync(schema, JSON.stringify({ type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false }));
    const last = join(dir, "last-message.txt");
    // With tools offered, the schema's grammar also admits a call in the model's format (OpenAI's
    // meaning: the schema binds the final answer). Random weights pick a call now and then, and one
    // with random arguments may run to the output limit (the context here leaves ~4k tokens for it,
    // each grammar-checked); a fresh turn then answers.
    type UsageRow = { id: string; endpoint: string; status: string; prompt_tokens: number; cost: { nanoton: number } };
    const usageRows = async () => ((await (await fetch(`${server.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: UsageRow[] }).data;
    let code = -1;
    let context = "";
    // The usage rows of earlier, failed attempts (a turn cut at the output limit is billed as such).
    let before = new Set<string>();
    for (let attempt = 1; attempt <= 3 && code !== 0; attempt++) {
      before = new Set((await usageRows()).map((r) => r.id));
      const proc = Bun.spawn([CODEX, "exec", "--skip-git-repo-check", "--ephemeral", "--output-schema", schema, "-o", last, "Reply with ok."], {
        cwd: work,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, CODEX_HOME: home, COCOON_API_KEY: key, NO_COLOR: "1" },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 140_000);
      const [out, err, exited] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(timer);
      code = exited;
      context = `codex exited ${code} (attempt ${attempt})\nstdout:\n${out.slice(-3000)}\nstderr:\n${err.slice(-3000)}\nserver:\n${server.log().slice(-3000)}`;
    }
    expect({ code, context: code === 0 ? "" : context }).toEqual({ code: 0, context: "" });
    const answer = JSON.parse(readFileSync(last, "utf8")) as { ok: unknown };
    expect(typeof answer.ok).toBe("boolean");
    expect(server.log()).toMatch(/POST \/v1\/responses 200/);

    // Billed as every other request: the completed turn's usage rows for the Responses API, the ledger adding up.
    const rows = (await usageRows()).filter((r) => r.endpoint === "responses" && !before.has(r.id));
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.filter((r) => !(r.status === "ok" && r.cost.nanoton > 0))).toEqual([]);
    expect(rows[0]!.prompt_tokens).toBeGreaterThan(2000);
    const db = openStore(join(dir, "state", "cocoon.sqlite"));
    try {
      expect(checkInvariants(db)).toEqual([]);
    } finally {
      db.close();
    }
  });
});

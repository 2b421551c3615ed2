// The compiled executable carries its libraries and demo model: copied alone into an empty directory
// with an empty HOME, it extracts them into one cache directory and generates; started from two
// directories it uses the same database (under $XDG_DATA_HOME), which `backup` copies.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../../scripts/compile.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-compiled-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("compiled executable", () => {
  test("runs alone from an empty directory with an empty HOME, extracting into XDG_CACHE_HOME", async () => {
    const [binary] = await compile(["cpu"]);
    const exe = join(dir, "cocoon-server");
    copyFileSync(binary!, exe);
    const home = join(dir, "home");
    const cache = join(dir, "cache");
    mkdirSync(home);
    const xdgData = join(dir, "xdg-data");
    const env = { HOME: home, XDG_CACHE_HOME: cache, XDG_DATA_HOME: xdgData, PATH: "/usr/bin:/bin" };
    const go = async (args: string[], cwd = dir) => {
      const p = Bun.spawn([exe, ...args], { cwd, env, stdout: "pipe", stderr: "pipe" });
      return { out: await new Response(p.stdout).text(), err: await new Response(p.stderr).text(), code: await p.exited };
    };
    const first = await go(["generate", "--prompt", "Hello", "--max-tokens", "8", "--temperature", "0"]);
    expect(first.err).toContain("generated 8 tokens");
    expect(first.code).toBe(0);
    expect(first.out.trim().length).toBeGreaterThan(0);
    // A second start reuses the extracted files and gives the same greedy text.
    const second = await go(["generate", "--prompt", "Hello", "--max-tokens", "8", "--temperature", "0"]);
    expect(second.out).toBe(first.out);
    const extracted = readdirSync(join(cache, "cocoon-server", "native"));
    expect(extracted.length).toBe(1);
    expect(readdirSync(join(cache, "cocoon-server", "native", extracted[0]!))).toContain("libcocoon-shim.so");
    expect(readdirSync(home)).toEqual([]);
    const version = await go(["--version"]);
    expect(version.out).toContain("backend cpu");

    // The newcomer's path: an operator creates a credited key, the server bills a chat with it. No
    // --data-dir: the key is made in one directory and the server started from another, and both use
    // the one database under $XDG_DATA_HOME.
    const one = join(dir, "one");
    const two = join(dir, "two");
    mkdirSync(one);
    mkdirSync(two);
    const database = join(xdgData, "cocoon-server", "cocoon.sqlite");
    const created = await go(["create-key", "--credit", "0.5"], one);
    expect(created.code).toBe(0);
    expect(created.out).toContain(`database: ${database}`);
    const apiKey = created.out.match(/^api_key: (ck_\w+)$/m)?.[1];
    expect(apiKey).toBeDefined();

    // The same file serves the API: /health, /readiness, a chat on the embedded demo model.
    const probe = Bun.serve({ port: 0, fetch: () => new Response() });
    const port = probe.port;
    probe.stop(true);
    const server = Bun.spawn([exe, "--host", "127.0.0.1", "--port", String(port)], { cwd: two, env, stdout: "pipe", stderr: "pipe" });
    try {
      const base = `http://127.0.0.1:${port}`;
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        ready = await fetch(`${base}/readiness`).then((r) => r.status === 200, () => false);
        if (!ready) await Bun.sleep(100);
      }
      expect(ready).toBe(true);
      const health = (await (await fetch(`${base}/health`)).json()) as { status: string };
      expect(health.status).toBe("ok");
      // The chat UI and its script are embedded too.
      const page = await fetch(`${base}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const script = (await page.text()).match(/<script type="module" src="(\/ui\/app\.[a-z0-9]+\.js)">/)?.[1];
      expect(script).toBeDefined();
      const js = await fetch(`${base}${script}`);
      expect(js.status).toBe(200);
      expect(await js.text()).toContain("/v1/chat/completions");
      const anonymous = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(anonymous.status).toBe(401);
      const chat = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0 }),
      });
      expect(chat.status).toBe(200);
      const body = (await chat.json()) as { object: string; usage: { completion_tokens: number; cost: { nanoton: number } } };
      expect(body.object).toBe("chat.completion");
      expect(body.usage.completion_tokens).toBe(4);
      expect(body.usage.cost.nanoton).toBeGreaterThan(0);
      expect(chat.headers.get("x-cocoon-cost-nanoton")).toBe(String(body.usage.cost.nanoton));
    } finally {
      server.kill("SIGTERM");
      expect(await server.exited).toBe(0);
    }
    // It said where the database is, and made nothing in the directories it was started from.
    expect(await new Response(server.stderr).text()).toContain(`database ${database} (default under $XDG_DATA_HOME)`);
    expect(readdirSync(one)).toEqual([]);
    expect(readdirSync(two)).toEqual([]);
    // A backup of that database from a third directory, with the binary alone.
    const backup = await go(["backup", "--to", join(dir, "backup.sqlite")], home);
    expect(backup.code).toBe(0);
    expect(backup.out).toContain(`database: ${database}`);
    expect(backup.out).toContain("integrity: ok");
  });
});

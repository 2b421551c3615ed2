// Starts the real server (`bun src/main.ts`) as a subprocess on a free 127.0.0.1 port for e2e tests.
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./model.ts";

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:40123 (no trailing slash). */
  url: string;
  port: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the server printed so far (stdout and stderr). */
  log(): string;
  /** Sends SIGTERM and resolves with the exit code (SIGKILL after 20 s, then rejects). */
  stop(): Promise<number>;
}

/** A port nobody listens on right now: bind port 0, read the port, close. */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

async function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.text += decoder.decode(chunk, { stream: true });
}

/**
 * Runs `bun src/main.ts --host 127.0.0.1 --port N --parallel 4 --ctx-size 1024 ...extraArgs` and waits
 * until /readiness answers 200. Without `auth`, the server runs with --no-auth (no keys, no billing).
 */
export async function startTestServer(extraArgs: string[] = [], opts: { readyTimeoutMs?: number; auth?: boolean; port?: number } = {}): Promise<TestServer> {
  const port = opts.port ?? freePort();
  // Each server gets its own data directory unless the test names one: even --no-auth servers keep
  // chat sessions in a database there, and tests must not share (or leave) one in ./data.
  const ownDir = extraArgs.includes("--data-dir") || extraArgs.includes("--db") ? null : mkdtempSync(join(tmpdir(), "cocoon-server-"));
  // Tests reach nothing beyond 127.0.0.1: the public TON/USD price source is off unless a test names one.
  const rateOff = extraArgs.some((a) => a.startsWith("--ton-usd-rate-url")) ? [] : ["--ton-usd-rate-url", "off"];
  const args = ["--host", "127.0.0.1", "--port", String(port), "--parallel", "4", "--ctx-size", "1024", ...(opts.auth ? [] : ["--no-auth"]), ...rateOff, ...(ownDir ? ["--data-dir", ownDir] : []), ...extraArgs];
  const proc = Bun.spawn([process.execPath, join(ROOT, "src", "main.ts"), ...args], {
    cwd: ROOT,
    env: process.env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = { text: "" };
  void drain(proc.stdout, output);
  void drain(proc.stderr, output);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 45_000);
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`the server exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${output.text}`);
    }
    try {
      const r = await fetch(`${url}/readiness`);
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`the server was not ready within ${opts.readyTimeoutMs ?? 45_000} ms:\n${output.text}`);
    }
    await Bun.sleep(50);
  }
  return {
    url,
    port,
    proc,
    log: () => output.text,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      const code = await proc.exited;
      clearTimeout(timer);
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
      if (proc.signalCode === "SIGKILL") throw new Error(`the server ignored SIGTERM for 20 s:\n${output.text}`);
      return code;
    },
  };
}

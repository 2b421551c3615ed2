// The first CLI path: `cocoon-server generate` streams a completion of the tiny model to stdout.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { ROOT } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

async function run(args: string[]) {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), ...args], { stdout: "pipe", stderr: "pipe", cwd: ROOT });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe("generate command", () => {
  test("greedy generation prints the same text every run and reports its speed", async () => {
    const a = await run(["generate", "--prompt", "Hello", "--max-tokens", "24", "--temperature", "0"]);
    const b = await run(["generate", "--prompt", "Hello", "--max-tokens", "24", "--temperature", "0"]);
    expect(a.code).toBe(0);
    expect(a.stdout.trim().length).toBeGreaterThan(0);
    expect(b.stdout).toBe(a.stdout);
    expect(a.stderr).toMatch(/generated \d+ tokens in \d+ ms \([\d.]+ tok\/s\)/);
  });

  test("seeded sampling repeats for a seed and changes with it", async () => {
    const args = ["generate", "--prompt", "Tell me", "--max-tokens", "16", "--temperature", "1.5", "--top-k", "0", "--top-p", "1", "--min-p", "0"];
    const a = await run([...args, "--seed", "11"]);
    const b = await run([...args, "--seed", "11"]);
    const c = await run([...args, "--seed", "12"]);
    expect(a.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).not.toBe(a.stdout);
  });

  test("a missing model or a bad flag exits 2 with one clear line", async () => {
    const missing = await run(["generate", "--model", "/nonexistent/x.gguf", "--prompt", "hi"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe("cocoon-server: model file not found: /nonexistent/x.gguf");
    const bad = await run(["generate", "--prompt", "hi", "--max-tokens", "many"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--max-tokens must be an integer");
    const noPrompt = await run(["generate"]);
    expect(noPrompt.code).toBe(2);
    expect(noPrompt.stderr).toContain("--prompt");
  });

  test("--version names the llama.cpp release and the backend", async () => {
    const v = await run(["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^cocoon-server \d+\.\d+\.\d+\nllama\.cpp v0\.5\.0\nbackend (cpu|cuda|metal) \((prebuilt|source)\)\n$/);
  });
});

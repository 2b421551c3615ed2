// Real CLI clients (Claude Code, ...) for e2e tests, installed on demand at a pinned version into the
// ignored build/cache/clients/, never as dependencies that every `bun install` would download.
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./model.ts";

/** The install folder of `pkg@version` (installed on the first call, from the npm registry). */
export function installNpmClient(pkg: string, version: string): string {
  const dir = join(ROOT, "build", "cache", "clients", `${pkg.replace(/^@/, "").replaceAll("/", "-")}-${version}`);
  const installed = join(dir, "node_modules", ...pkg.split("/"), "package.json");
  if (existsSync(installed)) return dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "cocoon-test-client", private: true }));
  const r = Bun.spawnSync([process.execPath, "add", "--exact", `${pkg}@${version}`], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0 || !existsSync(installed)) throw new Error(`installing ${pkg}@${version} failed:\n${r.stderr.toString()}`);
  return dir;
}

/**
 * Claude Code's native executable. Its package swaps the binary in with a postinstall script, which
 * bun does not run for untrusted packages, so the platform package's binary is used directly.
 */
export function claudeCodeBinary(version: string): string {
  const dir = installNpmClient("@anthropic-ai/claude-code", version);
  const wrapper = join(dir, "node_modules", "@anthropic-ai", "claude-code", "bin", "claude.exe");
  if (statSync(wrapper).size > 1_000_000) return wrapper;
  const native = join(dir, "node_modules", "@anthropic-ai", `claude-code-${process.platform}-${process.arch}`, "claude");
  if (!existsSync(native)) throw new Error(`no Claude Code binary for ${process.platform}-${process.arch} in ${dir}`);
  return native;
}

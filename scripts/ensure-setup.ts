// Runs `bun run setup` only when its outputs are missing, so `bun run start` and `bun test` work on a
// fresh clone without a separate step and cost nothing afterwards.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CURRENT_FILE, NATIVE_DIR } from "./setup-native.ts";
import { TINY_MODEL } from "./setup.ts";
import { MANIFEST_FILE } from "../src/native/release.ts";

export function setupIsComplete(): boolean {
  if (!existsSync(CURRENT_FILE) || !existsSync(TINY_MODEL)) return false;
  const variant = readFileSync(CURRENT_FILE, "utf8").trim();
  const manifest = join(NATIVE_DIR, variant, MANIFEST_FILE);
  if (!existsSync(manifest)) return false;
  // A variant set up before the chat shim existed needs setup once more.
  const chatShim = (JSON.parse(readFileSync(manifest, "utf8")) as { chatShim?: string }).chatShim;
  return chatShim !== undefined && existsSync(join(NATIVE_DIR, variant, chatShim));
}

export function ensureSetup(): void {
  if (setupIsComplete()) return;
  const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "setup.ts")], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) throw new Error("`bun run setup` failed; see the output above");
}

if (import.meta.main) {
  try {
    ensureSetup();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}

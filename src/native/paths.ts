// Finds the llama.cpp libraries: an explicit directory, the ones embedded in a compiled executable
// (extracted once into a real directory, since dlopen of $bunfs paths breaks $ORIGIN lookups), or
// the variant `bun run setup` installed in the source tree.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { MANIFEST_FILE, type NativeManifest } from "./release.ts";

/** Set by the compiled executable's entry module: library file name -> embedded ($bunfs) path. */
export interface EmbeddedNative {
  manifest: NativeManifest;
  files: Record<string, string>;
  /** Distinguishes builds so a new executable never loads an older one's extracted libraries. */
  buildId: string;
}

declare global {
  // eslint-disable-next-line no-var
  var __cocoonEmbeddedNative: EmbeddedNative | undefined;
  /** $bunfs path of the demo model inside a compiled executable. */
  // eslint-disable-next-line no-var
  var __cocoonEmbeddedDemoModel: string | undefined;
}

export interface NativeLocation {
  dir: string;
  manifest: NativeManifest;
}

export class NativeNotFoundError extends Error {
  override name = "NativeNotFoundError";
}

const SOURCE_NATIVE_DIR = resolve(import.meta.dir, "..", "..", "build", "native");

function readManifest(dir: string): NativeManifest {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) {
    throw new NativeNotFoundError(`no llama.cpp libraries in ${dir} (missing ${MANIFEST_FILE}); run \`bun run setup\``);
  }
  return JSON.parse(readFileSync(file, "utf8")) as NativeManifest;
}

/** Default extraction root: $XDG_CACHE_HOME (or ~/.cache)/cocoon-server/native. */
export function defaultExtractRoot(): string {
  const cache = process.env.XDG_CACHE_HOME || join(homedir() || "/tmp", ".cache");
  return join(cache, "cocoon-server", "native");
}

/** Copies one embedded file to target unless an identical-size copy is there already. */
function extractFile(source: string, target: string, mode: number): void {
  const size = Bun.file(source).size;
  if (existsSync(target) && statSync(target).size === size) return;
  // Write-then-rename: a second process starting at the same moment never sees half a file.
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, new Uint8Array(readFileSync(source)), { mode });
  renameSync(tmp, target);
}

/** Copies embedded libraries into root/<buildId>-<variant>/ unless already there; returns that dir. */
export function extractEmbedded(embedded: EmbeddedNative, root: string): string {
  const dir = join(root, `${embedded.buildId}-${embedded.manifest.variant}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, source] of Object.entries(embedded.files)) extractFile(source, join(dir, name), 0o755);
  writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(embedded.manifest, null, 2));
  return dir;
}

/** The demo model of a compiled executable, extracted beside its libraries (llama.cpp mmaps a real file). */
export function extractedDemoModel(extractDir?: string): string | null {
  const embedded = globalThis.__cocoonEmbeddedDemoModel;
  const native = globalThis.__cocoonEmbeddedNative;
  if (!embedded || !native) return null;
  const dir = join(extractDir ?? defaultExtractRoot(), "..", "models");
  mkdirSync(dir, { recursive: true });
  const target = join(dir, `tiny-qwen3-${native.buildId}.gguf`);
  extractFile(embedded, target, 0o644);
  return target;
}

/**
 * Resolves where to load llama.cpp from. Order: `libDir` (or COCOON_LIB_DIR), the libraries embedded
 * in this executable, then the source tree's build/native/<variant> (`variant` or the current one).
 */
export function locateNative(opts: { libDir?: string; variant?: string; extractDir?: string } = {}): NativeLocation {
  const explicit = opts.libDir ?? process.env.COCOON_LIB_DIR;
  if (explicit) {
    const dir = resolve(explicit);
    const embedded = globalThis.__cocoonEmbeddedNative;
    if (embedded && !existsSync(join(dir, MANIFEST_FILE))) {
      return { dir: extractEmbedded(embedded, dir), manifest: embedded.manifest };
    }
    return { dir, manifest: readManifest(dir) };
  }
  const embedded = globalThis.__cocoonEmbeddedNative;
  if (embedded) {
    const dir = extractEmbedded(embedded, opts.extractDir ?? defaultExtractRoot());
    return { dir, manifest: embedded.manifest };
  }
  const currentFile = join(SOURCE_NATIVE_DIR, "current");
  const variant = opts.variant ?? (existsSync(currentFile) ? readFileSync(currentFile, "utf8").trim() : "");
  if (!variant) throw new NativeNotFoundError("llama.cpp libraries are not set up; run `bun run setup`");
  const dir = join(SOURCE_NATIVE_DIR, variant);
  return { dir, manifest: readManifest(dir) };
}

// Puts llama.cpp's shared libraries for this machine and our compiled shim into build/native/<variant>/.
// Prebuilt CPU/CUDA builds come from node-llama-cpp's npm packages; --from-source builds the same
// pinned release from the source bundle those packages ship.
import { existsSync, mkdirSync, readdirSync, copyFileSync, rmSync, writeFileSync, readFileSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { createHash } from "node:crypto";
import {
  LLAMA_CPP_RELEASE,
  NODE_LLAMA_CPP_VERSION,
  MANIFEST_FILE,
  SHIM_FILE,
  CHAT_SHIM_FILE,
  type NativeBackend,
  type NativeManifest,
  type NativeOrigin,
} from "../src/native/release.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const BUILD_DIR = join(ROOT, "build");
export const NATIVE_DIR = join(BUILD_DIR, "native");
const CACHE_DIR = join(BUILD_DIR, "cache");
const SOURCE_DIR = join(CACHE_DIR, `llama.cpp-${LLAMA_CPP_RELEASE}`);
/** Names the variant the loader uses when none is configured. */
export const CURRENT_FILE = join(NATIVE_DIR, "current");

export interface SetupNativeOptions {
  backend?: NativeBackend;
  fromSource?: boolean;
  force?: boolean;
  /** Mark this variant as the default the loader uses. Defaults to true. */
  makeCurrent?: boolean;
  log?: (line: string) => void;
}

function run(cmd: string[], cwd?: string): void {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: process.env });
  if (r.exitCode !== 0) {
    const out = `${r.stdout.toString()}\n${r.stderr.toString()}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`command failed (${r.exitCode}): ${cmd.join(" ")}\n${out}`);
  }
}

function which(bin: string): boolean {
  return Bun.which(bin) !== null;
}

/** CUDA is chosen automatically when an NVIDIA driver is present. */
export function detectBackend(): NativeBackend {
  if (process.platform === "darwin") return "metal";
  const driver = existsSync("/proc/driver/nvidia/version") || which("nvidia-smi");
  // The prebuilt CUDA libraries need the CUDA 13 runtime; without it the CPU build is the working one.
  if (driver && hasCudaRuntime()) return "cuda";
  return "cpu";
}

function hasCudaRuntime(): boolean {
  const r = Bun.spawnSync(["sh", "-c", "ldconfig -p 2>/dev/null | grep -q 'libcudart.so.13' || ls /usr/local/cuda*/lib64/libcudart.so.13* >/dev/null 2>&1"]);
  return r.exitCode === 0;
}

/** Downloads one npm package tarball into the cache (npm pack verifies its integrity) and unpacks it. */
function fetchPackage(spec: string, dirName: string, log: (l: string) => void): string {
  const dest = join(CACHE_DIR, dirName);
  if (existsSync(join(dest, "package", "package.json"))) return join(dest, "package");
  mkdirSync(dest, { recursive: true });
  log(`fetching ${spec} from the npm registry`);
  const r = Bun.spawnSync(["npm", "pack", spec, "--silent", "--pack-destination", dest], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`npm pack ${spec} failed: ${r.stderr.toString().trim()}`);
  const tgz = readdirSync(dest).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack ${spec} produced no tarball`);
  run(["tar", "-xzf", tgz], dest);
  rmSync(join(dest, tgz));
  return join(dest, "package");
}

/** The llama.cpp source tree of the pinned release (headers for the shim; the from-source build). */
export function ensureSource(log: (l: string) => void): string {
  if (existsSync(join(SOURCE_DIR, "include", "llama.h"))) return SOURCE_DIR;
  mkdirSync(CACHE_DIR, { recursive: true });
  const bundleDir = join(CACHE_DIR, "bundle");
  const bundle = join(bundleDir, "gitRelease.bundle");
  if (!existsSync(bundle)) {
    // Only the source bundle is taken from node-llama-cpp, never its JavaScript.
    mkdirSync(bundleDir, { recursive: true });
    log(`fetching the llama.cpp ${LLAMA_CPP_RELEASE} source bundle (node-llama-cpp@${NODE_LLAMA_CPP_VERSION})`);
    const r = Bun.spawnSync(["npm", "pack", `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, "--silent", "--pack-destination", bundleDir], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`npm pack node-llama-cpp failed: ${r.stderr.toString().trim()}`);
    const tgz = readdirSync(bundleDir).find((f) => f.endsWith(".tgz"))!;
    run(["tar", "-xzf", tgz, "--strip-components=2", "package/llama/gitRelease.bundle"], bundleDir);
    rmSync(join(bundleDir, tgz));
  }
  const tmp = `${SOURCE_DIR}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  run(["git", "clone", "--quiet", bundle, tmp]);
  renameSync(tmp, SOURCE_DIR);
  return SOURCE_DIR;
}

/** Every C and C++ source and header of the shims, in a stable order. */
function nativeSources(): string[] {
  return readdirSync(join(ROOT, "native")).filter((f) => /\.(c|h|cpp)$/.test(f)).sort();
}

function shimSourceHash(): string {
  const h = createHash("sha256");
  for (const f of nativeSources()) h.update(f).update(readFileSync(join(ROOT, "native", f)));
  return h.digest("hex").slice(0, 16);
}

function libFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.so(\.\d+)*$/.test(f) || f.endsWith(".dylib")).sort();
}

function findLib(files: string[], prefix: "libllama" | "libggml"): string {
  const re = prefix === "libllama" ? /^libllama(\.cuda)?(\.v[\d.]+)?\.(so|dylib)$/ : /^libggml(\.cuda)?(\.v[\d.]+)?\.(so|dylib)$/;
  const hit = files.find((f) => re.test(f));
  if (!hit) throw new Error(`no ${prefix} library among: ${files.join(", ")}`);
  return hit;
}

/** Copies the prebuilt libraries of one npm package into the variant directory. */
function installPrebuilt(backend: NativeBackend, dest: string, log: (l: string) => void): void {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`no prebuilt llama.cpp for ${process.platform}-${process.arch}: run \`bun run setup --from-source\``);
  }
  const pkg = backend === "cuda" ? "linux-x64-cuda" : "linux-x64";
  let pkgDir = join(ROOT, "node_modules", "@node-llama-cpp", pkg);
  if (!existsSync(join(pkgDir, "package.json"))) {
    pkgDir = fetchPackage(`@node-llama-cpp/${pkg}@${NODE_LLAMA_CPP_VERSION}`, pkg, log);
  }
  const bins = join(pkgDir, "bins", pkg);
  const meta = JSON.parse(readFileSync(join(bins, "_nlcBuildMetadata.json"), "utf8"));
  if (meta.buildOptions?.llamaCpp?.release !== LLAMA_CPP_RELEASE) {
    throw new Error(`@node-llama-cpp/${pkg} carries llama.cpp ${meta.buildOptions?.llamaCpp?.release}, expected ${LLAMA_CPP_RELEASE}`);
  }
  // libllama-common (llama.cpp's chat library) comes too: native/chat.cpp links this exact build.
  for (const f of libFiles(bins)) copyFileSync(join(bins, f), join(dest, f));
}

/** Builds the pinned release with CMake; CUDA when nvcc exists, Metal on macOS. */
function installFromSource(backend: NativeBackend, dest: string, log: (l: string) => void): void {
  if (!which("cmake")) throw new Error("--from-source needs cmake (apt-get install cmake)");
  const src = ensureSource(log);
  const buildDir = join(CACHE_DIR, `llama.cpp-build-${backend}`);
  const flags = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",
    "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
    "-DCMAKE_INSTALL_RPATH=$ORIGIN",
    // This CPU's own instruction set (AVX-512, ...), which the prebuilt libraries pick per variant.
    "-DGGML_NATIVE=ON",
  ];
  if (backend === "cuda") flags.push("-DGGML_CUDA=ON");
  if (backend === "metal") flags.push("-DGGML_METAL=ON");
  log(`building llama.cpp ${LLAMA_CPP_RELEASE} from source (${backend}); this takes minutes`);
  run(["cmake", "-S", src, "-B", buildDir, ...flags]);
  const jobs = String(navigator.hardwareConcurrency || 2);
  run(["cmake", "--build", buildDir, "--config", "Release", "--target", "llama", "llama-common", "-j", jobs]);
  const binDir = join(buildDir, "bin");
  for (const f of libFiles(binDir)) copyFileSync(join(binDir, f), join(dest, f));
}

/** Compiles native/shim.c against the release's headers, linked to this variant's exact libllama. */
function compileShim(dest: string, llama: string, ggml: string, log: (l: string) => void): void {
  const src = ensureSource(log);
  const cc = process.env.CC ?? (which("cc") ? "cc" : "gcc");
  const out = join(dest, SHIM_FILE);
  run([
    cc, "-O3", "-fno-math-errno", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror",
    ...nativeSources().filter((f) => f.endsWith(".c")).map((f) => join(ROOT, "native", f)),
    "-I", join(src, "include"),
    "-I", join(src, "ggml", "include"),
    "-L", dest,
    `-l:${llama}`,
    `-l:${ggml}`,
    // bun dlopens with RTLD_LOCAL: the shim resolves llama through its own $ORIGIN, not globally.
    "-Wl,-rpath,$ORIGIN",
    "-lpthread",
    "-lm",
    "-o", `${out}.tmp`,
  ]);
  renameSync(`${out}.tmp`, out);
}

function findCxx(): string {
  const cxx = process.env.CXX ?? ["c++", "g++", "clang++"].find(which);
  if (!cxx) throw new Error("setup needs a C++ compiler for native/chat.cpp (apt-get install g++)");
  return cxx;
}

/**
 * Compiles native/chat.cpp against the release's common/ headers, linked to this variant's exact
 * libllama-common (C++ ABI tied to the release) and libllama (the one the main shim loads).
 */
function compileChatShim(dest: string, llama: string, common: string, log: (l: string) => void): void {
  const src = ensureSource(log);
  const out = join(dest, CHAT_SHIM_FILE);
  run([
    findCxx(), "-std=c++17", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror",
    join(ROOT, "native", "chat.cpp"),
    // -isystem: the release's own headers carry unused static helpers that -Werror must not fail on.
    "-isystem", join(src, "common"),
    "-isystem", join(src, "include"),
    "-isystem", join(src, "ggml", "include"),
    "-isystem", join(src, "vendor"),
    "-L", dest,
    `-l:${common}`,
    `-l:${llama}`,
    "-Wl,-rpath,$ORIGIN",
    "-o", `${out}.tmp`,
  ]);
  renameSync(`${out}.tmp`, out);
}

function findCommonLib(files: string[]): string {
  const hit = files.find((f) => /^libllama-common(\.[\w.]+)?\.(so|dylib)$/.test(f) && !/\.so\.\d/.test(f)) ?? files.find((f) => f.startsWith("libllama-common"));
  if (!hit) throw new Error(`no libllama-common among: ${files.join(", ")}; run \`bun run setup --force\``);
  return hit;
}

export function variantName(backend: NativeBackend, origin: NativeOrigin): string {
  return origin === "prebuilt" ? backend : `${backend}-source`;
}

export function readManifest(dir: string): NativeManifest | null {
  const p = join(dir, MANIFEST_FILE);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as NativeManifest;
  } catch {
    return null;
  }
}

/** Ensures one variant is installed and marked current; cheap when nothing changed. */
export function setupNative(opts: SetupNativeOptions = {}): NativeManifest {
  const log = opts.log ?? ((l: string) => console.log(`[setup] ${l}`));
  const backend = opts.backend ?? detectBackend();
  const origin: NativeOrigin = opts.fromSource || backend === "metal" ? "source" : "prebuilt";
  const variant = variantName(backend, origin);
  const dest = join(NATIVE_DIR, variant);
  const hash = shimSourceHash();

  let manifest = opts.force ? null : readManifest(dest);
  const libsPresent = manifest !== null && manifest.files.every((f) => existsSync(join(dest, f)));
  if (!manifest || !libsPresent || manifest.llamaCppRelease !== LLAMA_CPP_RELEASE) {
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(dest, { recursive: true });
    if (origin === "prebuilt") installPrebuilt(backend, dest, log);
    else installFromSource(backend, dest, log);
    manifest = null;
  }
  const files = libFiles(dest).filter((f) => f !== SHIM_FILE && f !== CHAT_SHIM_FILE);
  const llama = findLib(files, "libllama");
  const ggml = findLib(files, "libggml");
  if (!files.some((f) => f.startsWith("libllama-common"))) {
    // A variant installed before the chat library was used: fetch its libraries again.
    return setupNative({ ...opts, force: true });
  }
  const common = findCommonLib(files);
  if (!manifest || manifest.shimSourceHash !== hash || !existsSync(join(dest, SHIM_FILE))) {
    log(`compiling the shim for ${variant}`);
    compileShim(dest, llama, ggml, log);
  }
  if (!manifest || manifest.shimSourceHash !== hash || !existsSync(join(dest, CHAT_SHIM_FILE))) {
    log(`compiling the chat shim for ${variant}`);
    compileChatShim(dest, llama, common, log);
  }
  const next: NativeManifest = {
    variant,
    backend,
    origin,
    llamaCppRelease: LLAMA_CPP_RELEASE,
    llama,
    shim: SHIM_FILE,
    chatShim: CHAT_SHIM_FILE,
    files: [...files, SHIM_FILE, CHAT_SHIM_FILE],
    shimSourceHash: hash,
  };
  writeFileSync(join(dest, MANIFEST_FILE), `${JSON.stringify(next, null, 2)}\n`);
  if (opts.makeCurrent ?? true) writeFileSync(CURRENT_FILE, `${variant}\n`);
  log(`native libraries ready: build/native/${variant} (${backend}, ${origin}, llama.cpp ${LLAMA_CPP_RELEASE})`);
  return next;
}

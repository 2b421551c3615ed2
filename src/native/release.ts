// The one pinned llama.cpp release: headers, prebuilt libraries and the from-source bundle all come
// from these npm package versions, so setup, the shim and `--version` can never disagree.
export const LLAMA_CPP_RELEASE = "v0.5.0";
/** node-llama-cpp version whose packages carry LLAMA_CPP_RELEASE (prebuilt libs and source bundle). */
export const NODE_LLAMA_CPP_VERSION = "3.22.1";
/** Bumped whenever native/shim.c changes its exported functions; checked at load. */
export const SHIM_ABI_VERSION = 2;

export type NativeBackend = "cpu" | "cuda" | "metal";
export type NativeOrigin = "prebuilt" | "source";

/** Written by setup next to the libraries; the loader reads it to know file names. */
export interface NativeManifest {
  variant: string;
  backend: NativeBackend;
  origin: NativeOrigin;
  llamaCppRelease: string;
  /** File name of libllama in this variant (names differ between the CPU and CUDA builds). */
  llama: string;
  shim: string;
  /** The chat shim over libllama-common (native/chat.cpp); absent in manifests written before it existed. */
  chatShim?: string;
  /** Every library file of the variant, for embedding into a compiled executable. */
  files: string[];
  /** Hash of the native/*.c, *.cpp and *.h files the shim was built from. */
  shimSourceHash: string;
}

export const MANIFEST_FILE = "manifest.json";
export const SHIM_FILE = "libcocoon-shim.so";
export const CHAT_SHIM_FILE = "libcocoon-chat.so";
/** Bumped whenever native/chat.cpp changes its exported functions; checked at load. */
export const CHAT_ABI_VERSION = 1;

// The loaded llama.cpp library (Llama): dlopen once per process or worker, the ABI and backend
// checks, llama.cpp's log, and the entry points that load and quantize models.
import { existsSync } from "node:fs";
import { openNative, type NativeSymbols } from "./symbols.ts";
import { locateNative, type NativeLocation } from "./paths.ts";
import { SHIM_ABI_VERSION, LLAMA_CPP_RELEASE, type NativeManifest } from "./release.ts";
import { asPointer, cstr, lastLines, type NativeLibrary } from "./handle.ts";
import { LlamaError } from "./llama-error.ts";
import { LlamaModel } from "./model.ts";
import { chatLibrary } from "./chat.ts";
import type { ChatSymbols } from "./symbols.ts";

/** ggml log levels; messages below the chosen one are dropped in C. */
export const LogLevel = { debug: 1, info: 2, warn: 3, error: 4, none: 0 } as const;
export type LogLevelName = keyof typeof LogLevel;

export interface LlamaLoadOptions {
  /** Directory holding the libraries and manifest. Defaults to COCOON_LIB_DIR, embedded, or build/native/current. */
  libDir?: string;
  /** Where a compiled executable extracts its libraries. Defaults to $XDG_CACHE_HOME/cocoon-server/native. */
  extractDir?: string;
  /** llama.cpp messages at or above this level reach stderr (warnings and errors are captured for error messages either way). Defaults to "none". */
  logLevel?: LogLevelName;
}

export interface ModelLoadOptions {
  /** Layers to offload to the GPU; -1 = all. Defaults to -1 (ignored without a GPU backend). */
  gpuLayers?: number;
  /** llama_load_mode: -1 auto, 0 plain read, 1 mmap, 2 mlock, 3 mmap+mlock. Defaults to -1. */
  loadMode?: number;
  /** Load only the vocabulary (tokenizer work, no weights). Defaults to false. */
  vocabOnly?: boolean;
  /** Validate tensor data while loading. Defaults to false. */
  checkTensors?: boolean;
}

export type QuantType = "F16" | "Q8_0" | "Q4_K_M" | "Q4_0" | "Q5_K_M" | "Q6_K";
/** llama_ftype values from llama.h. */
const FTYPE: Record<QuantType, number> = { F16: 1, Q4_0: 2, Q8_0: 7, Q4_K_M: 15, Q5_K_M: 17, Q6_K: 18 };

let shared: Llama | null = null;

/** The process-wide library instance, created on first use (dlopen happens once per process/worker). */
export function loadLlama(opts: LlamaLoadOptions = {}): Llama {
  if (!shared) shared = new Llama(locateNative({ libDir: opts.libDir, extractDir: opts.extractDir }), opts.logLevel ?? "none");
  else if (opts.logLevel) shared.setLogLevel(opts.logLevel);
  return shared;
}

export class Llama implements NativeLibrary {
  readonly dir: string;
  readonly manifest: NativeManifest;
  readonly devices: number;
  /** @internal */
  readonly fn: NativeSymbols;

  constructor(location: NativeLocation, logLevel: LogLevelName) {
    this.dir = location.dir;
    this.manifest = location.manifest;
    let lib;
    try {
      lib = openNative(`${location.dir}/${location.manifest.shim}`);
    } catch (err) {
      throw new LlamaError(`cannot load the llama.cpp libraries from ${location.dir}`, "library", String(err));
    }
    this.fn = lib.symbols;
    const abi = this.fn.cs_abi_version();
    if (abi !== SHIM_ABI_VERSION) {
      throw new LlamaError(`shim ABI ${abi} does not match ${SHIM_ABI_VERSION}`, "library", "run `bun run setup` again");
    }
    this.fn.cs_log_set(LogLevel[logLevel]);
    this.devices = this.fn.cs_backend_init(cstr(location.dir));
    if (this.devices < 1) throw new LlamaError("no ggml backend could be loaded", "library", this.takeLog() || location.dir);
  }

  /** llama.cpp's chat library (native/chat.cpp over libllama-common), opened on first use. */
  get chat(): ChatSymbols {
    return chatLibrary(this.dir, this.manifest.chatShim);
  }

  get backend(): string {
    return this.manifest.backend;
  }

  get release(): string {
    return LLAMA_CPP_RELEASE;
  }

  setLogLevel(level: LogLevelName): void {
    this.fn.cs_log_set(LogLevel[level]);
  }

  /** Warnings and errors llama.cpp logged since the last call. */
  takeLog(): string {
    const buf = Buffer.alloc(4096);
    const n = this.fn.cs_log_take(buf, buf.length);
    return buf.subarray(0, n).toString("utf8").trim();
  }

  systemInfo(): string {
    return String(this.fn.llama_print_system_info()).trim();
  }

  supportsGpuOffload(): boolean {
    return this.fn.llama_supports_gpu_offload();
  }

  /** Loads a GGUF model; a missing, unreadable or corrupt file throws a LlamaError saying why. */
  loadModel(path: string, opts: ModelLoadOptions = {}): LlamaModel {
    if (!existsSync(path)) {
      throw new LlamaError(`model file not found: ${path}`, "model_load");
    }
    this.takeLog();
    const handle = asPointer(this.fn.cs_model_load(cstr(path), opts.gpuLayers ?? -1, opts.loadMode ?? -1, opts.vocabOnly ?? false, opts.checkTensors ?? false));
    if (!handle) {
      throw new LlamaError(`cannot load model ${path}`, "model_load", lastLines(this.takeLog()) || "not a valid GGUF model");
    }
    return new LlamaModel(this, handle, path);
  }

  /** Quantizes a GGUF model (e.g. F16 -> Q8_0). Blocks the calling thread. */
  quantize(input: string, output: string, type: QuantType, threads = navigator.hardwareConcurrency || 2): void {
    this.takeLog();
    const rc = this.fn.cs_model_quantize(cstr(input), cstr(output), FTYPE[type], threads);
    if (rc !== 0) throw new LlamaError(`quantizing ${input} to ${type} failed`, "quantize", lastLines(this.takeLog()));
  }
}

// What the wrappers in this folder share: the native-handle base class (use after dispose() throws),
// pointer and C-string conversions, and the view a model, context or sampler has of the library.
import type { Pointer } from "bun:ffi";
import { LlamaError } from "./llama-error.ts";
import type { ChatSymbols, NativeSymbols } from "./symbols.ts";

/** bun:ffi types pointer returns as Pointer | bigint | null; addresses on our platforms fit a number. */
export function asPointer(p: Pointer | bigint | null): Pointer | null {
  if (p === null || p === 0 || p === 0n) return null;
  return (typeof p === "bigint" ? Number(p) : p) as Pointer;
}

/** NUL-terminated UTF-8 for const char * parameters. */
export function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

/** The last few lines of llama.cpp's log, for an error's detail. */
export function lastLines(log: string, n = 3): string {
  return log.split("\n").filter(Boolean).slice(-n).join("; ");
}

/**
 * What models, contexts and samplers use of the loaded library. An interface, so that their modules
 * need not import library.ts (which imports them); the Llama class satisfies it.
 */
export interface NativeLibrary {
  /** @internal */
  readonly fn: NativeSymbols;
  /** llama.cpp's chat library (native/chat.cpp), opened on first use. */
  readonly chat: ChatSymbols;
  /** Warnings and errors llama.cpp logged since the last call. */
  takeLog(): string;
}

/** Base for native handles: use after dispose() throws instead of crashing the process. */
export abstract class Handle {
  #handle: Pointer | null;
  constructor(handle: Pointer) {
    this.#handle = handle;
  }
  protected get h(): Pointer {
    if (this.#handle === null) throw new LlamaError(`${this.constructor.name} used after dispose()`, "disposed");
    return this.#handle;
  }
  get disposed(): boolean {
    return this.#handle === null;
  }
  protected release(free: (h: Pointer) => void): void {
    if (this.#handle === null) return;
    const h = this.#handle;
    this.#handle = null;
    free(h);
  }
  abstract dispose(): void;
  [Symbol.dispose](): void {
    this.dispose();
  }
}


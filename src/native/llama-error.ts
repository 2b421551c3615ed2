// The one error type of the llama.cpp binding: a closed set of codes, with llama.cpp's own
// explanation attached when it logged one.

/** Thrown for every native failure, with llama.cpp's own explanation when it logged one. */
export class LlamaError extends Error {
  override name = "LlamaError";
  constructor(
    message: string,
    readonly code: "model_load" | "context_init" | "decode" | "no_kv_slot" | "tokenize" | "quantize" | "state" | "sampler" | "disposed" | "library",
    readonly detail?: string,
  ) {
    super(detail ? `${message}: ${detail}` : message);
  }
}

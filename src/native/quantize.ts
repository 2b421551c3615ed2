// Model quantization entry point for scripts (e.g. the Q8_0 benchmark model), over the shared Llama.
import { loadLlama, type QuantType } from "./llama.ts";

export function quantizeModel(input: string, output: string, type: QuantType): void {
  loadLlama().quantize(input, output, type);
}

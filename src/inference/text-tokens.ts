// Text to token ids, as the tokenizer worker does it: a completion prompt (plain or
// fill-in-the-middle) and embedding inputs. Each refuses text that cannot fit from its byte count
// before tokenizing it; the ids are what the engine worker's own tokenizer would have made.
import type { LlamaModel } from "../native/llama.ts";
import { refuseUnfittable } from "./fits.ts";
import { EngineError, type ModelInfo } from "./types.ts";

export type FitInfo = Pick<ModelInfo, "id" | "contextWindow" | "longestTokenBytes">;

/** A completion's prompt and suffix as ids: a text prompt gets BOS and special tokens parsed; a suffix the model's FIM tokens. */
export function promptIds(m: LlamaModel, info: FitInfo, prompt: string | number[] | undefined, suffix: string | undefined): Int32Array {
  if (suffix !== undefined) {
    refuseUnfittable(Buffer.byteLength(suffix) + (typeof prompt === "string" ? Buffer.byteLength(prompt) : 0), info, "suffix", "the prompt and suffix");
    const fim = m.fimTokens;
    if (!fim) throw new EngineError("invalid_request", `model ${info.id} has no fill-in-the-middle tokens, so suffix is not supported`, "suffix");
    const prefix = typeof prompt === "string" ? m.tokenize(prompt, { parseSpecial: false }) : Int32Array.from(prompt ?? []);
    return Int32Array.from([fim.prefix, ...prefix, fim.suffix, ...m.tokenize(suffix, { parseSpecial: false }), fim.middle]);
  }
  if (typeof prompt !== "string") return Int32Array.from(prompt ?? []);
  refuseUnfittable(Buffer.byteLength(prompt), info, "prompt");
  return m.tokenize(prompt, { addSpecial: true, parseSpecial: true });
}

/** Embedding inputs as ids; text is refused from its length before it is tokenized. */
export function inputIds(m: LlamaModel, info: FitInfo, inputs: (string | number[])[]): Int32Array[] {
  return inputs.map((input, i) => {
    if (typeof input !== "string") return Int32Array.from(input);
    refuseUnfittable(Buffer.byteLength(input), info, "input", `input[${i}]`);
    return m.tokenize(input, { addSpecial: true, parseSpecial: false });
  });
}

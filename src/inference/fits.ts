// Refusing text that cannot fit the context before it is tokenized: no token covers more than the
// model's longest piece, so B bytes are at least ceil(B / longest) tokens, whatever the tokenizer does.
// Cheap (a byte count), so a 7 MiB message is refused without tokenizing it.
import { EngineError, type ModelInfo } from "./types.ts";

/** Throws context_overflow when `bytes` of text are more tokens than the window can ever hold. */
export function refuseUnfittable(bytes: number, info: Pick<ModelInfo, "contextWindow" | "longestTokenBytes">, param: string, what = "the prompt"): void {
  const longest = Math.max(1, info.longestTokenBytes);
  const least = Math.ceil(bytes / longest);
  if (least > info.contextWindow) {
    throw new EngineError(
      "context_overflow",
      `${what} is ${bytes} bytes, at least ${least} tokens (no token of this model covers more than ${longest} bytes), but the context window is ${info.contextWindow} tokens`,
      param,
    );
  }
}

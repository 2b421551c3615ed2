// Messages between the main thread (tokenizer-pool.ts) and a tokenizer worker. Plain
// structured-clonable data; token ids travel as transferred Int32Arrays.
import type { LogLevelName } from "../native/llama.ts";
import type { EngineError } from "./types.ts";
import type { FitInfo } from "./text-tokens.ts";

export interface TokenizerInit {
  libDir: string;
  llamaLogLevel: LogLevelName;
  path: string;
  /** The engine worker's view of the model: what text can fit. */
  info: FitInfo;
}

export type TokenizerCallMap = {
  tokenize: { args: { text: string; addSpecial?: boolean; parseSpecial?: boolean }; result: Int32Array };
  /** A completion's prompt (text or ids) and optional fill-in-the-middle suffix. */
  prompt: { args: { prompt?: string | number[]; suffix?: string }; result: Int32Array };
  /** Embedding inputs, each text input tokenized. */
  inputs: { args: { inputs: (string | number[])[] }; result: Int32Array[] };
  detokenize: { args: { tokens: number[] }; result: string };
  pieces: { args: { tokens: number[] }; result: number[][] };
};

export type ToTokenizer =
  | { type: "init"; init: TokenizerInit }
  | { [M in keyof TokenizerCallMap]: { type: "call"; rid: number; method: M; args: TokenizerCallMap[M]["args"] } }[keyof TokenizerCallMap]
  /** Test hook: holds calls while paused. */
  | { type: "pause"; paused: boolean }
  | { type: "close" };

export type FromTokenizer =
  | { type: "ready" }
  | { type: "reply"; rid: number; result?: unknown; error?: { code: EngineError["code"]; message: string; param?: string } }
  | { type: "fatal"; error: string }
  | { type: "closed" };

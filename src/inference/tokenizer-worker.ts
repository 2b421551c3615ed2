// The tokenizer worker: a vocabulary-only copy of one model (no tensors) that turns text into
// token ids and back, so a large prompt is tokenized beside the engine worker instead of stalling
// the decode loop that streams everyone's tokens. Talks to tokenizer-pool.ts (tokenizer-protocol.ts).
import { loadLlama, type LlamaModel } from "../native/llama.ts";
import { inputIds, promptIds, type FitInfo } from "./text-tokens.ts";
import { EngineError } from "./types.ts";
import type { ToTokenizer, FromTokenizer, TokenizerCallMap } from "./tokenizer-protocol.ts";

declare const self: Worker;

let model: LlamaModel | null = null;
let info: FitInfo | null = null;
/** Test hook: while paused, calls wait here in order (as if a long tokenization held the worker). */
let paused = false;
const held: Extract<ToTokenizer, { type: "call" }>[] = [];

function post(msg: FromTokenizer, transfer: ArrayBuffer[] = []): void {
  self.postMessage(msg, transfer);
}

/** llama.cpp aborts the process on an id outside the vocabulary: refused before it is called. */
function checkIds(nVocab: number, tokens: number[]): void {
  const bad = tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= nVocab);
  if (bad !== undefined) throw new EngineError("invalid_request", `token id ${bad} is outside the vocabulary (0..${nVocab - 1})`, "tokens");
}

function answer(msg: Extract<ToTokenizer, { type: "call" }>): void {
  const m = model!;
  try {
    let result: TokenizerCallMap[keyof TokenizerCallMap]["result"];
    const transfer: ArrayBuffer[] = [];
    switch (msg.method) {
      case "tokenize":
        result = m.tokenize(msg.args.text, { addSpecial: msg.args.addSpecial ?? false, parseSpecial: msg.args.parseSpecial ?? true });
        transfer.push(result.buffer as ArrayBuffer);
        break;
      case "prompt":
        result = promptIds(m, info!, msg.args.prompt, msg.args.suffix);
        transfer.push(result.buffer as ArrayBuffer);
        break;
      case "inputs":
        result = inputIds(m, info!, msg.args.inputs);
        for (const ids of result) transfer.push(ids.buffer as ArrayBuffer);
        break;
      case "detokenize":
        checkIds(m.nVocab, msg.args.tokens);
        result = m.detokenize(msg.args.tokens);
        break;
      case "pieces":
        checkIds(m.nVocab, msg.args.tokens);
        result = msg.args.tokens.map((t) => Array.from(m.tokenBytes(t)));
        break;
    }
    post({ type: "reply", rid: msg.rid, result }, transfer);
  } catch (err) {
    const e = err instanceof EngineError ? { code: err.code, message: err.message, param: err.param } : { code: "internal" as const, message: err instanceof Error ? err.message : String(err) };
    post({ type: "reply", rid: msg.rid, error: e });
  }
}

self.onmessage = (e: MessageEvent<ToTokenizer>) => {
  const msg = e.data;
  switch (msg.type) {
    case "init":
      try {
        const llama = loadLlama({ libDir: msg.init.libDir, logLevel: msg.init.llamaLogLevel });
        // vocab_only: the tokenizer's tables and the metadata, no weights (tens of MB, not the model's size).
        model = llama.loadModel(msg.init.path, { vocabOnly: true, gpuLayers: 0 });
        info = msg.init.info;
        post({ type: "ready" });
      } catch (err) {
        post({ type: "fatal", error: err instanceof Error ? err.message : String(err) });
      }
      break;
    case "call":
      if (paused) held.push(msg);
      else answer(msg);
      break;
    case "pause":
      paused = msg.paused;
      while (!paused && held.length) answer(held.shift()!);
      break;
    case "close":
      model?.dispose();
      model = null;
      post({ type: "closed" });
      break;
  }
};

// The llama.cpp binding in one import: Llama (the loaded library), LlamaModel, LlamaContext,
// LlamaBatch and LlamaSampler, each in its own module here. Native handles stay private; every
// object is freed by an explicit dispose().
export { LlamaError } from "./llama-error.ts";
export { Llama, loadLlama, LogLevel, type LogLevelName, type LlamaLoadOptions, type ModelLoadOptions, type QuantType } from "./library.ts";
export { LlamaModel, type TokenizeOptions } from "./model.ts";
export { LlamaContext, type ContextOptions, type PerfData } from "./context.ts";
export { LlamaBatch } from "./batch.ts";
export { LlamaSampler, type SamplerStep } from "./sampler.ts";
export { Utf8Stream, completePrefixLength } from "./utf8-stream.ts";
export {
  ChatTemplates,
  ChatStream,
  ChatTemplateNativeError,
  parseChatOutput,
  type ChatApplyRequest,
  type ChatApplied,
  type ChatDiff,
  type ChatParserParams,
  type ChatStreamStep,
  type ChatTemplatesInfo,
  type GrammarTrigger,
  type ParsedChatMessage,
} from "./chat.ts";

// /v1/embeddings and /v1/models logic: pooled, normalised vectors as floats or base64, and the model
// list with seed 001's endpoint, type, context window and live worker load.
import { ApiError } from "../http/errors.ts";
import type { GenerationDeps } from "../generation/deps.ts";
import { embedInputs } from "../generation/embed.ts";
import { cocoonOptions, pickModel } from "../generation/options.ts";
import type { ModelInfo, ModelStats } from "../inference/types.ts";
import { costField, type Cost, type Principal } from "../platform/service.ts";
import type { EmbeddingList, EmbeddingRequest, Model } from "./model.ts";

export async function createEmbeddings(deps: GenerationDeps, body: EmbeddingRequest, principal: Principal | null = null): Promise<{ body: EmbeddingList; cost: Cost | null }> {
  const model = pickModel(deps, body.model, cocoonOptions({}), "embedding");
  if (body.dimensions !== undefined && body.dimensions !== model.embeddingDims) {
    throw new ApiError("invalid_request", `model '${model.id}' produces ${model.embeddingDims}-dimensional embeddings and cannot shorten them; omit dimensions`, "dimensions");
  }
  const input = body.input;
  const inputs: (string | number[])[] =
    typeof input === "string" ? [input] : input.length > 0 && typeof input[0] === "number" ? [input as number[]] : (input as (string | number[])[]);
  inputs.forEach((x, i) => {
    if (x.length === 0) throw new ApiError("invalid_request", `input[${i}] is empty`, "input");
  });
  const result = await embedInputs(deps, { model, inputs, principal });
  const cost = result.cost;
  const base64 = body.encoding_format === "base64";
  const out: EmbeddingList = {
    object: "list",
    data: result.vectors.map((v, index) => ({
      object: "embedding",
      index,
      // base64 is the little-endian float32 bytes, as OpenAI sends it.
      embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : Array.from(v),
    })),
    model: model.id,
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens, ...(cost ? { cost: costField(cost) } : {}) },
  };
  return { body: out, cost };
}

const ENDPOINT: Record<ModelInfo["type"], string> = { chat: "/v1/chat/completions", completion: "/v1/completions", embedding: "/v1/embeddings" };

/** A model for /v1/models; `workers` are its workers' live load (a gateway's upstreams), else this server's slots. */
export function modelObject(info: ModelInfo, stats: ModelStats | undefined, created: number, workers?: { running_requests: number; max_running_requests: number }[]): Model {
  return {
    id: info.id,
    object: "model",
    created,
    owned_by: "cocoon-server",
    endpoint: ENDPOINT[info.type],
    type: info.type,
    context_window: info.contextWindow,
    workers: workers ?? [{ running_requests: stats?.slotsBusy ?? 0, max_running_requests: info.slots }],
    meta: {
      description: info.description,
      parameters: info.parameters,
      size_bytes: info.sizeBytes,
      train_context: info.trainContext,
      embedding_dims: info.embeddingDims,
      vocab_size: info.vocabSize,
      backend: info.backend,
      supports_tools: info.supportsTools,
      supports_reasoning: info.supportsThinking,
      // The chat format llama.cpp detected from the template: its family, parser, and markers.
      chat_format: info.chatFormat
        ? {
            family: info.chatFormat.family,
            parser: info.chatFormat.parser,
            tool_call_start: info.chatFormat.toolCallStart,
            reasoning_start: info.chatFormat.reasoningStart,
            reasoning_end: info.chatFormat.reasoningEnd,
          }
        : null,
      infill: info.infill,
    },
  };
}

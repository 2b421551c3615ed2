// Embedding requests in bounded steps beside generation: the worker loop runs one embedding step
// between decode steps, each pooling inputs within a token budget, so a 2,048-input request no
// longer holds the worker while streams wait.
import type { LlamaContext, LlamaModel } from "../native/llama.ts";
import { chunkedEmbedding, embeddingContextOptions, embedTokens } from "./embedding.ts";
import { EngineError, type ModelInfo } from "./types.ts";

export interface EmbedResult {
  vectors: Float32Array[];
  promptTokens: number;
}

interface Job {
  /** Token ids: text inputs were tokenized by the tokenizer worker. */
  inputs: Int32Array[];
  /** Next input to embed. */
  next: number;
  vectors: Float32Array[];
  promptTokens: number;
  done(result: EmbedResult): void;
  fail(err: unknown): void;
}

/** Inputs one step may embed (each decoded alone: packing them would make a vector depend on its neighbours). */
const MAX_PER_STEP = 64;

export class Embedder {
  private readonly jobs: Job[] = [];
  private ctx: LlamaContext | null = null;

  constructor(
    private readonly model: LlamaModel,
    /** Tokens one input may have (the model's context window). */
    private readonly size: number,
    private readonly opts: { type: ModelInfo["type"]; threads?: number },
  ) {}

  get busy(): boolean {
    return this.jobs.length > 0;
  }

  /** Queues a request; its result (or error) comes from later steps, in submission order. */
  submit(inputs: Int32Array[], done: Job["done"], fail: Job["fail"]): void {
    if (inputs.length === 0) return done({ vectors: [], promptTokens: 0 });
    this.jobs.push({ inputs, next: 0, vectors: [], promptTokens: 0, done, fail });
  }

  /**
   * Embeds the next inputs of the oldest request: as many as fit `budget` tokens (at least one,
   * which may alone be up to the context window). Returns false when there was nothing to do.
   */
  step(budget: number): boolean {
    const job = this.jobs[0];
    if (!job) return false;
    try {
      this.embedSome(job, budget);
    } catch (err) {
      this.jobs.shift();
      job.fail(err);
      return true;
    }
    if (job.next >= job.inputs.length) {
      this.jobs.shift();
      job.done({ vectors: job.vectors, promptTokens: job.promptTokens });
    }
    return true;
  }

  /** Fails every queued request (the worker is going away). */
  failAll(err: unknown): void {
    for (const job of this.jobs.splice(0)) job.fail(err);
  }

  dispose(): void {
    this.ctx?.dispose();
    this.ctx = null;
  }

  private context(): LlamaContext {
    // Bounded memory: a decoder-only model is fed in chunks (see embedding.ts).
    this.ctx ??= this.model.createContext(embeddingContextOptions(this.model, this.opts.type, this.size, this.opts.threads));
    return this.ctx;
  }

  private embedSome(job: Job, budget: number): void {
    const m = this.model;
    const ctx = this.context();
    const chunked = chunkedEmbedding(m, this.opts.type);
    const picked: { index: number; tokens: Int32Array }[] = [];
    let total = 0;
    while (job.next < job.inputs.length && picked.length < MAX_PER_STEP) {
      const i = job.next;
      const tokens = job.inputs[i]!;
      if (tokens.length === 0) throw new EngineError("invalid_request", `input[${i}] is empty`, "input");
      const bad = tokens.find((t) => t < 0 || t >= m.nVocab);
      if (bad !== undefined) throw new EngineError("invalid_request", `input[${i}] has token id ${bad}, outside the vocabulary (0..${m.nVocab - 1})`, "input");
      if (tokens.length > this.size) throw new EngineError("context_overflow", `input[${i}] has ${tokens.length} tokens; the limit is ${this.size}`, "input");
      // The first input always goes; later ones only while they fit the budget.
      if (picked.length > 0 && total + tokens.length > budget) break;
      picked.push({ index: i, tokens });
      total += tokens.length;
      job.next++;
    }
    for (const { index, tokens } of picked) {
      const v = embedTokens(ctx, m, tokens, chunked);
      let norm = 0;
      for (const x of v) norm += x * x;
      norm = Math.sqrt(norm) || 1;
      for (let j = 0; j < v.length; j++) v[j]! /= norm;
      job.vectors[index] = v;
      job.promptTokens += tokens.length;
    }
  }
}

// Embedding requests in bounded steps beside generation: the worker loop runs one embedding step
// between decode steps, each pooling inputs within a token budget, so a 2,048-input request no
// longer holds the worker while streams wait.
import type { LlamaContext, LlamaModel } from "../native/llama.ts";
import { chunkedEmbedding, embeddingContextOptions, embedTokens } from "./embedding.ts";
import { refuseUnfittable } from "./fits.ts";
import { EngineError, type ModelInfo } from "./types.ts";

export interface EmbedResult {
  vectors: Float32Array[];
  promptTokens: number;
}

interface Job {
  inputs: (string | number[])[];
  /** Next input to embed. */
  next: number;
  /** That input's tokens, when a step tokenized it but had no room for it. */
  ahead: Int32Array | null;
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
    private readonly opts: { type: ModelInfo["type"]; longestTokenBytes: number; threads?: number },
  ) {}

  get busy(): boolean {
    return this.jobs.length > 0;
  }

  /** Queues a request; its result (or error) comes from later steps, in submission order. */
  submit(inputs: (string | number[])[], done: Job["done"], fail: Job["fail"]): void {
    if (inputs.length === 0) return done({ vectors: [], promptTokens: 0 });
    this.jobs.push({ inputs, next: 0, ahead: null, vectors: [], promptTokens: 0, done, fail });
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
    // Inputs are tokenized here, a step's worth at a time, not all up front.
    let total = 0;
    while (job.next < job.inputs.length && picked.length < MAX_PER_STEP) {
      const i = job.next;
      const input = job.inputs[i]!;
      // Text that cannot fit is refused from its length, before tokenizing it.
      if (typeof input === "string" && !job.ahead) refuseUnfittable(Buffer.byteLength(input), { contextWindow: this.size, longestTokenBytes: this.opts.longestTokenBytes }, "input", `input[${i}]`);
      const tokens = job.ahead ?? (typeof input === "string" ? m.tokenize(input, { addSpecial: true, parseSpecial: false }) : Int32Array.from(input));
      job.ahead = null;
      if (tokens.length === 0) throw new EngineError("invalid_request", `input[${i}] is empty`, "input");
      const bad = tokens.find((t) => t < 0 || t >= m.nVocab);
      if (bad !== undefined) throw new EngineError("invalid_request", `input[${i}] has token id ${bad}, outside the vocabulary (0..${m.nVocab - 1})`, "input");
      if (tokens.length > this.size) throw new EngineError("context_overflow", `input[${i}] has ${tokens.length} tokens; the limit is ${this.size}`, "input");
      // The first input always goes; later ones only while they fit the budget.
      if (picked.length > 0 && total + tokens.length > budget) {
        job.ahead = tokens;
        break;
      }
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

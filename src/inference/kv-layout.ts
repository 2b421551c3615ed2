// Where sequences' cells lie in the unified KV cache, and what that costs ggml-cpu's tiled flash
// attention: idle compaction of the resident sequences, and two-pass decoding of mixed steps.
import type { LlamaBatch, LlamaContext } from "../native/llama.ts";
import type { CachedSequence } from "./prompt-cache.ts";

/**
 * ggml-cpu's flash attention takes a batch of at least this many rows 64 at a time, and each such
 * tile computes every 64-cell KV tile that holds a cell of any of its rows.
 */
export const FA_TILE_ROWS = 64;
/**
 * Cells from which a sequence's attention is worth laying out: a mixed step whose generating
 * sequences are this deep is decoded in two passes, and a compaction runs only when at least two
 * resident sequences are (shorter ones span few tiles however scattered, and the compaction would
 * only delay the next request).
 */
const DEEP = 256;

/**
 * Whether a step mixing next tokens with a prompt chunk should be decoded in two passes. In one
 * tiled batch each generating row costs a whole tile per KV tile of its sequence; past a few
 * hundred cells that is more than a second pass over the weights (3 next tokens beside a 76-token
 * prompt at 441 cells: 2.5 s in one pass, 1.9 s in two; Qwen3-0.6B, 2 cores).
 */
export function splitWorthIt(rows: number, genRows: number, deepestGenerating: number): boolean {
  return genRows > 0 && rows > genRows && rows >= FA_TILE_ROWS && deepestGenerating >= DEEP;
}

/** Moves rows [from, size) of `batch` into `into` (emptied first), in order. */
export function moveRows(batch: LlamaBatch, into: LlamaBatch, from: number): void {
  into.clear();
  for (let i = from; i < batch.size; i++) into.add(batch.tokens[i]!, batch.pos[i]!, batch.seqIds[i]!, batch.logits[i] === 1);
  batch.size = from;
}

/**
 * Rewrites the resident sequences' KV cells in one contiguous run each. Sequences decoded together
 * interleave their cells and every turn's prompt lands wherever cells are free, so after a few
 * turns a scattered conversation's prompt tokens cost up to 1.5x those of a compact one (Qwen3-0.6B
 * at 441 tokens: 21 ms against 14 ms a token). It runs only when the caller says nothing is running
 * or waiting, after a batch spanned several sequences, when two are DEEP, and within `limitBytes` (the saved states
 * are held in RAM meanwhile; about 1 ms per MiB on a 2-core CPU, which a request arriving then waits).
 */
export class KvCompactor {
  /** A decoded batch spanned several sequences since the last compaction. */
  private interleaved = false;
  compactions = 0;
  compactMs = 0;

  constructor(
    private readonly ctx: LlamaContext,
    private readonly sequences: readonly CachedSequence[],
    private readonly limitBytes: number,
  ) {}

  /** Notes a batch about to be decoded. */
  observe(batch: LlamaBatch): void {
    if (this.interleaved) return;
    const ids = batch.seqIds;
    for (let i = 1; i < batch.size; i++) if (ids[i] !== ids[0]) this.interleaved = true;
  }

  /** Compacts when due; every sequence must be idle. */
  runIfDue(): void {
    if (!this.interleaved) return;
    this.interleaved = false;
    const resident = this.sequences.filter((s) => s.cached.length > 0);
    if (this.limitBytes <= 0 || resident.filter((s) => s.cached.length >= DEEP).length < 2) return;
    let bytes = 0;
    for (const s of resident) bytes += this.ctx.sequenceStateBytes(s.seq);
    if (bytes > this.limitBytes) return;
    const t0 = performance.now();
    const states = resident.map((s) => this.ctx.saveSequence(s.seq));
    this.ctx.clearMemory();
    resident.forEach((s, i) => {
      try {
        this.ctx.restoreSequence(states[i]!, s.seq);
      } catch {
        // Cells shared by copied prefixes come back once per sequence; one that no longer fits is
        // recomputed when its conversation returns.
        this.ctx.seqRemove(s.seq);
        s.cached = [];
      }
    });
    this.compactions++;
    this.compactMs += performance.now() - t0;
  }
}

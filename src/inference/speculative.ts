// Speculative decoding's drafters: what guesses the tokens after a generating slot's next one, for
// the scheduler to decode beside it and keep as far as the target's own sampling agrees (one
// verification for both kinds). N-gram lookup guesses from the sequence itself; a draft model runs
// greedily in its own context, whose sequences follow the target's by token comparison. Also how a
// step's guesses are asked for and added to the batch.
import { LlamaBatch, LlamaError, type LlamaContext, type LlamaModel } from "../native/llama.ts";
import { ngramGuess } from "./ngram.ts";
import type { CachedSequence } from "./prompt-cache.ts";

/** What addDrafts reads and writes of a scheduler slot. */
export interface DraftingSlot {
  readonly seq: number;
  readonly cached: readonly number[];
  readonly row: number;
  readonly pending: number;
  readonly generated: number;
  readonly active: { readonly req: { readonly maxTokens: number } } | null;
  readonly pace: DraftPace | null;
  draft: number[];
  draftRows: number[];
}

/**
 * Asks the drafter for every generating slot's guesses (within its request's and the batch's room)
 * and adds them to the batch after the slots' next tokens; returns how many were added.
 */
export function addDrafts(drafter: Drafter, b: LlamaBatch, slots: readonly DraftingSlot[], ctxPerSlot: number): number {
  let free = b.capacity - b.size;
  let added = 0;
  const asks: (DraftAsk & { slot: DraftingSlot })[] = [];
  for (const s of slots) {
    if (s.row < 0 || !s.active || !s.pace) continue;
    const max = Math.min(s.pace.next(), s.active.req.maxTokens - s.generated - 1, free, ctxPerSlot - s.cached.length - 2);
    if (max <= 0) continue;
    free -= max;
    asks.push({ slot: s, seq: s.seq, history: s.cached, pending: s.pending, max });
  }
  drafter.draft(asks).forEach((draft, i) => {
    const s = asks[i]!.slot;
    s.draft = draft;
    draft.forEach((t, j) => s.draftRows.push(b.add(t, s.cached.length + 1 + j, s.seq, true)));
    added += draft.length;
  });
  return added;
}

/** One generating slot asking for a draft: the tokens in its KV, the token about to be decoded, the most to guess. */
export interface DraftAsk {
  seq: number;
  history: readonly number[];
  pending: number;
  max: number;
}

export interface Drafter {
  readonly kind: "ngram" | "draft";
  /** Tokens guessed per step at most. */
  readonly max: number;
  /** A guess for each ask (in order), at most its `max` tokens; empty when there is none. */
  draft(asks: readonly DraftAsk[]): number[][];
  /** Milliseconds spent drafting, and KV cells the drafter holds (0 for n-gram). */
  readonly stats: { draftMs: number; kvCells: number };
  dispose(): void;
}

/** Most steps a sequence whose drafts keep failing waits before drafting again. */
const MAX_PAUSE = 16;

/**
 * How much one sequence drafts next, from how its last draft fared: a fully kept draft doubles the
 * length (up to the drafter's max), a partly kept one drafts one more than it kept, and one that
 * kept nothing drafts a single token after a pause that doubles with each such miss in a row (up to
 * MAX_PAUSE steps). Rejected guesses cost verify rows and draft decodes; this bounds that cost when
 * a draft is useless (random weights, or text the n-gram lookup cannot predict), and never changes
 * the output.
 */
export class DraftPace {
  private len: number;
  private misses = 0;
  private pause = 0;

  constructor(private readonly max: number) {
    this.len = max;
  }

  /** Tokens to draft this step; 0 while pausing. */
  next(): number {
    if (this.pause > 0) {
      this.pause--;
      return 0;
    }
    return this.len;
  }

  /** A verified draft of `drafted` tokens, `kept` of them accepted. */
  record(drafted: number, kept: number): void {
    if (drafted === 0) return;
    if (kept > 0) this.misses = 0;
    if (kept === drafted) this.len = Math.min(this.max, this.len * 2);
    else if (kept > 0) this.len = Math.min(this.max, kept + 1);
    else {
      this.len = 1;
      this.misses++;
      this.pause = Math.min(MAX_PAUSE, 2 ** this.misses) - 1;
    }
  }
}

/** Prompt lookup: guesses from an earlier occurrence of the last tokens (ngram.ts). */
export class NgramDrafter implements Drafter {
  readonly kind = "ngram";
  readonly stats = { draftMs: 0, kvCells: 0 };
  constructor(readonly max: number) {}

  draft(asks: readonly DraftAsk[]): number[][] {
    return asks.map((a) => ngramGuess(a.history, a.pending, a.max));
  }

  dispose(): void {}
}

export interface ModelDrafterOptions {
  /** Tokens drafted per step at most (llama-server's --draft-max). */
  max: number;
  /** Drafts shorter than this are dropped (llama-server's --draft-min). Defaults to 0. */
  min?: number;
}

/**
 * A draft model in its own context with one sequence per target sequence. Before drafting, each
 * draft sequence is cut back to its longest common prefix with the target's tokens and the rest is
 * fed (so prefix reuse, evictions, parked and restored states, copies for n > 1 all just re-sync,
 * and the draft never holds more than the target plus one draft per slot); then up to `max`
 * greedy tokens are drafted for all asking slots at once, one batched decode per token.
 */
export class ModelDrafter implements Drafter {
  readonly kind = "draft";
  readonly max: number;
  private readonly min: number;
  private readonly batch: LlamaBatch;
  /** Tokens each draft sequence holds, positions 0..n-1. */
  private readonly held: number[][];
  private readonly stat = { draftMs: 0 };

  constructor(
    private readonly model: LlamaModel,
    private readonly ctx: LlamaContext,
    /** The target's sequences (the scheduler's slots), read at each draft. */
    private readonly targets: readonly CachedSequence[],
    /** Ids at or above this are outside the target's vocabulary (a draft vocabulary may be a little larger). */
    private readonly targetVocab: number,
    opts: ModelDrafterOptions,
  ) {
    this.max = opts.max;
    this.min = opts.min ?? 0;
    this.batch = new LlamaBatch(ctx.nBatch);
    this.held = Array.from({ length: ctx.nSeqMax }, () => []);
  }

  get stats(): { draftMs: number; kvCells: number } {
    return { draftMs: this.stat.draftMs, kvCells: this.held.reduce((n, h) => n + h.length, 0) };
  }

  draft(asks: readonly DraftAsk[]): number[][] {
    const t0 = performance.now();
    try {
      return this.run(asks);
    } finally {
      this.stat.draftMs += performance.now() - t0;
    }
  }

  private run(asks: readonly DraftAsk[]): number[][] {
    const out = asks.map((): number[] => []);
    if (asks.length === 0) return out;
    this.trim();
    const b = this.batch;
    b.clear();
    // Catch-up: each asking sequence gets the tokens it lacks plus the pending one, logits on the
    // last; one that does not fit this step's batch is fed in part and drafts next step.
    const rows = asks.map((a) => {
      const h = this.held[a.seq]!;
      const missing = a.history.length - h.length;
      const room = b.capacity - b.size;
      const feed = Math.min(missing + 1, room);
      for (let i = 0; i < feed; i++) {
        const at = h.length + i;
        const token = at < a.history.length ? a.history[at]! : a.pending;
        b.add(token, at, a.seq, at === a.history.length);
      }
      return feed === missing + 1 ? b.size - 1 : -1;
    });
    if (!this.decode(asks)) return out;
    let live = asks.map((a, i) => (rows[i]! >= 0 && a.max > 0 ? i : -1)).filter((i) => i >= 0);
    while (live.length > 0) {
      const next: number[] = [];
      const nextRows: number[] = [];
      for (const i of live) {
        const token = this.ctx.argmax(rows[i]!);
        if (token >= this.targetVocab) continue;
        out[i]!.push(token);
        // Past an end-of-generation token there is nothing to guess.
        if (out[i]!.length < asks[i]!.max && !this.model.isEog(token)) {
          next.push(i);
          nextRows.push(token);
        }
      }
      if (next.length === 0) break;
      b.clear();
      next.forEach((i, j) => {
        const a = asks[i]!;
        rows[i] = b.add(nextRows[j]!, this.held[a.seq]!.length, a.seq, true);
      });
      if (!this.decode(asks)) break;
      live = next;
    }
    return out.map((d) => (d.length < this.min ? [] : d));
  }

  /** Cuts every draft sequence back to its common prefix with the target's, keeping the draft's memory within the target's. */
  private trim(): void {
    for (const t of this.targets) {
      const h = this.held[t.seq];
      if (!h || h.length === 0) continue;
      const c = t.cached;
      let n = 0;
      const end = Math.min(h.length, c.length);
      while (n < end && h[n] === c[n]) n++;
      if (n === h.length) continue;
      if (!this.ctx.seqRemove(t.seq, n, -1)) {
        this.ctx.seqRemove(t.seq);
        n = 0;
      }
      h.length = n;
    }
  }

  /**
   * Decodes the batch and records it; when the draft's cells run out, drops the sequences not
   * drafting and retries once, then gives up on this step's draft (and the whole draft cache).
   */
  private decode(asks: readonly DraftAsk[]): boolean {
    const b = this.batch;
    try {
      this.ctx.decode(b);
    } catch (err) {
      if (!(err instanceof LlamaError && err.code === "no_kv_slot")) throw err;
      const asking = new Set(asks.map((a) => a.seq));
      this.held.forEach((h, seq) => {
        if (!asking.has(seq) && h.length > 0) {
          this.ctx.seqRemove(seq);
          h.length = 0;
        }
      });
      try {
        this.ctx.decode(b);
      } catch (again) {
        if (!(again instanceof LlamaError && again.code === "no_kv_slot")) throw again;
        this.ctx.clearMemory();
        for (const h of this.held) h.length = 0;
        return false;
      }
    }
    for (let i = 0; i < b.size; i++) this.held[b.seqIds[i]!]!.push(b.tokens[i]!);
    return true;
  }

  dispose(): void {
    this.ctx.dispose();
  }
}

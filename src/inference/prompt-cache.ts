// The scheduler's prompt cache over the sequences of one llama context: which idle one a prompt takes,
// how much of its prefix is reused (the slot's own KV cells, another slot's copied within the
// unified KV cache, or a parked state restored), and parking a slot's KV state in memory before a
// prompt overwrites it, so an evicted conversation's next turn is restored instead of recomputed.
import type { LlamaContext } from "../native/llama.ts";

/** One sequence of the shared context as the cache sees it; the scheduler's slots are these. */
export interface CachedSequence {
  readonly seq: number;
  /** Tokens whose KV this sequence holds, positions 0..cached.length-1. */
  cached: number[];
  /** The conversation pinned to this sequence, if any. */
  sessionKey: string | null;
  /** Whose prompt the cached tokens are (see GenerateRequest.cacheScope); null: the shared scope. */
  scope: string | null;
  /** When the sequence was last given out or released; larger is later. */
  lastUsed: number;
}

/** The prompt about to take slots, and the conversation it continues (a PreparedRequest is one). */
export interface Prompt {
  readonly tokens: Int32Array;
  readonly sessionKey: string | null;
  readonly cacheScope: string | null;
}

export interface PromptCacheOptions {
  /** Bytes of parked KV state (evicted prefixes and pinned sessions) kept in memory. Defaults to 1 GiB. */
  parkBytes?: number;
}

/** A slot's KV state saved to memory before the slot was given to another prompt. */
interface ParkedState {
  tokens: number[];
  state: Uint8Array;
  /** The conversation it belongs to, when the caller pinned one. */
  key: string | null;
  /** Whose prompt it holds. */
  scope: string | null;
}

/** Shorter caches are cheaper to recompute than to save and restore. */
const MIN_PARK_TOKENS = 128;

export class PromptCache {
  private parked: ParkedState[] = [];
  private parkedBytes = 0;

  constructor(
    private readonly ctx: LlamaContext,
    /** Every sequence of the context: the donors a prompt's prefix may be copied from. */
    private readonly sequences: readonly CachedSequence[],
    private readonly opts: PromptCacheOptions = {},
  ) {}

  get stats(): { parkedStates: number; parkedSessions: number; parkedBytes: number } {
    return {
      parkedStates: this.parked.length,
      parkedSessions: this.parked.filter((p) => p.key !== null).length,
      parkedBytes: this.parkedBytes,
    };
  }

  /**
   * The idle sequence a prompt takes, overwriting as little as possible: its pinned session; else
   * the one the prompt continues (the longest common prefix, covering at least half of what it
   * holds, as a conversation's next turn does: only the tail the turn does not repeat is lost); else
   * an empty one (a shared prefix is copied into it from any sequence by reusePrefix); else the
   * least recently used, unpinned first.
   */
  pick<S extends CachedSequence>(free: S[], prompt: Prompt): S {
    if (prompt.sessionKey) {
      const pinned = free.find((s) => s.sessionKey === prompt.sessionKey);
      if (pinned) return pinned;
    }
    let best: S | null = null;
    let bestLen = 0;
    for (const s of free) {
      if (s.cached.length === 0 || s.scope !== prompt.cacheScope || (s.sessionKey && s.sessionKey !== prompt.sessionKey)) continue;
      const len = commonPrefix(s.cached, prompt.tokens);
      if (len * 2 >= s.cached.length && len > bestLen) {
        best = s;
        bestLen = len;
      }
    }
    if (best) return best;
    const empty = free.find((s) => s.cached.length === 0);
    if (empty) return empty;
    return [...free].sort((a, b) => Number(a.sessionKey !== null) - Number(b.sessionKey !== null) || a.lastUsed - b.lastUsed)[0]!;
  }

  /**
   * Frees an idle sequence's cells under memory pressure: its state is parked to RAM first when worth
   * it (a pinned conversation always; others from MIN_PARK_TOKENS tokens), then the cells are dropped.
   * A parked state `incoming` (the prompt being admitted) would restore is not dropped to make room.
   */
  evict(seq: CachedSequence, incoming: Prompt | null = null): void {
    this.park(seq, { tokens: new Int32Array(0), sessionKey: null, cacheScope: seq.scope }, incoming);
    this.ctx.seqRemove(seq.seq);
    seq.cached = [];
  }

  /**
   * Readies the slots a prompt was given, the first of which will hold it: parks what each holds that
   * the prompt would overwrite, then fills the first with the longest cached prefix of the prompt and
   * drops its cells after that. Returns the prefix length, which is never the whole prompt: the last
   * prompt token is always decoded again, for the logits that start generation.
   */
  load(slots: readonly CachedSequence[], prompt: Prompt): number {
    const primary = slots[0]!;
    const tokens = prompt.tokens;
    for (const s of slots) this.park(s, prompt);

    let reuse = this.reusePrefix(primary, prompt);
    reuse = Math.min(reuse, tokens.length - 1);
    if (!this.ctx.seqRemove(primary.seq, reuse, -1)) {
      this.ctx.seqRemove(primary.seq);
      reuse = 0;
    }
    primary.cached = Array.from(tokens.subarray(0, reuse));
    for (const s of slots) s.scope = prompt.cacheScope;
    return reuse;
  }

  /** Drops every parked state of a conversation; returns how many there were. */
  forget(key: string): number {
    const gone = this.parked.filter((p) => p.key === key);
    for (const p of gone) this.unpark(p);
    return gone.length;
  }

  /**
   * Makes the slot hold the longest available prefix of the prompt: its own cache, another slot's
   * (copied within the unified KV cache, no recompute), or a parked session. Returns its length.
   */
  private reusePrefix(slot: CachedSequence, prompt: Prompt): number {
    const { tokens, sessionKey, cacheScope } = prompt;
    // Another scope's cells are never reused, not even a shared template opening: how much was
    // cached is visible in usage and cost.
    const ours = (scope: string | null) => scope === cacheScope;
    let own = ours(slot.scope) ? commonPrefix(slot.cached, tokens) : 0;
    let donor: CachedSequence | null = null;
    let donorLen = own;
    for (const s of this.sequences) {
      if (s === slot || !ours(s.scope)) continue;
      const len = commonPrefix(s.cached, tokens);
      if (len > donorLen) {
        donor = s;
        donorLen = len;
      }
    }
    // The parked state with the longest common prefix; the caller's own conversation wins ties.
    let saved: ParkedState | null = null;
    let savedLen = 0;
    for (const p of this.parked) {
      if (!ours(p.scope)) continue;
      const len = commonPrefix(p.tokens, tokens);
      if (len > savedLen || (len === savedLen && len > 0 && sessionKey !== null && p.key === sessionKey)) {
        saved = p;
        savedLen = len;
      }
    }
    if (saved && savedLen > donorLen) {
      this.unpark(saved);
      try {
        this.ctx.restoreSequence(saved.state, slot.seq);
        slot.cached = saved.tokens.slice();
        slot.scope = saved.scope;
        return savedLen;
      } catch {
        this.ctx.seqRemove(slot.seq);
        slot.cached = [];
        own = 0;
      }
    }
    if (donor) {
      this.ctx.seqRemove(slot.seq);
      this.ctx.seqCopy(donor.seq, slot.seq, 0, donorLen);
      slot.cached = donor.cached.slice(0, donorLen);
      return donorLen;
    }
    return own;
  }

  /**
   * Before a slot is given to a prompt that would overwrite part of its cache, its KV state is saved
   * to memory (as llama-server's prompt cache does). Pinned conversations are always kept; short
   * caches are not. A slot pinned to another conversation is unpinned: its state lives on parked.
   */
  private park(slot: CachedSequence, incoming: Prompt, protect: Prompt | null = incoming): void {
    const pinned = slot.sessionKey !== null && slot.sessionKey !== incoming.sessionKey;
    const kept = slot.scope === incoming.cacheScope ? commonPrefix(slot.cached, incoming.tokens) : 0;
    const limit = this.opts.parkBytes ?? 2 ** 30;
    // Worth it when a long stretch would be lost: a conversation's next turn overwriting only the
    // tail it does not repeat (its last answer's unsent end, say) parks nothing.
    const worth = pinned || (limit > 0 && slot.cached.length - kept >= MIN_PARK_TOKENS);
    if (worth && kept < slot.cached.length) {
      try {
        const state = this.ctx.saveSequence(slot.seq);
        const tokens = slot.cached.slice();
        // A parked prefix of what is parked now adds nothing.
        for (const p of [...this.parked]) if (p.scope === slot.scope && p.tokens.length <= tokens.length && commonPrefix(p.tokens, tokens) === p.tokens.length) this.unpark(p);
        this.parked.push({ tokens, state, key: slot.sessionKey, scope: slot.scope });
        this.parkedBytes += state.length;
        // Oldest first when over budget.
        const wanted = (p: ParkedState) => protect !== null && p.scope === protect.cacheScope && commonPrefix(p.tokens, protect.tokens) >= MIN_PARK_TOKENS;
        while (this.parkedBytes > limit && this.parked.length > 1) {
          const oldest = this.parked.find((p) => !wanted(p)) ?? this.parked[0]!;
          this.unpark(oldest);
        }
      } catch {
        // Parking is an optimisation; losing it only costs a recompute.
      }
    }
    if (pinned) slot.sessionKey = null;
  }

  private unpark(p: ParkedState): void {
    const i = this.parked.indexOf(p);
    if (i === -1) return;
    this.parked.splice(i, 1);
    this.parkedBytes -= p.state.length;
  }
}

export function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

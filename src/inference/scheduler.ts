// Continuous batching over N lanes sharing one llama context: each step decodes one batch mixing the
// next token of every generating slot with prompt chunks of newly admitted requests. Sequences
// outnumber lanes: a finished conversation's KV stays resident while cells are free, evicted (parked
// to RAM when worth it) only under memory pressure, compacted while idle (kv-layout.ts). Also pinned
// sessions, n > 1 choices, cancellation and timeouts; prefix reuse is prompt-cache.ts.
import { LlamaBatch, LlamaError, type LlamaContext, type LlamaModel } from "../native/llama.ts";
import { TokenSampler, type TokenChoice } from "../native/token-sampler.ts";
import { ChoiceOutput } from "./output.ts";
import { addDrafts, DraftPace, type Drafter } from "./speculative.ts";
import { KvCompactor, moveRows, splitWorthIt } from "./kv-layout.ts";
import { StepCosts } from "./step-costs.ts";
import { PromptCache, type CachedSequence, type PromptCacheOptions } from "./prompt-cache.ts";
import type { Active, Emit, PreparedRequest, Slot } from "./scheduler-types.ts";
import { EngineError, type FinishReason, type ModelStats, type Usage } from "./types.ts";

export type { Emit, PreparedRequest, SchedulerEvent } from "./scheduler-types.ts";

export interface SchedulerOptions extends PromptCacheOptions {
  /** Requests' choices decoded at once (the configured slots); the context's other sequences only keep KV resident. Defaults to every sequence. */
  lanes?: number;
  /** Tokens one request may occupy (prompt + completion). */
  ctxPerSlot: number;
  /** Waiting requests beyond the running ones. */
  maxQueue: number;
  /**
   * Prompt tokens a step may carry while other slots are generating (chunked prefill): a new prompt
   * is fed in pieces so running streams keep their pace. 0 = automatic, sized from measured step
   * times so such a step takes about twice a plain decode step (at least MIN_PROMPT_CHUNK tokens).
   * Steps with no generating slot always fill the whole batch. Defaults to 0.
   */
  promptBudget?: number;
  /** Resident KV state one idle compaction may rewrite (kv-layout.ts; 0 = never). Defaults to 512 MiB. */
  compactBytes?: number;
  /** Two-pass mixed steps when generating sequences are deep (kv-layout.ts; the CPU backend). Defaults to false. */
  splitMixedSteps?: boolean;
  /** Speculative decoding: makes the drafter (given the sequences) whose guesses are decoded beside each slot's next token, kept as far as its sampler agrees. Defaults to none. */
  drafter?: (sequences: readonly CachedSequence[]) => Drafter;
}

const now = () => performance.now();


export class Scheduler {
  private readonly slots: Slot[];
  private readonly queue: PreparedRequest[] = [];
  private readonly active = new Map<string, Active>();
  private readonly cache: PromptCache;
  private readonly batch: LlamaBatch;
  /** The prompt rows of a step decoded in two passes. */
  private readonly promptBatch: LlamaBatch;
  private clock = 0;
  private readonly costs = new StepCosts();
  /** What the last batch held. */
  private genRows = 0;
  private promptRows = 0;
  private readonly lanes: number;
  readonly drafter: Drafter | null;
  /** Resident sequences evicted under memory pressure. */
  private evictions = 0;
  private readonly compactor: KvCompactor;
  readonly stats = { promptTokens: 0, generatedTokens: 0, cachedTokens: 0, requests: 0, draftedTokens: 0, acceptedTokens: 0, draftSteps: 0, splitSteps: 0 };

  constructor(
    private readonly model: LlamaModel,
    private readonly ctx: LlamaContext,
    private readonly emit: Emit,
    private readonly opts: SchedulerOptions,
  ) {
    this.slots = Array.from({ length: ctx.nSeqMax }, (_, seq) => ({
      seq,
      cached: [],
      state: "idle" as const,
      active: null,
      choice: 0,
      promptPos: 0,
      pending: -1,
      row: -1,
      generated: 0,
      sampler: null,
      output: null,
      draft: [],
      draftRows: [],
      pace: null,
      sessionKey: null,
      scope: null,
      lastUsed: 0,
    }));
    this.lanes = Math.min(opts.lanes ?? this.slots.length, this.slots.length);
    this.cache = new PromptCache(ctx, this.slots, { parkBytes: opts.parkBytes });
    this.batch = new LlamaBatch(ctx.nBatch);
    this.promptBatch = new LlamaBatch(ctx.nBatch);
    this.compactor = new KvCompactor(ctx, this.slots, opts.compactBytes ?? 512 * 2 ** 20);
    this.drafter = opts.drafter?.(this.slots) ?? null;
  }

  get slotCount(): number {
    return this.lanes;
  }

  snapshot(id: string): ModelStats {
    const busy = this.slots.filter((s) => s.state !== "idle").length;
    const used = Math.min(this.ctx.nCtx, this.cellsHeld());
    return {
      id,
      slotsBusy: busy,
      slotsTotal: this.lanes,
      residentSequences: this.slots.filter((s) => s.state === "idle" && s.cached.length > 0).length,
      evictions: this.evictions,
      kvCompactions: this.compactor.compactions,
      kvCompactMs: this.compactor.compactMs,
      queued: this.queue.length,
      ...this.stats,
      restarts: 0,
      ready: true,
      kvUsedCells: used,
      kvTotalCells: this.ctx.nCtx,
      pinnedSlots: this.slots.filter((s) => s.sessionKey !== null).length,
      ...this.cache.stats,
      speculative: this.drafter?.kind ?? null,
      draftMs: this.drafter?.stats.draftMs ?? 0,
      draftKvCells: this.drafter?.stats.kvCells ?? 0,
    };
  }

  /**
   * Drops everything kept for a conversation: its pinned idle slot's KV cells and its parked states.
   * A slot still generating for it is only unpinned (its request finishes normally). Returns what was freed.
   */
  forgetSession(key: string): { slots: number; parked: number } {
    let slots = 0;
    for (const s of this.slots) {
      if (s.sessionKey !== key) continue;
      s.sessionKey = null;
      if (s.state === "idle") {
        this.ctx.seqRemove(s.seq);
        s.cached = [];
      }
      slots++;
    }
    return { slots, parked: this.cache.forget(key) };
  }

  /** Queues a request; throws EngineError for requests that can never run. */
  submit(req: PreparedRequest): void {
    const n = req.samplers.length;
    if (n > this.lanes) {
      throw new EngineError("invalid_request", `n=${n} exceeds the ${this.lanes} parallel slots of this model`, "n");
    }
    if (req.tokens.length === 0) throw new EngineError("invalid_request", "the prompt is empty", req.promptParam);
    if (req.tokens.length + req.maxTokens > this.opts.ctxPerSlot) {
      throw new EngineError(
        "context_overflow",
        `this request needs ${req.tokens.length} prompt + ${req.maxTokens} completion tokens, but the context window is ${this.opts.ctxPerSlot} tokens`,
        req.promptParam,
      );
    }
    if (this.queue.length >= this.opts.maxQueue && this.freeLanes() < n) {
      throw new EngineError("overloaded", `the server is busy: ${this.queue.length} requests are waiting; retry shortly`);
    }
    this.queue.push(req);
  }

  cancel(id: string): void {
    const q = this.queue.findIndex((r) => r.id === id);
    if (q !== -1) {
      const [req] = this.queue.splice(q, 1);
      req!.samplers.forEach((_, index) => this.emit(id, { type: "finish", index, reason: "cancelled", toolCalls: [], stop: null }));
      this.emit(id, {
        type: "done",
        slot: -1,
        reasons: req!.samplers.map(() => "cancelled" as const),
        // Nothing of it was processed: a cancelled queued request used no prompt tokens.
        usage: { promptTokens: 0, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 },
        timings: { queueMs: now() - req!.receivedAt, promptMs: 0, generationMs: 0, promptTokensPerSecond: 0, tokensPerSecond: 0 },
      });
      return;
    }
    const a = this.active.get(id);
    if (a) a.cancelled = true;
  }

  /**
   * What each running request has processed so far (its prompt fed into the KV cache and the tokens
   * generated), for billing checkpoints: a crash then loses at most what came after the last one.
   */
  progress(): { id: string; usage: Usage }[] {
    return [...this.active.values()].map((a) => {
      const primary = a.slots[0]!;
      const prompt = primary.active === a && primary.state === "prompt" ? primary.promptPos : a.promptFed;
      return {
        id: a.req.id,
        usage: { promptTokens: prompt, cachedTokens: Math.min(a.cachedTokens, prompt), completionTokens: a.completionTokens, reasoningTokens: a.reasoningTokens },
      };
    });
  }

  /** Sequences whose KV cells differ from the tokens the scheduler records for them ([] when consistent; for tests). */
  kvMismatches(): number[] {
    return this.slots.filter((s) => this.ctx.seqPosMax(s.seq) + 1 !== s.cached.length).map((s) => s.seq);
  }

  /** Busy slots or queued requests remain. */
  get busy(): boolean {
    return this.active.size > 0 || this.queue.length > 0;
  }

  /** One scheduling step; returns false when there was nothing to do. */
  step(): boolean {
    this.expire();
    this.admit();
    if (!this.fillBatch()) {
      if (this.active.size === 0 && this.queue.length === 0) this.compactor.runIfDue();
      return false;
    }
    this.compactor.observe(this.batch);
    if (this.opts.splitMixedSteps && splitWorthIt(this.batch.size, this.genRows, this.deepestGenerating())) {
      // Next tokens first, then the prompt chunk; the prompt slots' rows renumbered for its batch.
      this.stats.splitSteps++;
      for (const s of this.slots) if (s.state === "prompt" && s.row >= this.genRows) s.row -= this.genRows;
      moveRows(this.batch, this.promptBatch, this.genRows);
      const promptRows = this.promptRows;
      this.promptRows = 0;
      if (!this.decodeStep(this.batch)) return true;
      this.record(this.batch);
      this.sampleGenerating();
      this.genRows = 0;
      this.promptRows = promptRows;
      if (!this.decodeStep(this.promptBatch)) return true;
      this.record(this.promptBatch);
      this.finishPrompts();
      return true;
    }
    if (!this.decodeStep(this.batch)) return true;
    this.record(this.batch);
    this.sampleGenerating();
    this.finishPrompts();
    return true;
  }

  private deepestGenerating(): number {
    let n = 0;
    for (const s of this.slots) if (s.state === "generate" && s.row >= 0) n = Math.max(n, s.cached.length);
    return n;
  }

  /** Decodes a batch (making room for its cells first); false when that failed every request. */
  private decodeStep(batch: LlamaBatch): boolean {
    const t0 = now();
    try {
      this.makeRoom(batch.size, []);
      try {
        this.ctx.decode(batch);
      } catch (err) {
        // Cells shared between sequences make the count an estimate: evict every resident one and retry.
        if (!(err instanceof LlamaError && err.code === "no_kv_slot")) throw err;
        this.makeRoom(this.ctx.nCtx, []);
        this.ctx.decode(batch);
      }
    } catch (err) {
      this.failAll(err);
      return false;
    }
    this.costs.learn(now() - t0, this.genRows, this.promptRows);
    return true;
  }

  /**
   * Prompt (or other side work, such as embeddings) tokens one step may add while slots are
   * generating; the whole batch when none is.
   */
  get sideBudget(): number {
    const room = this.batch.capacity;
    if (!this.slots.some((s) => s.state === "generate")) return room;
    const fixed = this.opts.promptBudget ?? 0;
    return fixed > 0 ? Math.min(fixed, room) : this.costs.budget(room);
  }

  /** Fails every running request (e.g. after a decode error) and resets the KV cache. */
  failAll(err: unknown): void {
    const message = err instanceof LlamaError ? err.message : String(err);
    for (const a of [...this.active.values()]) this.finishRequest(a, "stop", new EngineError("internal", `inference failed: ${message}`));
    this.ctx.clearMemory();
    for (const s of this.slots) s.cached = [];
  }

  // ---- admission ---------------------------------------------------------------------------------

  private freeLanes(): number {
    return this.lanes - this.slots.filter((s) => s.state !== "idle").length;
  }

  /** KV cells the sequences hold (an upper bound: cells shared by copied prefixes count per sequence). */
  private cellsHeld(): number {
    let n = 0;
    for (const s of this.slots) n += s.cached.length;
    return n;
  }

  /**
   * Evicts idle resident sequences until `cells` more fit in the context: unpinned before pinned,
   * least recently used first, each parked to RAM when worth it (prompt-cache.ts). Running requests
   * and `keep` are never touched.
   */
  private makeRoom(cells: number, keep: readonly Slot[], incoming: PreparedRequest | null = null): void {
    let held = this.cellsHeld();
    if (held + cells <= this.ctx.nCtx) return;
    const victims = this.slots
      .filter((s) => s.state === "idle" && s.cached.length > 0 && !keep.includes(s))
      .sort((a, b) => Number(a.sessionKey !== null) - Number(b.sessionKey !== null) || a.lastUsed - b.lastUsed);
    for (const v of victims) {
      if (held + cells <= this.ctx.nCtx) return;
      held -= v.cached.length;
      this.cache.evict(v, incoming);
      this.evictions++;
    }
  }

  private admit(): void {
    while (this.queue.length > 0) {
      const req = this.queue[0]!;
      if (this.freeLanes() < req.samplers.length) return;
      this.queue.shift();
      this.start(req, this.slots.filter((s) => s.state === "idle"));
    }
  }

  private start(req: PreparedRequest, free: Slot[]): void {
    const primary = this.cache.pick(free, req);
    // Extra choices take empty sequences first, then the least recently used.
    const others = free
      .filter((s) => s !== primary)
      .sort((a, b) => Number(a.cached.length > 0) - Number(b.cached.length > 0) || a.lastUsed - b.lastUsed)
      .slice(0, req.samplers.length - 1);
    // Room for the prompt beyond what the primary holds (a parked state restored into it, or the
    // prompt itself; decode steps make room for their own tokens too).
    this.makeRoom(Math.max(0, req.tokens.length - primary.cached.length), [primary], req);
    const reuse = this.cache.load([primary, ...others], req);

    const active: Active = {
      req,
      slots: [primary, ...others],
      cachedTokens: reuse,
      startedAt: now(),
      firstTokenAt: 0,
      deadline: req.timeoutMs > 0 ? req.receivedAt + req.timeoutMs : Infinity,
      choicesLeft: req.samplers.length,
      completionTokens: 0,
      reasoningTokens: 0,
      cancelled: false,
      reasons: [],
      promptFed: req.tokens.length,
    };
    active.slots.forEach((s, choice) => {
      s.active = active;
      s.choice = choice;
      // Every choice's slot is reserved now; choices > 0 start generating when the prompt is done.
      s.state = "prompt";
      s.promptPos = reuse;
      s.generated = 0;
      s.pending = -1;
      s.row = -1;
      s.sessionKey = req.sessionKey;
      s.lastUsed = ++this.clock;
      s.sampler = new TokenSampler(this.model, req.samplers[choice]!);
      s.output = new ChoiceOutput(this.model, req.output);
      s.pace = this.drafter && new DraftPace(this.drafter.max);
    });
    this.active.set(req.id, active);
    this.stats.requests++;
    this.stats.cachedTokens += reuse;
    this.emit(req.id, { type: "started" });
  }

  // ---- one step ------------------------------------------------------------------------------------

  private expire(): void {
    const t = now();
    for (const a of [...this.active.values()]) {
      if (a.cancelled) this.finishRequest(a, "cancelled");
      else if (t >= a.deadline) this.finishRequest(a, "timeout");
    }
  }

  /**
   * Generating slots first (one token each), then prompt chunks within the step's prompt budget,
   * oldest request first so that one prompt finishes before the next starts. The budget guards
   * streams that were already running when a prompt arrived; prompts that arrived together with
   * them (before any of them streamed its first token) fill the batch, as they would have alone.
   * With requests waiting for a lane and no stream running, only the oldest prompt is fed: its stream
   * ends a step ahead of the others, so a lane frees while they run instead of all at once, with
   * every waiting prompt then fed together (8 conversations on 4 lanes, turn 5: 10 s, not 13.5 s).
   */
  private fillBatch(): boolean {
    const b = this.batch;
    b.clear();
    for (const s of this.slots) {
      s.row = -1;
      s.draft = [];
      s.draftRows = [];
      if (s.state === "generate" && s.pending >= 0) {
        s.row = b.add(s.pending, s.cached.length, s.seq, true);
      }
    }
    if (this.drafter) this.stats.draftedTokens += addDrafts(this.drafter, b, this.slots, this.opts.ctxPerSlot);
    this.genRows = b.size;
    const limit = Math.min(b.capacity, b.size + this.sideBudget);
    let firstStreamed = Infinity;
    for (const s of this.slots) if (s.state === "generate" && s.active) firstStreamed = Math.min(firstStreamed, s.active.firstTokenAt);
    const prompts = this.slots.filter((s) => s.state === "prompt" && s.choice === 0 && s.active).sort((x, y) => x.active!.startedAt - y.active!.startedAt);
    const oneOnly = this.queue.length > 0 && this.genRows === 0;
    for (const s of prompts) {
      if (oneOnly && b.size > 0) break;
      const tokens = s.active!.req.tokens;
      const cap = s.active!.req.receivedAt <= firstStreamed ? b.capacity : limit;
      while (s.promptPos < tokens.length && b.size < cap) {
        const last = s.promptPos === tokens.length - 1;
        const row = b.add(tokens[s.promptPos]!, s.promptPos, s.seq, last);
        if (last) s.row = row;
        s.promptPos++;
      }
    }
    this.promptRows = b.size - this.genRows;
    return b.size > 0;
  }

  /** Records what a decode put into each sequence's KV. */
  private record(batch: LlamaBatch): void {
    for (let i = 0; i < batch.size; i++) this.slots[batch.seqIds[i]!]!.cached.push(batch.tokens[i]!);
  }

  private sampleGenerating(): void {
    for (const s of this.slots) {
      if (s.state !== "generate" || s.row < 0) continue;
      if (s.draft.length === 0) this.next(s, s.row);
      else this.verify(s);
    }
  }

  private finishPrompts(): void {
    for (const s of this.slots) {
      if (s.state === "prompt" && s.choice === 0 && s.active && s.promptPos >= s.active.req.tokens.length && s.row >= 0) this.promptDone(s);
    }
  }

  /**
   * Samples a slot's tokens along its guessed ones: each guess the sampler also picks is already in
   * the KV cache with its logits, so the next token comes from its row; the cells after the last
   * kept guess are dropped. Sampling is the same as one token a step, so the output is too.
   */
  private verify(s: Slot): void {
    const draft = s.draft;
    const rows = s.draftRows;
    // Where the decoded pending token sits; the guesses follow it.
    const base = s.cached.length - draft.length - 1;
    let kept = 0;
    this.next(s, s.row);
    while (kept < draft.length && s.state === "generate" && s.pending === draft[kept]) {
      this.next(s, rows[kept]!);
      kept++;
    }
    this.stats.acceptedTokens += kept;
    this.stats.draftSteps++;
    s.pace?.record(draft.length, kept);
    const valid = base + 1 + kept;
    if (s.cached.length > valid) {
      this.ctx.seqRemove(s.seq, valid, -1);
      s.cached.length = valid;
    }
  }

  /** The prompt is in the KV cache: every choice samples its first token from the same logits. */
  private promptDone(primary: Slot): void {
    const a = primary.active!;
    const processed = a.req.tokens.length - a.cachedTokens;
    this.stats.promptTokens += processed;
    const row = primary.row;
    for (const s of a.slots) {
      if (s !== primary) {
        this.ctx.seqRemove(s.seq);
        this.ctx.seqCopy(primary.seq, s.seq, -1, -1);
        s.cached = primary.cached.slice();
      }
      s.state = "generate";
    }
    for (const s of a.slots) if (s.active === a) this.next(s, row);
  }

  /** Samples a slot's next token from batch row `row` and streams its text. */
  private next(s: Slot, row: number): void {
    const a = s.active!;
    let choice: TokenChoice;
    try {
      choice = s.sampler!.sample(this.ctx, row);
    } catch (err) {
      // A grammar with no valid continuation ends the choice with what it has.
      void err;
      this.finishChoice(s, "stop");
      return;
    }
    if (a.firstTokenAt === 0) a.firstTokenAt = now();
    s.generated++;
    a.completionTokens++;
    this.stats.generatedTokens++;
    const token = choice.token;
    if (this.model.isEog(token)) {
      s.pending = -1;
      this.finishChoice(s, "stop");
      return;
    }
    const delta = s.output!.push(token, a.req.output.logprobs ? choice : null);
    if (delta.content || delta.reasoning || delta.toolCalls.length || delta.logprobs.length) {
      this.emit(a.req.id, { type: "delta", index: s.choice, ...delta });
    }
    if (s.output!.stopHit !== null) {
      this.finishChoice(s, "stop");
    } else if (s.generated >= a.req.maxTokens) {
      this.finishChoice(s, "length");
    } else {
      s.pending = token;
    }
  }

  private finishChoice(s: Slot, reason: FinishReason): void {
    const a = s.active;
    if (!a || s.output === null) return;
    const out = s.output;
    const tail = out.finish();
    if (tail.content || tail.reasoning || tail.toolCalls.length || tail.logprobs.length) {
      this.emit(a.req.id, { type: "delta", index: s.choice, ...tail });
    }
    const toolCalls = out.toolCalls.filter(Boolean);
    const finalReason: FinishReason = reason === "stop" && toolCalls.length > 0 ? "tool_calls" : reason;
    a.reasoningTokens += out.reasoningTokens;
    a.reasons[s.choice] = finalReason;
    this.emit(a.req.id, { type: "finish", index: s.choice, reason: finalReason, toolCalls, stop: out.stopHit });
    this.release(s);
    a.choicesLeft--;
    if (a.choicesLeft === 0) this.complete(a);
  }

  private release(s: Slot): void {
    s.sampler?.dispose();
    s.sampler = null;
    s.output = null;
    s.state = "idle";
    s.active = null;
    s.pending = -1;
    s.row = -1;
    s.lastUsed = ++this.clock;
  }

  private finishRequest(a: Active, reason: FinishReason, error?: EngineError): void {
    if (error) {
      for (const s of a.slots) if (s.active === a) this.release(s);
      this.active.delete(a.req.id);
      this.emit(a.req.id, { type: "error", code: error.code, message: error.message, param: error.param });
      return;
    }
    for (const s of a.slots) {
      if (s.active !== a) continue;
      if (s.state === "prompt" && s.choice === 0) {
        // An unfinished prompt leaves a partial cache that is still a valid prefix, and only that
        // part was processed (and is billed).
        s.cached = s.cached.slice(0, s.promptPos);
        a.promptFed = s.promptPos;
      }
      if (s.output) this.finishChoice(s, reason);
      else this.release(s);
    }
  }

  private complete(a: Active): void {
    this.active.delete(a.req.id);
    const end = now();
    const first = a.firstTokenAt || end;
    const processed = a.promptFed - a.cachedTokens;
    const promptMs = first - a.startedAt;
    const generationMs = end - first;
    this.emit(a.req.id, {
      type: "done",
      slot: a.slots[0]!.seq,
      reasons: a.reasons,
      usage: {
        promptTokens: a.promptFed,
        cachedTokens: Math.min(a.cachedTokens, a.promptFed),
        completionTokens: a.completionTokens,
        reasoningTokens: a.reasoningTokens,
      },
      timings: {
        queueMs: a.startedAt - a.req.receivedAt,
        promptMs,
        generationMs,
        promptTokensPerSecond: promptMs > 0 ? (processed * 1000) / promptMs : 0,
        // The first token comes with the prompt; the rate counts the ones after it.
        tokensPerSecond: generationMs > 0 ? ((a.completionTokens - a.slots.length) * 1000) / generationMs : 0,
      },
    });
  }
}

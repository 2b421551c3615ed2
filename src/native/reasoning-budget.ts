// A thinking budget as llama.cpp's reasoning-budget sampler has it: count the tokens generated inside
// the reasoning block and, once the budget is spent, force the block's closing tag so the answer follows.

/** Token sequences of one chat format's reasoning block, and the budget on its tokens. */
export interface ReasoningBudgetOptions {
  /** Tokens generated inside the block before the closing tag is forced. */
  budget: number;
  /** The opening tag's tokens (e.g. `<think>`); empty when the prompt already opened the block. */
  start: number[];
  /** Every closing tag's tokens; any one of them ends the block on its own. */
  ends: number[][];
  /** What is forced when the budget is spent: the first closing tag (after an optional message). */
  forced: number[];
  /** The prompt ends inside the block (the template opened it): counting starts at once. */
  open: boolean;
}

type State = "idle" | "counting" | "utf8" | "forcing" | "done";

export class ReasoningBudget {
  private state: State;
  private left: number;
  private forcedAt = 0;
  private recent: number[] = [];
  /** UTF-8 continuation bytes the text still owes: forcing waits for a whole character. */
  private owed = 0;

  constructor(
    private readonly opts: ReasoningBudgetOptions,
    private readonly bytesOf: (token: number) => Uint8Array,
  ) {
    this.state = opts.open ? "counting" : "idle";
    this.left = opts.budget;
    if (this.state === "counting" && this.left <= 0) this.state = "forcing";
  }

  /** The token the next step must produce, or null to sample freely. */
  forcedToken(): number | null {
    return this.state === "forcing" ? (this.opts.forced[this.forcedAt] ?? null) : null;
  }

  /** Whether the budget ran out and the closing tag was (or is being) forced. */
  get exhausted(): boolean {
    return this.state === "forcing" || (this.state === "done" && this.forcedAt > 0);
  }

  /** Advances the state machine past a generated (or forced) token. */
  accept(token: number): void {
    this.recent.push(token);
    const longest = Math.max(this.opts.start.length, ...this.opts.ends.map((e) => e.length), 1);
    if (this.recent.length > longest) this.recent.shift();
    switch (this.state) {
      case "idle":
        if (this.opts.start.length > 0 && this.endsWith(this.opts.start)) {
          this.state = "counting";
          this.left = this.opts.budget;
          if (this.left <= 0) this.state = "forcing";
        }
        return;
      case "counting":
      case "utf8":
        if (this.opts.ends.some((e) => e.length > 0 && this.endsWith(e))) {
          this.state = "done";
          return;
        }
        this.track(token);
        if (this.state === "counting") this.left--;
        if (this.left <= 0) this.state = this.owed > 0 ? "utf8" : "forcing";
        return;
      case "forcing":
        this.forcedAt++;
        if (this.forcedAt >= this.opts.forced.length) this.state = "done";
        return;
      case "done":
        return;
    }
  }

  private endsWith(seq: number[]): boolean {
    if (seq.length > this.recent.length) return false;
    const off = this.recent.length - seq.length;
    return seq.every((t, i) => this.recent[off + i] === t);
  }

  private track(token: number): void {
    for (const b of this.bytesOf(token)) {
      if (this.owed > 0 && (b & 0xc0) === 0x80) this.owed--;
      else if (b >= 0xf0) this.owed = 3;
      else if (b >= 0xe0) this.owed = 2;
      else if (b >= 0xc0) this.owed = 1;
      else this.owed = 0;
    }
  }
}

// Stop strings over streamed text: text that could still be the start of a stop string is held
// back, so a stop is cut exactly and never reaches the client, even when it spans tokens.

export interface StopResult {
  /** Text safe to emit now. */
  text: string;
  /** The stop string that matched, when one did (generation must end). */
  stop: string | null;
}

export class StopMatcher {
  private pending = "";
  private readonly stops: string[];
  private readonly longest: number;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.longest = Math.max(0, ...this.stops.map((s) => s.length));
  }

  push(delta: string): StopResult {
    if (this.stops.length === 0) return { text: delta, stop: null };
    const text = this.pending + delta;
    // The earliest occurrence wins; the search only needs to start where new text could complete one.
    const from = Math.max(0, this.pending.length - this.longest + 1);
    let at = -1;
    let hit: string | null = null;
    for (const s of this.stops) {
      const i = text.indexOf(s, Math.max(0, from - s.length + 1));
      if (i !== -1 && (at === -1 || i < at)) {
        at = i;
        hit = s;
      }
    }
    if (hit !== null) {
      this.pending = "";
      return { text: text.slice(0, at), stop: hit };
    }
    const keep = this.heldSuffix(text);
    this.pending = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stop: null };
  }

  /** At the end of generation, held-back text was not a stop after all. */
  flush(): string {
    const rest = this.pending;
    this.pending = "";
    return rest;
  }

  /** Length of the longest suffix of text that is a proper prefix of some stop string. */
  private heldSuffix(text: string): number {
    const max = Math.min(text.length, this.longest - 1);
    for (let len = max; len > 0; len--) {
      const tail = text.slice(text.length - len);
      if (this.stops.some((s) => s.startsWith(tail))) return len;
    }
    return 0;
  }
}

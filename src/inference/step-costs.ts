// The automatic prompt budget of chunked prefill: running averages of what a decode step costs
// with generating slots only and what each prompt token adds, and the chunk that keeps a step
// carrying prompt tokens within about twice a plain decode step.

/** The least prompt progress a step makes beside generating slots, however slow prompts are. */
export const MIN_PROMPT_CHUNK = 16;
/** A step with a prompt chunk may take this much longer than a plain decode step. */
const STALL_RATIO = 1;
/** Weight of the newest step time in the running averages. */
const EMA = 0.2;

export class StepCosts {
  /** ms of a decode step with generating slots only, and ms per prompt token. */
  private decodeStepMs = 0;
  private promptTokenMs = 0;

  /** Prompt tokens a step may add beside generating slots, at most `room`. */
  budget(room: number): number {
    // Until both costs are measured, a moderate chunk.
    if (this.decodeStepMs === 0 || this.promptTokenMs === 0) return Math.min(64, room);
    const fit = Math.floor((this.decodeStepMs * STALL_RATIO) / this.promptTokenMs);
    return Math.max(Math.min(MIN_PROMPT_CHUNK, room), Math.min(fit, room));
  }

  /** Records a decode of `genRows` next tokens and `promptRows` prompt tokens that took `ms`. */
  learn(ms: number, genRows: number, promptRows: number): void {
    const ema = (old: number, x: number) => (old === 0 ? x : old + EMA * (x - old));
    if (promptRows === 0 && genRows > 0) {
      this.decodeStepMs = ema(this.decodeStepMs, ms);
    } else if (promptRows >= 8) {
      // What the prompt tokens added to the step, per token.
      const base = genRows > 0 ? this.decodeStepMs : 0;
      this.promptTokenMs = ema(this.promptTokenMs, Math.max(ms - base, ms * 0.1) / promptRows);
    }
  }
}

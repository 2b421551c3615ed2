// An engine stream on its way to a front door: waiting for the first output (so early errors keep
// their HTTP status), replaying what was read, and timing it for the metrics.
import { ApiError } from "../http/errors.ts";
import type { EngineEvent } from "../inference/types.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { CocoonOptions } from "./options.ts";

/**
 * Waits for the first output (or the end) so that errors found before any output, and a Cocoon
 * timeout that produced nothing, still get their own HTTP status even for streams.
 */
export async function firstEvents(stream: AsyncIterator<EngineEvent>, cocoon: CocoonOptions): Promise<EngineEvent[]> {
  const head: EngineEvent[] = [];
  for (;;) {
    const r = await stream.next();
    if (r.done) return head;
    head.push(r.value);
    if (r.value.type === "delta") return head;
    if (r.value.type === "done") {
      const timedOut = head.some((e) => e.type === "finish" && e.reason === "timeout");
      if (timedOut && r.value.usage.completionTokens === 0) {
        throw new ApiError("timeout", `no output within the timeout of ${cocoon.timeoutMs / 1000} s`, "timeout");
      }
      return head;
    }
  }
}

/** Replays buffered events, then the rest of the stream. */
export async function* replay(head: EngineEvent[], stream: AsyncIterator<EngineEvent>): AsyncGenerator<EngineEvent> {
  yield* head;
  for (;;) {
    const r = await stream.next();
    if (r.done) return;
    yield r.value;
  }
}

/**
 * Passes events through while timing them for the metrics: time to first output, gaps between
 * outputs, tokens and how the generation ended.
 */
export async function* instrument(
  events: AsyncGenerator<EngineEvent>,
  metrics: Metrics,
  o: { model: string; endpoint: string; submittedAt: number },
): AsyncGenerator<EngineEvent> {
  let first: number | null = null;
  let last = 0;
  const gaps: number[] = [];
  let reason = "stop";
  metrics.active++;
  try {
    for await (const e of events) {
      if (e.type === "delta") {
        const t = performance.now();
        if (first === null) first = t;
        else gaps.push((t - last) / 1000);
        last = t;
      } else if (e.type === "finish") reason = e.reason;
      else {
        metrics.observeGeneration({
          model: o.model,
          endpoint: o.endpoint,
          promptTokens: e.usage.promptTokens,
          cachedTokens: e.usage.cachedTokens,
          completionTokens: e.usage.completionTokens,
          reasoningTokens: e.usage.reasoningTokens,
          // An answer the chat parser held back entirely (e.g. only whitespace) still had a first token:
          // the engine's queue and prompt time is when it came.
          ttft: first !== null ? (first - o.submittedAt) / 1000 : e.usage.completionTokens > 0 ? (e.timings.queueMs + e.timings.promptMs) / 1000 : null,
          interTokenLatencies: gaps,
          duration: (performance.now() - o.submittedAt) / 1000,
          finishReason: reason,
        });
      }
      yield e;
    }
  } finally {
    metrics.active--;
  }
}

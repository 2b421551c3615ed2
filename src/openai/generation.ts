// How every generating route starts one engine request: reserve (billing), submit, wait for the
// first output so that early errors keep their HTTP status, then record the session turn and time
// the stream for the metrics. Wire formats (chunks, text pieces) are built on top by the caller.
import type { Generation } from "../inference/engine.ts";
import type { EngineEvent, GenerateRequest, ModelInfo } from "../inference/types.ts";
import { toApiError } from "../http/errors.ts";
import type { Principal } from "../platform/service.ts";
import type { Turn } from "../sessions/service.ts";
import { recordTurn } from "../sessions/turn.ts";
import { RequestBilling } from "./billing.ts";
import { firstEvents, instrument, replay, type CocoonOptions, type InferenceDeps } from "./service.ts";

export interface StartedGeneration {
  /** The engine's stream; return() cancels the generation. */
  source: Generation;
  /** Its events from the first: replayed head, then the rest, recorded into the turn and timed. */
  events: AsyncGenerator<EngineEvent>;
  billing: RequestBilling | null;
}

/**
 * Errors before any output are thrown as ApiErrors, with the reservation settled and the session's
 * lock released; afterwards the turn is committed and released by the events' consumer.
 */
export async function startGeneration(
  deps: InferenceDeps,
  o: {
    request: GenerateRequest;
    model: ModelInfo;
    principal: Principal | null;
    endpoint: "chat" | "completion";
    cocoon: CocoonOptions;
    signal: AbortSignal | undefined;
    /** The session turn this request answers (its lock held), or null outside sessions. */
    turn: Turn | null;
  },
): Promise<StartedGeneration> {
  const { request, model, turn, signal } = o;
  let billing: RequestBilling | null = null;
  let source: Generation;
  const submittedAt = performance.now();
  try {
    billing = RequestBilling.start(deps.platform, o.principal, request, model, o.endpoint, o.cocoon.guid);
    try {
      source = deps.engine.submit(request, turn ? (signal ? AbortSignal.any([signal, turn.signal]) : turn.signal) : signal);
    } catch (err) {
      billing?.settle(null);
      throw toApiError(err);
    }
  } catch (err) {
    turn?.end();
    throw err;
  }
  billing?.watch(source);
  let head: EngineEvent[];
  try {
    head = await firstEvents(source, o.cocoon);
  } catch (err) {
    await source.return?.();
    turn?.end();
    throw toApiError(err);
  }
  const replayed = replay(head, source);
  const recorded = turn ? recordTurn(replayed, turn, { model: model.id, settle: (done) => billing?.settle(done).nanoton ?? null }) : replayed;
  return { source, events: instrument(recorded, deps.metrics, { model: model.id, endpoint: o.endpoint, submittedAt }), billing };
}

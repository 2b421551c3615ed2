// How every generating request starts: reserve (billing), submit, wait for the first output so that
// early errors keep their HTTP status, then record the session turn and time the stream for the
// metrics. Front doors build their wire format (chunks, text pieces, events) on the events.
import type { Generation } from "../inference/engine.ts";
import type { EngineEvent, GenerateRequest, ModelInfo } from "../inference/types.ts";
import { toApiError } from "../http/errors.ts";
import type { Cost, Principal } from "../platform/service.ts";
import { ownerOf, type Turn } from "../sessions/service.ts";
import { RequestBilling } from "./billing.ts";
import type { GenerationDeps } from "./deps.ts";
import type { CocoonOptions } from "./options.ts";
import { firstEvents, instrument, replay } from "./stream.ts";
import { recordTurn } from "./turn.ts";
import { refuseUnfittable } from "../inference/fits.ts";

/**
 * The text bytes of the last message, which every chat template renders verbatim (earlier turns'
 * reasoning may be dropped, so only the last message is a lower bound of the rendered prompt).
 */
function lastMessageBytes(request: GenerateRequest): number {
  const content = request.messages!.at(-1)!.content as unknown;
  if (typeof content === "string") return Buffer.byteLength(content);
  if (!Array.isArray(content)) return 0;
  return content.reduce((n: number, p: unknown) => n + (typeof (p as { text?: unknown }).text === "string" ? Buffer.byteLength((p as { text: string }).text) : 0), 0);
}

type Done = Extract<EngineEvent, { type: "done" }>;

export interface StartedGeneration {
  /** The engine's stream; return() cancels the generation. */
  source: Generation;
  /** Its events from the first: replayed head, then the rest, recorded into the turn and timed. */
  events: AsyncGenerator<EngineEvent>;
  /** Charges what the request processed (idempotent; null when billing is off). */
  settle(done: Done | null): Promise<Cost | null>;
}

export interface GenerationStart {
  model: ModelInfo;
  principal: Principal | null;
  endpoint: "chat" | "completion" | "responses";
  cocoon: CocoonOptions;
  signal: AbortSignal | undefined;
}

/**
 * One request. Errors before any output are thrown as ApiErrors, with the reservation settled and
 * the session's lock released; afterwards the turn is committed and released by the events' consumer.
 */
export async function startGeneration(
  deps: GenerationDeps,
  o: GenerationStart & {
    request: GenerateRequest;
    /** The session turn this request answers (its lock held), or null outside sessions. */
    turn: Turn | null;
  },
): Promise<StartedGeneration> {
  const { turn } = o;
  const signal = turn ? (o.signal ? AbortSignal.any([o.signal, turn.signal]) : turn.signal) : o.signal;
  let started: StartedGeneration[];
  try {
    started = await startGenerations(deps, { ...o, signal }, [o.request]);
  } catch (err) {
    await turn?.end();
    throw err;
  }
  const g = started[0]!;
  if (!turn) return g;
  return { ...g, events: recordTurn(g.events, turn, { model: o.model.id, settle: async (done) => (await g.settle(done))?.nanoton ?? null }) };
}

/**
 * Several requests of one API call (e.g. /v1/completions with a list of prompts), each reserved and
 * billed as its own request. All start together and each is waited on until it has output, so a
 * failing one fails the call before anything went out, with every reservation released.
 */
export async function startGenerations(deps: GenerationDeps, o: GenerationStart, requests: GenerateRequest[]): Promise<StartedGeneration[]> {
  const submitted: { source: Generation; billing: RequestBilling | null; submittedAt: number }[] = [];
  // A call refused with an error status charges nothing: every reservation is released.
  const abort = async (err: unknown): Promise<never> => {
    for (const s of submitted) {
      await s.billing?.settle(null).catch(() => {});
      await s.source.return?.();
    }
    throw toApiError(err);
  };
  for (const request of requests) {
    // A text prompt that cannot fit is refused before anything is reserved or tokenized.
    try {
      if (typeof request.prompt === "string") refuseUnfittable(Buffer.byteLength(request.prompt) + (request.suffix ? Buffer.byteLength(request.suffix) : 0), o.model, "prompt");
      else if (request.messages?.length) refuseUnfittable(lastMessageBytes(request), o.model, "messages", "the last message");
    } catch (err) {
      return abort(err);
    }
    // Cached prefixes are reused within the caller's account only (what was cached shows in usage).
    request.cacheScope ??= deps.cacheScope?.() ?? ownerOf(o.principal);
    const submittedAt = performance.now();
    let billing: RequestBilling | null = null;
    try {
      billing = await RequestBilling.start(deps.platform, o.principal, request, o.model, o.endpoint, o.cocoon.guid);
      const source = deps.engine.submit(request, o.signal, { maxCoefficient: o.cocoon.maxCoefficient });
      billing?.watch(source);
      submitted.push({ source, billing, submittedAt });
    } catch (err) {
      await billing?.settle(null).catch(() => {});
      return abort(err);
    }
  }
  const heads = await Promise.allSettled(submitted.map((s) => firstEvents(s.source, o.cocoon)));
  const failed = heads.find((h): h is PromiseRejectedResult => h.status === "rejected");
  if (failed) return abort(failed.reason);
  return submitted.map((s, i) => ({
    source: s.source,
    events: instrument(replay((heads[i] as PromiseFulfilledResult<EngineEvent[]>).value, s.source), deps.metrics, {
      model: o.model.id,
      endpoint: o.endpoint,
      submittedAt: s.submittedAt,
    }),
    settle: async (done) => (s.billing ? s.billing.settle(done) : null),
  }));
}

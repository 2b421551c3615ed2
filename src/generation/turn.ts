// The session turn of a generation: passes the events through, collects the reply
// of choice 0 and stores it with the turn's usage and charge when the generation completes. A
// cancelled generation stores nothing; the lock is released however the stream ends.
import type { EngineEvent } from "../inference/types.ts";
import type { Turn } from "../sessions/service.ts";

type Done = Extract<EngineEvent, { type: "done" }>;

export async function* recordTurn(
  events: AsyncGenerator<EngineEvent>,
  turn: Turn,
  o: { model: string; settle: (done: Done) => Promise<bigint | null> },
): AsyncGenerator<EngineEvent> {
  let content = "";
  let reasoning = "";
  try {
    for await (const e of events) {
      if (e.type === "delta" && e.index === 0) {
        content += e.content;
        reasoning += e.reasoning;
      } else if (e.type === "done" && !e.reasons.includes("cancelled")) {
        // Settled here first (billing is idempotent) so the stored cost is exactly the charge.
        const cost = await o.settle(e);
        await turn.commit({
          model: o.model,
          content,
          reasoning,
          usage: { promptTokens: e.usage.promptTokens, cachedTokens: e.usage.cachedTokens, completionTokens: e.usage.completionTokens },
          cost,
        });
      }
      yield e;
    }
  } finally {
    await turn.end();
  }
}

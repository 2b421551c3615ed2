// What the generation path needs: the engine, the metrics, the platform (keys and billing; null with
// --no-auth), the models' price coefficients and the session store. The composition root builds it.
import type { Metrics } from "../ops/metrics.ts";
import type { Platform } from "../platform/service.ts";
import type { SessionService } from "../sessions/service.ts";
import type { Backend } from "./backend.ts";

export interface GenerationDeps {
  /** The local engine, or on a gateway the cluster of it and the upstream workers. */
  engine: Backend;
  metrics: Metrics;
  /** Keys, rate limits and billing; null when the server runs with --no-auth. */
  platform: Platform | null;
  /** Price coefficient of each model (Cocoon's max_coefficient compares against it). */
  coefficient(model: string): number;
  /** Other names of the models (alias → model id): requests may use either. */
  aliases?: ReadonlyMap<string, string>;
  /**
   * The prompt-cache scope a trusted gateway named for the current request (a worker's
   * X-Cocoon-Cache-Scope), so that accounts behind one gateway never share cached prefixes on a
   * worker. Absent or undefined: the caller's own account.
   */
  cacheScope?(): string | undefined;
  /** Server-side chat sessions (session_id). */
  sessions: SessionService;
}

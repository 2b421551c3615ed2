// Seed 001's /api/stats: the served models and their load, read from this server's own engine.
import { NetworkStats } from "../model.ts";
import { iso } from "../wire.ts";
import { routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

export function networkRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  return routeFile("platform-network", auth)
    .model({ NetworkStats })
    .get(
      "/api/stats",
      () => {
        let stats: ReturnType<PlatformRouteDeps["stats"]> = [];
        try {
          stats = deps.stats();
        } catch {
          stats = [];
        }
        const models = stats.map((s) => ({
          id: s.id,
          // A gateway's remote model counts the workers serving it; a local model is this server.
          workers: s.workers ?? 1,
          running: s.slotsBusy,
          capacity: s.slotsTotal,
          load_pct: s.slotsTotal > 0 ? Math.round((s.slotsBusy / s.slotsTotal) * 1000) / 10 : 0,
          queued: s.queued,
        }));
        const online = models.length > 0;
        return { models, status: online ? ("online" as const) : ("offline" as const), cached_at: online ? iso(Date.now()) : null };
      },
      {
        auth: "public",
        response: { 200: "NetworkStats" },
        detail: { tags: ["Network"], summary: "Get live statistics", description: "No authentication. Served models with their load; `status` is 'offline' while no model is loaded." },
      },
    );
}

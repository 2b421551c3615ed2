// Builds the Elysia app in-process through the composition root (src/app.ts) with a real engine on
// the tiny model.
import { Engine } from "../../src/inference/engine.ts";
import type { Platform } from "../../src/platform/service.ts";
import type { SessionService } from "../../src/sessions/service.ts";
import type { TonSetup } from "../../src/ton/open.ts";
import type { CorsPolicy } from "../../src/http/cors.ts";
import { createApp, engineMetrics, type App } from "../../src/app.ts";
import type { Metrics } from "../../src/ops/metrics.ts";
import { TINY_MODEL } from "./model.ts";

export const TINY_ID = "tiny-qwen3";

export interface InProcessApp {
  app: App;
  engine: Engine;
  metrics: Metrics;
  /** Server-side errors the app logged (500s), for diagnostics. */
  logged: string[];
  /** app.handle on http://localhost + path. */
  request(path: string, init?: RequestInit): Promise<Response>;
  close(): void;
}

export async function startInProcessApp(
  opts: { maxBodyBytes?: number; slots?: number; platform?: Platform; maxQueue?: number; ton?: TonSetup | null; strictFields?: boolean; cors?: CorsPolicy; sessions?: SessionService } = {},
): Promise<InProcessApp> {
  const engine = await Engine.start({ models: [{ id: TINY_ID, path: TINY_MODEL }], slots: opts.slots ?? 4, ctxSize: 1024, maxQueue: opts.maxQueue ?? 64 });
  const metrics = engineMetrics(() => engine);
  const logged: string[] = [];
  const app = createApp({
    engine,
    loadedEngine: () => engine,
    metrics,
    platform: opts.platform ?? null,
    sessions: opts.sessions,
    ton: opts.ton ?? null,
    version: "0.0.0-test",
    maxBodyBytes: opts.maxBodyBytes,
    strictFields: opts.strictFields,
    cors: opts.cors,
    log: (line) => logged.push(line),
  });
  return {
    app,
    engine,
    metrics,
    logged,
    // Elysia reads the path from a fixed offset in the URL, so the host must be a real-looking one.
    request: (path, init) => app.handle(new Request(`http://localhost${path}`, init)),
    close: () => engine.close(),
  };
}

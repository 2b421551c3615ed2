// The platform routes: seed 001's Cocoon Platform API (/api/register, /api/login, /v1/keys,
// /v1/balance, /v1/deposit, /v1/pricing, /api/stats), the caller's usage and keys, and admin routes,
// one file per concern under routes/. Key routes carry the X-RateLimit-* headers, errors included.
import { Elysia } from "elysia";
import { authPlugin } from "../http/auth.ts";
import { accountRoutes } from "./routes/accounts.ts";
import { adminRoutes } from "./routes/admin.ts";
import { adminLimitRoutes } from "./routes/admin-limits.ts";
import { billingRoutes } from "./routes/billing.ts";
import type { PlatformRouteDeps } from "./routes/common.ts";
import { keyRoutes } from "./routes/keys.ts";
import { networkRoutes } from "./routes/network.ts";
import { operatorRoutes } from "./routes/operator.ts";
import { usageRoutes } from "./routes/usage.ts";

export type { PlatformRouteDeps } from "./routes/common.ts";

export function platformRoutes(deps: PlatformRouteDeps) {
  // One auth plugin for every file: a request is authenticated and counted once.
  const auth = authPlugin(deps.platform);
  return new Elysia({ name: "platform" })
    .use(accountRoutes(deps, auth))
    .use(billingRoutes(deps, auth))
    .use(networkRoutes(deps, auth))
    .use(usageRoutes(deps, auth))
    .use(keyRoutes(deps, auth))
    .use(adminRoutes(deps, auth))
    .use(operatorRoutes(deps, auth))
    .use(adminLimitRoutes(deps, auth));
}

// A real Platform with keys, billing and rate limits on a temporary SQLite store, for tests of billed
// routes: funded accounts' keys on demand, and one close() that removes everything.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import { afterAll, beforeAll } from "bun:test";
import { openStore } from "../../src/store/db.ts";
import { Platform } from "../../src/platform/service.ts";
import { createAccount } from "../../src/platform/accounts.ts";
import { createKey } from "../../src/platform/keys.ts";
import { credit } from "../../src/platform/ledger.ts";
import { parseTon, pricingConfig } from "../../src/platform/pricing.ts";
import { startInProcessApp, type InProcessApp } from "./app.ts";

export interface BilledPlatform {
  db: Database;
  platform: Platform;
  /** A new account credited with `balanceTon` (default 10 TON), and a key of it. */
  account(balanceTon?: string): { id: number; key: string; keyId: number };
  close(): void;
}

/** Rate limits far above what a test sends, so that only billing and keys decide. */
export function billedPlatform(name: string): BilledPlatform {
  const dir = mkdtempSync(join(tmpdir(), `cocoon-${name}-`));
  const db = openStore(join(dir, `${name}.sqlite`));
  const platform = new Platform(db, { auth: true, adminToken: "", pricing: pricingConfig({ baseNanoton: 20n }), rateLimits: { rpm: 10_000, tpm: 100_000_000, rpd: 100_000 }, signupCredit: 0n });
  return {
    db,
    platform,
    account(balanceTon = "10") {
      const a = createAccount(db);
      if (balanceTon !== "0") credit(db, a.id, parseTon(balanceTon), "adjustment", `test:${a.id}`);
      const k = createKey(db, a.id);
      return { id: a.id, key: k.key, keyId: k.id };
    },
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * For a test file: a billed platform and an in-process app on it, started before the file's tests
 * and closed (store removed) after them. `app` is set once the tests run.
 */
export function billedApp(name: string): { billed: BilledPlatform; readonly app: InProcessApp } {
  const billed = billedPlatform(name);
  let app: InProcessApp | null = null;
  beforeAll(async () => {
    app = await startInProcessApp({ platform: billed.platform });
  });
  afterAll(() => {
    app?.close();
    billed.close();
  });
  return {
    billed,
    get app() {
      if (!app) throw new Error("the app starts in beforeAll");
      return app;
    },
  };
}

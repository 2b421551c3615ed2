// Rate limits counted in the database, for several gateways on one Postgres: the same fixed UTC
// windows and decisions as the in-memory limiter (ratelimit.ts), checked and counted in one transaction.
import { dual, run, all, tx, type Q } from "../store/query.ts";
import { admitted, refusal, RATE_DAY_MS, RATE_MINUTE_MS, type Admission, type Counter, type CounterId, type KeyState } from "./ratelimit.ts";

interface WindowRow {
  counter: string;
  win: "m" | "d";
  start: bigint;
  requests: bigint;
  tokens: bigint;
}

// Each window row is upserted first: that creates it, rolls it over when its window ended, and locks
// it (Postgres), so two gateways admitting the same key at once are counted one after the other.
const ROLL = `INSERT INTO rate_counters (counter, win, start, requests, tokens) VALUES (?1, ?2, ?3, 0, 0)
  ON CONFLICT (counter, win) DO UPDATE SET
    requests = CASE WHEN rate_counters.start < excluded.start THEN 0 ELSE rate_counters.requests END,
    tokens = CASE WHEN rate_counters.start < excluded.start THEN 0 ELSE rate_counters.tokens END,
    start = CASE WHEN rate_counters.start < excluded.start THEN excluded.start ELSE rate_counters.start END
  RETURNING counter, win, start, requests, tokens`;

/**
 * Checks every counter's windows and, when all allow it, counts the request on each, in one
 * transaction: an admission across gateways is as exact as the in-memory one within a process.
 */
export const admitShared = dual(function* (counters: readonly Counter[], now: number = Date.now()): Q<Admission> {
  const minute = now - (now % RATE_MINUTE_MS);
  const day = now - (now % RATE_DAY_MS);
  return yield* tx(function* (): Q<Admission> {
    const states: KeyState[] = [];
    for (const c of counters) {
      const id = String(c.id);
      const [m] = yield* all<WindowRow>(ROLL, id, "m", minute);
      const [d] = yield* all<WindowRow>(ROLL, id, "d", day);
      states.push({ minuteStart: Number(m!.start), minuteRequests: Number(m!.requests), minuteTokens: Number(m!.tokens), dayStart: Number(d!.start), dayRequests: Number(d!.requests) });
    }
    const refused = refusal(counters, states, now);
    if (refused) return refused;
    for (const c of counters) yield* run("UPDATE rate_counters SET requests = requests + 1 WHERE counter = ?", String(c.id));
    for (const s of states) {
      s.minuteRequests++;
      s.dayRequests++;
    }
    return admitted(counters, states);
  });
});

/** Adds tokens processed to the counter's current minute (a window already rolled over counts them in the new one). */
export const addSharedTokens = dual(function* (id: CounterId, n: number, now: number = Date.now()): Q<void> {
  if (!Number.isFinite(n) || n <= 0) return;
  const minute = now - (now % RATE_MINUTE_MS);
  yield* run(
    `INSERT INTO rate_counters (counter, win, start, requests, tokens) VALUES (?1, 'm', ?2, 0, ?3)
     ON CONFLICT (counter, win) DO UPDATE SET
       requests = CASE WHEN rate_counters.start < excluded.start THEN 0 ELSE rate_counters.requests END,
       tokens = CASE WHEN rate_counters.start < excluded.start THEN excluded.tokens ELSE rate_counters.tokens + excluded.tokens END,
       start = CASE WHEN rate_counters.start < excluded.start THEN excluded.start ELSE rate_counters.start END`,
    String(id), minute, Math.floor(n),
  );
});

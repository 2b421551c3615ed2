// Who may release a reservation: each billing process (a server, a gateway) holds a lease it renews
// while it runs, and its reservations name it. Holds of an owner whose lease expired, or who is proven
// dead (its pid gone on this machine, or the machine rebooted), are released; nobody else's ever.
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";
import { all, dual, forUpdate, get, run, tx, type Db, type Q } from "../store/query.ts";
import { releaseOpenReservations } from "./ledger.ts";

/** Where this process runs: a pid is only meaningful on the same machine and pid namespace. */
export interface Whereabouts {
  machine: string;
  /** The machine's boot id; '' when unknown. */
  boot: string;
  pid: number;
}

function read(fn: () => string): string {
  try {
    return fn().trim();
  } catch {
    return "";
  }
}

/** This process's whereabouts (Linux adds the boot id and the pid namespace; elsewhere the host name). */
export function here(): Whereabouts {
  const ns = read(() => readlinkSync("/proc/self/ns/pid"));
  return { machine: ns ? `${hostname()} ${ns}` : hostname(), boot: read(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8")), pid: process.pid };
}

/** Whether a process with this pid exists here (EPERM: it exists, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

interface LeaseRow {
  owner: string;
  machine: string;
  boot: string;
  pid: bigint;
  expires_at: bigint;
}

/** Takes or renews the lease of `owner` until now + ttlMs. Returns false when it had lapsed (or was never taken). */
export const renewLease = dual(function* (owner: string, at: Whereabouts, ttlMs: number, now: number = Date.now()): Q<boolean> {
  return yield* tx(function* () {
    const r = yield* run("UPDATE leases SET heartbeat_at = ?, expires_at = ? WHERE owner = ?", now, now + ttlMs, owner);
    if (r.changes > 0) return true;
    // ON CONFLICT: on Postgres a sweeper may hold the row, dropping it, while we renew; the lease is then new.
    yield* run(
      "INSERT INTO leases (owner, machine, boot, pid, started_at, heartbeat_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at",
      owner, at.machine, at.boot, at.pid, now, now, now + ttlMs,
    );
    return false;
  });
});

function* dropLeaseQ(owner: string): Q<void> {
  yield* run("DELETE FROM leases WHERE owner = ?", owner);
}

/** Ends a lease (a clean stop, after its owner released what it still held). */
export const dropLease = dual(dropLeaseQ);

/**
 * Releases the open reservations of every owner but `self` that is gone: no lease (or no owner at
 * all: written before owners existed), a lease expired at `now`, or a lease on this machine whose
 * process is dead or from an earlier boot. Their leases are dropped. Returns how many it released.
 */
export const releaseOrphaned = dual(function* (self: string, at: Whereabouts, now: number = Date.now(), alive: (pid: number) => boolean = pidAlive): Q<number> {
  return yield* tx(function* () {
    const owners = yield* all<{ owner: string | null }>("SELECT DISTINCT owner FROM reservations WHERE closed_at IS NULL AND (owner IS NULL OR owner <> ?)", self);
    const gone: (string | null)[] = [];
    // The lease row is locked (Postgres) while we decide: its owner renewing meanwhile waits, then
    // finds it dropped and says so, rather than both believing the lease.
    const lock = yield* forUpdate();
    for (const { owner } of owners) {
      if (owner === null) {
        gone.push(owner);
        continue;
      }
      const l = yield* get<LeaseRow>(`SELECT owner, machine, boot, pid, expires_at FROM leases WHERE owner = ?${lock}`, owner);
      if (!l || Number(l.expires_at) <= now) gone.push(owner);
      else if (l.machine === at.machine && ((l.boot !== "" && at.boot !== "" && l.boot !== at.boot) || !alive(Number(l.pid)))) gone.push(owner);
    }
    // Leases that outlived their owner without holding anything are dropped too.
    const expired = (yield* all<{ owner: string }>("SELECT owner FROM leases WHERE expires_at <= ?", now)).map((l) => l.owner);
    for (const owner of new Set([...gone, ...expired])) if (owner !== null && owner !== self) yield* dropLeaseQ(owner);
    return gone.length ? yield* releaseOpenReservations.q(gone, "released: its owner is gone") : 0;
  });
});

/** How often a lease is renewed, and how long one lasts without renewal. */
export const LEASE_RENEW_MS = 5_000;
export const LEASE_TTL_MS = 60_000;

/**
 * A running server's lease: taken at start (releasing the holds of owners that are gone), renewed
 * on a timer (which also sweeps up after gateways that died elsewhere), and ended at stop, releasing
 * whatever of its own was still open.
 */
export class Lease {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly at = here();

  constructor(
    private readonly db: Db,
    readonly owner: string,
    private readonly log: (level: "warn" | "error", line: string) => void,
    private readonly o: { renewMs?: number; ttlMs?: number } = {},
  ) {}

  /** Takes the lease and releases the orphans; returns how many holds it released. */
  async start(): Promise<number> {
    await renewLease(this.db, this.owner, this.at, this.o.ttlMs ?? LEASE_TTL_MS);
    const released = await releaseOrphaned(this.db, this.owner, this.at);
    if (released > 0) this.log("warn", `released ${released} reservations whose process is gone (an earlier crash)`);
    this.timer = setInterval(() => void this.beat(), this.o.renewMs ?? LEASE_RENEW_MS);
    this.timer.unref?.();
    return released;
  }

  private async beat(): Promise<void> {
    try {
      if (!(await renewLease(this.db, this.owner, this.at, this.o.ttlMs ?? LEASE_TTL_MS))) {
        this.log("error", "this server's lease had lapsed (a stall longer than the lease): another process may have released its reservations");
      }
      const released = await releaseOrphaned(this.db, this.owner, this.at);
      if (released > 0) this.log("warn", `released ${released} reservations of a gateway whose lease expired`);
    } catch (err) {
      this.log("error", `lease renewal failed: ${(err as Error).message}`);
    }
  }

  /** Stops renewing, releases this owner's holds no request will settle now, and ends the lease. */
  async stop(): Promise<number> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const released = await releaseOpenReservations(this.db, [this.owner], "released at shutdown");
    await dropLease(this.db, this.owner);
    return released;
  }
}

// Routing among upstreams: free capacity, coefficient (max_coefficient's 504), weight, stickiness,
// ejection with a doubling backoff. Workers' state is set directly: no HTTP here.
import { describe, expect, test } from "bun:test";
import { ApiError } from "../../src/http/errors.ts";
import { remoteModel, UpstreamPool, type Upstream } from "../../src/upstream/pool.ts";
import { parseUpstreamSpec } from "../../src/upstream/spec.ts";

function pool(specs: string[]): UpstreamPool {
  const p = new UpstreamPool(specs.map((s) => parseUpstreamSpec(s)), { pollMs: 1000 });
  for (const u of p.upstreams) {
    u.healthy = true;
    u.models.set("m", remoteModel({ id: "m", workers: [{ running_requests: 0, max_running_requests: 2 }] }, u.spec)!);
  }
  return p;
}

const byName = (p: UpstreamPool, name: string) => p.upstreams.find((u) => u.name === name)!;

describe("picking a worker", () => {
  test("the cheapest coefficient with room first, then the next one when it is full", () => {
    const p = pool(["cheap=http://a#coefficient=900", "dear=http://b#coefficient=1500"]);
    const picks = Array.from({ length: 5 }, () => p.pick("m").name);
    // Two slots each: cheap, cheap, dear, dear, then both full: the cheaper one queues it.
    expect(picks).toEqual(["cheap", "cheap", "dear", "dear", "cheap"]);
    p.release(byName(p, "cheap"), "m");
    expect(byName(p, "cheap").inflight.get("m")).toBe(2);
  });

  test("equal workers share by free slots and weight", () => {
    const p = pool(["a=http://a#weight=1", "b=http://b#weight=3"]);
    for (const u of p.upstreams) u.models.get("m")!.max = 8;
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 8; i++) counts[p.pick("m").name]!++;
    expect(counts.b).toBeGreaterThan(counts.a!);
    expect(counts.a! + counts.b!).toBe(8);
  });

  test("the polled load counts when it is above the gateway's own in-flight requests", () => {
    const p = pool(["a=http://a", "b=http://b"]);
    byName(p, "a").models.get("m")!.running = 2; // busy with another gateway's requests
    expect(p.pick("m").name).toBe("b");
  });

  test("max_coefficient excludes dearer workers; none left is 504 no_eligible_worker", () => {
    const p = pool(["cheap=http://a#coefficient=900", "dear=http://b#coefficient=1500"]);
    for (let i = 0; i < 4; i++) expect(p.pick("m", { maxCoefficient: 1000 }).name).toBe("cheap");
    let err: unknown;
    try {
      p.pick("m", { maxCoefficient: 800 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(504);
    expect((err as ApiError).code).toBe("no_eligible_worker");
    expect((err as ApiError).param).toBe("max_coefficient");
    expect(p.coefficient("m")).toBe(900);
  });

  test("a conversation stays on its worker while it has room, and moves when it is full", () => {
    const p = pool(["cheap=http://a#coefficient=900", "dear=http://b#coefficient=1500"]);
    // cheap full: the conversation starts on dear.
    p.pick("m");
    p.pick("m");
    expect(p.pick("m", { sticky: "s1" }).name).toBe("dear");
    // cheap has room again, but the conversation's cache is on dear.
    p.release(byName(p, "cheap"), "m");
    p.release(byName(p, "cheap"), "m");
    p.release(byName(p, "dear"), "m");
    expect(p.pick("m", { sticky: "s1" }).name).toBe("dear");
    expect(p.pick("m").name).toBe("cheap");
    // dear full while cheap has room: it moves (and stays there).
    byName(p, "dear").models.get("m")!.running = 2; // busy with another gateway's requests
    expect(byName(p, "dear").free("m")).toBe(0);
    expect(p.pick("m", { sticky: "s1" }).name).toBe("cheap");
    expect(p.stickyOf("s1")).toBe("cheap");
  });

  test("failover skips tried workers; with all tried or down it is a 504 naming why", () => {
    const p = pool(["a=http://a", "b=http://b"]);
    expect(p.pick("m", { exclude: new Set(["a"]) }).name).toBe("b");
    p.eject(byName(p, "b"), "answered 500");
    expect(() => p.pick("m", { exclude: new Set(["a"]) })).toThrow(/a: failed for this request; b: answered 500/);
  });
});

describe("sticky keys across gateways", () => {
  test("two gateways with the same workers start each conversation on the same worker, and spread conversations over all of them", () => {
    const specs = ["a=http://a", "b=http://b", "c=http://c"];
    const g1 = pool(specs);
    const g2 = pool(specs);
    for (const g of [g1, g2]) for (const u of g.upstreams) u.models.get("m")!.max = 1000;
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 300; i++) {
      const key = `session:account:1:conv-${i}`;
      const one = g1.pick("m", { sticky: key }).name;
      // Load differs between the gateways (g1 routed 300 requests, g2 is idle): the choice does not.
      expect(g2.pick("m", { sticky: key }).name).toBe(one);
      counts[one]!++;
    }
    for (const n of Object.values(counts)) expect(n).toBeGreaterThan(50);
  });

  test("weights skew the spread; a worker leaving moves only the conversations it held", () => {
    const heavy = pool(["a=http://a#weight=1", "b=http://b#weight=4"]);
    for (const u of heavy.upstreams) u.models.get("m")!.max = 1000;
    const on: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 400; i++) on[heavy.pick("m", { sticky: `k${i}` }).name]!++;
    expect(on.b!).toBeGreaterThan(2 * on.a!);

    const three = pool(["a=http://a", "b=http://b", "c=http://c"]);
    const two = pool(["a=http://a", "b=http://b", "c=http://c"]);
    for (const g of [three, two]) for (const u of g.upstreams) u.models.get("m")!.max = 1000;
    byName(two, "c").healthy = false;
    for (let i = 0; i < 200; i++) {
      const before = three.pick("m", { sticky: `k${i}` }).name;
      const after = two.pick("m", { sticky: `k${i}` }).name;
      if (before !== "c") expect(after).toBe(before);
    }
  });

  test("still within max_coefficient and capacity: a full or dearer worker is not chosen, and the cheapest coefficient goes first", () => {
    const specs = ["cheap1=http://a#coefficient=900", "cheap2=http://b#coefficient=900", "dear=http://c#coefficient=1500"];
    const g = pool(specs);
    for (const u of g.upstreams) u.models.get("m")!.max = 1000;
    for (let i = 0; i < 50; i++) expect(g.pick("m", { sticky: `x${i}` }).name).not.toBe("dear");
    // Both cheap workers full (polled load: another gateway's requests): new conversations go to dear.
    byName(g, "cheap1").models.get("m")!.running = 1000;
    byName(g, "cheap2").models.get("m")!.running = 1000;
    expect(g.pick("m", { sticky: "y1" }).name).toBe("dear");
    expect(() => g.pick("m", { sticky: "y2", maxCoefficient: 1000 })).not.toThrow();
    expect(["cheap1", "cheap2"]).toContain(g.pick("m", { sticky: "y3", maxCoefficient: 1000 }).name);
  });
});

describe("ejection", () => {
  test("each consecutive failure doubles the wait before the next probe, up to the cap; a success forgives", () => {
    const p = new UpstreamPool([parseUpstreamSpec("a=http://a")], { pollMs: 1000, maxBackoffMs: 5000 });
    const u: Upstream = p.upstreams[0]!;
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = Date.now();
      p.eject(u, "down");
      waits.push(Math.round((u.nextProbeAt - t) / 1000));
    }
    expect(waits).toEqual([1, 2, 4, 5, 5]);
    expect(u.healthy).toBe(false);
    p.succeeded(u);
    p.eject(u, "down");
    expect(Math.round((u.nextProbeAt - Date.now()) / 1000)).toBe(1);
  });

  test("model lists of cocoon-server, vLLM and llama-server", () => {
    const spec = parseUpstreamSpec("a=http://a#slots=6");
    expect(remoteModel({ id: "x", type: "completion", context_window: 8192, workers: [{ running_requests: 1, max_running_requests: 4 }, { running_requests: 2, max_running_requests: 4 }] }, spec)).toMatchObject({ type: "completion", contextWindow: 8192, running: 3, max: 8 });
    expect(remoteModel({ id: "y", object: "model", max_model_len: 32768 }, spec)).toMatchObject({ type: "chat", contextWindow: 32768, running: 0, max: 6 });
    expect(remoteModel({ id: "z", meta: { n_ctx_train: 4096 } }, spec)).toMatchObject({ contextWindow: 4096, max: 6 });
    expect(remoteModel({ object: "model" }, spec)).toBeNull();
  });
});

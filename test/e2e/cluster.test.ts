// A gateway (billing on) in front of two cocoon-server workers (--role worker), all real processes
// on 127.0.0.1: requests spread over the workers, some aborted, one worker killed mid-run and
// restarted (ejected, then re-admitted); the ledger stays exact. Also stickiness, max_coefficient's
// 504, failover before the first byte and the worker secret.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/db.ts";
import { checkInvariants } from "../../src/platform/ledger.ts";
import { ROOT } from "../support/model.ts";
import { freePort, startTestServer, type TestServer } from "../support/server.ts";

// Three real servers on a busy 2-core machine.
setDefaultTimeout(180_000);

const SECRET = "cluster-test-secret-0123456789";
const dir = mkdtempSync(join(tmpdir(), "cocoon-cluster-"));
const ports = { w1: freePort(), w2: freePort() };
let w1: TestServer;
let w2: TestServer;
let gateway: TestServer;
let key = "";

const workerArgs = ["--role", "worker", "--worker-secret", SECRET, "--parallel", "2"];
const startWorker = (port: number) => startTestServer(workerArgs, { port });

function createKey(credit: string): string {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "create-key", "--credit", credit, "--data-dir", dir], { stdout: "pipe", stderr: "pipe" });
  const k = r.stdout.toString().match(/^api_key: (ck_\w+)$/m)?.[1];
  if (!k) throw new Error(`create-key failed: ${r.stderr.toString()}`);
  return k;
}

/** Requests a worker has served (its own /jsonstats, which needs the worker secret). */
async function served(w: TestServer): Promise<number> {
  const r = await fetch(`${w.url}/jsonstats`, { headers: { authorization: `Bearer ${SECRET}` } });
  return ((await r.json()) as { requests_served: number }).requests_served;
}

/** The gateway's view of a model's workers (live ones only). */
async function liveWorkers(): Promise<number> {
  const r = await fetch(`${gateway.url}/v1/models`);
  const body = (await r.json()) as { data: { id: string; workers: unknown[] }[] };
  return body.data.find((m) => m.id === "tiny-qwen3")?.workers.length ?? 0;
}

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

const chat = (body: Record<string, unknown>, signal?: AbortSignal) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "tiny-qwen3", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 24, ...body }),
    signal,
  });

beforeAll(async () => {
  key = createKey("100");
  [w1, w2] = await Promise.all([startWorker(ports.w1), startWorker(ports.w2)]);
  gateway = await startTestServer(
    [
      "--data-dir", dir,
      "--upstream", `w1=http://127.0.0.1:${ports.w1}#key=${SECRET},coefficient=1000`,
      "--upstream", `w2=http://127.0.0.1:${ports.w2}#key=${SECRET},coefficient=1500`,
      "--upstream-poll", "0.3",
      // A loaded 2-core machine: queued requests may wait long for their first token.
      "--upstream-timeout", "150",
      "--rate-limit-rpm", "100000", "--rate-limit-rpd", "100000", "--rate-limit-tpm", "100000000",
    ],
    { auth: true },
  );
  await until("both workers live on the gateway", async () => (await liveWorkers()) === 2);
});

afterAll(async () => {
  await Promise.all([gateway?.stop(), w1?.stop(), w2?.stop()].map((p) => p?.catch(() => {})));
  rmSync(dir, { recursive: true, force: true });
});

describe("worker role", () => {
  test("a worker refuses requests without its secret and answers its probes", async () => {
    const r = await fetch(`${w1.url}/v1/models`);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    expect((await fetch(`${w1.url}/health`)).status).toBe(200);
    const ok = await fetch(`${w1.url}/v1/models`, { headers: { authorization: `Bearer ${SECRET}` } });
    const models = (await ok.json()) as { data: { id: string; workers: { running_requests: number; max_running_requests: number }[] }[] };
    expect(models.data[0]!.workers).toEqual([{ running_requests: 0, max_running_requests: 2 }]);
  });

  test("the gateway lists the workers' model with each worker's load", async () => {
    const r = await fetch(`${gateway.url}/v1/models/tiny-qwen3`);
    const m = (await r.json()) as { owned_by: string; workers: { running_requests: number; max_running_requests: number }[]; context_window: number };
    expect(m.workers).toHaveLength(2);
    expect(m.workers.every((w) => w.max_running_requests === 2)).toBe(true);
    expect(m.context_window).toBe(1024);
    // Seed 001's /api/stats counts the workers serving it, and their slots.
    const stats = (await (await fetch(`${gateway.url}/api/stats`)).json()) as { models: { id: string; workers: number; capacity: number }[] };
    expect(stats.models.find((x) => x.id === "tiny-qwen3")).toMatchObject({ workers: 2, capacity: 4 });
  });
});

describe("tokenizer routes on a remote model", () => {
  test("/tokenize goes to a worker; count_tokens and Anthropic's context fitting count at least the worker's own", async () => {
    const post = (base: string, path: string, body: unknown, auth: string) =>
      fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${auth}`, "x-api-key": auth }, body: JSON.stringify(body) });
    const viaGateway = await post(gateway.url, "/tokenize", { model: "tiny-qwen3", content: "Hello there, worker" }, key);
    const direct = await post(w1.url, "/tokenize", { model: "tiny-qwen3", content: "Hello there, worker" }, SECRET);
    expect(viaGateway.status).toBe(200);
    expect(await viaGateway.json()).toEqual(await direct.json());
    const messages = [{ role: "user", content: "How many tokens is this?" }];
    const counted = (await (await post(gateway.url, "/v1/messages/count_tokens", { model: "tiny-qwen3", messages }, key)).json()) as { input_tokens: number };
    const exact = (await (await post(w1.url, "/v1/messages/count_tokens", { model: "tiny-qwen3", messages }, SECRET)).json()) as { input_tokens: number };
    expect(counted.input_tokens).toBeGreaterThanOrEqual(exact.input_tokens);
    // max_tokens far past the window (as Claude Code sends) is cut to what the window leaves.
    // Streamed and dropped after its start: the random test model would write until the window is full.
    const ac = new AbortController();
    const r = await fetch(`${gateway.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": key },
      body: JSON.stringify({ model: "tiny-qwen3", messages, max_tokens: 32000, stream: true }),
      signal: ac.signal,
    });
    expect(r.status).toBe(200);
    const first = new TextDecoder().decode((await r.body!.getReader().read()).value);
    expect(first).toContain("message_start");
    // Dropped: the gateway cancels it on the worker, whose slot is free for the next tests.
    ac.abort();
    await until("the worker's slot freed", async () => {
      const m = (await (await fetch(`${gateway.url}/v1/models/tiny-qwen3`)).json()) as { workers: { running_requests: number }[] };
      return m.workers.every((w) => w.running_requests === 0);
    });
  });
});

describe("routing and billing on the gateway", () => {
  test("billed requests spread over both workers, a third aborted, one worker killed mid-run: every request answered or cleanly failed, the ledger exact", async () => {
    const before = [await served(w1), await served(w2)];
    // Usage rows of earlier tests are not this test's.
    const seen = (() => {
      const db = openStore(join(dir, "cocoon.sqlite"));
      try {
        return new Set((db.query("SELECT id FROM usage").all() as { id: string }[]).map((r) => r.id));
      } finally {
        db.close();
      }
    })();
    const N = 24;
    type Outcome = { kind: "ok"; cost: number } | { kind: "aborted" } | { kind: "failed"; status: number; body: string };
    const one = async (i: number): Promise<Outcome> => {
      const stream = i % 2 === 0;
      const abort = i % 3 === 2;
      const ac = new AbortController();
      // Long enough to still be running when a worker is killed or the client goes away.
      const body = { stream, max_tokens: 24, ignore_eos: true, ...(stream ? { stream_options: { include_usage: true } } : {}) };
      try {
        const timer = abort ? setTimeout(() => ac.abort(), 150 + (i % 5) * 40) : null;
        const res = await chat(body, ac.signal);
        const text = await res.text();
        if (timer) clearTimeout(timer);
        if (res.status !== 200) return { kind: "failed", status: res.status, body: text };
        if (!stream) return { kind: "ok", cost: (JSON.parse(text) as { usage: { cost: { nanoton: number } } }).usage.cost.nanoton };
        if (!text.trimEnd().endsWith("data: [DONE]")) throw new Error(`stream not terminated: ${text.slice(-200)}`);
        if (text.includes('"error"')) return { kind: "failed", status: 200, body: text };
        const last = text.split("\n\n").map((e) => e.replace(/^data: /, "")).filter((e) => e.startsWith("{") && e.includes('"usage"') && !e.includes('"usage":null')).at(-1);
        return { kind: "ok", cost: (JSON.parse(last!) as { usage: { cost: { nanoton: number } } }).usage.cost.nanoton };
      } catch (err) {
        if (ac.signal.aborted) return { kind: "aborted" };
        throw err;
      }
    };
    const all: Promise<Outcome>[] = [];
    for (let i = 0; i < N; i++) {
      all.push(one(i));
      if (i === Math.floor(N / 2)) {
        // Mid-run: w2 dies with requests in flight on it (SIGKILL: no drain).
        w2.proc.kill("SIGKILL");
      }
      await Bun.sleep(20);
    }
    const outcomes = await Promise.all(all);
    await w2.proc.exited;

    // Every request has an answer or a clean failure in the API's shape (a 502 for a worker lost
    // mid-response): never a 500.
    for (const o of outcomes) {
      if (o.kind === "failed") {
        expect([200, 502, 503, 504]).toContain(o.status);
        expect(o.body).toContain('"error"');
      }
    }
    const ok = outcomes.filter((o): o is { kind: "ok"; cost: number } => o.kind === "ok");
    expect(ok.length).toBeGreaterThan(N / 3);
    expect(outcomes.filter((o) => o.kind === "aborted").length).toBeGreaterThan(0);
    // Both workers took part (w2 until it died).
    expect((await served(w1)) - before[0]!).toBeGreaterThan(0);

    // Settlements are asynchronous to the client's view (aborts): wait until nothing is held.
    const db = openStore(join(dir, "cocoon.sqlite"));
    try {
      const open = () => Number((db.query("SELECT COUNT(*) AS n FROM reservations WHERE closed_at IS NULL").get() as { n: bigint }).n);
      await until("every reservation settled", async () => open() === 0, 30_000);
      expect(checkInvariants(db)).toEqual([]);
      // Each answered request was charged exactly what it reported, once.
      const rows = (db.query("SELECT id, status, cost_nanoton AS cost FROM usage").all() as { id: string; status: string; cost: bigint }[]).filter((r) => !seen.has(r.id));
      const okRows = rows.filter((r) => r.status === "ok");
      expect(okRows.length).toBe(ok.length);
      expect(okRows.reduce((n, r) => n + Number(r.cost), 0)).toBe(ok.reduce((n, o) => n + o.cost, 0));
      // At most one usage row per request (cancelled and failed ones included): nothing doubled.
      expect(rows.length).toBeLessThanOrEqual(N);
      // A cancelled request pays for what it produced, a failed one for nothing.
      for (const r of rows.filter((x) => x.status === "error")) expect(Number(r.cost)).toBe(0);
    } finally {
      db.close();
    }
  });

  test("the killed worker is ejected, and re-admitted once it is back", async () => {
    await until("w2 ejected", async () => (await liveWorkers()) === 1);
    const answered = await chat({ max_tokens: 4 });
    expect(answered.status).toBe(200);
    w2 = await startWorker(ports.w2);
    await until("w2 re-admitted", async () => (await liveWorkers()) === 2, 60_000);
  });

  test("max_coefficient excludes the dearer worker, and below every worker it is a 504", async () => {
    const before = [await served(w1), await served(w2)];
    const results = await Promise.all(Array.from({ length: 6 }, () => chat({ max_tokens: 8, max_coefficient: 1200 })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect((await served(w1)) - before[0]!).toBe(6);
    expect((await served(w2)) - before[1]!).toBe(0);
    const refused = await chat({ max_coefficient: 999 });
    expect(refused.status).toBe(504);
    const body = (await refused.json()) as { error: { code: string; param: string } };
    expect(body.error.code).toBe("no_eligible_worker");
    expect(body.error.param).toBe("max_coefficient");
  });

  test("a conversation stays on one worker (previous_response_id), even when a cheaper one is free", async () => {
    // The polled load settles first (no request of an earlier test still counted).
    await Bun.sleep(1000);
    const s0 = [await served(w1), await served(w2)];
    // w1 (the cheaper) busy with two long requests: the chain starts on w2.
    const busy = [chat({ max_tokens: 120, ignore_eos: true }), chat({ max_tokens: 120, ignore_eos: true })];
    await until("w1 full", async () => {
      const r = await fetch(`${gateway.url}/v1/models/tiny-qwen3`);
      return ((await r.json()) as { workers: { running_requests: number }[] }).workers[0]!.running_requests >= 2;
    });
    const turn = async (n: number, previous: string | null) => {
      const r = await fetch(`${gateway.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "tiny-qwen3", input: `turn ${n}`, max_output_tokens: 4, ...(previous ? { previous_response_id: previous } : {}) }),
      });
      expect(r.status).toBe(200);
      return ((await r.json()) as { id: string }).id;
    };
    let previous = await turn(0, null);
    await Promise.all(busy.map((p) => p.then((x) => x.text())));
    const s1 = [await served(w1), await served(w2)];
    expect([s1[0]! - s0[0]!, s1[1]! - s0[1]!]).toEqual([2, 1]);
    // w1 is free again and cheaper, but the conversation's KV cache is on w2.
    for (let n = 1; n < 4; n++) previous = await turn(n, previous);
    const s2 = [await served(w1), await served(w2)];
    expect([s2[0]! - s1[0]!, s2[1]! - s1[1]!]).toEqual([0, 3]);
    // A new conversation goes to the cheaper free worker (once the gateway's polled load says it is free).
    await until("w1 free", async () => {
      const r = await fetch(`${gateway.url}/v1/models/tiny-qwen3`);
      return ((await r.json()) as { workers: { running_requests: number }[] }).workers[0]!.running_requests === 0;
    });
    await turn(0, null);
    expect((await served(w1)) - s2[0]!).toBe(1);
  });
});

describe("prompt cache on a shared worker", () => {
  test("accounts behind the gateway never reuse each other's cached prefixes on a worker; an account reuses its own", async () => {
    const other = createKey("10");
    const prompt = `Summarise the history of the Open Network in detail, chapter by chapter: ${"TON ".repeat(60)}`;
    const ask = async (k: string) => {
      const r = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${k}` },
        // max_coefficient keeps every request on w1, where the cache is.
        body: JSON.stringify({ model: "tiny-qwen3", messages: [{ role: "user", content: prompt }], max_tokens: 2, max_coefficient: 1200 }),
      });
      expect(r.status).toBe(200);
      return ((await r.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } }).usage.prompt_tokens_details.cached_tokens;
    };
    await ask(key);
    expect(await ask(other)).toBe(0);
    expect(await ask(key)).toBeGreaterThan(0);
  });
});

describe("failover", () => {
  test("a worker failing before the first byte is skipped and ejected: the request is answered by another", async () => {
    let calls = 0;
    // A broken worker: it lists the model (cheapest of all) but fails every request with a 500.
    const broken = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/v1/models") return Response.json({ object: "list", data: [{ id: "tiny-qwen3", object: "model", context_window: 1024, workers: [{ running_requests: 0, max_running_requests: 8 }] }] });
        calls++;
        return new Response("boom", { status: 500 });
      },
    });
    const second = await startTestServer(
      ["--data-dir", dir, "--upstream", `broken=http://127.0.0.1:${broken.port}#coefficient=1`, "--upstream", `w1=http://127.0.0.1:${ports.w1}#key=${SECRET}`, "--upstream-poll", "30"],
      { auth: true },
    );
    try {
      const res = await fetch(`${second.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "tiny-qwen3", messages: [{ role: "user", content: "hi" }], max_tokens: 4, stream: true }),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain("chat.completion.chunk");
      expect(text).not.toContain('"error"');
      expect(calls).toBe(1);
      // Ejected: the next requests go straight to w1 while its backoff (here one 30 s poll interval) lasts.
      const again = await fetch(`${second.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "tiny-qwen3", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
      });
      expect(again.status).toBe(200);
      expect(calls).toBe(1);
      expect(second.log()).toContain("upstream broken ejected (answered 500)");
    } finally {
      await second.stop();
      broken.stop(true);
    }
  });
});

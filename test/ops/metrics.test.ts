// Ops endpoints in-process: /metrics passes promtool and counts requests; /health, /readiness, /stats, /jsonstats shapes.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { createApp } from "../../src/app.ts";
import { ApiError } from "../../src/http/errors.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import type { Engine } from "../../src/inference/engine.ts";
import { startInProcessApp, TINY_ID, type InProcessApp } from "../support/app.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

let h: InProcessApp;
/** Completion tokens the test's own requests generated, from their usage objects. */
let generated = 0;
let generations = 0;

const jsonPost = (path: string, body: unknown) => h.request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

beforeAll(async () => {
  h = await startInProcessApp();
  // A few requests of every kind, including errors.
  const chat = (await (await jsonPost("/v1/chat/completions", { messages: [{ role: "user", content: "Hello there" }], max_tokens: 8, temperature: 0 })).json()) as { usage: { completion_tokens: number } };
  generated += chat.usage.completion_tokens;
  generations++;
  const streamed = await (await jsonPost("/v1/chat/completions", { messages: [{ role: "user", content: "Stream it" }], max_tokens: 12, stream: true, stream_options: { include_usage: true } })).text();
  const usageEvent = streamed.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)) as { usage?: { completion_tokens: number } | null }).at(-1)!;
  generated += usageEvent.usage!.completion_tokens;
  generations++;
  const cmpl = (await (await jsonPost("/v1/completions", { prompt: "One two three", max_tokens: 6, temperature: 0 })).json()) as { usage: { completion_tokens: number } };
  generated += cmpl.usage.completion_tokens;
  generations++;
  expect((await jsonPost("/v1/embeddings", { input: "embed me" })).status).toBe(200);
  expect((await jsonPost("/v1/chat/completions", { messages: [{ role: "user", content: "x" }], temperature: "hot" })).status).toBe(400);
  expect((await jsonPost("/v1/chat/completions", { model: "nope", messages: [{ role: "user", content: "x" }] })).status).toBe(404);
  expect((await h.request("/v1/models")).status).toBe(200);
});
afterAll(() => h?.close());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the sample lines of Prometheus text format (enough for our own output). */
function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const v = m[3]!;
    out.push({ name: m[1]!, labels, value: v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v) });
  }
  return out;
}

const typesOf = (text: string) => new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
const total = (samples: Sample[], name: string) => samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);

describe("/metrics", () => {
  test("passes `promtool check metrics` with no complaints", async () => {
    const promtool = Bun.which("promtool");
    if (!promtool) {
      throw new Error("promtool is not installed, so /metrics cannot be checked: `.ci/run` installs it (Debian: apt-get install -y prometheus)");
    }
    const res = await h.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain");
    const text = await res.text();
    const p = Bun.spawn([promtool, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
  });

  test("has seed 003's metrics with the counts of the requests made", async () => {
    expect((await h.request("/health")).status).toBe(200);
    // Requests are recorded after their response went out.
    let text = "";
    for (let i = 0; i < 200 && total(parseSamples(text), "health_check_requests_total") === 0; i++) {
      if (i) await Bun.sleep(10);
      text = await (await h.request("/metrics")).text();
    }
    const samples = parseSamples(text);
    const types = typesOf(text);
    for (const name of ["health_check_requests_total", "completions_requests_total", "chat_completions_requests_total", "completions_tokens_total", "completions_errors_total"]) {
      expect({ name, type: types.get(name) }).toEqual({ name, type: "counter" });
    }
    expect(types.get("completions_duration_seconds")).toBe("histogram");
    expect(total(samples, "health_check_requests_total")).toBeGreaterThanOrEqual(1);
    // beforeAll: two chats and two failing ones, one completion.
    expect(total(samples, "chat_completions_requests_total")).toBe(4);
    expect(total(samples, "completions_requests_total")).toBe(1);
    expect(total(samples, "completions_errors_total")).toBe(2);
    expect(total(samples, "completions_tokens_total")).toBe(generated);
    expect(total(samples, "completions_duration_seconds_count")).toBe(generations);
  });

  test("has time-to-first-token and inter-token-latency histograms and request/token counters with values", async () => {
    const text = await (await h.request("/metrics")).text();
    const types = typesOf(text);
    const samples = parseSamples(text);
    const histogram = (pattern: RegExp) => {
      const name = [...types.entries()].find(([n, t]) => pattern.test(n) && t === "histogram")?.[0];
      expect({ pattern: String(pattern), found: !!name }).toEqual({ pattern: String(pattern), found: true });
      return name!;
    };
    const ttft = histogram(/time_to_first_token/);
    const itl = histogram(/inter_token_latency/);
    expect(total(samples, `${ttft}_count`)).toBe(generations);
    expect(total(samples, `${ttft}_sum`)).toBeGreaterThan(0);
    // One gap fewer than outputs per generation, so at least generated - generations gaps.
    expect(total(samples, `${itl}_count`)).toBeGreaterThan(0);
    expect(total(samples, `${itl}_count`)).toBeLessThanOrEqual(generated);
    // Buckets are cumulative and +Inf equals _count, per series.
    for (const name of [ttft, itl]) {
      const series = new Map<string, Sample[]>();
      for (const s of samples.filter((x) => x.name === `${name}_bucket`)) {
        const { le: _le, ...rest } = s.labels;
        const key = JSON.stringify(rest);
        series.set(key, [...(series.get(key) ?? []), s]);
      }
      expect(series.size).toBeGreaterThan(0);
      for (const [key, buckets] of series) {
        for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
        expect(buckets.at(-1)!.labels.le).toBe("+Inf");
        const count = samples.find((s) => s.name === `${name}_count` && JSON.stringify(s.labels) === key);
        expect(buckets.at(-1)!.value).toBe(count!.value);
      }
    }
    const counter = (pattern: RegExp) => {
      const names = [...types.entries()].filter(([n, t]) => pattern.test(n) && t === "counter").map(([n]) => n);
      expect({ pattern: String(pattern), found: names.length }).toEqual({ pattern: String(pattern), found: 1 });
      return names[0]!;
    };
    // Requests: HTTP requests counted by status, errors counted too.
    const http = counter(/http_requests_total$/);
    expect(total(samples, http)).toBeGreaterThanOrEqual(7);
    expect(samples.some((s) => s.name === http && s.labels.status === "400" && s.value >= 1)).toBe(true);
    expect(samples.some((s) => s.name === http && s.labels.status === "404" && s.value >= 1)).toBe(true);
    const completion = counter(/^cocoon_completion_tokens_total$/);
    expect(total(samples, completion)).toBe(generated);
    const prompt = counter(/^cocoon_prompt_tokens_total$/);
    expect(total(samples, prompt)).toBeGreaterThan(0);
    const gens = counter(/generations_total$/);
    expect(total(samples, gens)).toBe(generations);
    // Live gauges for the model.
    const capacity = samples.find((s) => /^cocoon_slots/.test(s.name) && s.name !== "cocoon_slots_busy" && types.get(s.name) === "gauge" && s.labels.model === TINY_ID);
    expect(capacity?.value).toBe(4);
    expect(samples.find((s) => s.name === "cocoon_slots_busy" && s.labels.model === TINY_ID)?.value).toBe(0);
  });
});

describe("/health and /readiness", () => {
  test("/health is 200 with status, version, service, uptime, timestamp and model_info", async () => {
    const res = await h.request("/health");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.status).toBe("ok");
    expect(body.version).toBe("0.0.0-test");
    expect(body.service).toBe("cocoon-server");
    expect(typeof body.uptime).toBe("number");
    expect(body.uptime as number).toBeGreaterThanOrEqual(0);
    expect(Math.abs(Date.parse(body.timestamp as string) - Date.now())).toBeLessThan(10_000);
    expect(body.model_info).toMatchObject({ model_name: TINY_ID, device: "cpu", models: [TINY_ID], loaded: true });
  });

  test("/readiness is 200 once the model is loaded", async () => {
    const res = await h.request("/readiness");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown> & { timestamp: string };
    expect(body).toEqual({ status: "ready", models_available: 1, timestamp: body.timestamp, models: [TINY_ID] });
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
  });

  test("before models load: /readiness 503, /health 200 with loaded false, inference 503 not_ready", async () => {
    const loading = createApp({
      platform: null,
      get engine(): Engine {
        throw new ApiError("not_ready", "models are still loading; see /readiness", null, { "Retry-After": "2" });
      },
      metrics: new Metrics(),
      version: "0.0.0-test",
      loadedEngine: () => null,
      coefficient: () => 1000,
    });
    const at = (path: string, init?: RequestInit) => loading.handle(new Request(`http://localhost${path}`, init));
    const ready = await at("/readiness");
    expect(ready.status).toBe(503);
    expect(ready.headers.get("retry-after")).not.toBeNull();
    const health = await at("/health");
    expect(health.status).toBe(200);
    expect(((await health.json()) as { model_info: { loaded: boolean } }).model_info.loaded).toBe(false);
    const chat = await at("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ messages: [{ role: "user", content: "x" }] }) });
    expect(chat.status).toBe(503);
    expect(((await chat.json()) as { error: { code: string } }).error.code).toBe("not_ready");
  });
});

describe("/stats and /jsonstats", () => {
  test("/stats is human-readable text by default and JSON with Accept: application/json", async () => {
    const text = await h.request("/stats");
    expect(text.status).toBe(200);
    expect(text.headers.get("content-type")).toStartWith("text/plain");
    const body = await text.text();
    expect(() => JSON.parse(body)).toThrow();
    expect(body).toContain(TINY_ID);
    expect(body).toMatch(/requests served: \d+/);
    const json = await h.request("/stats", { headers: { Accept: "application/json" } });
    expect(json.headers.get("content-type")).toStartWith("application/json");
    const stats = (await json.json()) as Record<string, unknown>;
    expect(stats.requests_served).toBe(generations);
  });

  test("/jsonstats has the seed-002 counters and per-model slot load", async () => {
    const s = (await (await h.request("/jsonstats")).json()) as Record<string, unknown> & { models: Record<string, unknown>[] };
    expect(s.requests_served).toBe(generations);
    expect(s.total_tokens_generated).toBe(generated);
    expect(typeof s.average_response_time).toBe("number");
    expect(s.average_response_time as number).toBeGreaterThan(0);
    expect(s.queue_length).toBe(0);
    expect(s.active_requests).toBe(0);
    expect(s.models).toHaveLength(1);
    expect(s.models[0]).toMatchObject({ id: TINY_ID, slots_busy: 0, slots_total: 4, queue_length: 0 });
    expect(typeof s.models[0]!.load_pct).toBe("number");
  });

  test("a running stream shows as an active request and a busy slot, and its cancellation clears both", async () => {
    const res = await jsonPost("/v1/chat/completions", { messages: [{ role: "user", content: "long" }], max_tokens: 900, ignore_eos: true, stream: true });
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    const busy = (await (await h.request("/jsonstats")).json()) as { active_requests: number; models: { slots_busy: number; load_pct: number }[] };
    expect(busy.active_requests).toBe(1);
    expect(busy.models[0]!.slots_busy).toBe(1);
    expect(busy.models[0]!.load_pct).toBe(25);
    const metrics = parseSamples(await (await h.request("/metrics")).text());
    expect(metrics.find((x) => x.name === "cocoon_slots_busy")?.value).toBe(1);
    await reader.cancel();
    const t0 = performance.now();
    for (;;) {
      const s = (await (await h.request("/jsonstats")).json()) as { active_requests: number; models: { slots_busy: number }[] };
      if (s.active_requests === 0 && s.models[0]!.slots_busy === 0) break;
      if (performance.now() - t0 > 1000) throw new Error(`still busy after 1 s: ${JSON.stringify(s)}`);
      await Bun.sleep(20);
    }
  });

  test("speculative decoding: drafted and accepted token counters, verify steps, draft time, acceptance and tokens per step, by model and method", async () => {
    const m = new Metrics({
      models: () => [
        { model: "big", slotsBusy: 0, slotsTotal: 4, queued: 0, restarts: 0, speculative: { method: "draft", drafted: 80, accepted: 60, steps: 20, draftMs: 1500 } },
        { model: "code", slotsBusy: 0, slotsTotal: 4, queued: 0, restarts: 0, speculative: { method: "ngram", drafted: 10, accepted: 0, steps: 5, draftMs: 0 } },
        { model: "plain", slotsBusy: 0, slotsTotal: 4, queued: 0, restarts: 0, speculative: null },
      ],
    });
    const text = m.render();
    const types = typesOf(text);
    expect(types.get("cocoon_speculative_drafted_tokens_total")).toBe("counter");
    expect(types.get("cocoon_speculative_accepted_tokens_total")).toBe("counter");
    expect(types.get("cocoon_speculative_acceptance_ratio")).toBe("gauge");
    const samples = parseSamples(text).filter((x) => x.name.startsWith("cocoon_speculative_"));
    const value = (name: string, model: string) => samples.find((x) => x.name === name && x.labels.model === model)?.value;
    expect(samples.find((x) => x.name === "cocoon_speculative_drafted_tokens_total" && x.labels.model === "big")?.labels.method).toBe("draft");
    expect(value("cocoon_speculative_drafted_tokens_total", "big")).toBe(80);
    expect(value("cocoon_speculative_accepted_tokens_total", "big")).toBe(60);
    expect(value("cocoon_speculative_verify_steps_total", "big")).toBe(20);
    expect(value("cocoon_speculative_draft_seconds_total", "big")).toBe(1.5);
    expect(value("cocoon_speculative_acceptance_ratio", "big")).toBe(0.75);
    expect(value("cocoon_speculative_tokens_per_step", "big")).toBe(4);
    expect(samples.find((x) => x.name === "cocoon_speculative_drafted_tokens_total" && x.labels.model === "code")?.labels.method).toBe("ngram");
    expect(value("cocoon_speculative_acceptance_ratio", "code")).toBe(0);
    expect(samples.some((x) => x.labels.model === "plain")).toBe(false);
    const promtool = Bun.which("promtool");
    if (promtool) {
      const p = Bun.spawn([promtool, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
    }
  });
});

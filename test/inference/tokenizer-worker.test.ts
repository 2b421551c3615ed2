// Tokenizing off the decode path: the engine worker receives token ids (never a completion's text),
// text is tokenized in the model's vocabulary-only tokenizer workers (ids identical, prefix reuse
// intact), a stream keeps producing tokens while a large prompt waits to be tokenized, and closing
// the engine stops the tokenizer workers too.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { Engine } from "../../src/inference/engine.ts";
import { EngineError, type EngineEvent } from "../../src/inference/types.ts";
import { TINY_MODEL } from "../support/model.ts";

setDefaultTimeout(120_000);

/** Every message the main thread posts to each worker it starts, and whether that worker has closed. */
interface Watched {
  url: string;
  sent: unknown[];
  closed: boolean;
}
const watched: Watched[] = [];
const RealWorker = globalThis.Worker;
class RecordingWorker extends RealWorker {
  readonly watch: Watched;
  constructor(url: string | URL, opts?: WorkerOptions) {
    super(url, opts);
    this.watch = { url: String(url), sent: [], closed: false };
    watched.push(this.watch);
    this.addEventListener("close", () => (this.watch.closed = true));
  }
  override postMessage(message: unknown, transfer?: unknown): void {
    // Recorded before it is sent: a transferred buffer is emptied by the send.
    this.watch.sent.push(structuredClone(message));
    super.postMessage(message, transfer as ArrayBuffer[]);
  }
}

/** The longest string anywhere in a message. */
function longestString(v: unknown): number {
  if (typeof v === "string") return v.length;
  if (v && typeof v === "object" && !ArrayBuffer.isView(v)) return Math.max(0, ...Object.values(v).map(longestString));
  return 0;
}

const engineWorker = () => watched.find((w) => w.url.endsWith("/worker.ts"))!;
const tokenizerWorkers = () => watched.filter((w) => w.url.endsWith("/tokenizer-worker.ts"));
const submits = () => engineWorker().sent.filter((m) => (m as { type: string }).type === "submit") as { id: string; request: { prompt?: Int32Array; messages?: unknown } }[];

async function drain(stream: AsyncIterable<EngineEvent>): Promise<EngineEvent[]> {
  const out: EngineEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

let engine: Engine;
beforeAll(async () => {
  // Installed for the whole file: tokenizer workers start after the engine worker is ready.
  globalThis.Worker = RecordingWorker as typeof Worker;
  engine = await Engine.start({ models: [{ id: "tiny", path: TINY_MODEL }], slots: 2, ctxSize: 4096 });
});
afterAll(() => {
  engine.close();
  globalThis.Worker = RealWorker;
});

describe("tokenizer workers", () => {
  test("a big completion prompt reaches the engine worker as token ids, the same ids /tokenize gives, and its prefix is reused", async () => {
    const text = "lorem ipsum dolor sit amet, ".repeat(500); // 14 KB, about 3,000 tokens: fits a 4k context
    const before = submits().length;
    const first = await drain(engine.submit({ prompt: text, maxTokens: 2, sampling: { temperature: 0 } }));
    const sent = submits().slice(before);
    expect(sent).toHaveLength(1);
    const ids = await engine.tokenize(undefined, text, { addSpecial: true, parseSpecial: true });
    expect(ids.length).toBeGreaterThan(2_000);
    expect(sent[0]!.request.prompt).toBeInstanceOf(Int32Array);
    expect(Array.from(sent[0]!.request.prompt!)).toEqual(ids);
    // Nothing of the text went with it.
    expect(longestString(sent[0])).toBeLessThan(100);
    const done = first.at(-1) as Extract<EngineEvent, { type: "done" }>;
    expect(done.usage.promptTokens).toBe(ids.length);
    // The same text again reuses the cached prefix: the ids are the ones the KV cache holds.
    const again = (await drain(engine.submit({ prompt: text, maxTokens: 2, sampling: { temperature: 0 } }))).at(-1) as Extract<EngineEvent, { type: "done" }>;
    expect(again.usage.cachedTokens).toBeGreaterThan(ids.length - 10);
  });

  test("a fill-in-the-middle suffix and embedding inputs reach the engine worker as ids too", async () => {
    const before = submits().length;
    await drain(engine.submit({ prompt: "def add(a, b):", suffix: "\n    return c\n", maxTokens: 2, sampling: { temperature: 0 } }));
    const fim = submits().slice(before)[0]!;
    expect(fim.request.prompt).toBeInstanceOf(Int32Array);
    expect(longestString(fim)).toBeLessThan(30);
    const calls = () => engineWorker().sent.filter((m) => (m as { type: string; method?: string }).method === "embed") as { args: { inputs: unknown[] } }[];
    const n = calls().length;
    const r = await engine.embed(undefined, ["Hello world", [9707, 1879]]);
    expect(r.vectors).toHaveLength(2);
    const embed = calls()[n]!;
    expect(embed.args.inputs.every((x) => x instanceof Int32Array)).toBe(true);
    expect(Array.from(embed.args.inputs[0] as Int32Array)).toEqual([9707, 1879]);
    // Same ids, same vector.
    expect(Array.from(r.vectors[0]!)).toEqual(Array.from(r.vectors[1]!));
  });

  test("a chat prompt rendered in the engine worker comes back to it tokenized elsewhere", async () => {
    const tokens = () => engineWorker().sent.filter((m) => (m as { type: string }).type === "tokens") as { tokens: Int32Array }[];
    const n = tokens().length;
    const events = await drain(engine.submit({ messages: [{ role: "user", content: "Hello there" }], maxTokens: 2, sampling: { temperature: 0 } }));
    const back = tokens().slice(n);
    expect(back).toHaveLength(1);
    expect(back[0]!.tokens).toBeInstanceOf(Int32Array);
    const done = events.at(-1) as Extract<EngineEvent, { type: "done" }>;
    expect(done.usage.promptTokens).toBe(back[0]!.tokens.length);
  });

  test("a stream keeps producing tokens while a 300 KB prompt waits for the tokenizer, which then tokenizes it", async () => {
    const order: string[] = [];
    // Held in the tokenizer as a tokenization that takes forever would be.
    engine.pauseTokenizerForTest(undefined, true);
    const big = "lorem ipsum ".repeat(25_000); // 300 KB: under the byte bound (128 B x 4096), about 50,000 tokens
    const heavy = drain(engine.submit({ prompt: big, maxTokens: 1 })).then(
      () => {
        order.push("big:done");
        return null;
      },
      (err: unknown) => {
        order.push("big:error");
        return err;
      },
    );
    // A stream whose prompt is ids needs no tokenizer: it runs to its end meanwhile.
    const stream = engine.submit({ prompt: [9707, 1879], maxTokens: 24, ignoreEos: true, sampling: { temperature: 0 } });
    for await (const e of stream) if (e.type === "delta" || e.type === "done") order.push(`small:${e.type}`);
    expect(order.filter((x) => x === "small:delta").length).toBeGreaterThan(0);
    expect(order.at(-1)).toBe("small:done");
    expect(order.some((x) => x.startsWith("big"))).toBe(false);
    engine.pauseTokenizerForTest(undefined, false);
    const err = await heavy;
    expect(order.at(-1)).toBe("big:error");
    // Refused from its token count, so it was tokenized (not refused from its bytes).
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe("context_overflow");
    expect((err as EngineError).message).toMatch(/needs 5\d{4} prompt/);
  });

  test("closing the engine stops its tokenizer workers", async () => {
    expect(tokenizerWorkers().length).toBe(2);
    const other = watched.length;
    engine.close();
    const deadline = Date.now() + 10_000;
    while (!watched.slice(0, other).every((w) => w.closed) && Date.now() < deadline) await Bun.sleep(20);
    expect(tokenizerWorkers().map((w) => w.closed)).toEqual([true, true]);
    expect(engineWorker().closed).toBe(true);
  });
});

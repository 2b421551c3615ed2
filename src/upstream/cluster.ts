// A gateway's models: the local engine's (if any) and the upstream workers', behind the one Backend
// interface the generation path uses. A model any upstream serves is routed to the workers; a local
// model of the same id then only lends its tokenizer (counting usage a worker did not report).
import type { Backend, RouteHints, WorkerLoad } from "../generation/backend.ts";
import { ApiError } from "../http/errors.ts";
import type { Engine, Generation } from "../inference/engine.ts";
import { EngineError, type GenerateRequest, type ModelInfo, type ModelStats, type Usage } from "../inference/types.ts";
import { forwardEmbed, forwardGeneration, type ForwardDeps } from "./forward.ts";
import type { UpstreamPool } from "./pool.ts";

export interface ClusterOptions {
  pool: UpstreamPool;
  /** The local engine once loaded; null while loading or when the gateway serves no model itself. */
  local(): Engine | null;
  /** The gateway has models of its own (so a null local() means they are still loading). Defaults to false. */
  localExpected?: boolean;
  firstByteTimeoutMs?: number;
  log?: ForwardDeps["log"];
}

/**
 * Our estimate of tokens for text we cannot tokenize with the model's own vocabulary: one token per
 * 4 bytes of UTF-8 (OpenAI's rule of thumb for English), at least one per chunk the worker streamed
 * (llama-server and vLLM send about one chunk per token).
 */
export function estimateTokens(text: string, pieces = 0): number {
  return Math.max(pieces, Math.ceil(Buffer.byteLength(text) / 4));
}

export class Cluster implements Backend {
  private readonly forward: ForwardDeps;

  constructor(private readonly o: ClusterOptions) {
    this.forward = {
      pool: o.pool,
      firstByteTimeoutMs: o.firstByteTimeoutMs ?? 60_000,
      count: (model, request, produced, prompted) => this.count(model, request, produced, prompted),
      log: o.log,
    };
  }

  get pool(): UpstreamPool {
    return this.o.pool;
  }

  private remote(id: string | undefined): ModelInfo | null {
    return id === undefined ? null : this.o.pool.info(id);
  }

  /** The local engine, or 503 while it loads (or 404 when the gateway has no model of that id). */
  private engine(): Engine {
    const e = this.o.local();
    if (!e && this.o.localExpected) throw new ApiError("not_ready", "models are still loading; see /readiness", null, { "Retry-After": "2" });
    if (!e) throw new ApiError("model_not_found", "this gateway serves no model itself; name one of /v1/models", "model");
    return e;
  }

  private localIds(): Set<string> {
    return new Set(this.o.local()?.models().map((m) => m.id) ?? []);
  }

  models(): ModelInfo[] {
    const remote = this.o.pool.modelIds();
    const shadowed = new Set(remote);
    const local = (this.o.local()?.models() ?? []).filter((m) => !shadowed.has(m.id));
    return [...local, ...remote.map((id) => this.o.pool.info(id)!)];
  }

  model(id?: string): ModelInfo {
    const remote = this.remote(id);
    if (remote) return remote;
    if (id === undefined) {
      const first = this.models()[0];
      if (first) return first;
    }
    const local = this.o.local();
    if (!local && this.o.localExpected) return this.engine().model(id);
    if (!local) throw new EngineError("model_not_found", `model "${id}" does not exist; available: ${this.models().map((m) => m.id).join(", ") || "none (no worker is up)"}`, "model");
    return local.model(id);
  }

  stats(): ModelStats[] {
    const remote = new Set(this.o.pool.modelIds());
    const local = (this.o.local()?.stats() ?? []).filter((s) => !remote.has(s.id));
    return [
      ...local,
      ...[...remote].map((id) => {
        const w = this.o.pool.workers(id);
        return {
          id,
          slotsBusy: w.reduce((n, x) => n + x.running_requests, 0),
          slotsTotal: w.reduce((n, x) => n + x.max_running_requests, 0),
          queued: 0,
          promptTokens: 0,
          generatedTokens: 0,
          cachedTokens: 0,
          requests: 0,
          restarts: 0,
          ready: w.length > 0,
          kvUsedCells: 0,
          residentSequences: 0,
          evictions: 0,
          kvCompactions: 0,
          kvCompactMs: 0,
          splitSteps: 0,
          speculative: null,
          draftedTokens: 0,
          acceptedTokens: 0,
          draftSteps: 0,
          draftMs: 0,
          draftKvCells: 0,
          kvTotalCells: 0,
          pinnedSlots: 0,
          parkedStates: 0,
          parkedSessions: 0,
          parkedBytes: 0,
        };
      }),
    ];
  }

  workers(model: string): WorkerLoad[] {
    if (this.o.pool.info(model)) return this.o.pool.workers(model);
    const info = this.o.local()?.models().find((m) => m.id === model);
    const s = this.o.local()?.stats().find((x) => x.id === model);
    return info ? [{ running_requests: s?.slotsBusy ?? 0, max_running_requests: info.slots }] : [];
  }

  /** The cheapest live worker's coefficient for a remote model, else null (a local model's own applies). */
  coefficient(model: string): number | null {
    return this.o.pool.info(model) ? (this.o.pool.coefficient(model) ?? 0) : null;
  }

  submit(request: GenerateRequest, signal?: AbortSignal, route?: RouteHints): Generation {
    const info = this.model(request.model);
    if (info.backend !== "upstream") return this.engine().submit(request, signal);
    // The model id is the one the workers list; a conversation's key keeps it on one worker.
    return forwardGeneration(this.forward, info, { ...request, model: info.id }, signal, { maxCoefficient: route?.maxCoefficient, sticky: request.sessionKey });
  }

  embed(model: string | undefined, inputs: (string | number[])[], route?: RouteHints): ReturnType<Engine["embed"]> {
    const info = this.model(model);
    if (info.backend !== "upstream") return this.engine().embed(model, inputs);
    return forwardEmbed(this.forward, info.id, inputs, { maxCoefficient: route?.maxCoefficient });
  }

  /** The local engine for a model it has (a remote model's local copy included), else null. */
  private tokenizerFor(model: string | undefined): Engine | null {
    const info = this.model(model);
    if (info.backend !== "upstream" || this.localIds().has(info.id)) return this.engine();
    return null;
  }

  /** A tokenizer route (llama-server's /tokenize, /detokenize) on a live worker of a remote model. */
  private async onWorker<T>(model: string, path: string, body: Record<string, unknown>, read: (json: Record<string, unknown>) => T | undefined): Promise<T> {
    const u = this.o.pool.serving(model).find((w) => w.healthy);
    if (!u) throw new ApiError("no_eligible_worker", `no worker for '${model}' is available; retry shortly`);
    let json: Record<string, unknown> = {};
    try {
      const r = await fetch(`${u.spec.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...u.headers() }, body: JSON.stringify({ model, ...body }), signal: AbortSignal.timeout(this.forward.firstByteTimeoutMs) });
      if (r.ok) json = (await r.json()) as Record<string, unknown>;
      else await r.arrayBuffer();
    } catch {
      // answered below
    }
    const out = read(json);
    if (out === undefined) throw new ApiError("invalid_request", `model '${model}' runs on remote workers, and its worker ${u.name} has no ${path} route`, "model");
    return out;
  }

  async tokenize(model: string | undefined, text: string, opts: { addSpecial?: boolean; parseSpecial?: boolean } = {}): Promise<number[]> {
    const local = this.tokenizerFor(model);
    if (local) return local.tokenize(model, text, opts);
    // cocoon-server and llama-server read `content`, vLLM reads `prompt`; all answer `tokens`.
    return this.onWorker(this.model(model).id, "/tokenize", { content: text, prompt: text, add_special: opts.addSpecial ?? false, parse_special: opts.parseSpecial ?? true }, (j) =>
      Array.isArray(j.tokens) && j.tokens.every((t) => typeof t === "number") ? (j.tokens as number[]) : undefined,
    );
  }

  async detokenize(model: string | undefined, tokens: number[]): Promise<string> {
    const local = this.tokenizerFor(model);
    if (local) return local.detokenize(model, tokens);
    return this.onWorker(this.model(model).id, "/detokenize", { tokens }, (j) => (typeof j.content === "string" ? j.content : typeof j.prompt === "string" ? j.prompt : undefined));
  }

  async pieces(model: string | undefined, tokens: number[]): Promise<number[][]> {
    const local = this.tokenizerFor(model);
    if (local) return local.pieces(model, tokens);
    // Each token on its own through the worker's detokenizer: its text's bytes.
    return Promise.all(tokens.map(async (t) => [...Buffer.from(await this.detokenize(model, [t]))]));
  }

  /**
   * A remote model's chat template is on its workers, which do not expose rendering: ChatML (role
   * markers around each message, tools as JSON, the assistant's opening) stands in for the prompt.
   * Templates add more than ChatML's markers (a thinking block, a date, a default system prompt), so
   * a slack of about 4 tokens per message and 8 more (" x" is one token in BPE vocabularies) keeps
   * count_tokens and Anthropic's context fitting on the high, safe side.
   */
  async render(model: string | undefined, args: Parameters<Engine["render"]>[1]): ReturnType<Engine["render"]> {
    const local = this.tokenizerFor(model);
    if (local) return local.render(model, args);
    const text = (c: unknown) => (typeof c === "string" ? c : c === null || c === undefined ? "" : JSON.stringify(c));
    const tools = args.options?.tools?.length ? `<|im_start|>system\n${JSON.stringify(args.options.tools)}<|im_end|>\n` : "";
    const turns = args.messages.map((m) => `<|im_start|>${m.role}\n${text(m.content)}${m.tool_calls ? JSON.stringify(m.tool_calls) : ""}<|im_end|>\n`).join("");
    const slack = " x".repeat(4 * args.messages.length + 8);
    return { prompt: `${tools}${turns}<|im_start|>assistant\n${slack}`, startsInReasoning: false };
  }

  async forgetSession(key: string): Promise<{ slots: number; parked: number }> {
    // Workers keep no pinned state for the gateway's conversations (only their prompt cache), so
    // only the local engine and the sticky binding have something to forget.
    return (await this.o.local()?.forgetSession(key)) ?? { slots: 0, parked: 0 };
  }

  /**
   * Usage of a request whose worker reported none: with the local model's tokenizer when this gateway
   * has the same model, else estimateTokens(). `prompted`: a worker accepted the prompt (a request
   * cancelled before that processed nothing).
   */
  async count(model: string, request: GenerateRequest, produced: { text: string[]; pieces: number[] }, prompted: boolean): Promise<Usage> {
    const local = this.localIds().has(model) ? this.o.local() : null;
    let promptTokens = 0;
    let completionTokens = 0;
    if (local) {
      try {
        if (prompted) {
          if (Array.isArray(request.prompt)) promptTokens = request.prompt.length;
          else if (request.messages) {
            const { prompt } = await local.render(model, { messages: request.messages, options: { tools: request.tools, enableThinking: request.enableThinking, extra: request.templateVars } });
            promptTokens = (await local.tokenize(model, prompt, { addSpecial: true, parseSpecial: true })).length;
          } else promptTokens = (await local.tokenize(model, (request.prompt ?? "") + (request.suffix ?? ""), { addSpecial: true })).length;
        }
        for (let i = 0; i < produced.text.length; i++) {
          const t = produced.text[i]!;
          completionTokens += Math.max(produced.pieces[i] ?? 0, t ? (await local.tokenize(model, t, { parseSpecial: false })).length : 0);
        }
        return { promptTokens, cachedTokens: 0, completionTokens, reasoningTokens: 0 };
      } catch {
        // The local model is gone (restarting): estimate instead.
      }
    }
    if (prompted) {
      if (Array.isArray(request.prompt)) promptTokens = request.prompt.length;
      else if (request.messages) promptTokens = estimateTokens(JSON.stringify(request.messages) + (request.tools ? JSON.stringify(request.tools) : ""));
      else promptTokens = estimateTokens((request.prompt ?? "") + (request.suffix ?? ""));
    }
    completionTokens = produced.text.reduce((n, t, i) => n + estimateTokens(t, produced.pieces[i] ?? 0), 0);
    return { promptTokens, cachedTokens: 0, completionTokens, reasoningTokens: 0 };
  }
}

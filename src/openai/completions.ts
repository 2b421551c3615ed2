// /v1/completions logic: one or several prompts (text or token ids), n and best_of choices each,
// echo, suffix (fill-in-the-middle) and the legacy logprobs format; whole objects or chunks.
import type { EngineEvent, GenerateRequest, ModelInfo, TokenLogprob, Usage } from "../inference/types.ts";
import { ApiError, toApiError } from "../http/errors.ts";
import type { GenerationDeps } from "../generation/deps.ts";
import { cocoonOptions, debugOf, pickModel, unixSeconds, type CocoonOptions } from "../generation/options.ts";
import { startGenerations, type StartedGeneration } from "../generation/start.ts";
import { sumCosts, usageWire } from "../generation/usage.ts";
import type { Cost, Principal } from "../platform/service.ts";
import type { Completion, CompletionRequest } from "./model.ts";
import { SYSTEM_FINGERPRINT, constraint, finishReason, responseId, sampling, stops, type Outcome } from "./service.ts";

type Run = StartedGeneration;

/** The sum of the runs' settled costs (each prompt is billed as its own request). */
async function totalCost(runs: Run[], dones: (Extract<EngineEvent, { type: "done" }> | null)[]): Promise<Cost | null> {
  return sumCosts(await Promise.all(runs.map((r, i) => r.settle(dones[i] ?? null))));
}

function prompts(p: CompletionRequest["prompt"]): (string | number[])[] {
  if (typeof p === "string") return [p];
  if (p.length > 0 && typeof p[0] === "number") return [p as number[]];
  return p as (string | number[])[];
}

function legacyLogprobs(lps: TokenLogprob[], startOffset: number) {
  let offset = startOffset;
  const text_offset: number[] = [];
  for (const lp of lps) {
    text_offset.push(offset);
    offset += lp.token.length;
  }
  return {
    tokens: lps.map((l) => l.token),
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

export async function runCompletion(deps: GenerationDeps, body: CompletionRequest, signal?: AbortSignal, principal: Principal | null = null): Promise<Outcome<Completion>> {
  const cocoon = cocoonOptions(body);
  const model = pickModel(deps, body.model, cocoon, "completion");
  const n = body.n ?? 1;
  const bestOf = body.best_of ?? n;
  if (bestOf < n) throw new ApiError("invalid_request", "best_of must be at least n", "best_of");
  if (body.stream && bestOf > n) throw new ApiError("invalid_request", "best_of cannot be used with stream", "best_of");
  if (body.suffix && !model.infill) throw new ApiError("invalid_request", `model '${model.id}' has no fill-in-the-middle tokens, so suffix is not supported`, "suffix");
  const list = prompts(body.prompt);
  // n_probs: llama-server's name for the same count.
  const wantLogprobs = body.logprobs ?? body.n_probs ?? -1;
  const constrained = constraint(body);
  const base = (prompt: string | number[]): GenerateRequest => ({
    model: model.id,
    prompt,
    suffix: body.suffix ?? undefined,
    maxTokens: body.max_tokens ?? 16,
    sampling: sampling(body, model),
    stop: stops(body.stop),
    ignoreEos: body.ignore_eos,
    n: bestOf,
    // best_of ranks candidates by their log-probability, so it needs them even when not returned.
    logprobs: wantLogprobs >= 0 ? wantLogprobs : bestOf > n ? 0 : -1,
    ...constrained,
    timeoutMs: cocoon.timeoutMs || undefined,
  });

  const runs = await startGenerations(deps, { model, principal, endpoint: "completion", cocoon, signal }, list.map(base));
  const echoes = body.echo ? await Promise.all(list.map((p) => (typeof p === "string" ? p : deps.engine.detokenize(model.id, p)))) : list.map(() => "");
  const id = responseId("cmpl", cocoon.guid);
  const created = unixSeconds();
  const ctx = { id, created, model, cocoon, n, bestOf, logprobs: wantLogprobs >= 0, echoes };
  if (body.stream) return { stream: true, chunks: completionChunks(runs, ctx, body.stream_options?.include_usage ?? false) };
  return { stream: false, ...(await completionObject(runs, ctx)) };
}

interface Ctx {
  id: string;
  created: number;
  model: ModelInfo;
  cocoon: CocoonOptions;
  n: number;
  bestOf: number;
  logprobs: boolean;
  echoes: string[];
}

function addUsage(total: Usage | null, u: Usage): Usage {
  if (!total) return { ...u };
  return {
    promptTokens: total.promptTokens + u.promptTokens,
    cachedTokens: total.cachedTokens + u.cachedTokens,
    completionTokens: total.completionTokens + u.completionTokens,
    reasoningTokens: total.reasoningTokens + u.reasoningTokens,
  };
}

async function completionObject(runs: Run[], o: Ctx): Promise<{ body: Completion; cost: Cost | null }> {
  const choices: Completion["choices"] = [];
  let usage: Usage | null = null;
  let lastDone: Extract<EngineEvent, { type: "done" }> | null = null;
  const dones: (Extract<EngineEvent, { type: "done" }> | null)[] = [];
  for (const [p, run] of runs.entries()) {
    const cands = Array.from({ length: o.bestOf }, () => ({ text: "", logprobs: [] as TokenLogprob[], finish: "stop" }));
    try {
      for await (const e of run.events) {
        if (e.type === "delta") {
          cands[e.index]!.text += e.content;
          cands[e.index]!.logprobs.push(...e.logprobs);
        } else if (e.type === "finish") cands[e.index]!.finish = finishReason(e.reason);
        else {
          usage = addUsage(usage, e.usage);
          lastDone = e;
          dones[p] = e;
        }
      }
    } catch (err) {
      throw toApiError(err);
    }
    // best_of: the candidates with the highest mean log-probability per token.
    const mean = (c: (typeof cands)[number]) => (c.logprobs.length ? c.logprobs.reduce((s, l) => s + l.logprob, 0) / c.logprobs.length : -Infinity);
    const chosen = o.bestOf > o.n ? [...cands].sort((a, b) => mean(b) - mean(a)).slice(0, o.n) : cands;
    chosen.forEach((c, i) => {
      const echo = o.echoes[p]!;
      choices.push({
        text: echo + c.text,
        index: p * o.n + i,
        logprobs: o.logprobs ? legacyLogprobs(c.logprobs, echo.length) : null,
        finish_reason: c.finish,
      });
    });
  }
  const cost = await totalCost(runs, dones);
  const body: Completion = {
    id: o.id,
    object: "text_completion",
    created: o.created,
    model: o.model.id,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices,
    usage: usageWire(usage!, cost),
    ...(o.cocoon.debug && lastDone ? { debug: debugOf(lastDone, o.model, o.cocoon) } : {}),
  };
  return { body, cost };
}

async function* completionChunks(runs: Run[], o: Ctx, includeUsage: boolean): AsyncGenerator<Record<string, unknown>> {
  const base = { id: o.id, object: "text_completion", created: o.created, model: o.model.id, system_fingerprint: SYSTEM_FINGERPRINT };
  const chunk = (index: number, text: string, finish: string | null, lps: TokenLogprob[] | null, offset: number) => ({
    ...base,
    choices: [{ text, index, logprobs: o.logprobs && lps ? legacyLogprobs(lps, offset) : null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  let usage: Usage | null = null;
  let lastDone: Extract<EngineEvent, { type: "done" }> | null = null;
  const dones: (Extract<EngineEvent, { type: "done" }> | null)[] = [];
  let finished = 0;
  try {
    for (const [p, run] of runs.entries()) {
      const offsets = new Map<number, number>();
      if (o.echoes[p]) for (let i = 0; i < o.n; i++) yield chunk(p * o.n + i, o.echoes[p]!, null, [], 0);
      for await (const e of run.events) {
        if (e.type === "delta") {
          const at = offsets.get(e.index) ?? o.echoes[p]!.length;
          offsets.set(e.index, at + e.content.length);
          if (e.content || e.logprobs.length) yield chunk(p * o.n + e.index, e.content, null, e.logprobs, at);
        } else if (e.type === "finish") yield chunk(p * o.n + e.index, "", finishReason(e.reason), null, 0);
        else {
          usage = addUsage(usage, e.usage);
          lastDone = e;
          dones[p] = e;
        }
      }
      finished++;
    }
    const cost = await totalCost(runs, dones);
    const debug = o.cocoon.debug && lastDone ? { debug: debugOf(lastDone, o.model, o.cocoon) } : {};
    if (includeUsage && usage) yield { ...base, choices: [], usage: usageWire(usage, cost), ...debug };
    else if (o.cocoon.debug && lastDone) yield { ...base, choices: [], ...debug };
  } finally {
    // Runs not read to the end (client gone) are cancelled.
    for (const r of runs.slice(finished)) await r.source.return?.();
  }
}

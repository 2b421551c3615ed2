// Billing around one engine request: reserve before it runs (capping max_tokens to what the account
// can pay), then charge exactly the tokens processed when it ends, however it ends.
import type { Generation } from "../inference/engine.ts";
import type { EngineEvent, GenerateRequest, ModelInfo, Usage } from "../inference/types.ts";
import type { UsageStatus } from "../platform/ledger.ts";
import type { BillingTicket, Cost, Platform, Principal } from "../platform/service.ts";

type Done = Extract<EngineEvent, { type: "done" }>;

/**
 * An upper bound on the tokens the request will process, without tokenizing: every token covers at
 * least one byte of text, and a token id is one token. It counts every part the engine feeds: the
 * prompt (text or ids), a suffix and the fill-in-the-middle markers around it, the chat template's
 * markers, tools and extra template variables.
 */
export function promptTokensUpperBound(request: GenerateRequest, model: ModelInfo): number {
  let tokens = 0;
  if (Array.isArray(request.prompt)) tokens += request.prompt.length;
  else if (typeof request.prompt === "string") tokens += Buffer.byteLength(request.prompt) + 8;
  // Beside a text or token-id prompt alike: prefix, suffix and middle markers plus the suffix's text.
  if (request.suffix !== undefined) tokens += Buffer.byteLength(request.suffix) + 8;
  if (request.messages) {
    // The chat template adds role markers around each message and the tools' descriptions.
    tokens += Buffer.byteLength(JSON.stringify(request.messages)) + 32 * request.messages.length + 64;
    if (request.tools) tokens += Buffer.byteLength(JSON.stringify(request.tools)) + 256;
    if (request.templateVars) tokens += Buffer.byteLength(JSON.stringify(request.templateVars));
  }
  // A prompt longer than the context is refused before it runs: it never costs more than the context.
  return Math.min(model.contextWindow, tokens + 16);
}

export class RequestBilling {
  // The first settlement, shared by every later call (the charge is written once).
  private settled: Promise<Cost> | null = null;

  private constructor(
    private readonly platform: Platform,
    readonly ticket: BillingTicket,
  ) {}

  /**
   * Reserves for a request and caps its max_tokens; null when billing is off. Throws 402 when the
   * account cannot pay for it.
   */
  static async start(
    platform: Platform | null,
    principal: Principal | null,
    request: GenerateRequest,
    model: ModelInfo,
    endpoint: string,
    guid: string | null,
    promptUpperBound?: number,
  ): Promise<RequestBilling | null> {
    if (!platform || !principal) return null;
    const upper = promptUpperBound ?? promptTokensUpperBound(request, model);
    const generates = endpoint !== "embedding";
    // No choice can generate more than the context leaves after a one-token prompt, whatever
    // max_tokens says (a larger one is refused by the engine): the reservation never needs more.
    const most = Math.max(1, model.contextWindow - 1);
    // A missing limit means what the context leaves after the prompt (or the API's own default, when
    // smaller): the engine computes it once the prompt is tokenized, capped by what the hold pays for.
    const limit = request.maxTokens ?? Math.min(request.defaultMaxTokens ?? most, most);
    const reserved = Math.min(limit, most);
    const { ticket, maxTokens } = await platform.begin(principal, {
      model: model.id,
      endpoint,
      promptTokensUpperBound: upper,
      maxTokens: generates ? reserved : 0,
      n: request.n ?? 1,
      requestGuid: guid,
      generates,
    });
    if (generates && maxTokens < reserved) {
      if (request.maxTokens === undefined) request.defaultMaxTokens = maxTokens;
      else request.maxTokens = maxTokens;
    }
    return new RequestBilling(platform, ticket);
  }

  /**
   * Settles from the engine's final event even if the client stopped reading, and checkpoints what
   * the request processed while it runs (about once a second), so that a crash of this process
   * loses at most that much: the next server settles a dead owner's hold at its last checkpoint.
   * A request that failed after it ran (its worker died) is charged its last checkpoint.
   */
  watch(gen: Generation): void {
    gen.onProgress = (usage) => {
      if (this.settled) return;
      // A checkpoint that cannot be written (storage unavailable) is retried with the next report.
      try {
        void Promise.resolve(this.platform.checkpoint(this.ticket, usage)).catch(() => {});
      } catch {
        // as above
      }
    };
    void gen.final.then((done) => {
      const settled = done ? this.settle(done) : gen.processed ? this.settleUsage(gen.processed, "error") : this.settle(null);
      // A settlement the store refused is kept and retried by the platform; nothing to do here.
      settled.catch(() => {});
    });
  }

  /** Charges the request's usage (idempotent: the first settlement is the one that counts). */
  settle(done: Done | null): Promise<Cost> {
    if (this.settled) return this.settled;
    const status = !done ? "error" : done.reasons.includes("cancelled") ? "cancelled" : done.reasons.includes("timeout") ? "timeout" : "ok";
    this.settled = this.platform.finish(this.ticket, done?.usage ?? null, status);
    return this.settled;
  }

  /** Settles with the given usage and status (a request that failed after it ran). */
  settleUsage(usage: Usage, status: UsageStatus): Promise<Cost> {
    if (this.settled) return this.settled;
    this.settled = this.platform.finish(this.ticket, usage, status);
    return this.settled;
  }

  /** Settles with explicit token counts (embeddings, which have no engine events). */
  settleTokens(promptTokens: number): Promise<Cost> {
    if (this.settled) return this.settled;
    this.settled = this.platform.finish(this.ticket, { promptTokens, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 }, "ok");
    return this.settled;
  }
}

// One choice's text pipeline, token by token: bytes -> whole UTF-8 characters -> stop strings ->
// llama.cpp's chat parser for the model's format (content, reasoning, tool calls; see ChatStream).
// Produces the deltas the engine streams.
import { Utf8Stream, type ChatDiff, type ChatStream } from "../native/llama.ts";
import type { TokenChoice } from "../native/token-sampler.ts";
import { StopMatcher } from "./stop.ts";
import type { ToolCall, ToolCallDelta, TokenLogprob, TopLogprob } from "./types.ts";

export interface OutputOptions {
  stops: string[];
  /** A chat answer's parser (made per choice); null: the text is all content (completions). */
  parser: (() => ChatStream) | null;
  /** Tokens printed with their special text (the format's markers, llama-server's preserved_tokens). */
  specialTokens: ReadonlySet<number>;
  logprobs: boolean;
  /** Call ids in the format's own style: Mistral templates refuse ids that are not 9 alphanumerics. Defaults to llama-server's call_ ids. */
  mistralIds?: boolean;
  /** parallel_tool_calls: false. Only the first call is kept (llama.cpp's grammars for some formats allow more). Defaults to false. */
  singleCall?: boolean;
  /** The parser looks for tool calls. Defaults to false. */
  toolCalls?: boolean;
}

/** What the vocabulary must provide: raw bytes per token. */
export interface TokenText {
  tokenBytes(token: number, special?: boolean): Uint8Array;
}

export interface OutputDelta {
  content: string;
  reasoning: string;
  toolCalls: ToolCallDelta[];
  logprobs: TokenLogprob[];
}

const lossy = new TextDecoder("utf-8", { fatal: false });
const NO_SPECIAL: ReadonlySet<number> = new Set();

export class ChoiceOutput {
  private readonly utf8 = new Utf8Stream();
  private readonly stop: StopMatcher;
  private readonly parser: ChatStream | null;
  private readonly calls: ToolCall[] = [];
  private pendingLogprobs: TokenLogprob[] = [];
  private readonly special: ReadonlySet<number>;
  /** The parser last placed text in reasoning (so the tokens now generated are reasoning tokens). */
  private inReasoning = false;
  /** Set when a stop string matched; generation must end. */
  stopHit: string | null = null;
  reasoningTokens = 0;

  constructor(
    private readonly vocab: TokenText,
    private readonly opts: OutputOptions,
  ) {
    this.stop = new StopMatcher(opts.stops);
    this.parser = opts.parser ? opts.parser() : null;
    this.special = opts.specialTokens ?? NO_SPECIAL;
  }

  /** Feeds one generated token; returns the delta it releases (possibly empty). */
  push(token: number, choice: TokenChoice | null): OutputDelta {
    const bytes = this.vocab.tokenBytes(token, this.special.has(token));
    if (this.opts.logprobs && choice) this.pendingLogprobs.push(this.logprobOf(choice));
    const text = this.utf8.push(bytes);
    const r = this.stop.push(text);
    if (r.stop !== null) this.stopHit = r.stop;
    const wasReasoning = this.inReasoning;
    const delta = this.route(r.text, false);
    if (wasReasoning || delta.reasoning.length > 0) this.reasoningTokens++;
    return delta;
  }

  /** Releases everything held back; call once when the choice ends. */
  finish(): OutputDelta {
    let text = this.utf8.flush();
    if (this.stopHit === null) {
      const r = this.stop.push(text);
      text = r.text + (r.stop === null ? this.stop.flush() : "");
      if (r.stop !== null) this.stopHit = r.stop;
    }
    const delta = this.route(text, true);
    this.parser?.dispose();
    return delta;
  }

  /** Tool calls seen so far (whole once the choice finished). */
  get toolCalls(): ToolCall[] {
    return this.calls;
  }

  private route(text: string, final: boolean): OutputDelta {
    const logprobs = this.pendingLogprobs;
    this.pendingLogprobs = [];
    if (!this.parser) return { content: text, reasoning: "", toolCalls: [], logprobs };
    if (text === "" && !final) return { content: "", reasoning: "", toolCalls: [], logprobs };
    // A final parse that fails (a call cut off by max_tokens, output off the format) keeps what the
    // partial parses placed: the unfinished markup never reaches content.
    this.raw += text;
    const step = this.parser.push(text, final);
    const delta = this.apply(step.diffs);
    // The parsers also drop the whitespace an answer starts with. When the answer is the first thing
    // generated (no reasoning or markup before it), it is the model's own text: kept, so that the
    // reply a client sends back in the next turn's history re-tokenizes to the tokens generated and
    // the conversation's cached KV is reused past it (a leading space dropped re-tokenizes the
    // first word differently and the whole reply is processed again).
    if (!this.produced && delta.content && !delta.reasoning) {
      const lead = /^\s+/.exec(this.raw)?.[0] ?? "";
      // Less what was already streamed as a blank answer (sentBlank, below).
      if (lead.length > this.sentBlank && this.raw.startsWith(lead + delta.content)) delta.content = lead.slice(this.sentBlank) + delta.content;
    }
    if (delta.content || delta.reasoning || delta.toolCalls.length > 0) this.produced = true;
    // llama.cpp's parsers trim whitespace around content, so an answer that is only whitespace (a
    // weak model's newlines) would come back empty; it is the answer, as it was before the parser.
    // Streamed as it comes (where no tool call could follow it as a whitespace-only message).
    if (!this.produced && this.raw.trim() === "" && !step.message?.tool_calls.length && (final || !this.opts.toolCalls)) {
      delta.content = this.raw.slice(this.sentBlank);
      this.sentBlank = this.raw.length;
      if (final) this.produced = true;
    }
    if (step.message) {
      step.message.tool_calls.forEach((c, i) => {
        if (this.opts.singleCall && i > 0) return;
        if (c.name) this.calls[i] = { id: this.idOf(c.id), type: "function", function: { name: c.name, arguments: c.arguments } };
      });
    }
    return { ...delta, logprobs };
  }

  private readonly ids = new Map<string, string>();
  /** Everything the parser was given, and whether it placed any of it yet. */
  private raw = "";
  private produced = false;
  private sentBlank = 0;

  /** The id clients see: a generated call_ id becomes 9 alphanumerics for Mistral; a model's own id stays. */
  private idOf(id: string): string {
    if (!this.opts.mistralIds || !/^call_[A-Za-z0-9]{24}$/.test(id)) return id;
    let mapped = this.ids.get(id);
    if (!mapped) {
      mapped = id.slice(-9);
      this.ids.set(id, mapped);
    }
    return mapped;
  }

  private apply(diffs: ChatDiff[]): Omit<OutputDelta, "logprobs"> {
    let content = "";
    let reasoning = "";
    const toolCalls: ToolCallDelta[] = [];
    for (const d of diffs) {
      if (d.reasoning) {
        reasoning += d.reasoning;
        this.inReasoning = true;
      }
      if (d.content) {
        content += d.content;
        this.inReasoning = false;
      }
      if (d.index === undefined) continue;
      this.inReasoning = false;
      if (this.opts.singleCall && d.index > 0) continue;
      let call = this.calls[d.index];
      if (!call) {
        call = { id: this.idOf(d.id ?? ""), type: "function", function: { name: d.name ?? "", arguments: "" } };
        this.calls[d.index] = call;
      }
      const delta: ToolCallDelta = { index: d.index };
      if (d.id) delta.id = this.idOf(d.id);
      if (d.name) delta.name = d.name;
      if (d.arguments) {
        delta.arguments = d.arguments;
        call.function.arguments += d.arguments;
      }
      toolCalls.push(delta);
    }
    return { content, reasoning, toolCalls };
  }

  private logprobOf(choice: TokenChoice): TokenLogprob {
    const top: TopLogprob[] = choice.top.map((t) => this.describe(t.token, t.logprob));
    return { ...this.describe(choice.token, choice.logprob), id: choice.token, top };
  }

  private describe(token: number, logprob: number): TopLogprob {
    const bytes = this.vocab.tokenBytes(token, false);
    return { token: lossy.decode(bytes), bytes: Array.from(bytes), logprob };
  }
}

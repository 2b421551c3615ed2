// One choice's text pipeline, token by token: bytes -> whole UTF-8 characters -> stop strings ->
// reasoning split -> tool-call extraction. Produces the deltas the engine streams.
import { Utf8Stream } from "../native/llama.ts";
import type { TokenChoice } from "../native/token-sampler.ts";
import { StopMatcher } from "./stop.ts";
import { ReasoningSplitter } from "./reasoning.ts";
import { ToolCallStream, type ToolStreamEvent } from "./tool-calls.ts";
import type { ToolCallFormat } from "./chat-template.ts";
import type { ToolCall, ToolCallDelta, TokenLogprob, TopLogprob } from "./types.ts";

export interface OutputOptions {
  stops: string[];
  /** Split a leading <think> block into the reasoning channel. */
  reasoning: boolean;
  startsInReasoning: boolean;
  /** Parse tool calls out of the content (chat requests with tools). */
  toolFormat: ToolCallFormat;
  logprobs: boolean;
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

export class ChoiceOutput {
  private readonly utf8 = new Utf8Stream();
  private readonly stop: StopMatcher;
  private readonly splitter: ReasoningSplitter | null;
  private readonly tools: ToolCallStream | null;
  private readonly calls: ToolCall[] = [];
  private pendingLogprobs: TokenLogprob[] = [];
  private inReasoning: boolean;
  /** Set when a stop string matched; generation must end. */
  stopHit: string | null = null;
  reasoningTokens = 0;

  constructor(
    private readonly vocab: TokenText,
    private readonly opts: OutputOptions,
  ) {
    this.stop = new StopMatcher(opts.stops);
    this.splitter = opts.reasoning ? new ReasoningSplitter({ startsInReasoning: opts.startsInReasoning }) : null;
    this.tools = opts.toolFormat !== "none" ? new ToolCallStream(opts.toolFormat) : null;
    this.inReasoning = opts.reasoning && opts.startsInReasoning;
  }

  /** Feeds one generated token; returns the delta it releases (possibly empty). */
  push(token: number, choice: TokenChoice | null): OutputDelta {
    const bytes = this.vocab.tokenBytes(token, false);
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
    return this.route(text, true);
  }

  /** Complete tool calls seen so far. */
  get toolCalls(): ToolCall[] {
    return this.calls;
  }

  private route(text: string, final: boolean): OutputDelta {
    let content = text;
    let reasoning = "";
    if (this.splitter) {
      const d = this.splitter.push(text);
      const f = final ? this.splitter.flush() : { content: "", reasoning: "" };
      content = d.content + f.content;
      reasoning = d.reasoning + f.reasoning;
      this.trackReasoning(text);
    }
    const toolCalls: ToolCallDelta[] = [];
    if (this.tools) {
      const events = [...this.tools.push(content), ...(final ? this.tools.flush() : [])];
      content = this.applyToolEvents(events, toolCalls);
    }
    const logprobs = this.pendingLogprobs;
    this.pendingLogprobs = [];
    return { content, reasoning, toolCalls, logprobs };
  }

  private applyToolEvents(events: ToolStreamEvent[], out: ToolCallDelta[]): string {
    let content = "";
    for (const e of events) {
      if (e.type === "content") content += e.text;
      else if (e.type === "tool_call") {
        this.calls[e.index] = { id: e.id, type: "function", function: { name: e.name, arguments: "" } };
        out.push({ index: e.index, id: e.id, name: e.name });
      } else {
        const call = this.calls[e.index];
        if (call) call.function.arguments += e.delta;
        out.push({ index: e.index, arguments: e.delta });
      }
    }
    return content;
  }

  /** Follows <think> / </think> in the raw text, to count reasoning tokens. */
  private trackReasoning(text: string): void {
    if (!this.inReasoning && text.includes("<think>")) this.inReasoning = true;
    if (this.inReasoning && text.includes("</think>")) this.inReasoning = false;
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

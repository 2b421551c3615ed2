// Splits a reasoning model's output into reasoning (a leading <think>…</think> block) and content, as it
// streams. Like llama.cpp, reasoning is trimmed and the whitespace after the closing tag is dropped.

export interface ReasoningOptions {
  /** The prompt already opened the think block, so output begins inside reasoning. Defaults to false. */
  startsInReasoning?: boolean;
  /** Defaults to "<think>". */
  open?: string;
  /** Defaults to "</think>". */
  close?: string;
}

export interface ReasoningDelta {
  content: string;
  reasoning: string;
}

type State = "start" | "reasoning" | "after" | "content";

/** Whitespace allowed before an opening think tag. */
const MAX_LEADING_WHITESPACE = 2;

export class ReasoningSplitter {
  private state: State;
  /** Text not yet placed: a possible tag prefix, or whitespace that may turn out to be trimmed. */
  private pending = "";
  /** Nothing but whitespace seen inside the think block yet (that whitespace is trimmed). */
  private reasoningEmpty = true;
  private readonly open: string;
  private readonly close: string;

  constructor(opts: ReasoningOptions = {}) {
    this.state = opts.startsInReasoning ? "reasoning" : "start";
    this.open = opts.open ?? "<think>";
    this.close = opts.close ?? "</think>";
  }

  push(delta: string): ReasoningDelta {
    this.pending += delta;
    return this.drain(false);
  }

  flush(): ReasoningDelta {
    return this.drain(true);
  }

  private drain(final: boolean): ReasoningDelta {
    const out: ReasoningDelta = { content: "", reasoning: "" };
    for (;;) {
      const text = this.pending;
      switch (this.state) {
        case "start": {
          // Only a think block at the very start counts; leading whitespace is allowed before it.
          const rest = text.trimStart();
          if (rest.startsWith(this.open)) {
            this.pending = rest.slice(this.open.length);
            this.state = "reasoning";
            continue;
          }
          // Holding back whitespace delays the first visible token; models open their think block
          // right away, so more than a couple of leading whitespace characters means plain content.
          if (!final && this.open.startsWith(rest) && text.length - rest.length <= MAX_LEADING_WHITESPACE) return out;
          this.state = "content";
          continue;
        }
        case "reasoning": {
          const body = this.reasoningEmpty ? text.trimStart() : text;
          const closeAt = body.indexOf(this.close);
          if (closeAt >= 0) {
            out.reasoning += body.slice(0, closeAt).trimEnd();
            this.pending = body.slice(closeAt + this.close.length);
            this.state = "after";
            continue;
          }
          // Hold a possible closing-tag prefix and trailing whitespace: both may belong to the close.
          const keep = final ? 0 : partialTagLength(body, this.close);
          const emit = body.slice(0, body.length - keep).trimEnd();
          out.reasoning += emit;
          if (emit) this.reasoningEmpty = false;
          this.pending = final ? "" : body.slice(emit.length);
          return out;
        }
        case "after": {
          const rest = text.trimStart();
          this.pending = "";
          if (rest === "") return out;
          this.pending = rest;
          this.state = "content";
          continue;
        }
        case "content":
          out.content += text;
          this.pending = "";
          return out;
      }
    }
  }
}

/** Splits a whole generation; the same result as streaming it in any pieces. */
export function splitReasoning(text: string, startsInReasoning = false): ReasoningDelta {
  const splitter = new ReasoningSplitter({ startsInReasoning });
  const head = splitter.push(text);
  const tail = splitter.flush();
  return { content: head.content + tail.content, reasoning: head.reasoning + tail.reasoning };
}

/** Length of the longest tail of `text` that is a proper prefix of `tag`. */
function partialTagLength(text: string, tag: string): number {
  for (let k = Math.min(tag.length - 1, text.length); k > 0; k--) {
    if (text.endsWith(tag.slice(0, k))) return k;
  }
  return 0;
}

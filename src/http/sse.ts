// Server-sent events: the transport (a pulled ReadableStream with the SSE headers, cancelled when the
// client goes away) and the event framing. What the events say is each front door's wire format.

const encoder = new TextEncoder();

/**
 * One SSE event carrying `text`. A text with line breaks becomes several `data:` lines, which an SSE
 * client joins with "\n" (the SSE spec), so a token containing a newline arrives intact.
 */
export function sseEvent(text: string, event?: string): string {
  return `${event ? `event: ${event}\n` : ""}${text
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}`)
    .join("\n")}\n\n`;
}

/** Comment lines (`: text`), ignored by SSE clients, e.g. for values known only at the end. */
export function sseComments(lines: string[]): string {
  return lines.map((line) => `: ${line}\n`).join("");
}

/**
 * A text/event-stream response over framed text: each value the generator yields goes out as is.
 * The generator handles its own failures (as an error event in its API's shape); a client that goes
 * away stops it, which cancels what it was reading.
 */
export function sseResponse(frames: AsyncGenerator<string, unknown>, headers: Record<string, string>): Response {
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let r: IteratorResult<string, unknown>;
        try {
          r = await frames.next();
        } catch {
          // The front door frames its own errors; one that escapes still ends the stream cleanly.
          controller.close();
          return;
        }
        if (r.done) {
          controller.close();
          return;
        }
        // An empty frame is nothing to send; read on rather than end the pull with nothing.
        if (r.value) {
          controller.enqueue(encoder.encode(r.value));
          return;
        }
      }
    },
    async cancel() {
      await frames.return(undefined);
    },
  });
  return new Response(body, {
    headers: {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
      ...headers,
    },
  });
}

/**
 * A stream returned from a handler whose declared response schema types the whole-body case:
 * Elysia sends a Response as it is (no schema check), but its handler type cannot accept a promise
 * of either one, so the stream is typed as the body it replaces.
 */
export function streamed(response: Response): never {
  return response as never;
}

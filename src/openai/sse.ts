// Server-sent events framing: each chunk is one `data: <json>\n\n` event, the stream ends with
// `data: [DONE]\n\n`. A failure after streaming began becomes one error event before the end.
import { toApiError } from "../http/errors.ts";

const encoder = new TextEncoder();

export interface SseOptions {
  /** Called with the comment lines to send right before [DONE] (e.g. X-Cocoon-Client-End). */
  trailer?: () => string[];
  onEnd?: (ok: boolean) => void;
}

export function sseResponse(chunks: AsyncGenerator<Record<string, unknown>>, headers: Record<string, string>, opts: SseOptions = {}): Response {
  let ok = true;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await chunks.next();
        if (!r.done) {
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(r.value)}\n\n`));
          return;
        }
      } catch (err) {
        ok = false;
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(toApiError(err).body())}\n\n`));
      }
      const trailer = (opts.trailer?.() ?? []).map((line) => `: ${line}\n`).join("");
      controller.enqueue(encoder.encode(`${trailer ? `${trailer}\n` : ""}data: [DONE]\n\n`));
      controller.close();
      opts.onEnd?.(ok);
    },
    async cancel() {
      // The client went away: stopping the generator cancels the generation.
      ok = false;
      await chunks.return(undefined);
      opts.onEnd?.(false);
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

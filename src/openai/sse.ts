// OpenAI's stream framing: each chunk is one `data: <json>` event and the stream ends with
// `data: [DONE]`; a failure after streaming began becomes one error event (OpenAI's error object)
// before the end. Comment lines given by `trailer` go right before [DONE].
import { toApiError } from "../http/errors.ts";
import { sseComments, sseEvent, sseResponse } from "../http/sse.ts";

async function* frames(chunks: AsyncGenerator<Record<string, unknown>>, trailer: () => string[]): AsyncGenerator<string> {
  try {
    for await (const chunk of chunks) yield sseEvent(JSON.stringify(chunk));
  } catch (err) {
    yield sseEvent(JSON.stringify(toApiError(err).body()));
  }
  const comments = sseComments(trailer());
  yield `${comments ? `${comments}\n` : ""}data: [DONE]\n\n`;
}

export function openaiSse(chunks: AsyncGenerator<Record<string, unknown>>, trailer: () => string[] = () => [], headers: Record<string, string> = {}): Response {
  return sseResponse(frames(chunks, trailer), headers);
}

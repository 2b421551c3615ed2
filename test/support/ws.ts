// A WebSocket client for tests: frames queued as they arrive, next() waits for the following one.
export interface QueuedSocket {
  ws: WebSocket;
  /** Frames received and not yet taken by next(). */
  frames: string[];
  next(): Promise<string>;
  /** Resolves with the close code. */
  closed: Promise<number>;
  /** Sends a string as it is, anything else as JSON. */
  send(v: unknown): void;
}

/** Opens `url` (rejects when the upgrade is refused); Bun's WebSocket can send `headers`, a browser's cannot. */
export async function openQueuedSocket(url: string, headers?: Record<string, string>): Promise<QueuedSocket> {
  const ws = new WebSocket(url, headers ? ({ headers } as unknown as string[]) : undefined);
  const frames: string[] = [];
  let wake: (() => void) | null = null;
  ws.onmessage = (e) => {
    frames.push(String(e.data));
    wake?.();
  };
  const closed = new Promise<number>((r) => (ws.onclose = (e) => r(e.code)));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the socket did not open"));
  });
  const next = async (): Promise<string> => {
    while (frames.length === 0) await new Promise<void>((r) => (wake = r));
    return frames.shift()!;
  };
  return { ws, frames, next, closed, send: (v) => ws.send(typeof v === "string" ? v : JSON.stringify(v)) };
}

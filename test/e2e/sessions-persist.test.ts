// The real server with --no-auth: sessions belong to the one local user and live in the data
// directory's database, so a conversation survives a restart and continues where it was.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestServer } from "../support/server.ts";

setDefaultTimeout(120_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-sessions-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a --no-auth server keeps sessions across a restart, and the next turn continues the history", async () => {
  const chat = (url: string, prompt: string) =>
    fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ "model-name": "tiny-qwen3", prompt, "session-id": "kept", "max-token": 4 }),
    });
  const first = await startTestServer(["--data-dir", dir]);
  try {
    const r = await chat(first.url, "Before the restart");
    expect(r.status).toBe(200);
    await r.text();
  } finally {
    expect(await first.stop()).toBe(0);
  }
  const second = await startTestServer(["--data-dir", dir]);
  try {
    expect(await (await fetch(`${second.url}/sessions`)).json()).toEqual(["kept"]);
    const r = await chat(second.url, "After the restart");
    await r.text();
    const history = (await (await fetch(`${second.url}/chat/history/kept`)).json()) as { role: string; content: string }[];
    expect(history.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(history[0]!.content).toBe("Before the restart");
    expect(history[2]!.content).toBe("After the restart");
    const info = (await (await fetch(`${second.url}/v1/sessions/kept`)).json()) as { message_count: number };
    expect(info.message_count).toBe(4);
  } finally {
    expect(await second.stop()).toBe(0);
  }
});

// The stopping variant of the tiny model (writeQwen3Model's `stops`): llama.cpp loads it with its own
// output.weight, <|im_end|> is its end-of-generation token, and replies end with finish_reason "stop".
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestModel } from "../../scripts/make-test-model.ts";
import { readGgufInfo } from "../../src/gguf/reader.ts";
import { loadLlama } from "../../src/native/llama.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-gguf-stops-"));
const path = join(dir, "tiny-qwen3-stops.gguf");
let server: TestServer;

beforeAll(async () => {
  await makeTestModel({ stops: true, out: path });
  server = await startTestServer(["--model", `stops=${path}`, "--parallel", "2"]);
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const chat = async (body: Record<string, unknown>): Promise<{ finish: string; tokens: number }> => {
  const r = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "stops", messages: [{ role: "user", content: "Say hello" }], ...body }),
  });
  expect(r.status).toBe(200);
  const j = (await r.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
  return { finish: j.choices[0]!.finish_reason, tokens: j.usage.completion_tokens };
};

describe("the stopping tiny model", () => {
  test("has an untied output.weight and <|im_end|> as its end-of-generation token", () => {
    const info = readGgufInfo(path);
    expect(info.tensors.find((t) => t.name === "output.weight")?.dims).toEqual([64, 151936]);
    const model = loadLlama().loadModel(path, { checkTensors: true });
    try {
      const imEnd = model.tokenize("<|im_end|>");
      expect(imEnd.length).toBe(1);
      expect(model.meta("tokenizer.ggml.eos_token_id")).toBe(String(imEnd[0]));
      expect(model.isEog(imEnd[0]!)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  test("a greedy chat completion ends with finish_reason stop within 32 tokens", async () => {
    const { finish, tokens } = await chat({ temperature: 0, max_tokens: 32 });
    expect(finish).toBe("stop");
    expect(tokens).toBeLessThanOrEqual(32);
  });

  test("sampled at temperature 1, replies end after a few tokens", async () => {
    const replies = await Promise.all(Array.from({ length: 8 }, () => chat({ temperature: 1, max_tokens: 128 })));
    for (const r of replies) expect(r.finish).toBe("stop");
    expect(replies.every((r) => r.tokens < 128)).toBe(true);
  });
});

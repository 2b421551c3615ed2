// A reusable batch of tokens for decode and encode: positions, one sequence each, and which rows
// produce logits. Plain typed arrays handed to the shim as they are.

/** A reusable batch: tokens with positions, one sequence each, and which rows produce logits. */
export class LlamaBatch {
  readonly tokens: Int32Array;
  readonly pos: Int32Array;
  readonly seqIds: Int32Array;
  readonly logits: Int8Array;
  size = 0;

  constructor(readonly capacity: number) {
    this.tokens = new Int32Array(capacity);
    this.pos = new Int32Array(capacity);
    this.seqIds = new Int32Array(capacity);
    this.logits = new Int8Array(capacity);
  }

  clear(): void {
    this.size = 0;
  }

  /** Appends a token; returns its row, which is the index to read logits from after decode. */
  add(token: number, pos: number, seq: number, wantLogits: boolean): number {
    if (this.size >= this.capacity) throw new RangeError(`batch is full (${this.capacity} tokens)`);
    const i = this.size++;
    this.tokens[i] = token;
    this.pos[i] = pos;
    this.seqIds[i] = seq;
    this.logits[i] = wantLogits ? 1 : 0;
    return i;
  }
}

// Joins token bytes into text: a token's piece can end inside a UTF-8 character, so streamed text
// must never be decoded piece by piece.

/** Joins token bytes into text without ever emitting half a UTF-8 character. */
export class Utf8Stream {
  private pending = new Uint8Array(0);
  private readonly dec = new TextDecoder("utf-8", { fatal: false });

  /** Returns the complete characters now available. */
  push(bytes: Uint8Array): string {
    const all = this.pending.length ? concat(this.pending, bytes) : bytes;
    const cut = completePrefixLength(all);
    this.pending = all.slice(cut);
    return cut ? this.dec.decode(all.subarray(0, cut)) : "";
  }

  /** Whatever is left (invalid trailing bytes become U+FFFD). */
  flush(): string {
    const rest = this.pending.length ? this.dec.decode(this.pending) : "";
    this.pending = new Uint8Array(0);
    return rest;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Length of the longest prefix that does not end inside a UTF-8 sequence. */
export function completePrefixLength(bytes: Uint8Array): number {
  const n = bytes.length;
  // Look back at most 3 bytes for the lead byte of a trailing, possibly unfinished sequence.
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

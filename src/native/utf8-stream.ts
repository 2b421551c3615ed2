// Joins token bytes into text: a token's piece can end inside a UTF-8 character, so streamed text
// must never be decoded piece by piece.

/**
 * Joins token bytes into text without ever emitting half a UTF-8 character: a streaming TextDecoder,
 * which holds an unfinished character back and turns invalid bytes into U+FFFD (one per maximal
 * subpart, as the WHATWG Encoding standard says) as soon as they are known to be invalid.
 */
export class Utf8Stream {
  private readonly dec = new TextDecoder("utf-8", { fatal: false });

  /** Returns the complete characters now available. */
  push(bytes: Uint8Array): string {
    return this.dec.decode(bytes, { stream: true });
  }

  /** Whatever is left (an unfinished character becomes U+FFFD); the stream starts afresh after it. */
  flush(): string {
    return this.dec.decode();
  }
}

/** Length of the longest prefix that does not end inside a UTF-8 sequence (tells a piece that ends mid-character). */
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

// Utf8Stream joins token bytes into text: checked chunk by chunk against the hand-written joiner it
// had until it became a streaming TextDecoder (kept below as the recorded behaviour) and against a
// transcription of the WHATWG Encoding standard's UTF-8 decoder, on valid and invalid UTF-8 split
// at every byte position.
import { describe, expect, test } from "bun:test";
import { Utf8Stream } from "../../src/native/llama.ts";

/** The hand-written joiner Utf8Stream used to be, verbatim: the behaviour the rewrite must keep. */
class RecordedUtf8Stream {
  private pending = new Uint8Array(0);
  private readonly dec = new TextDecoder("utf-8", { fatal: false });

  push(bytes: Uint8Array): string {
    const all = this.pending.length ? concat(this.pending, bytes) : bytes;
    const cut = completePrefixLength(all);
    this.pending = all.slice(cut);
    return cut ? this.dec.decode(all.subarray(0, cut)) : "";
  }

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

function completePrefixLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/**
 * The UTF-8 decoder of https://encoding.spec.whatwg.org/#utf-8-decoder step by step, with the
 * "replacement" error mode and streaming: an error yields U+FFFD as soon as a byte shows it.
 */
class SpecUtf8Decoder {
  private codePoint = 0;
  private bytesSeen = 0;
  private bytesNeeded = 0;
  private lower = 0x80;
  private upper = 0xbf;

  push(bytes: Uint8Array): string {
    let out = "";
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!;
      if (this.bytesNeeded === 0) {
        if (byte <= 0x7f) out += String.fromCodePoint(byte);
        else if (byte >= 0xc2 && byte <= 0xdf) this.begin(1, byte & 0x1f);
        else if (byte >= 0xe0 && byte <= 0xef) {
          if (byte === 0xe0) this.lower = 0xa0;
          if (byte === 0xed) this.upper = 0x9f;
          this.begin(2, byte & 0xf);
        } else if (byte >= 0xf0 && byte <= 0xf4) {
          if (byte === 0xf0) this.lower = 0x90;
          if (byte === 0xf4) this.upper = 0x8f;
          this.begin(3, byte & 0x7);
        } else out += "\uFFFD";
        continue;
      }
      if (byte < this.lower || byte > this.upper) {
        this.reset();
        out += "\uFFFD";
        i--; // "restore byte to ioQueue": it starts the next sequence
        continue;
      }
      this.lower = 0x80;
      this.upper = 0xbf;
      this.codePoint = (this.codePoint << 6) | (byte & 0x3f);
      if (++this.bytesSeen === this.bytesNeeded) {
        out += String.fromCodePoint(this.codePoint);
        this.reset();
      }
    }
    return out;
  }

  /** End of queue: an unfinished sequence is one error. */
  flush(): string {
    const unfinished = this.bytesNeeded !== 0;
    this.reset();
    return unfinished ? "\uFFFD" : "";
  }

  private begin(needed: number, bits: number): void {
    this.bytesNeeded = needed;
    this.codePoint = bits;
  }

  private reset(): void {
    this.codePoint = this.bytesSeen = this.bytesNeeded = 0;
    this.lower = 0x80;
    this.upper = 0xbf;
  }
}

interface Joiner {
  push(bytes: Uint8Array): string;
  flush(): string;
}

/** What each push returned, then what flush returned. */
function outputs(joiner: Joiner, bytes: Uint8Array, cuts: number[]): string[] {
  const out: string[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(joiner.push(bytes.subarray(from, cut)));
    from = cut;
  }
  out.push(joiner.flush());
  return out;
}

/** Every way to cut the bytes once or twice (empty chunks included), and one byte at a time. */
function cuttings(n: number): number[][] {
  const all: number[][] = [[], Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1)];
  for (let i = 0; i <= n; i++) {
    all.push([i]);
    for (let j = i; j <= n; j++) all.push([i, j]);
  }
  return all;
}

const bytesOf = (...parts: (string | number[])[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === "string" ? [...new TextEncoder().encode(p)] : p)));

const VALID: Record<string, Uint8Array> = {
  "2-byte": bytesOf("Grüße"),
  "3-byte": bytesOf("a€b"),
  "4-byte": bytesOf("🦙"),
  "CJK": bytesOf("日本語"),
  "ZWJ family": bytesOf("a👨‍👩‍👧b"),
  "U+0080, lowest 2-byte": bytesOf([0xc2, 0x80]),
  "U+0800, lowest 3-byte": bytesOf([0xe0, 0xa0, 0x80]),
  "U+D7FF, below the surrogates": bytesOf([0xed, 0x9f, 0xbf]),
  "U+E000, above the surrogates": bytesOf([0xee, 0x80, 0x80]),
  "U+FFFD itself": bytesOf("x\uFFFDy"),
  "U+FFFF": bytesOf([0xef, 0xbf, 0xbf]),
  "U+10000, lowest 4-byte": bytesOf([0xf0, 0x90, 0x80, 0x80]),
  "U+10FFFF, highest": bytesOf([0xf4, 0x8f, 0xbf, 0xbf]),
};

/** Invalid input with the text it decodes to in one piece: one U+FFFD per maximal subpart. */
const INVALID: Record<string, [Uint8Array, string]> = {
  "lone continuation": [bytesOf([0x80]), "\uFFFD"],
  "continuations between ASCII": [bytesOf("a", [0x80, 0xbf], "b"), "a\uFFFD\uFFFDb"],
  "continuation after a whole character": [bytesOf("€", [0x80]), "€\uFFFD"],
  "five continuations": [bytesOf([0x80, 0x80, 0x80, 0x80, 0x80]), "\uFFFD".repeat(5)],
  "truncated 2-byte at the end": [bytesOf("a", [0xc3]), "a\uFFFD"],
  "truncated 3-byte at the end": [bytesOf("a", [0xe2, 0x82]), "a\uFFFD"],
  "truncated 4-byte at the end": [bytesOf([0xf0, 0x9f, 0xa6]), "\uFFFD"],
  "truncated before ASCII": [bytesOf([0xe2, 0x82], "A"), "\uFFFDA"],
  "truncated before a lead byte": [bytesOf([0xe2, 0x82], "🦙"), "\uFFFD🦙"],
  "lead after lead": [bytesOf([0xc3], "é"), "\uFFFDé"],
  "overlong 2-byte C0 80": [bytesOf([0xc0, 0x80], "A"), "\uFFFD\uFFFDA"],
  "overlong 2-byte C1 BF": [bytesOf([0xc1, 0xbf]), "\uFFFD\uFFFD"],
  "overlong 3-byte E0 80 80": [bytesOf([0xe0, 0x80, 0x80]), "\uFFFD".repeat(3)],
  "overlong 3-byte E0 9F BF": [bytesOf([0xe0, 0x9f, 0xbf], "z"), "\uFFFD".repeat(3) + "z"],
  "overlong 4-byte F0 80 80 80": [bytesOf([0xf0, 0x80, 0x80, 0x80]), "\uFFFD".repeat(4)],
  "overlong 4-byte F0 8F BF BF": [bytesOf([0xf0, 0x8f, 0xbf, 0xbf]), "\uFFFD".repeat(4)],
  "surrogate U+D800": [bytesOf([0xed, 0xa0, 0x80], "A"), "\uFFFD".repeat(3) + "A"],
  "surrogate U+DFFF": [bytesOf([0xed, 0xbf, 0xbf]), "\uFFFD".repeat(3)],
  "surrogate pair, CESU-8": [bytesOf([0xed, 0xa0, 0xbd, 0xed, 0xb2, 0xa9]), "\uFFFD".repeat(6)],
  "above U+10FFFF, F4 90": [bytesOf([0xf4, 0x90, 0x80, 0x80]), "\uFFFD".repeat(4)],
  "F5 lead": [bytesOf([0xf5, 0x80, 0x80, 0x80]), "\uFFFD".repeat(4)],
  "5-byte form F8": [bytesOf([0xf8, 0x88, 0x80, 0x80, 0x80]), "\uFFFD".repeat(5)],
  "FE and FF": [bytesOf("a", [0xfe, 0xff], "b"), "a\uFFFD\uFFFDb"],
  "mixed": [bytesOf("a", [0xff], "€", [0xe2], "b", [0xf0, 0x9f]), "a\uFFFD€\uFFFDb\uFFFD"],
};

describe("Utf8Stream", () => {
  test("valid UTF-8 cut at every byte position: the same chunks as before and as the WHATWG decoder", () => {
    for (const [name, bytes] of Object.entries(VALID)) {
      for (const cuts of cuttings(bytes.length)) {
        const got = outputs(new Utf8Stream(), bytes, cuts);
        const label = `${name} cut at ${cuts}`;
        expect({ label, got }).toEqual({ label, got: outputs(new RecordedUtf8Stream(), bytes, cuts) });
        expect({ label, got }).toEqual({ label, got: outputs(new SpecUtf8Decoder(), bytes, cuts) });
        expect(got.join("")).toBe(new TextDecoder().decode(bytes));
        // Never half a character: no chunk is or ends in U+FFFD unless the input holds one.
        if (!name.includes("U+FFFD")) for (const chunk of got) expect(chunk).not.toContain("\uFFFD");
      }
    }
  });

  test("invalid UTF-8 cut at every byte position: the same text as before, one U+FFFD per maximal subpart", () => {
    for (const [name, [bytes, text]] of Object.entries(INVALID)) {
      expect({ name, text: new TextDecoder().decode(bytes) }).toEqual({ name, text });
      for (const cuts of cuttings(bytes.length)) {
        const label = `${name} cut at ${cuts}`;
        expect({ label, text: outputs(new Utf8Stream(), bytes, cuts).join("") }).toEqual({ label, text });
        expect({ label, text: outputs(new RecordedUtf8Stream(), bytes, cuts).join("") }).toEqual({ label, text });
        expect({ label, text: outputs(new SpecUtf8Decoder(), bytes, cuts).join("") }).toEqual({ label, text });
      }
    }
  });

  // The one difference from the hand-written joiner: it held a lead byte back until as many bytes as
  // the lead announced had arrived, even when a byte already showed the sequence invalid (C0, C1,
  // F5..FF, E0 80, ED A0, F0 80, F4 90). The standard's decoder, like TextDecoder, emits U+FFFD as soon
  // as the error is seen: the same text (the test above), sooner, and never later.
  test("invalid UTF-8 cut at every byte position: chunk by chunk as the WHATWG decoder, never later than before", () => {
    let sooner = 0;
    for (const [name, [bytes]] of Object.entries(INVALID)) {
      for (const cuts of cuttings(bytes.length)) {
        const label = `${name} cut at ${cuts}`;
        const got = outputs(new Utf8Stream(), bytes, cuts);
        expect({ label, got }).toEqual({ label, got: outputs(new SpecUtf8Decoder(), bytes, cuts) });
        const before = outputs(new RecordedUtf8Stream(), bytes, cuts);
        for (let k = 1; k <= got.length; k++) {
          const ahead = got.slice(0, k).join("").startsWith(before.slice(0, k).join(""));
          expect({ label, k, ahead }).toEqual({ label, k, ahead: true });
        }
        if (JSON.stringify(got) !== JSON.stringify(before)) sooner++;
      }
    }
    expect(sooner).toBeGreaterThan(0);
  });

  test("a byte that can start no character is U+FFFD at once, not with the next push", () => {
    const stream = new Utf8Stream();
    expect(stream.push(bytesOf([0xc0]))).toBe("\uFFFD");
    expect(stream.push(bytesOf([0xe0, 0x80]))).toBe("\uFFFD\uFFFD");
    expect(stream.push(bytesOf("A"))).toBe("A");
    expect(new RecordedUtf8Stream().push(bytesOf([0xc0]))).toBe("");
  });

  test("flush ends an unfinished character as U+FFFD and leaves the stream ready for new text", () => {
    const stream = new Utf8Stream();
    expect(stream.push(bytesOf("ok", [0xf0, 0x9f, 0xa6]))).toBe("ok");
    expect(stream.flush()).toBe("\uFFFD");
    expect(stream.flush()).toBe("");
    expect(stream.push(bytesOf([0x99]))).toBe("\uFFFD");
    expect(stream.push(bytesOf([0xe2, 0x82]))).toBe("");
    expect(stream.push(bytesOf([0xac]))).toBe("€");
    expect(stream.flush()).toBe("");
  });
});

// Reproducible ways to cut a text into stream deltas, for tests of streaming parsers.

/** A small seeded PRNG (mulberry32) so random chunkings are reproducible. */
export function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The text in consecutive pieces of 1..maxSize characters. */
export function randomChunks(text: string, random: () => number, maxSize = 12): string[] {
  const chunks: string[] = [];
  for (let i = 0; i < text.length; ) {
    const size = 1 + Math.floor(random() * maxSize);
    chunks.push(text.slice(i, i + size));
    i += size;
  }
  return chunks;
}

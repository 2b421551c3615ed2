// N-gram lookup speculation (prompt lookup decoding): guesses the tokens that follow a sequence's
// last few tokens from where those tokens occurred before, in its prompt or its own output.

/** Tokens that must repeat for n-gram lookup to guess what follows them. */
export const NGRAM = 3;

/**
 * Prompt-lookup guess: the tokens that followed the latest earlier occurrence of the sequence's last
 * NGRAM tokens (`pending` being the last), at most `max` of them; none when nothing repeats.
 */
export function ngramGuess(history: readonly number[], pending: number, max: number): number[] {
  const n = history.length + 1;
  const at = (i: number) => (i === n - 1 ? pending : history[i]!);
  if (n <= NGRAM) return [];
  for (let start = n - NGRAM - 1; start >= 0; start--) {
    let j = 0;
    while (j < NGRAM && at(start + j) === at(n - NGRAM + j)) j++;
    if (j < NGRAM) continue;
    const out: number[] = [];
    for (let i = start + NGRAM; i < n && out.length < max; i++) out.push(at(i));
    return out;
  }
  return [];
}


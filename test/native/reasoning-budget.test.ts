// The thinking budget's state machine: counting inside the block, forcing the closing tag once the
// budget is spent (after a whole UTF-8 character), and leaving a block the model closed itself alone.
import { expect, test } from "bun:test";
import { ReasoningBudget } from "../../src/native/reasoning-budget.ts";

const ascii = () => new Uint8Array([0x61]);
const START = [100];
const END = [200, 201];

function run(b: ReasoningBudget, tokens: number[]): (number | null)[] {
  const forced: (number | null)[] = [];
  for (const t of tokens) {
    const f = b.forcedToken();
    forced.push(f);
    b.accept(f ?? t);
  }
  return forced;
}

test("counts from the opening tag and forces the closing tag when the budget is spent", () => {
  const b = new ReasoningBudget({ budget: 3, start: START, ends: [END], forced: END, open: false }, ascii);
  // 1, 2 before the block; 100 opens it; 3 tokens inside; then 200 201 forced; then free again.
  expect(run(b, [1, 2, 100, 5, 6, 7, 9, 9, 9, 9])).toEqual([null, null, null, null, null, null, 200, 201, null, null]);
  expect(b.exhausted).toBe(true);
});

test("a block the prompt opened is counted from the first token; budget 0 closes it at once", () => {
  const b = new ReasoningBudget({ budget: 2, start: START, ends: [END], forced: END, open: true }, ascii);
  expect(run(b, [5, 6, 9, 9, 9])).toEqual([null, null, 200, 201, null]);
  const zero = new ReasoningBudget({ budget: 0, start: START, ends: [END], forced: END, open: true }, ascii);
  expect(run(zero, [9, 9, 9])).toEqual([200, 201, null]);
});

test("a model that closes the block within the budget is never forced", () => {
  const b = new ReasoningBudget({ budget: 5, start: START, ends: [END, [300]], forced: END, open: true }, ascii);
  expect(run(b, [5, 300, 6, 7, 8, 9, 9, 9])).toEqual([null, null, null, null, null, null, null, null]);
  expect(b.exhausted).toBe(false);
});

test("forcing waits until a character split over tokens is whole", () => {
  // Token 7 is the first two bytes of a 3-byte character, token 8 its last byte.
  const bytes = (t: number) => (t === 7 ? new Uint8Array([0xe4, 0xbd]) : t === 8 ? new Uint8Array([0xa0]) : new Uint8Array([0x61]));
  const b = new ReasoningBudget({ budget: 2, start: START, ends: [END], forced: END, open: true }, bytes);
  expect(run(b, [5, 7, 8, 9, 9])).toEqual([null, null, null, 200, 201]);
});

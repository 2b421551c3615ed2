// Splitting <think> reasoning from content: whole text and streamed, tags split across deltas, prompts
// that open the block themselves, and a later <think> that must stay content.
import { describe, expect, test } from "bun:test";
import { ReasoningSplitter, splitReasoning } from "../../src/inference/reasoning.ts";
import { prng } from "../support/chunking.ts";

function streamed(chunks: string[], startsInReasoning = false) {
  const splitter = new ReasoningSplitter({ startsInReasoning });
  let content = "";
  let reasoning = "";
  for (const part of [...chunks.map((c) => splitter.push(c)), splitter.flush()]) {
    content += part.content;
    reasoning += part.reasoning;
  }
  return { content, reasoning };
}


describe("splitReasoning", () => {
  test("a leading think block is reasoning, trimmed; the newlines after </think> are dropped", () => {
    expect(splitReasoning("<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.")).toEqual({
      reasoning: "Let me add 2 and 2.",
      content: "The answer is 4.",
    });
  });

  test("text without a think block is all content, unchanged", () => {
    expect(splitReasoning("\nHello <b>there</b>\n")).toEqual({ reasoning: "", content: "\nHello <b>there</b>\n" });
  });

  test("a <think> after other text stays content", () => {
    const text = "Answer first. <think>not reasoning</think> done";
    expect(splitReasoning(text)).toEqual({ reasoning: "", content: text });
  });

  test("an empty think block yields no reasoning", () => {
    expect(splitReasoning("<think>\n\n</think>\n\nHi")).toEqual({ reasoning: "", content: "Hi" });
  });

  test("when the prompt opened the block, output is reasoning until </think>", () => {
    expect(splitReasoning("Plan the reply.\n</think>\n\nDone.", true)).toEqual({ reasoning: "Plan the reply.", content: "Done." });
  });

  test("a think block cut off by the token limit is all reasoning", () => {
    expect(splitReasoning("<think>\nStill thinking about </thi")).toEqual({ reasoning: "Still thinking about </thi", content: "" });
  });

  test("custom tags are honoured", () => {
    const splitter = new ReasoningSplitter({ open: "<reasoning>", close: "</reasoning>" });
    expect(splitter.push("<reasoning>why</reasoning>\nbecause")).toEqual({ reasoning: "why", content: "because" });
  });
});

describe("ReasoningSplitter", () => {
  test("tags split across deltas are recognised, and text is released as soon as it is known", () => {
    const splitter = new ReasoningSplitter();
    expect(splitter.push("<th")).toEqual({ content: "", reasoning: "" });
    expect(splitter.push("ink>\nab")).toEqual({ content: "", reasoning: "ab" });
    expect(splitter.push("c d</th")).toEqual({ content: "", reasoning: "c d" });
    expect(splitter.push("ink>\n")).toEqual({ content: "", reasoning: "" });
    expect(splitter.push("\nHi")).toEqual({ content: "Hi", reasoning: "" });
    expect(splitter.push(" <think>x</think>")).toEqual({ content: " <think>x</think>", reasoning: "" });
    expect(splitter.flush()).toEqual({ content: "", reasoning: "" });
  });

  test("content that cannot start <think> is not held back", () => {
    const splitter = new ReasoningSplitter();
    expect(splitter.push("<b")).toEqual({ content: "<b", reasoning: "" });
    expect(splitter.push("old>")).toEqual({ content: "old>", reasoning: "" });
  });

  test("char by char, at every split point and in random chunks, the stream equals the whole-text split", () => {
    const samples: Array<[string, boolean]> = [
      ["<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.", false],
      ["  <think>a</think>b", false],
      ["<think>\n\n</think>\n\nHi\n", false],
      ["Answer. <think>x</think>", false],
      ["<thinking>is not the tag</thinking>", false],
      ["Plan.\n</think>\n\nDone.", true],
      ["unterminated reasoning \n\n", true],
      ["<think>a </ b </think c</think>  \n d \n", false],
      ["\n\n", false],
    ];
    const random = prng(99);
    for (const [text, opened] of samples) {
      const whole = splitReasoning(text, opened);
      const chunkings: string[][] = [[...text]];
      for (let i = 0; i <= text.length; i++) chunkings.push([text.slice(0, i), text.slice(i)]);
      for (let n = 0; n < 100; n++) {
        const chunks: string[] = [];
        for (let i = 0; i < text.length; ) {
          const size = 1 + Math.floor(random() * 6);
          chunks.push(text.slice(i, i + size));
          i += size;
        }
        chunkings.push(chunks);
      }
      for (const chunks of chunkings) expect(streamed(chunks, opened)).toEqual(whole);
    }
    expect(splitReasoning("<think>a </ b </think c</think>  \n d \n")).toEqual({ reasoning: "a </ b </think c", content: "d \n" });
    expect(splitReasoning("<thinking>is not the tag</thinking>")).toEqual({ reasoning: "", content: "<thinking>is not the tag</thinking>" });
  });

  test("leading whitespace is released as content at once when no think tag follows it soon", () => {
    const r = new ReasoningSplitter();
    expect(r.push("\n")).toEqual({ content: "", reasoning: "" });
    // A third whitespace character rules out a think block: nothing more is held back.
    expect(r.push("\n\n")).toEqual({ content: "\n\n\n", reasoning: "" });
    expect(r.push("<think>")).toEqual({ content: "<think>", reasoning: "" });
  });
});

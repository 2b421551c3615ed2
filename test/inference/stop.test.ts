// Stop strings are cut exactly wherever token boundaries fall, and never leak.
import { describe, expect, test } from "bun:test";
import { StopMatcher } from "../../src/inference/stop.ts";

/** Feeds text in the given chunk sizes and returns what was emitted and which stop matched. */
function run(stops: string[], chunks: string[]): { out: string; stop: string | null } {
  const m = new StopMatcher(stops);
  let out = "";
  for (const c of chunks) {
    const r = m.push(c);
    out += r.text;
    if (r.stop) return { out, stop: r.stop };
  }
  return { out: out + m.flush(), stop: null };
}

function chunkings(text: string): string[][] {
  const all: string[][] = [[text], text.split("")];
  for (let size = 2; size <= 5; size++) {
    const parts: string[] = [];
    for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
    all.push(parts);
  }
  return all;
}

describe("stop strings", () => {
  test("a stop spanning chunk boundaries is cut exactly at every chunking", () => {
    const text = "The answer is 42.\nObservation: done";
    for (const chunks of chunkings(text)) {
      expect(run(["\nObservation:"], chunks)).toEqual({ out: "The answer is 42.", stop: "\nObservation:" });
    }
  });

  test("the earliest of several stops wins, and text after it never appears", () => {
    for (const chunks of chunkings("abc END xyz STOP more")) {
      expect(run(["STOP", " END"], chunks)).toEqual({ out: "abc", stop: " END" });
    }
  });

  test("a partial match that turns out not to be a stop is released intact", () => {
    for (const chunks of chunkings("a <|im_e nd but <|im_x and more")) {
      expect(run(["<|im_end|>"], chunks)).toEqual({ out: "a <|im_e nd but <|im_x and more", stop: null });
    }
  });

  test("held text is never emitted early: nothing that could begin a stop leaves before it is decided", () => {
    const m = new StopMatcher(["###"]);
    expect(m.push("hello #").text).toBe("hello ");
    expect(m.push("#").text).toBe("");
    expect(m.push("!").text).toBe("##!");
  });

  test("overlapping stop prefixes and multi-byte text work", () => {
    for (const chunks of chunkings("ééé aab aaab")) {
      expect(run(["aaab"], chunks)).toEqual({ out: "ééé aab ", stop: "aaab" });
    }
    expect(run([], ["anything"])).toEqual({ out: "anything", stop: null });
  });
});

// The layout rules of ../shared/ARCHITECTURE.md that a script can check: no import cycle in src/,
// src/http imports no feature folder, only src/native imports bun:ffi, files stay small, and every
// generating front door goes through src/generation (none reserves or submits on its own).
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../src");
const files: string[] = [];
(function walk(dir: string) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith(".ts")) files.push(path);
  }
})(SRC);
const rel = (path: string) => relative(SRC, path);
const text = new Map(files.map((f) => [f, readFileSync(f, "utf8")]));

/** Every relative import or re-export of a file (type-only ones too: they are dependencies). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const m of text.get(file)!.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/gm)) out.push(resolve(dirname(file), m[1]!));
  return out.filter((p) => text.has(p));
}

describe("src/ layout", () => {
  test("has no import cycle", () => {
    const graph = new Map(files.map((f) => [f, importsOf(f)]));
    const done = new Set<string>();
    const path: string[] = [];
    const onPath = new Set<string>();
    const cycles: string[] = [];
    const visit = (f: string) => {
      done.add(f);
      onPath.add(f);
      path.push(f);
      for (const d of graph.get(f)!) {
        if (onPath.has(d)) cycles.push([...path.slice(path.indexOf(d)), d].map(rel).join(" -> "));
        else if (!done.has(d)) visit(d);
      }
      path.pop();
      onPath.delete(f);
    };
    for (const f of files) if (!done.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  test("src/http is plumbing: it imports no feature folder", () => {
    const features = /^(openai|responses|anthropic|compat|generation|platform|sessions|ton|web|ops|upstream|store)\//;
    const offending = files
      .filter((f) => rel(f).startsWith("http/"))
      .flatMap((f) => importsOf(f).filter((d) => features.test(rel(d))).map((d) => `${rel(f)} -> ${rel(d)}`));
    expect(offending).toEqual([]);
  });

  test("only src/native imports bun:ffi", () => {
    const offending = files.filter((f) => !rel(f).startsWith("native/") && /from\s+"bun:ffi"/.test(text.get(f)!)).map(rel);
    expect(offending).toEqual([]);
  });

  test("no file is over 600 lines, except the JSON-schema grammar converter", () => {
    const long = files.filter((f) => rel(f) !== "inference/grammar.ts" && text.get(f)!.split("\n").length > 600).map((f) => `${rel(f)}: ${text.get(f)!.split("\n").length}`);
    expect(long).toEqual([]);
  });

  test("front doors start generations only through src/generation: no reservation or submit of their own", () => {
    const frontDoors = files.filter((f) => /^(openai|responses|anthropic|compat)\//.test(rel(f)));
    const offending = frontDoors.filter((f) => /RequestBilling|\.begin\(|engine\.submit\(|engine\.embed\(/.test(text.get(f)!)).map(rel);
    expect(offending).toEqual([]);
  });

  test("every module opens with a comment on its role", () => {
    const bare = files.filter((f) => !rel(f).endsWith(".d.ts") && !/^\s*\/\//.test(text.get(f)!)).map(rel);
    expect(bare).toEqual([]);
  });
});

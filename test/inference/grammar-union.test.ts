// Two grammars joined under one root keep their own rules: literals and classes are never renamed.
import { expect, test } from "bun:test";
import { grammarUnion, prefixRules } from "../../src/inference/grammar-union.ts";

test("rule names get the prefix; string literals and character classes keep their text", () => {
  const g = String.raw`root ::= "root \" item" item [a-z-] space` + "\n" + String.raw`item ::= [\]x] "ok"`;
  expect(prefixRules(g, "alt-")).toBe(String.raw`alt-root ::= "root \" item" alt-item [a-z-] alt-space` + "\n" + String.raw`alt-item ::= [\]x] "ok"`);
});

test("the union's root admits either root and the second grammar's rules no longer clash", () => {
  const call = `# call\nroot ::= tool-call\ntool-call ::= "<call>" value\nvalue ::= [0-9]+`;
  const answer = `root ::= "{" value "}"\nvalue ::= "true" | "false"`;
  const joined = grammarUnion(call, answer);
  expect(joined).toContain("root ::= ( tool-call ) | alt-root");
  expect(joined).toContain(`alt-root ::= "{" alt-value "}"`);
  expect(joined).toContain(`value ::= [0-9]+`);
  expect(joined).not.toContain("# call");
  // Each rule is defined exactly once.
  const names = [...joined.matchAll(/^([a-z-]+) ::=/gm)].map((m) => m[1]);
  expect(new Set(names).size).toBe(names.length);
});

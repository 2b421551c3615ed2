// Joins two GBNF grammars into one whose root admits either: a tool call in the model's own format
// or an answer in the requested response_format, when a request asks for both.

// A GBNF token: a string literal, a character class, a rule name, or any other character.
const TOKEN = /"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[A-Za-z][A-Za-z0-9-]*|[^]/g;

/** Every rule name of `grammar` (outside literals and classes) gets `prefix`. */
export function prefixRules(grammar: string, prefix: string): string {
  return grammar.replace(TOKEN, (t) => (/^[A-Za-z]/.test(t) ? prefix + t : t));
}

/**
 * `root ::= (a's root) | (b's root)`, with b's rules renamed so that no name is shared; comment lines
 * are dropped first, as a quote inside one would throw the token boundaries off.
 */
export function grammarUnion(a: string, b: string): string {
  const strip = (g: string) => g.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
  const renamed = prefixRules(strip(b), "alt-");
  return `${strip(a).replace(/^root ::= (.*)$/m, "root ::= ( $1 ) | alt-root")}\n${renamed}\n`;
}

// Gemma 4's forced tool calls held to the tools' parameter schemas. llama.cpp's grammar for the format
// (`<|tool_call>call:name{key:<|"|>text<|"|>}<tool_call|>`) takes any dict for every tool, so a forced
// call could name no argument of the schema, or run on in an unbounded key; this writes each tool's
// arguments rule from its JSON schema in Gemma's syntax (bare keys, <|"|>-quoted strings), falling
// back to llama.cpp's generic `gemma4-value` for what it does not map.
import type { ToolDefinition } from "./chat-template.ts";

type Schema = Record<string, unknown>;

const literal = (text: string): string => JSON.stringify(text);
const quoted = (text: string): string => `"<|\\"|>" ${literal(text)} "<|\\"|>"`;

/**
 * A forced call's grammar with each `tool-NAME ::= ("NAME") gemma4-dict` rule replaced by the tool's
 * schema, and the optional call made required; any other grammar comes back unchanged.
 */
export function gemma4SchemaGrammar(grammar: string, tools: ToolDefinition[] | undefined): string {
  if (!tools?.length || !/^tool-call ::= \("<\|tool_call>call:"/m.test(grammar)) return grammar;
  const rules: string[] = [];
  let out = grammar;
  for (const [i, tool] of tools.entries()) {
    const name = tool.function.name;
    const line = new RegExp(`^(tool-[^ ]+ ::= \\(${escapeRegex(literal(name))}\\)) gemma4-dict$`, "m");
    if (!line.test(out)) continue;
    const rule = `g4-args-${i}`;
    out = out.replace(line, `$1 ${rule}`);
    rules.push(`${rule} ::= ${value(tool.function.parameters ?? { type: "object" }, `${rule}-v`, rules)}`);
  }
  // Forced means a call: llama.cpp's rule for it is optional (`?`) or any number of calls (`*`).
  out = out.replace(/^(tool-call ::= \(.*\))([?*])$/m, (_, call: string, q: string) => (q === "*" ? `${call}+` : call));
  return `${out}\n${rules.join("\n")}\n`;
}

/** A GBNF expression for one schema value; nested rules go into `rules` under `prefix`. */
function value(schema: unknown, prefix: string, rules: string[]): string {
  if (typeof schema !== "object" || schema === null) return "gemma4-value";
  const s = schema as Schema;
  if (Array.isArray(s.enum) && s.enum.length > 0) {
    return `(${s.enum.map((v) => (typeof v === "string" ? quoted(v) : literal(JSON.stringify(v)))).join(" | ")})`;
  }
  if ("const" in s) return typeof s.const === "string" ? quoted(s.const) : literal(JSON.stringify(s.const));
  switch (s.type) {
    case "string":
      return "gemma4-string";
    case "integer":
      return '("-"? ([0-9] | [1-9] [0-9]{1,15}))';
    case "number":
      return "gemma4-number";
    case "boolean":
      return "gemma4-bool";
    case "null":
      return "gemma4-null";
    case "array": {
      const item = `${prefix}-i`;
      rules.push(`${item} ::= ${value(s.items, `${item}-v`, rules)}`);
      return `("[" (${item} ("," ${item})*)? "]")`;
    }
    case "object": {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const keys = Object.keys(properties);
      const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
      // Every property required (the usual tool schema): exactly those keys, in the schema's order.
      if (keys.length === 0 || !keys.every((k) => required.has(k))) return "gemma4-dict";
      const kvs = keys.map((k, j) => {
        const rule = `${prefix}-${j}`;
        rules.push(`${rule} ::= ${literal(`${k}:`)} ${value(properties[k], `${rule}-v`, rules)}`);
        return rule;
      });
      return `("{" ${kvs.join(' "," ')} "}")`;
    }
    default:
      return "gemma4-value";
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

// Turns schema-validation paths into OpenAI `param` names: "/messages/0/role" -> "messages[0].role".

export function validationParam(path: string): string | null {
  const parts = path.split("/").filter(Boolean).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (parts.length === 0) return null;
  let out = "";
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** A readable sentence for the first validation failure. */
export function validationMessage(param: string | null, message: string, value: unknown): string {
  const shown = value === undefined ? "missing" : JSON.stringify(value)?.slice(0, 80);
  if (!param) return `Invalid request body: ${message}`;
  if (value === undefined) return `Missing required parameter: '${param}'.`;
  return `Invalid value for '${param}': ${message} (got ${shown}).`;
}

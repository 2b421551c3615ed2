// Turns schema-validation failures into OpenAI-style errors: the failing field as `param`
// ("/messages/0/role" -> "messages[0].role") and a sentence saying what was expected.

export function validationParam(path: string): string | null {
  const parts = path.split("/").filter(Boolean).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (parts.length === 0) return null;
  let out = "";
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

type Schema = {
  type?: string | string[];
  const?: unknown;
  anyOf?: Schema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  maxLength?: number;
  pattern?: string;
};

/** What a schema accepts, in words ("one of: user, system", "a number from 0 to 2 or null"). */
export function describeSchema(s: Schema | undefined): string | null {
  if (!s) return null;
  if (s.anyOf) {
    const consts = s.anyOf.filter((x) => x.const !== undefined).map((x) => JSON.stringify(x.const));
    if (consts.length === s.anyOf.length) return `one of ${consts.join(", ")}`;
    const parts = s.anyOf.map(describeSchema).filter((x): x is string => x !== null);
    return parts.length ? [...new Set(parts)].join(" or ") : null;
  }
  if (s.const !== undefined) return JSON.stringify(s.const);
  const type = Array.isArray(s.type) ? s.type.join(" or ") : s.type;
  switch (type) {
    case "null":
      return "null";
    case "integer":
    case "number": {
      const lo = s.minimum ?? s.exclusiveMinimum;
      const range = lo !== undefined && s.maximum !== undefined ? ` from ${lo} to ${s.maximum}` : lo !== undefined ? ` of at least ${lo}` : s.maximum !== undefined ? ` of at most ${s.maximum}` : "";
      return `${type === "integer" ? "an integer" : "a number"}${range}`;
    }
    case "string":
      if (s.pattern !== undefined) return `a string matching /${s.pattern}/`;
      return s.maxLength !== undefined ? `a string of at most ${s.maxLength} characters` : "a string";
    case "array":
      return s.minItems !== undefined || s.maxItems !== undefined ? `an array of ${s.minItems ?? 0} to ${s.maxItems ?? "any number of"} items` : "an array";
    case "boolean":
      return "a boolean";
    case "object":
      return "an object";
    default:
      return type ?? null;
  }
}

// TypeBox's ValueErrorType for a key the schema does not have (additionalProperties: false).
const ADDITIONAL_PROPERTY = 42;

/** Where the failing value came from: Elysia's validation error `type` ("body", "query", "params", "property"). */
export type ValidationSource = string | undefined;

/**
 * A readable sentence for the first validation failure. `errorType` is TypeBox's ValueErrorType when
 * known; an unknown key is reported as OpenAI does ("Unrecognized request argument supplied: x"),
 * not as the object schema it broke.
 */
export function validationMessage(param: string | null, message: string, value: unknown, schema?: unknown, errorType?: number, source?: ValidationSource): string {
  const inQuery = source === "query" || source === "property";
  const shown = JSON.stringify(value)?.slice(0, 80) ?? String(value);
  if (!param) return inQuery ? `Invalid query parameter: ${message} (got ${shown}).` : `Invalid request body: ${message}.`;
  if (errorType === ADDITIONAL_PROPERTY) {
    return inQuery ? `Unrecognized query parameter: '${param}'.` : `Unrecognized request argument supplied: ${param}`;
  }
  if (value === undefined) return `Missing required parameter: '${param}'.`;
  const expected = describeSchema(schema as Schema | undefined);
  return expected ? `Invalid value for '${param}': expected ${expected}, got ${shown}.` : `Invalid value for '${param}': ${message} (got ${shown}).`;
}

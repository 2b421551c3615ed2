// Lenient request fields: top-level keys a route's body schema does not define are dropped before
// validation and named in X-Cocoon-Ignored-Fields, as llama-server, vLLM and Ollama ignore them;
// strict mode leaves them to validation, which rejects them ("Unrecognized request argument").
import { Elysia } from "elysia";
import type { TSchema } from "@sinclair/typebox";

export const IGNORED_FIELDS_HEADER = "X-Cocoon-Ignored-Fields";

type ObjectLike = { properties?: Record<string, unknown>; anyOf?: ObjectLike[]; oneOf?: ObjectLike[]; allOf?: ObjectLike[] };

const knownKeys = new WeakMap<object, ReadonlySet<string>>();

/** The top-level keys a schema defines (of every branch, for unions and intersections). */
function keysOf(schema: TSchema): ReadonlySet<string> {
  let keys = knownKeys.get(schema);
  if (keys) return keys;
  const out = new Set<string>();
  const walk = (s: ObjectLike | undefined) => {
    if (!s) return;
    for (const k of Object.keys(s.properties ?? {})) out.add(k);
    for (const branch of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) walk(branch);
  };
  walk(schema as ObjectLike);
  keys = out;
  knownKeys.set(schema, keys);
  return keys;
}

/**
 * Removes the top-level keys of `body` that `schema` does not define and returns them, sorted. A
 * body that is not a JSON object is left alone: validation reports it.
 */
export function stripUnknownFields(schema: TSchema, body: unknown): string[] {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return [];
  const known = keysOf(schema);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  for (const k of unknown) delete (body as Record<string, unknown>)[k];
  return unknown.sort();
}

const MAX_HEADER = 2048;

/**
 * The header value: names percent-encoded where they hold anything but plain punctuation (a key may
 * contain commas, newlines or non-ASCII), cut to a bounded length.
 */
export function ignoredHeader(names: string[]): string {
  let out = "";
  for (const name of names) {
    const shown = /^[A-Za-z0-9_.:~\-\[\]]+$/.test(name) ? name : encodeURIComponent(name);
    const next = out ? `${out},${shown}` : shown;
    if (next.length > MAX_HEADER) return `${out},...`;
    out = next;
  }
  return out;
}

/** How a front door treats unknown fields; one per app, from the `--strict-fields` setting. */
export interface FieldPolicy {
  /** Unknown top-level fields are a 400 (OpenAI's own behaviour) instead of ignored. */
  readonly strict: boolean;
}

/**
 * The plugin: `.use(fieldsPlugin(policy))`, then `{ fields: Schema }` on a route (the same schema as
 * its `body`) drops and reports unknown keys before validation. Runs in the transform phase, so the
 * header is on every response of the request, errors included.
 */
export function fieldsPlugin(policy: FieldPolicy) {
  return new Elysia({ name: "fields", seed: policy.strict }).macro({
    fields: (schema: TSchema) => ({
      transform({ body, set }: { body: unknown; set: { headers: Record<string, string | number> } }) {
        if (policy.strict) return;
        const ignored = stripUnknownFields(schema, body);
        if (ignored.length) set.headers[IGNORED_FIELDS_HEADER] = ignoredHeader(ignored);
      },
    }),
  });
}

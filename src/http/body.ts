// Our JSON request bodies: a size limit (Content-Length first, then the bytes read, for chunked
// bodies), strict UTF-8 and a nesting bound, each failing with its own error kind.
import { ApiError } from "./errors.ts";

/** Deepest bracket nesting outside strings, in one pass. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) max = Math.max(max, ++depth);
    else if (c === 93 || c === 125) depth--;
  }
  return max;
}

const MAX_NESTING = 128;

/** The onRequest check: a declared Content-Length over the limit is refused before reading. */
export function checkDeclaredLength(request: Request, maxBody: number): void {
  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > maxBody) throw new ApiError("payload_too_large", `The request body is ${length} bytes; the limit is ${maxBody}.`);
}

/** application/json or a +json type, parameters (charset) allowed. */
export function isJsonMediaType(contentType: string | null): boolean {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

/**
 * The onParse hook: the parsed body, or undefined for GET/HEAD and empty bodies (optional bodies).
 * A body must be declared JSON: a browser sends text/plain or a form cross-site without asking
 * (no CORS preflight), so any other type is refused before it can reach a billed route.
 */
export async function parseJsonBody(request: Request, maxBody: number): Promise<unknown> {
  if (request.method === "GET" || request.method === "HEAD") return;
  const buf = await request.arrayBuffer();
  if (buf.byteLength === 0) return;
  if (buf.byteLength > maxBody) throw new ApiError("payload_too_large", `The request body is ${buf.byteLength} bytes; the limit is ${maxBody}.`);
  const type = request.headers.get("content-type");
  if (!isJsonMediaType(type)) {
    throw new ApiError("unsupported_media_type", `The request body must be JSON, sent with \`Content-Type: application/json\`${type ? `; got \`${type.slice(0, 100)}\`` : ""}.`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new ApiError("invalid_json", "The request body is not valid UTF-8.");
  }
  if (nestingDepth(text) > MAX_NESTING) throw new ApiError("invalid_json", `The JSON body is nested more than ${MAX_NESTING} levels deep.`);
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError("invalid_json", "We could not parse the JSON body of your request.");
  }
}

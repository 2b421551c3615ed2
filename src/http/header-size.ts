// Request headers too large, answered in our error shape: Bun's HTTP parser refuses headers over its
// limit (16 KiB by default) with a bare, empty 431 before any JS runs, so the server raises that limit
// far up (raiseParserHeaderLimit) and refuses over MAX_HEADER_BYTES here with an OpenAI-shaped 431.
// Left to Bun: headers over PARSER_HEADER_BYTES, and more than ~200 header lines (a fixed limit of its
// parser, with no setting), still get its empty 431.
import http from "node:http";
import { ApiError } from "./errors.ts";

/** The most bytes of request headers (names and values) a request may carry. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Bun's parser limit once raised: headers up to this reach the app, which refuses them properly. */
export const PARSER_HEADER_BYTES = 1024 * 1024;

/** Raises Bun's process-wide parser limit (the runtime setting behind `--max-http-header-size`). */
export function raiseParserHeaderLimit(): void {
  const h = http as unknown as { maxHeaderSize: number };
  if (h.maxHeaderSize < PARSER_HEADER_BYTES) h.maxHeaderSize = PARSER_HEADER_BYTES;
}

/** The onRequest check: headers over MAX_HEADER_BYTES are a 431 in the route's error shape. */
export function checkHeaderSize(request: Request): void {
  let bytes = 0;
  request.headers.forEach((value, name) => (bytes += name.length + value.length + 4));
  if (bytes > MAX_HEADER_BYTES) {
    throw new ApiError("header_too_large", `The request headers are ${bytes} bytes; the limit is ${MAX_HEADER_BYTES}.`);
  }
}

// Reads a message body as a TON transfer comment: op 0 followed by UTF-8 text that may continue in a
// chain of referenced cells ("snake" encoding). Anything else is reported by what it is, never guessed.
import type { Cell } from "@ton/core";

/** Op of an encrypted comment (wallet apps' "encrypted message"): we cannot read it, so it cannot match. */
export const ENCRYPTED_COMMENT_OP = 0x2167da4b;

export type Body =
  | { kind: "text"; text: string }
  /** No body bits at all: a plain transfer without a comment. */
  | { kind: "empty" }
  | { kind: "encrypted" }
  /** An op other than 0 (a contract call), or bits that do not even hold an op. */
  | { kind: "binary"; op: number | null }
  /** op 0 but the bytes are not valid UTF-8, or the chain is not byte-aligned or branches. */
  | { kind: "invalid_text"; why: string };

// A message is at most a few thousand cells; a comment longer than this many cells is not a memo.
const MAX_CHAIN = 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The bytes of a snake chain starting at `cell` after `skipBits`; null with a reason when malformed. */
function snakeBytes(cell: Cell, skipBits: number): { bytes: Uint8Array } | { why: string } {
  const parts: Buffer[] = [];
  let s = cell.beginParse();
  s.skip(skipBits);
  for (let depth = 0; ; depth++) {
    if (depth >= MAX_CHAIN) return { why: `comment spans more than ${MAX_CHAIN} cells` };
    if (s.remainingBits % 8 !== 0) return { why: `a comment cell holds ${s.remainingBits} bits, not whole bytes` };
    if (s.remainingRefs > 1) return { why: `a comment cell has ${s.remainingRefs} references, not a chain` };
    parts.push(s.loadBuffer(s.remainingBits / 8));
    if (s.remainingRefs === 0) break;
    s = s.loadRef().beginParse();
  }
  return { bytes: Buffer.concat(parts) };
}

/**
 * Reads `body`; never throws. A body @ton/core cannot parse (an exotic cell such as a Merkle proof in
 * the chain, say) is reported as invalid text: anyone can send one, and it must not stop the watcher.
 */
export function readBody(body: Cell): Body {
  try {
    return parseBody(body);
  } catch (err) {
    return { kind: "invalid_text", why: `the body cannot be parsed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function parseBody(body: Cell): Body {
  const s = body.beginParse();
  if (s.remainingBits === 0 && s.remainingRefs === 0) return { kind: "empty" };
  if (s.remainingBits < 32) return { kind: "binary", op: null };
  const op = s.loadUint(32);
  if (op === ENCRYPTED_COMMENT_OP) return { kind: "encrypted" };
  if (op !== 0) return { kind: "binary", op };
  const r = snakeBytes(body, 32);
  if ("why" in r) return { kind: "invalid_text", why: r.why };
  try {
    return { kind: "text", text: utf8.decode(r.bytes) };
  } catch {
    return { kind: "invalid_text", why: "the comment is not valid UTF-8" };
  }
}

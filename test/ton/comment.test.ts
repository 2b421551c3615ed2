// Reading transfer comments from message bodies: text across cells, and everything that is not text.
import { describe, expect, test } from "bun:test";
import { beginCell, Cell, convertToMerkleProof } from "@ton/core";
import { ENCRYPTED_COMMENT_OP, readBody } from "../../src/ton/comment.ts";
import { commentBody } from "../support/toncenter.ts";

describe("readBody", () => {
  test("a one-cell comment is its text", () => {
    expect(readBody(commentBody("ABCD1234X"))).toEqual({ kind: "text", text: "ABCD1234X" });
  });

  test("a comment spanning several cells is read whole, multi-byte characters split across cells included", () => {
    const text = `${"é".repeat(100)}-${"ü".repeat(150)}-日本語`;
    const body = commentBody(text);
    expect(body.refs.length).toBe(1);
    expect(body.refs[0]!.refs.length).toBe(1);
    expect(readBody(body)).toEqual({ kind: "text", text });
  });

  test("no body is no comment; op 0 alone is an empty comment", () => {
    expect(readBody(Cell.EMPTY)).toEqual({ kind: "empty" });
    expect(readBody(beginCell().storeUint(0, 32).endCell())).toEqual({ kind: "text", text: "" });
  });

  test("an encrypted comment (op 0x2167da4b) is reported as encrypted, not read", () => {
    const body = beginCell().storeUint(ENCRYPTED_COMMENT_OP, 32).storeBuffer(Buffer.from("ABCD1234X")).endCell();
    expect(readBody(body)).toEqual({ kind: "encrypted" });
  });

  test("another op, or fewer than 32 bits, is binary", () => {
    expect(readBody(beginCell().storeUint(0x0f8a7ea5, 32).storeUint(7, 64).endCell())).toEqual({ kind: "binary", op: 0x0f8a7ea5 });
    expect(readBody(beginCell().storeUint(5, 8).endCell())).toEqual({ kind: "binary", op: null });
  });

  test("a body @ton/core cannot parse (a Merkle proof in the chain) is invalid text, not an exception", () => {
    const inner = beginCell().storeUint(0, 32).storeBuffer(Buffer.from("hello")).endCell();
    const r = readBody(beginCell().storeUint(0, 32).storeBuffer(Buffer.from("AB")).storeRef(convertToMerkleProof(inner)).endCell());
    expect(r).toMatchObject({ kind: "invalid_text" });
    expect((r as { why: string }).why).toContain("cannot be parsed");
  });

  test("bytes that are not UTF-8 are invalid text, not a lossy string", () => {
    const r = readBody(commentBody(new Uint8Array([0x41, 0xff, 0xfe, 0x42])));
    expect(r.kind).toBe("invalid_text");
  });

  test("text that is not whole bytes, or a cell with two refs, is invalid text", () => {
    expect(readBody(beginCell().storeUint(0, 32).storeUint(1, 3).endCell()).kind).toBe("invalid_text");
    const two = beginCell().storeUint(0, 32).storeBuffer(Buffer.from("a")).storeRef(Cell.EMPTY).storeRef(Cell.EMPTY).endCell();
    expect(readBody(two).kind).toBe("invalid_text");
  });
});

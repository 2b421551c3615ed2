// Unknown top-level fields: found from the route's schema (unions included), removed, and named in a
// header value that stays a valid, bounded header whatever the keys hold.
import { describe, expect, test } from "bun:test";
import { t } from "elysia";
import { ignoredHeader, stripUnknownFields } from "../../src/http/fields.ts";

const Schema = t.Object({ a: t.String(), b: t.Optional(t.Number()) });

describe("stripUnknownFields", () => {
  test("removes and returns, sorted, the keys the schema lacks; keeps the rest untouched", () => {
    const body: Record<string, unknown> = { b: 1, zz: true, a: "x", m: { deep: 1 } };
    expect(stripUnknownFields(Schema, body)).toEqual(["m", "zz"]);
    expect(body).toEqual({ a: "x", b: 1 });
  });

  test("knows every branch of a union", () => {
    const U = t.Union([t.Object({ x: t.String() }), t.Object({ y: t.String() })]);
    const body = { x: "1", y: "2", z: "3" };
    expect(stripUnknownFields(U, body)).toEqual(["z"]);
  });

  test("leaves bodies that are not objects to validation", () => {
    for (const body of [null, [1, 2], "text", 5]) expect(stripUnknownFields(Schema, body)).toEqual([]);
  });
});

describe("ignoredHeader", () => {
  test("comma-separated names; odd characters percent-encoded", () => {
    expect(ignoredHeader(["a_b", "c.d"])).toBe("a_b,c.d");
    expect(ignoredHeader(["x,y", "new\nline", "ünï"])).toBe("x%2Cy,new%0Aline,%C3%BCn%C3%AF");
    expect(() => new Headers({ h: ignoredHeader(["bad\r\nInjected: 1"]) })).not.toThrow();
  });

  test("bounded in length", () => {
    const many = Array.from({ length: 1000 }, (_, i) => `field_number_${i}`);
    const value = ignoredHeader(many);
    expect(value.length).toBeLessThanOrEqual(2048 + 4);
    expect(value).toEndWith(",...");
  });
});

// The configured wallet: any form in, raw form stored, the non-bounceable form for the network shown.
import { describe, expect, test } from "bun:test";
import { AddressError, parseWallet } from "../../src/ton/address.ts";

const FRIENDLY = "EQAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeR9Sp";
const RAW = "0:2fe86ca77d7eabad195b363607a5ae4ccf550313ad6ce553e0f9337cb0115e47";

describe("parseWallet", () => {
  test("raw, bounceable and non-bounceable forms are one address, stored raw", () => {
    for (const input of [FRIENDLY, RAW, ` ${RAW.toUpperCase().replace("0X", "0x")} `, "UQAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeR4ls"]) {
      const w = parseWallet(input, "mainnet");
      expect(w.raw).toBe(RAW);
    }
  });

  test("customers see the non-bounceable form, test-only on testnet", () => {
    expect(parseWallet(RAW, "mainnet").display).toBe("UQAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeR4ls");
    expect(parseWallet(FRIENDLY, "testnet").display).toBe("0QAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeRzLm");
  });

  test("garbage and a testnet-only address on mainnet are refused with a clear message", () => {
    expect(() => parseWallet("not-an-address", "mainnet")).toThrow(AddressError);
    expect(() => parseWallet("0QAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeRzLm", "mainnet")).toThrow(/testnet address/);
    expect(parseWallet("0QAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeRzLm", "testnet").raw).toBe(RAW);
  });
});

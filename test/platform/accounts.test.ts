// Accounts and deposit codes: unambiguous alphabet, a check character that catches typos, lookup by memo.
import { describe, expect, test } from "bun:test";
import {
  createAccount,
  DEPOSIT_CODE_LENGTH,
  findAccountByDepositCode,
  generateDepositCode,
  getAccount,
  isValidDepositCode,
  listAccounts,
  normalizeDepositCode,
} from "../../src/platform/accounts.ts";
import { openStore } from "../../src/store/db.ts";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

describe("deposit codes", () => {
  const sample = Array.from({ length: 300 }, generateDepositCode);

  test("are 8 random characters plus a check character, from Crockford base32 without I L O U", () => {
    expect(DEPOSIT_CODE_LENGTH).toBe(9);
    for (const c of sample) {
      expect(c).toMatch(/^[0-9A-HJKMNP-TV-Z]{9}$/);
      expect(isValidDepositCode(c)).toBe(true);
    }
    expect(new Set(sample).size).toBe(sample.length);
  });

  test("the check character catches every single-character substitution", () => {
    let tried = 0;
    for (const c of sample) {
      for (let i = 0; i < c.length; i++) {
        for (const ch of ALPHABET) {
          if (ch === c[i]) continue;
          tried++;
          expect(isValidDepositCode(c.slice(0, i) + ch + c.slice(i + 1))).toBe(false);
        }
      }
    }
    expect(tried).toBe(300 * 9 * 31);
  });

  test("the check character catches every adjacent transposition", () => {
    let tried = 0;
    for (const c of sample) {
      for (let i = 0; i + 1 < c.length; i++) {
        if (c[i] === c[i + 1]) continue;
        tried++;
        expect(isValidDepositCode(c.slice(0, i) + c[i + 1] + c[i] + c.slice(i + 2))).toBe(false);
      }
    }
    expect(tried).toBeGreaterThan(300 * 7);
  });

  test("wrong lengths and foreign characters are invalid", () => {
    const c = sample[0]!;
    expect(isValidDepositCode(c.slice(0, 8))).toBe(false);
    expect(isValidDepositCode(`${c}0`)).toBe(false);
    expect(isValidDepositCode(c.toLowerCase())).toBe(false); // canonical form is upper case
    expect(isValidDepositCode(`U${c.slice(1)}`)).toBe(false);
  });

  test("normalization forgives case, spaces, dashes and O/I/L for 0/1/1", () => {
    // A valid code with a 0 and a 1, so the look-alike mapping is exercised: find its check character.
    const valid = [...ALPHABET].map((check) => `01ABCDEF${check}`).find(isValidDepositCode)!;
    const typed = valid.toLowerCase().replace("0", "o").replace("1", "l");
    expect(normalizeDepositCode(` ${typed.slice(0, 4)}-${typed.slice(4)} `)).toBe(valid);
    expect(normalizeDepositCode(valid.replace("1", "I"))).toBe(valid);
    expect(normalizeDepositCode("hello")).toBeNull();
  });
});

describe("accounts", () => {
  const db = openStore(":memory:");

  test("a new account has a valid deposit code, zero balance and its label", () => {
    const t = 1_700_000_000_000;
    const a = createAccount(db, "alice", t);
    expect(isValidDepositCode(a.depositCode)).toBe(true);
    expect(getAccount(db, a.id)).toEqual({ id: a.id, depositCode: a.depositCode, label: "alice", createdAt: t, balance: 0n, reserved: 0n, disabled: false });
  });

  test("an account is found by its deposit code as a person might type it, not by a typo", () => {
    const a = createAccount(db);
    const typed = `${a.depositCode.slice(0, 4).toLowerCase()}-${a.depositCode.slice(4)}`;
    expect(findAccountByDepositCode(db, typed)?.id).toBe(a.id);
    const typo = (a.depositCode[0] === "A" ? "B" : "A") + a.depositCode.slice(1);
    expect(findAccountByDepositCode(db, typo)).toBeNull();
  });

  test("unknown ids read as null", () => {
    expect(getAccount(db, 123456)).toBeNull();
  });

  test("listAccounts pages in id order with the total", () => {
    const fresh = openStore(":memory:");
    const ids = Array.from({ length: 5 }, (_, i) => createAccount(fresh, `a${i}`).id);
    expect(listAccounts(fresh, { limit: 2, offset: 0 }).data.map((a) => a.id)).toEqual(ids.slice(0, 2));
    const page = listAccounts(fresh, { limit: 2, offset: 4 });
    expect(page.data.map((a) => a.label)).toEqual(["a4"]);
    expect(page.total).toBe(5);
  });
});

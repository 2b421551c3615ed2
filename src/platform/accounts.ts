// Accounts and their deposit codes: the memo a customer puts on a TON transfer so the watcher knows
// whom to credit. Codes use Crockford base32 plus a check character, so a mistyped memo is caught.
import { all, dialect, dual, get, run, type Q } from "../store/query.ts";
import { randomBytes } from "node:crypto";

// Crockford base32: digits and letters without I, L, O, U (no 1/I/L, 0/O confusion, no accidental words).
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DATA_LENGTH = 8; // 40 random bits
export const DEPOSIT_CODE_LENGTH = DATA_LENGTH + 1;

/*
 * Check character: the code c1..c9 (as 5-bit values) must satisfy Σ a^(9-i)·ci = 0 in GF(32), with
 * a = x (2) modulo the primitive polynomial x^5 + x^2 + 1. A substitution at position i changes the
 * sum by a^(9-i)·e ≠ 0; swapping adjacent distinct ci, cj changes it by a^k·(a+1)·(ci+cj) ≠ 0 since
 * a ≠ 1 and GF(32) has no zero divisors. So every single-character substitution and every adjacent
 * transposition, the check character included, is detected. (This is Damm's construction over GF(32).)
 */
const times2 = (v: number) => ((v << 1) ^ (v & 0x10 ? 0b100101 : 0)) & 0x1f;

function syndrome(values: readonly number[]): number {
  let acc = 0;
  for (const v of values) acc = times2(acc) ^ v;
  return acc;
}

function checkCharacter(data: readonly number[]): string {
  // Appending c makes the syndrome times2(s) ^ c, which is 0 for c = times2(s).
  return ALPHABET[times2(syndrome(data))]!;
}

export function generateDepositCode(): string {
  const bytes = randomBytes(5);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  const data: number[] = [];
  for (let i = DATA_LENGTH - 1; i >= 0; i--) data.push(Number((bits >> BigInt(5 * i)) & 31n));
  return data.map((v) => ALPHABET[v]).join("") + checkCharacter(data);
}

/** True for a canonical code: 9 characters of the alphabet (upper case) with a correct check character. */
export function isValidDepositCode(code: string): boolean {
  if (code.length !== DEPOSIT_CODE_LENGTH) return false;
  const values: number[] = [];
  for (const ch of code) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return false;
    values.push(v);
  }
  return syndrome(values) === 0;
}

/**
 * The canonical code for what a person typed (case-insensitive; spaces and dashes ignored; O read as 0,
 * I and L as 1), or null when that is not a valid deposit code.
 */
export function normalizeDepositCode(input: string): string | null {
  const code = input
    .toUpperCase()
    .replace(/[\s-]+/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
  return isValidDepositCode(code) ? code : null;
}

export interface Account {
  id: number;
  depositCode: string;
  label: string | null;
  createdAt: number;
  balance: bigint;
  reserved: bigint;
  disabled: boolean;
}

interface AccountRow {
  id: bigint;
  deposit_code: string;
  label: string | null;
  created_at: bigint;
  balance_nanoton: bigint;
  reserved_nanoton: bigint;
  disabled: bigint;
}

const toAccount = (r: AccountRow): Account => ({
  id: Number(r.id),
  depositCode: r.deposit_code,
  label: r.label,
  createdAt: Number(r.created_at),
  balance: r.balance_nanoton,
  reserved: r.reserved_nanoton,
  disabled: r.disabled !== 0n,
});

export const createAccount = dual(function* (label?: string | null, now: number = Date.now()): Q<{ id: number; depositCode: string }> {
  // 2^40 codes: a collision is rare but possible; ON CONFLICT tells us (without failing the
  // transaction we may be in, which Postgres would abort) and we draw again.
  for (let attempt = 0; ; attempt++) {
    const depositCode = generateDepositCode();
    const r = yield* get<{ id: bigint }>("INSERT INTO accounts (deposit_code, label, created_at) VALUES (?, ?, ?) ON CONFLICT (deposit_code) DO NOTHING RETURNING id", depositCode, label ?? null, now);
    if (r) return { id: Number(r.id), depositCode };
    if (attempt >= 8) throw new Error("could not draw an unused deposit code");
  }
});

export const getAccount = dual(function* (id: number): Q<Account | null> {
  const r = yield* get<AccountRow>("SELECT * FROM accounts WHERE id = ?", id);
  return r ? toAccount(r) : null;
});

/** The account's deposit code; "" for an account that does not exist. */
export const depositCodeOf = dual(function* (id: number): Q<string> {
  return (yield* get<{ deposit_code: string }>("SELECT deposit_code FROM accounts WHERE id = ?", id))?.deposit_code ?? "";
});

/** The account for a deposit memo as typed (normalized first), or null. */
export const findAccountByDepositCode = dual(function* (input: string): Q<Account | null> {
  const code = normalizeDepositCode(input);
  if (code === null) return null;
  const r = yield* get<AccountRow>("SELECT * FROM accounts WHERE deposit_code = ?", code);
  return r ? toAccount(r) : null;
});

export const listAccounts = dual(function* (page: { limit: number; offset: number }): Q<{ data: Account[]; total: number }> {
  const limit = Math.max(0, Math.floor(page.limit));
  const offset = Math.max(0, Math.floor(page.offset));
  const data = (yield* all<AccountRow>("SELECT * FROM accounts ORDER BY id LIMIT ? OFFSET ?", limit, offset)).map(toAccount);
  const total = Number((yield* get<{ n: bigint }>("SELECT count(*) AS n FROM accounts"))?.n ?? 0n);
  return { data, total };
});

/** Disables or re-enables an account (its keys stop verifying while disabled). True when it exists. */
export const setAccountDisabled = dual(function* (id: number, disabled: boolean): Q<boolean> {
  return (yield* run("UPDATE accounts SET disabled = ? WHERE id = ?", disabled ? 1 : 0, id)).changes > 0;
});

/**
 * Accounts an operator's search names (the dashboard's search box): by id, deposit code (as typed),
 * a part of the label (any case), or the display prefix of one of its keys (`ck_AbC...`). In id order.
 */
export const searchAccounts = dual(function* (q: string, page: { limit: number; offset: number }): Q<{ data: Account[]; total: number }> {
  const text = q.trim();
  const id = /^[0-9]{1,15}$/.test(text) ? Number(text) : null;
  const code = normalizeDepositCode(text);
  const like = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const prefix = text.startsWith("ck_") ? `${text.slice(0, 10).replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  // SQLite's LIKE ignores ASCII case; Postgres's ILIKE is the same search there.
  const ilike = (yield* dialect()) === "postgres" ? "ILIKE" : "LIKE";
  // Only the alternatives that apply: Postgres cannot type a parameter that is only ever null.
  const alternatives: [string, unknown][] = [[`label ${ilike} ? ESCAPE '\\'`, like]];
  if (id !== null) alternatives.push(["id = ?", id]);
  if (code !== null) alternatives.push(["deposit_code = ?", code]);
  if (prefix !== null) alternatives.push([`id IN (SELECT account_id FROM api_keys WHERE prefix ${ilike} ? ESCAPE '\\')`, prefix]);
  const where = `(${alternatives.map(([sql]) => sql).join(" OR ")})`;
  const params = alternatives.map(([, v]) => v);
  const data = (yield* all<AccountRow>(`SELECT * FROM accounts WHERE ${where} ORDER BY id LIMIT ? OFFSET ?`, ...params, Math.max(0, Math.floor(page.limit)), Math.max(0, Math.floor(page.offset)))).map(toAccount);
  const total = Number((yield* get<{ n: bigint }>(`SELECT count(*) AS n FROM accounts WHERE ${where}`, ...params))?.n ?? 0n);
  return { data, total };
});

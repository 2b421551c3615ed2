// Display formatting for the dashboard: exact TON strings trimmed (never recomputed from floats),
// UTC times, token counts with separators, and the error banner.
import { byId } from "../dom.ts";

/** "1.500000000" → "1.5"; the server's exact decimal, only trimmed. */
export function ton(s: string): string {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

/** nanoton as TON text, exact (integer arithmetic on the string of digits). */
export function tonOfNanoton(n: number): string {
  const neg = n < 0;
  const digits = String(Math.abs(n)).padStart(10, "0");
  return `${neg ? "-" : ""}${ton(`${digits.slice(0, -9)}.${digits.slice(-9)}`)}`;
}

/** "2026-12-01 12:34:56 UTC"; "" for null. */
export function time(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export const count = (n: number) => n.toLocaleString("en-US");

export function showError(message: string | null): void {
  const banner = byId("error-banner");
  banner.textContent = message ?? "";
  banner.hidden = !message;
}

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

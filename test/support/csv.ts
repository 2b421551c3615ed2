// A strict RFC 4180 reader for tests of the CSV exports: quoted cells with "" escapes, CRLF or LF
// line ends; throws on a malformed quote so a broken export fails the test.

/** The rows of a CSV text (the header included), each an array of cells. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i++;
        if (i < text.length && !",\r\n".includes(text[i]!)) throw new Error(`CSV: text after a closing quote at ${i}`);
      } else {
        cell += c;
        i++;
      }
    } else if (c === '"') {
      if (cell !== "") throw new Error(`CSV: a quote inside an unquoted cell at ${i}`);
      quoted = true;
      i++;
    } else if (c === ",") {
      row.push(cell);
      cell = "";
      i++;
    } else if (c === "\r" || c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
    } else {
      cell += c;
      i++;
    }
  }
  if (quoted) throw new Error("CSV: unterminated quote");
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** The rows as objects keyed by the header's names. */
export function csvRecords(text: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text);
  if (!header) return [];
  for (const r of rows) if (r.length !== header.length) throw new Error(`CSV: a row of ${r.length} cells under a header of ${header.length}`);
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]!])));
}

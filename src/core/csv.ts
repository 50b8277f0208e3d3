/**
 * CSV cells and rows that are safe to open in a spreadsheet. Pure.
 *
 * - Quoting per RFC 4180: a cell containing `"`, `,`, CR or LF, or leading/trailing spaces, is wrapped in
 *   double quotes with inner quotes doubled.
 * - Formula injection (OWASP "CSV Injection"): a TEXT cell starting with `=`, `+`, `-`, `@`, tab or CR would
 *   be run as a formula by Excel/LibreOffice; it gets a leading `'` so it shows as text. Values from
 *   scanned hosts and log files are hostile, so every text cell goes through this.
 * - Numbers and booleans are written as they are (`-1` as a number is data, not a formula); null and
 *   undefined are empty cells.
 */

export type CsvValue = string | number | boolean | null | undefined;

/** Line terminator of RFC 4180. */
export const CSV_EOL = '\r\n';

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

export function csvCell(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One row, without the line terminator. */
export function csvRow(cells: readonly CsvValue[]): string {
  return cells.map(csvCell).join(',');
}

/** Header and rows, each line ending with CRLF. */
export function csvDocument(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return [header, ...rows].map((r) => `${csvRow(r)}${CSV_EOL}`).join('');
}

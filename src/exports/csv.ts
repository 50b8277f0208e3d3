/**
 * CSV lines for list exports (issue 10 §6). The cell writer is the one in src/core/csv.ts (RFC 4180 quoting and the
 * formula guard: a text cell starting with = + - @ TAB or CR gets a leading '); before it, text cells lose the
 * characters that change what a reader sees rather than what the text says (src/core/text.ts: C0/C1 controls
 * except LF, bidi overrides, zero-width characters), so a hostile organisation name or banner cannot hide itself
 * or start a formula after the strip. LF stays (quoted, it is data). Pure.
 */
import { CSV_EOL, csvCell, type CsvValue } from '../core/csv.js';
import { sanitiseText } from '../core/text.js';

export type { CsvValue };

/** A text cell with hostile control characters removed (not replaced: a '?' would also change the value). */
export function stripHostile(text: string): string {
  return sanitiseText(text, { style: 'replace', replacement: '', keepNewlines: true });
}

export function safeCell(value: CsvValue): string {
  return csvCell(typeof value === 'string' ? stripHostile(value) : value);
}

/** One CSV line with its CRLF terminator. */
export function csvLine(cells: readonly CsvValue[]): string {
  return `${cells.map(safeCell).join(',')}${CSV_EOL}`;
}

/** A value of a record as one cell: lists joined by spaces, objects as compact JSON, dates as ISO 8601. */
export function cellOf(value: unknown): CsvValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')) return value.join(' ');
  return JSON.stringify(value);
}

/** A record's cells in the given column order (a missing key is an empty cell). */
export function recordCells(record: Readonly<Record<string, unknown>>, columns: readonly string[]): CsvValue[] {
  return columns.map((c) => cellOf(record[c]));
}

/**
 * Header-named CSV records from lines, shared by the CSV feed formats: the first non-blank line is the header
 * (names trimmed and lower-cased, so column order and case do not matter), a record whose quotes are still
 * open continues on the next line (at most MAX_JOIN lines), and a record with the wrong number of fields is a
 * problem of its own, never a reason to drop the file. A required column missing rejects the file before any
 * record is read. Pure.
 */
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { splitCsvRecord } from './csv-line.js';
import type { Line } from './lines.js';
import type { InputLine } from './types.js';

/** Lines one quoted record may span before it is a problem (a stray quote must not swallow the file). */
const MAX_JOIN = 32;

export type CsvItem =
  | { readonly type: 'record'; readonly line: number; readonly raw: string; readonly get: (name: string) => string | undefined; readonly record: Readonly<Record<string, string>> }
  | { readonly type: 'problem'; readonly line: number; readonly raw: string; readonly error: string }
  | { readonly type: 'skip'; readonly line: number };

export interface CsvHeader {
  readonly names: readonly string[];
}

/**
 * @param required columns that must be in the header (lower case); `requiredFor` computes them from the header
 *   when they depend on it.
 */
export async function* csvRecords(
  lines: AsyncIterable<InputLine>, file: string, required: (header: readonly string[]) => readonly string[],
): AsyncGenerator<CsvItem> {
  let header: string[] | null = null;
  let index = new Map<string, number>();
  let held: { line: number; raw: string } | null = null;
  let heldLines = 0;
  for await (const l of lines as AsyncIterable<Line>) {
    if (l.cut === true) {
      if (held !== null) {
        yield { type: 'problem', line: held.line, raw: held.raw, error: 'unterminated quoted field' };
        held = null;
      }
      yield { type: 'problem', line: l.no, raw: l.text, error: 'line too long' };
      continue;
    }
    const start: number = held?.line ?? l.no;
    const raw: string = held === null ? l.text : `${held.raw}\n${l.text}`;
    if (held === null && raw.trim() === '') {
      yield { type: 'skip', line: l.no };
      continue;
    }
    const split = splitCsvRecord(raw);
    if (!split.ok) {
      if (split.open && heldLines < MAX_JOIN) {
        held = { line: start, raw };
        heldLines++;
        continue;
      }
      held = null;
      heldLines = 0;
      if (header === null) throw new TocsinError('TOCSIN_FEED_REJECTED', `${file}: the header line is not valid CSV (${split.error})`);
      yield { type: 'problem', line: start, raw, error: split.error };
      continue;
    }
    held = null;
    heldLines = 0;
    if (header === null) {
      header = split.fields.map((h) => h.trim().toLowerCase());
      index = new Map(header.map((h, i) => [h, i] as const).reverse());
      const missing = required(header).filter((c) => !index.has(c));
      if (missing.length > 0) {
        throw new TocsinError('TOCSIN_FEED_REJECTED', `${file}: required column(s) missing: ${missing.join(', ')} (header: ${sanitiseText(header.join(','), { max: 200 })})`);
      }
      yield { type: 'skip', line: start };
      continue;
    }
    const cells = split.fields;
    if (cells.length !== header.length) {
      yield { type: 'problem', line: start, raw, error: `${cells.length} field(s), the header has ${header.length}` };
      continue;
    }
    const record: Record<string, string> = {};
    header.forEach((h, i) => {
      if (h !== '') record[h] = cells[i] ?? '';
    });
    const idx = index;
    yield { type: 'record', line: start, raw, record, get: (name) => { const i = idx.get(name); return i === undefined ? undefined : cells[i]; } };
  }
  if (held !== null) yield { type: 'problem', line: held.line, raw: held.raw, error: 'unterminated quoted field at the end of the file' };
  if (header === null) throw new TocsinError('TOCSIN_FEED_REJECTED', `${file}: empty file (no header line)`);
}

/**
 * The one CSV module: a writer whose cells are safe to open in a spreadsheet, and a reader for trusted,
 * in-repo tables (the knowledge base). Pure.
 *
 * Writer:
 * - Quoting per RFC 4180: a cell containing `"`, `,`, CR or LF, or leading/trailing spaces, is wrapped in
 *   double quotes with inner quotes doubled.
 * - Formula injection (OWASP "CSV Injection"): a TEXT cell starting with `=`, `+`, `-`, `@`, tab or CR would
 *   be run as a formula by Excel/LibreOffice; it gets a leading `'` so it shows as text. Values from
 *   scanned hosts and log files are hostile, so every text cell goes through this.
 * - Numbers and booleans are written as they are (`-1` as a number is data, not a formula); null and
 *   undefined are empty cells.
 * - Data files that parseCsv reads back (the knowledge-base tables) are written with `DATA_FILE_CSV`: LF line
 *   ends for stable diffs, and no formula guard, since the guard's `'` is not undone by a reader and would change
 *   the value.
 *
 * Reader: RFC 4180 (quoted fields, doubled quotes, CRLF or LF, a leading UTF-8 BOM dropped). Meant for small,
 * trusted files; log lines have their own streaming parser (forensics/csv-line.ts), which refuses malformed lines.
 */

export type CsvValue = string | number | boolean | null | undefined;

/** Line terminator of RFC 4180. */
export const CSV_EOL = '\r\n';

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

export interface CsvWriteOptions {
  /** Line terminator (default CSV_EOL, CRLF). */
  readonly eol?: string;
  /** Prefix `'` to text cells that a spreadsheet would run as a formula (default true). */
  readonly formulaGuard?: boolean;
}

/** For data files read back with parseCsv: LF, no formula guard (see the module comment). */
export const DATA_FILE_CSV: CsvWriteOptions = { eol: '\n', formulaGuard: false };

export function csvCell(value: CsvValue, opts: CsvWriteOptions = {}): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = opts.formulaGuard !== false && FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One row, without the line terminator. */
export function csvRow(cells: readonly CsvValue[], opts: CsvWriteOptions = {}): string {
  return cells.map((c) => csvCell(c, opts)).join(',');
}

/** Header and rows, each line ending with `opts.eol` (default CRLF). */
export function csvDocument(header: readonly string[], rows: readonly (readonly CsvValue[])[], opts: CsvWriteOptions = {}): string {
  const eol = opts.eol ?? CSV_EOL;
  return [header, ...rows].map((r) => `${csvRow(r, opts)}${eol}`).join('');
}

/** Records (keyed by column name) as a document with the given column order; a missing key is an empty cell. */
export function csvRecordsDocument(
  columns: readonly string[],
  records: readonly Readonly<Record<string, CsvValue>>[],
  opts: CsvWriteOptions = {},
): string {
  return csvDocument(columns, records.map((r) => columns.map((c) => r[c])), opts);
}

// ---------------------------------------------------------------------------------------------------
// Reader

/** Parses CSV text into rows of fields. A trailing newline does not make an empty row. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // drop a UTF-8 BOM
  while (i < src.length) {
    const c = src[i];
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += c;
      }
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      if (c === '\r' && src[i + 1] === '\n') i++;
    } else field += c;
    i++;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Parses CSV with a header line into records keyed by column name; checks the required columns exist. */
export function parseCsvRecords(text: string, required: readonly string[]): { header: string[]; records: Record<string, string>[]; problems: string[] } {
  const rows = parseCsv(text);
  const header = rows[0] ?? [];
  const problems: string[] = [];
  for (const col of required) if (!header.includes(col)) problems.push(`missing column "${col}"`);
  const records: Record<string, string>[] = [];
  for (let r = 1; r < rows.length; r++) {
    const cells = rows[r] ?? [];
    if (cells.length === 1 && cells[0] === '') continue; // blank line
    if (cells.length !== header.length) problems.push(`line ${r + 1}: ${cells.length} fields, header has ${header.length}`);
    const rec: Record<string, string> = {};
    header.forEach((h, k) => {
      rec[h] = cells[k] ?? '';
    });
    records.push(rec);
  }
  return { header, records, problems };
}

/**
 * RFC 4180 rows with the line each starts on and its raw text, for import files whose bad rows must be
 * reported as file:line with the line as given. (core/csv.ts reads trusted tables and keeps no positions.)
 * Quoted fields may hold commas, quotes ("") and line breaks; CRLF or LF; a leading UTF-8 BOM is dropped.
 * Pure.
 */

export interface CsvRow {
  /** 1-based line of the row's first character. */
  readonly line: number;
  /** The row's text as in the file, without its line terminator. */
  readonly raw: string;
  readonly cells: readonly string[];
  /** A quote was left open at the end of the input (the row ran to the end of the file). */
  readonly unterminated: boolean;
}

export function csvRows(input: string): CsvRow[] {
  const src = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const rows: CsvRow[] = [];
  let i = 0;
  let line = 1;
  while (i < src.length) {
    const start = i;
    const startLine = line;
    const cells: string[] = [];
    let field = '';
    let quoted = false;
    let fieldStart = true;
    let end = -1;
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
          if (c === '\n') line++;
          field += c;
        }
        i++;
        continue;
      }
      if (c === '"' && fieldStart) {
        quoted = true;
        fieldStart = false;
      } else if (c === ',') {
        cells.push(field);
        field = '';
        fieldStart = true;
        i++;
        continue;
      } else if (c === '\n' || c === '\r') {
        end = i;
        i += c === '\r' && src[i + 1] === '\n' ? 2 : 1;
        line++;
        break;
      } else {
        field += c;
        fieldStart = false;
      }
      i++;
    }
    cells.push(field);
    rows.push({ line: startLine, raw: src.slice(start, end < 0 ? src.length : end), cells, unterminated: quoted });
  }
  return rows;
}

/**
 * Minimal RFC 4180 CSV for the knowledge-base tables (trusted, in-repo, small files): quoted fields,
 * doubled quotes, CRLF or LF. Not meant for hostile feed input (the ingest layer has its own reader).
 */

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

/** Quotes a field when it contains a comma, quote or line break. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Formats records as CSV with the given column order and LF line endings (stable diffs). */
export function formatCsv(columns: readonly string[], records: readonly Readonly<Record<string, string>>[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const r of records) lines.push(columns.map((c) => csvField(r[c] ?? '')).join(','));
  return `${lines.join('\n')}\n`;
}

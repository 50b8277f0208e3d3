/**
 * One CSV record (RFC 4180: quoted fields, doubled quotes, commas and line breaks inside quotes), read from
 * lines so that a quoted line break joins the next line. Pure. Unlike core/csv.ts (trusted in-repo tables,
 * whole text), this reads hostile feeds line by line and says what is wrong instead of guessing.
 */

export type CsvFields = { readonly ok: true; readonly fields: string[] } | { readonly ok: false; readonly error: string; readonly open: boolean };

/**
 * Splits `text` into fields. `open: true` in a failure means a quote is still open at the end (the caller may
 * append the next line and try again); any other failure is final.
 */
export function splitCsvRecord(text: string): CsvFields {
  const fields: string[] = [];
  let field = '';
  let i = 0;
  const n = text.length;
  for (;;) {
    if (i < n && text.charCodeAt(i) === 34 /* " */) {
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) return { ok: false, error: 'unterminated quoted field', open: true };
        field += text.slice(i, q);
        if (text.charCodeAt(q + 1) === 34) {
          field += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (i < n && text.charCodeAt(i) !== 44 /* , */) return { ok: false, error: `text after a closing quote at column ${i + 1}`, open: false };
    } else {
      const c = text.indexOf(',', i);
      const end = c < 0 ? n : c;
      const part = text.slice(i, end);
      if (part.includes('"')) return { ok: false, error: `quote inside an unquoted field at column ${i + 1 + part.indexOf('"')}`, open: false };
      field = part;
      i = end;
    }
    fields.push(field);
    field = '';
    if (i >= n) return { ok: true, fields };
    i++; // the comma
    if (i >= n) {
      fields.push('');
      return { ok: true, fields };
    }
  }
}

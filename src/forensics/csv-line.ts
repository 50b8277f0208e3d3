/**
 * Parses one CSV line (RFC 4180 quoting: fields with commas or quotes are quoted, a quote inside is
 * doubled) as Exchange writes its logs. Returns null for a malformed line (an unterminated quoted
 * field, or text after a closing quote): the caller reports it with file:line and skips it.
 * A quote inside an unquoted field is kept literally (lenient, as Exchange never writes one).
 */
export function parseCsvLine(line: string, sep = ','): string[] | null {
  const out: string[] = [];
  const n = line.length;
  const sepCode = sep.charCodeAt(0);
  let i = 0;
  for (;;) {
    if (i < n && line.charCodeAt(i) === 34 /* " */) {
      // Quoted field.
      i++;
      let value = '';
      let start = i;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) return null; // unterminated
        if (q + 1 < n && line.charCodeAt(q + 1) === 34) {
          value += line.slice(start, q + 1);
          i = q + 2;
          start = i;
          continue;
        }
        value += line.slice(start, q);
        i = q + 1;
        break;
      }
      out.push(value);
      if (i === n) return out;
      if (line.charCodeAt(i) !== sepCode) return null; // junk after the closing quote
      i++;
    } else {
      const s = line.indexOf(sep, i);
      if (s === -1) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, s));
      i = s + 1;
    }
    if (i === n) {
      out.push('');
      return out;
    }
  }
}

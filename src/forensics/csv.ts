/**
 * CSV output that is safe to open in a spreadsheet: RFC 4180 quoting, and cells that a spreadsheet
 * would run as a formula (starting with = + - @, tab or carriage return) are prefixed with `'`
 * (OWASP "CSV injection"). Evidence comes from attacker-controlled log lines, so this matters.
 * (Local to forensics until a shared src/core/csv.ts exists.)
 */
export function csvCell(v: string | number | null): string {
  if (v === null) return '';
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  if (/[",\r\n]/.test(s) || s !== s.trim()) s = `"${s.replace(/"/g, '""')}"`;
  return s;
}

export function csvRow(cells: readonly (string | number | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

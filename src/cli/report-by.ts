/**
 * Rendering of `tocsin report --by org|sector` (the command is src/cli/report.ts): table, json or csv, pure.
 * Organisation names and sectors come from imported registries: hostile text, sanitised in the table and
 * formula-guarded in CSV.
 */
import { csvDocument, type CsvValue } from '../core/csv.js';
import { sanitiseText } from '../core/text.js';
import type { GroupReport, GroupReportRow } from '../services/exposures.js';

export function renderGroupReport(r: GroupReport, format: 'table' | 'json' | 'csv'): string {
  if (format === 'json') {
    // The published fields only (a caller may pass the report with more, e.g. the attribution refresh summary).
    const { by, generatedAt, definition, groups, rows, total } = r;
    return `${JSON.stringify({ by, generatedAt, definition, groups, rows, total }, null, 2)}\n`;
  }
  if (format === 'csv') return groupCsv(r);
  return groupTable(r);
}

function label(r: GroupReport, row: GroupReportRow): string {
  if (!row.attributed) return '(unattributed)';
  if (r.by === 'org') return row.org ?? '?';
  return row.sector ?? '(no sector)';
}

function groupCsv(r: GroupReport): string {
  const header = [
    'attributed', 'org_id', 'org', 'sector', 'records', 'addresses', 'servers', 'vulnerable',
    ...r.groups.map((g) => `vulnerable_${g}`), 'indeterminate', 'patched', 'undetermined', 'compromised', 'reported',
  ];
  const rows: CsvValue[][] = r.rows.map((x) => [
    x.attributed, x.orgId, x.org, x.sector, x.records, x.addresses, x.servers, x.vulnerable,
    ...x.byGroup.map((g) => g.vulnerable), x.indeterminate, x.patched, x.undetermined, x.compromised, x.reported,
  ]);
  return csvDocument(header, rows);
}

function groupTable(r: GroupReport): string {
  if (r.rows.length === 0) return 'No exposures stored yet. Run `tocsin scan TARGET...` or `tocsin feeds import FILE`.\n';
  const first = r.by === 'org' ? 'organisation' : 'sector';
  const header = [first, ...(r.by === 'org' ? ['sector'] : []), 'addresses', 'servers', 'vulnerable', ...r.groups, 'indeterminate', 'patched', 'undetermined', 'compromised', 'reported'];
  const line = (name: string, sector: string | null, x: Omit<GroupReportRow, 'attributed' | 'orgId' | 'org' | 'sector'>): string[] => [
    sanitiseText(name, { max: 40 }), ...(r.by === 'org' ? [sector === null ? '-' : sanitiseText(sector, { max: 20 })] : []),
    num(x.addresses), num(x.servers), num(x.vulnerable), ...x.byGroup.map((g) => num(g.vulnerable)),
    num(x.indeterminate), num(x.patched), num(x.undetermined), num(x.compromised), num(x.reported),
  ];
  const rows = r.rows.map((x) => line(label(r, x), x.attributed ? x.sector : null, x));
  rows.push(line('TOTAL', null, r.total));
  const textColumns = r.by === 'org' ? 2 : 1;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((x) => (x[i] ?? '').length)));
  const fmt = (cells: readonly string[]): string =>
    cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  const out = [
    `Tocsin report by ${r.by === 'org' ? 'organisation' : 'sector'}: every scan and feed (newest observation per ip:port)`,
    '',
    fmt(header),
    ...rows.slice(0, -1).map(fmt),
    fmt(rows[rows.length - 1] ?? []),
    '',
    'servers: distinct addresses running Exchange; vulnerable: to a headline CVE (per group in its column); indeterminate: a headline',
    'CVE indeterminate and none vulnerable; compromised: a feed reported a web shell; reported: a feed claimed a CVE.',
    `(${r.definition})`,
  ];
  return `${out.join('\n')}\n`;
}

function num(n: number): string {
  return n.toLocaleString('en-US');
}

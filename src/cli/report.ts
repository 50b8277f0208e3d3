/**
 * `tocsin report`: the stored picture (hosts scanned, Exchange servers by edition and CU, exposed servers
 * per CVE, indeterminate, patched share) for the latest scan, one scan (--scan ID) or all scans (--all),
 * as a table, JSON or CSV. `--scans` lists the stored scans instead. Definitions: src/services/report-policy.ts
 * (decisions, from the product's data) and src/platform/db/report.ts (counting rules).
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { outputFormat, type FormatByExtension } from './args.js';
import { csvDocument, type CsvValue } from '../core/csv.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { buildReport, listScans, type ExchangeReport, type ReportScope, type ScanSummary } from '../services/report.js';
import { buildGroupReport } from '../services/exposures.js';
import { renderGroupReport } from './report-by.js';

export type ReportFormat = 'table' | 'json' | 'csv';
/** CVEs outside the headline list shown in the table (most exposed first). */
const TABLE_OTHER_CVES = 10;
const FORMATS: readonly ReportFormat[] = ['table', 'json', 'csv'];
/** `--output x.csv` without --format writes CSV (not a table under a .csv name). */
const REPORT_FORMAT_BY_EXTENSION: FormatByExtension<ReportFormat> = { '.csv': 'csv', '.json': 'json', '.txt': 'table' };

interface ReportFlags {
  scan?: string;
  all?: boolean;
  scans?: boolean;
  format?: string;
  output?: string;
  /** Per organisation or sector, over every scan and feed (src/services/exposures.ts). */
  by?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('report')
    .description('print the stored picture: Exchange servers by edition and CU, exposed servers per CVE, indeterminate, patched share')
    .option('--scan <id>', 'report on this scan (default: the latest); "all" is the same as --all')
    .option('--all', 'report on all scans: the latest observation of each ip:port')
    .option('--scans', 'list the stored scans instead')
    .option('--by <grouping>', 'org | sector: the picture per organisation or sector (every scan and feed; unattributed addresses as a row)')
    .option('--format <format>', 'table | json | csv (default: from the --output extension, else table)')
    .option('--output <file>', 'write to FILE instead of stdout')
    .action(async (flags: ReportFlags) => {
      await reportCommand(ctx, flags);
    });
}

async function reportCommand(ctx: CliContext, flags: ReportFlags): Promise<void> {
  const wanted = outputFormat(flags.format, flags.output, REPORT_FORMAT_BY_EXTENSION, 'table');
  const format = FORMATS.find((f) => f === wanted);
  if (format === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--format: ${JSON.stringify(wanted.slice(0, 40))} is not one of ${FORMATS.join(', ')}`);
  if (flags.scan !== undefined && flags.all === true) throw new TocsinError('TOCSIN_ARG_INVALID', '--scan and --all exclude each other');
  if (flags.scans === true && (flags.scan !== undefined || flags.all === true)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--scans lists scans; it takes no --scan or --all');
  }
  if (flags.by !== undefined && flags.by !== 'org' && flags.by !== 'sector') {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--by must be org or sector, got ${JSON.stringify(sanitiseText(flags.by, { max: 20 }))}`);
  }
  if (flags.by !== undefined && (flags.scan !== undefined || flags.all === true || flags.scans === true)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--by reports on every scan and feed (newest observation per ip:port); it takes no --scan, --all or --scans');
  }
  const by = flags.by;
  const scope: ReportScope =
    flags.all === true || flags.scan === 'all' ? { kind: 'all' } : flags.scan !== undefined ? { kind: 'scan', id: flags.scan } : { kind: 'latest' };

  const database = await openDatabase(ctx.config());
  let text: string;
  try {
    text = by !== undefined ? renderGroupReport(await buildGroupReport(database.db, by), format)
      : flags.scans === true ? renderScans(await listScans(database.db), format) : renderReport(await buildReport(database.db, scope), format);
  } finally {
    await database.close();
  }
  if (flags.output === undefined) ctx.stdout.write(text);
  else {
    try {
      await writeFile(flags.output, text);
    } catch (e) {
      throw new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write --output ${flags.output}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    ctx.stderr.write(`tocsin: report written to ${flags.output}\n`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Rendering (pure)

export function renderReport(r: ExchangeReport, format: ReportFormat): string {
  if (format === 'json') return `${JSON.stringify(r, null, 2)}\n`;
  if (format === 'csv') return reportCsv(r);
  return reportTable(r);
}

export function renderScans(scans: readonly ScanSummary[], format: ReportFormat): string {
  if (format === 'json') return `${JSON.stringify(scans, null, 2)}\n`;
  const header = ['id', 'status', 'started_at', 'finished_at', 'targets', 'ports', 'attempts', 'answered', 'exchange_servers', 'timed_out', 'retried', 'unanswered'];
  const rows: CsvValue[][] = scans.map((s) => [s.id, s.status, s.startedAt, s.finishedAt, s.targets, s.ports.join(' '), s.attempts, s.answered, s.exchangeServers, s.timedOut, s.retried, s.unanswered]);
  if (format === 'csv') return csvDocument(header, rows);
  if (scans.length === 0) return 'No scans stored yet. Run `tocsin scan TARGET...` or `tocsin demo`.\n';
  // unanswered = no answer to the connect even after retries: not known to be down, so say how to retry them.
  const resumable = scans.filter((s) => s.unanswered > 0).map((s) => `scan ${s.id}: ${s.unanswered} unanswered; try them again with: tocsin scan --resume ${s.id}\n`);
  // interrupted = its process stopped or died before the end (kill -9, Ctrl+C, a storage failure): say how to finish it.
  // cancelled = interrupted at someone's request from another process (`tocsin cancel`): say who.
  const interrupted = scans.filter((s) => s.status === 'interrupted').map((s) => `scan ${s.id}: ${
    s.cancelledBy === undefined || s.cancelledBy === null ? 'interrupted before its end' : `cancelled by ${sanitiseText(s.cancelledBy, { max: 200 })} (interrupted before its end)`
  }; finish it with: tocsin scan --resume ${s.id}\n`);
  const cancelling = scans.filter((s) => s.status === 'running' && s.cancelledBy !== undefined && s.cancelledBy !== null)
    .map((s) => `scan ${s.id}: cancel requested by ${sanitiseText(s.cancelledBy ?? '', { max: 200 })}; its process stops it at its next heartbeat\n`);
  return `${table(header, rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c)))), [0, 4, 6, 7, 8, 9, 10, 11])}\n${interrupted.join('')}${cancelling.join('')}${resumable.join('')}`;
}

function reportCsv(r: ExchangeReport): string {
  const rows: CsvValue[][] = [
    ['scope', 'kind', null, r.scope.kind],
    ['scope', 'scan_ids', null, r.scope.scanIds.join(' ')],
    ['scope', 'generated_at', null, r.generatedAt],
    ['hosts', 'attempted', null, r.hosts.attempted],
    ['hosts', 'distinct_ips', null, r.hosts.distinctIps],
    ['hosts', 'answered', null, r.hosts.answered],
    ...Object.entries(r.hosts.byOutcome).map(([o, n]): CsvValue[] => ['hosts', 'outcome', o, n]),
    ['exchange', 'servers', null, r.exchange.servers],
    ['exchange', 'services', null, r.exchange.services],
    ['exchange', 'exact_build', null, r.exchange.exactBuild],
    ['exchange', 'exchange_online', null, r.exchange.exchangeOnline],
    ...r.exchange.byEdition.map((e): CsvValue[] => ['edition', e.edition, null, e.servers]),
    ...r.exchange.byEditionCu.map((e): CsvValue[] => ['edition_cu', e.edition, e.cu, e.servers]),
    ...r.cves.flatMap((c): CsvValue[][] => [
      [c.headline ? 'headline_cve_vulnerable' : 'cve_vulnerable', c.cve, c.group, c.vulnerable],
      [c.headline ? 'headline_cve_indeterminate' : 'cve_indeterminate', c.cve, c.group, c.indeterminate],
    ]),
    ['indeterminate', 'any_cve', null, r.indeterminate.anyCve],
    ['indeterminate', 'headline', null, r.indeterminate.headline],
    ['patched', 'servers', null, r.patched.servers],
    ['patched', 'patched', null, r.patched.patched],
    ['patched', 'vulnerable', null, r.patched.vulnerable],
    ['patched', 'undetermined', null, r.patched.undetermined],
    ['patched', 'patched_share', null, r.patched.patchedShare],
    ['patched', 'vulnerable_share', null, r.patched.vulnerableShare],
    ...r.patched.byGroup.flatMap((g): CsvValue[][] => [
      ['patched_group', g.group, 'patched', g.patched],
      ['patched_group', g.group, 'vulnerable', g.vulnerable],
      ['patched_group', g.group, 'undetermined', g.undetermined],
      ['patched_group', g.group, 'patched_share', g.patchedShare],
    ]),
    ['patched', 'definition', null, r.patched.definition],
  ];
  return csvDocument(['section', 'item', 'detail', 'value'], rows);
}

function reportTable(r: ExchangeReport): string {
  const out: string[] = [];
  const scopeText =
    r.scope.scan !== null
      ? `scan ${r.scope.scan.id} (${r.scope.scan.status}, started ${r.scope.scan.startedAt})`
      : r.scope.kind === 'all'
        ? `all scans (${r.scope.scanIds.length}; latest observation per ip:port)`
        : 'latest scan';
  if (r.scope.scanIds.length === 0) return 'No scans stored yet. Run `tocsin scan TARGET...` or `tocsin demo`.\n';
  out.push(`Tocsin report: ${scopeText}`, '');
  const outcomes = Object.entries(r.hosts.byOutcome).sort((a, b) => b[1] - a[1]).map(([o, n]) => `${clean(o)} ${num(n)}`).join(', ');
  out.push(`Hosts scanned      ${num(r.hosts.attempted)} ip:port on ${num(r.hosts.distinctIps)} addresses; answered ${num(r.hosts.answered)}`);
  if (outcomes !== '') out.push(`                   ${outcomes}`);
  out.push(
    `Exchange servers   ${num(r.exchange.servers)} (distinct addresses; ${num(r.exchange.services)} ip:port; exact build on ${num(r.exchange.exactBuild)})`,
  );
  if (r.exchange.exchangeOnline > 0) out.push(`                   ${num(r.exchange.exchangeOnline)} Exchange Online front ends, not counted`);
  out.push('');

  if (r.exchange.byEditionCu.length > 0) {
    out.push('Exchange servers by edition and CU');
    const rows: string[][] = [];
    for (const e of r.exchange.byEdition) {
      rows.push([clean(e.edition), 'all', num(e.servers)]);
      for (const c of r.exchange.byEditionCu.filter((x) => x.edition === e.edition)) rows.push(['', clean(c.cu), num(c.servers)]);
    }
    out.push(...indent(table(['edition', 'CU', 'servers'], rows, [2])), '');
  }

  // The table shows the headline CVEs and the most widespread others; json and csv carry every CVE.
  const shown = [...r.cves.filter((c) => c.headline), ...r.cves.filter((c) => !c.headline).slice(0, TABLE_OTHER_CVES)];
  out.push('Exposed servers per CVE (headline CVEs first)');
  out.push(
    ...indent(
      table(
        ['CVE', 'name', 'vulnerable', 'indeterminate'],
        shown.map((c) => [clean(c.cve), clean(c.group ?? ''), num(c.vulnerable), num(c.indeterminate)]),
        [2, 3],
      ),
    ),
  );
  const hidden = r.cves.length - shown.length;
  if (hidden > 0) out.push(`  … and ${num(hidden)} more CVEs with exposed servers (all of them in --format json or csv)`);
  out.push('');
  out.push(`Indeterminate      ${num(r.indeterminate.anyCve)} servers with at least one CVE indeterminate (${num(r.indeterminate.headline)} for a headline CVE and none vulnerable)`);
  const p = r.patched;
  out.push(
    `Patched share      ${pct(p.patchedShare)} (${num(p.patched)} of ${num(p.servers)}); vulnerable ${num(p.vulnerable)} (${pct(p.vulnerableShare)}); undetermined ${num(p.undetermined)}`,
  );
  for (const g of p.byGroup) {
    out.push(`  ${clean(g.group).padEnd(16)} patched ${pct(g.patchedShare).padStart(6)} (${num(g.patched)}); vulnerable ${num(g.vulnerable)}; undetermined ${num(g.undetermined)}`);
  }
  out.push(`  (${p.definition})`);
  return `${out.join('\n')}\n`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: readonly number[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (rightAligned.includes(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function indent(text: string): string[] {
  return text.split('\n').map((l) => `  ${l}`);
}

/** Stored text can come from scanned hosts: no control characters (terminal escapes) reach a terminal. */
function clean(text: string): string {
  return sanitiseText(text);
}

function num(n: number): string {
  return n.toLocaleString('en-US');
}

function pct(share: number | null): string {
  return share === null ? 'n/a' : `${(share * 100).toFixed(1)}%`;
}

/**
 * `tocsin exposures [--org NAME] [--cve ID] [--source scan|feed|any|FEED] [--sector S] [--unattributed]
 * [--format table|jsonl|csv]`: one record per (ip, port) merging our scans and every feed, with the organisation
 * it belongs to and why (issue 8 §4). Thin: flags → src/services/exposures.ts → print, streamed as the pages are
 * read (a million records in bounded memory, in every format: the table has fixed column widths for that).
 * Hostile text (host names, organisation names and sectors from imports, build strings from feeds) is sanitised
 * in the table, escaped by JSON in jsonl and made formula-safe in CSV (src/core/csv.ts).
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { csvRow } from '../core/csv.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { exposureFilter, listExposures, type ExposureFlags, type ExposureRecord } from '../services/exposures.js';

export type ExposureFormat = 'table' | 'jsonl' | 'csv';
const FORMATS: readonly ExposureFormat[] = ['table', 'jsonl', 'csv'];

interface Flags extends ExposureFlags {
  format?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('exposures')
    .description('list exposures: one record per ip:port merging scans and feeds, with its organisation, the rule that matched and the CVEs')
    .option('--org <name>', 'only this organisation\'s addresses (name compared case-insensitively)')
    .option('--cve <id>', 'only records where this CVE is vulnerable, indeterminate or reported by a feed')
    .option('--source <source>', 'scan | feed | any, or a feed\'s name such as shadowserver (default any)')
    .option('--sector <sector>', 'only addresses of organisations in this sector')
    .option('--unattributed', 'only addresses that belong to no organisation (the review queue)')
    .option('--format <format>', 'table | jsonl | csv (default table)')
    .action(async (flags: Flags) => {
      process.exitCode = await exposuresCommand(ctx, flags);
    });
}

export async function exposuresCommand(ctx: CliContext, flags: Flags): Promise<number> {
  const format = FORMATS.find((f) => f === (flags.format ?? 'table'));
  if (format === undefined) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(sanitiseText(flags.format ?? '', { max: 20 }))}`);
  }
  // Checked before the database is opened (or started).
  const filter = exposureFilter(flags);
  const database = await openDatabase(ctx.config());
  try {
    const { refresh, records } = await listExposures(database.db, filter);
    ctx.stderr.write(`tocsin: attribution up to date (registry revision ${refresh.registryRev}; ${refresh.considered} address(es) looked at, ${refresh.changed} changed owner)\n`);
    const gone = (): boolean => ctx.stdoutClosed?.aborted === true;
    let n = 0;
    const header = format === 'csv' ? `${csvRow(CSV_COLUMNS)}\r\n` : format === 'table' ? `${tableLine(TABLE_HEADER)}\n` : '';
    if (header !== '') ctx.stdout.write(header);
    for await (const r of records) {
      // Nobody reads any more (`| head -1`): stop reading the database; the entry point sets the exit status.
      if (gone()) break;
      n++;
      ctx.stdout.write(format === 'jsonl' ? `${jsonLine(r)}\n` : format === 'csv' ? `${csvRow(csvCells(r))}\r\n` : `${tableLine(tableCells(r))}\n`);
    }
    if (!gone()) {
      if (format === 'table') {
        ctx.stdout.write(n === 0 ? 'no exposures match\n' : '\nVULN/INDET: CVEs vulnerable / indeterminate by our knowledge base (newest observation); REPORTED: CVEs a feed claimed; --format jsonl has every field.\n');
      }
      ctx.stderr.write(`tocsin: ${n} exposure record(s)\n`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

/** JSON escapes control characters; bidi and zero-width ones are escaped too. */
export function jsonLine(r: ExposureRecord): string {
  return sanitiseText(JSON.stringify(r), { style: 'json' });
}

export const CSV_COLUMNS = [
  'ip', 'port', 'sources', 'hostname', 'product', 'edition', 'build', 'build_precision', 'cu', 'su', 'vulnerable', 'indeterminate',
  'reported_cves', 'compromised', 'org', 'org_id', 'sector', 'rule', 'confidence', 'attribution_evidence', 'first_seen', 'last_seen',
] as const;

/** Lists joined by spaces; the evidence as compact JSON; every text cell formula-guarded by csvRow. */
export function csvCells(r: ExposureRecord): Array<string | number | boolean | null> {
  return [
    r.ip, r.port, r.sources.join(' '), r.hostname, r.product, r.edition, r.build, r.buildPrecision, r.cu, r.su, r.vulnerable.join(' '),
    r.indeterminate.join(' '), r.reportedCves.join(' '), r.compromised, r.org, r.orgId, r.sector, r.rule, r.confidence,
    r.attributionEvidence === null ? null : JSON.stringify(r.attributionEvidence), r.firstSeen, r.lastSeen,
  ];
}

// Table: fixed widths (it streams; a million rows are never held to measure them). Longer cells are cut with '…',
// except the address, which is never cut (a long IPv6 address shifts its row instead).
const WIDTHS = [22, 24, 7, 12, 4, 5, 8, 4, 20, 10] as const;
const RIGHT = new Set([4, 5]);
const TABLE_HEADER = ['IP:PORT', 'ORG', 'RULE', 'BUILD', 'VULN', 'INDET', 'REPORTED', 'COMP', 'SOURCES', 'LAST SEEN'];

function tableLine(cells: readonly string[]): string {
  return cells.map((c, i) => {
    const w = WIDTHS[i] ?? 10;
    const t = c.length > w && i > 0 ? `${c.slice(0, w - 1)}…` : c;
    return RIGHT.has(i) ? t.padStart(w) : t.padEnd(w);
  }).join(' ').trimEnd();
}

export function tableCells(r: ExposureRecord): string[] {
  const addr = r.ip.includes(':') ? `[${r.ip}]` : r.ip;
  const clean = (s: string | null, max: number): string => (s === null ? '-' : sanitiseText(s, { max }));
  return [
    `${addr}:${r.port ?? '-'}`,
    r.org === null ? '(unattributed)' : clean(r.org, 60),
    r.rule ?? '-',
    clean(r.build, 30),
    String(r.vulnerable.length),
    String(r.indeterminate.length),
    r.reportedCves.length === 0 ? '-' : String(r.reportedCves.length),
    r.compromised ? 'YES' : '-',
    clean(r.sources.join(','), 60),
    r.lastSeen === null ? '-' : r.lastSeen.slice(0, 10),
  ];
}

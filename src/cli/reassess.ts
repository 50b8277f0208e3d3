/**
 * `tocsin reassess [--scan ID|all] [--format table|jsonl] [--kb-dir DIR]`: judge stored observations again
 * with the current knowledge base, replaying their detectors over the stored raw responses (no network
 * traffic), store a new assessment where something changed, and print what changed per host.
 * Thin: parse → src/services/reassess.ts → print. Records on stdout, the summary on stderr.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { openDatabase } from '../platform/db/connect.js';
import { createScanStore, parseScanId } from '../platform/db/scan-store.js';
import { safeText } from '../scan/output.js';
import { reassess, reassessProducts, type HostChange, type ReassessSummary } from '../services/reassess.js';

export interface ReassessFlags {
  scan?: string;
  format?: string;
  kbDir?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('reassess')
    .description('judge stored observations again with the current knowledge base (detectors replayed over stored responses, no traffic) and list what changed')
    .option('--scan <id>', 'only this scan\'s observations (default: all stored observations)')
    .option('--format <format>', 'table | jsonl (default table)')
    .option('--kb-dir <dir>', 'an Exchange knowledge base directory to judge with instead of the shipped data/exchange (the same CSV files)')
    .action(async (flags: ReassessFlags) => {
      process.exitCode = await reassessCommand(ctx, flags);
    });
}

export async function reassessCommand(ctx: CliContext, flags: ReassessFlags): Promise<number> {
  const format = flags.format ?? 'table';
  if (format !== 'table' && format !== 'jsonl') {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be table or jsonl, got ${JSON.stringify(safeText(format, 20))}`);
  }
  const all = flags.scan === undefined || flags.scan === 'all';
  const scanId = all ? null : parseScanId(flags.scan ?? '');
  if (!all && scanId === null) {
    throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${JSON.stringify(safeText(flags.scan ?? '', 40))} (scan ids are numbers)`);
  }
  // The knowledge base is loaded (and validated) before the database is opened: a bad --kb-dir costs nothing.
  const products = reassessProducts(flags.kbDir === undefined ? {} : { kbDir: flags.kbDir });
  const database = await openDatabase(ctx.config());
  try {
    if (scanId !== null && (await createScanStore(database.db).getScan(String(scanId))) === null) {
      throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no stored scan with id ${scanId}`);
    }
    const rows: HostChange[] = [];
    const gone = (): boolean => ctx.stdoutClosed?.aborted === true;
    const summary = await reassess({
      db: database.db,
      scanId,
      products,
      ...(ctx.stdoutClosed === undefined ? {} : { signal: ctx.stdoutClosed }),
      onChange: (c) => {
        if (format === 'jsonl') {
          if (!gone()) ctx.stdout.write(`${JSON.stringify(c)}\n`);
        } else rows.push(c);
      },
    });
    if (format === 'table' && !gone()) ctx.stdout.write(renderTable(rows));
    ctx.stderr.write(`${summaryLine(summary, scanId)}\n`);
    return gone() ? 141 : 0;
  } finally {
    await database.close();
  }
}

export function summaryLine(s: ReassessSummary, scanId: number | null): string {
  return `tocsin: reassessed ${s.observations} observation(s) ${scanId === null ? 'of all scans' : `of scan ${scanId}`} with knowledge base ${s.kbRevision ?? '?'} ` +
    `(${s.replayed} replayed from stored responses, ${s.observations - s.replayed} from their stored build): ` +
    `${s.changed} host(s) changed (vulnerable +${s.vulnerableAdded} -${s.vulnerableRemoved}, indeterminate +${s.indeterminateAdded} -${s.indeterminateRemoved}, ` +
    `build/product changed ${s.fingerprintChanged}); ${s.written} assessment(s) stored` +
    (s.detectorErrors > 0 ? `; ${s.detectorErrors} detector error(s) (a bug: please report)` : '');
}

/** Changed hosts, sorted by address then port; CVE lists abbreviated to keep lines readable. */
export function renderTable(rows: readonly HostChange[]): string {
  if (rows.length === 0) return 'no host changed\n';
  const sorted = [...rows].sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1));
  const build = (f: HostChange['before']): string => (f.build === null ? (f.product ?? '-') : `${f.build}${f.buildPrecision === 'cu' ? ' (cu)' : ''}`);
  const list = (sign: string, ids: readonly string[]): string => (ids.length === 0 ? '' : `${sign}${ids.slice(0, 4).join(` ${sign}`)}${ids.length > 4 ? ` (+${ids.length - 4} more)` : ''}`);
  const lines = ['ADDRESS                 BUILD (BEFORE -> AFTER)               VERDICT CHANGES'];
  for (const r of sorted) {
    const addr = safeText(`${r.ip.includes(':') ? `[${r.ip}]` : r.ip}:${r.port}`, 23).padEnd(24);
    const b = build(r.before) === build(r.after) ? build(r.after) : `${build(r.before)} -> ${build(r.after)}`;
    const changes = [list('+', r.vulnerableAdded), list('-', r.vulnerableRemoved), list('?+', r.indeterminateAdded), list('?-', r.indeterminateRemoved)]
      .filter((x) => x !== '').join(' ');
    lines.push(`${addr}${safeText(b, 37).padEnd(38)}${changes}`);
  }
  lines.push('+CVE now vulnerable, -CVE no longer vulnerable, ?+/?- indeterminate added/removed');
  return `${lines.join('\n')}\n`;
}

/**
 * `tocsin feeds fetch [--date YYYY-MM-DD | --since YYYY-MM-DD] [--type scan_exchange,...] [--reports LIST,...]
 * [--limit N] [--dry-run]`: download new Shadowserver reports through the reports API and import them
 * (src/services/feed-collect.ts). Registered by src/cli/feeds.ts as a subcommand of `feeds`.
 * One line per report on stdout; failed downloads are named on stderr and make the exit status non-zero
 * (TOCSIN_FEED_FETCH) after the other reports were fetched and imported.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { ERROR_CODES, TocsinError, type ErrorCode } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { ShadowserverClient, readShadowserverSettings } from '../platform/feeds/shadowserver-api.js';
import { collectShadowserver, type ReportOutcome } from '../services/feed-collect.js';

interface FetchFlags {
  date?: string;
  since?: string;
  type?: string;
  reports?: string;
  limit?: string;
  dryRun?: boolean;
}

/** Days listed by default: today and the two before (reports of a day are published the next day or later). */
const DEFAULT_DAYS = 2;

export function registerFetch(feeds: Command, ctx: CliContext): void {
  feeds
    .command('fetch')
    .description('download new reports from the Shadowserver reports API and import them (needs TOCSIN_SHADOWSERVER_KEY and TOCSIN_SHADOWSERVER_SECRET)')
    .option('--date <date>', 'only reports of this day (YYYY-MM-DD)')
    .option('--since <date>', `reports from this day to today (default: the last ${DEFAULT_DAYS} days and today)`)
    .option('--type <types>', 'only these report types, comma-separated (e.g. scan_exchange,scan6_exchange)')
    .option('--reports <names>', 'only these report lists of your subscription, comma-separated')
    .option('--limit <n>', 'download at most N new reports in this run')
    .option('--dry-run', 'list what would be downloaded; download and store nothing')
    .action(async (flags: FetchFlags) => {
      process.exitCode = await fetchCommand(ctx, flags);
    });
}

function isDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

function list(flag: string, raw: string | undefined, re: RegExp): string[] | null {
  if (raw === undefined) return null;
  const items = raw.split(',').map((s) => s.trim());
  const bad = items.find((s) => !re.test(s));
  if (bad !== undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `${flag}: not a valid name: ${JSON.stringify(sanitiseText(bad, { max: 70 }))}`);
  return items;
}

/** The date range the flags name (pure; `today` injected). */
export function dateRange(flags: Pick<FetchFlags, 'date' | 'since'>, today: string): { from: string; to: string } {
  if (flags.date !== undefined && flags.since !== undefined) throw new TocsinError('TOCSIN_ARG_INVALID', 'give --date or --since, not both');
  for (const [name, v] of [['--date', flags.date], ['--since', flags.since]] as const) {
    if (v !== undefined && !isDate(v)) throw new TocsinError('TOCSIN_ARG_INVALID', `${name} must be a date YYYY-MM-DD, got ${JSON.stringify(sanitiseText(v, { max: 40 }))}`);
  }
  if (flags.date !== undefined) return { from: flags.date, to: flags.date };
  if (flags.since !== undefined) {
    if (flags.since > today) throw new TocsinError('TOCSIN_ARG_INVALID', `--since ${flags.since} is after today (${today})`);
    return { from: flags.since, to: today };
  }
  const from = new Date(Date.parse(`${today}T00:00:00Z`) - DEFAULT_DAYS * 86_400_000).toISOString().slice(0, 10);
  return { from, to: today };
}

export async function fetchCommand(ctx: CliContext, flags: FetchFlags): Promise<number> {
  const today = new Date().toISOString().slice(0, 10);
  const { from, to } = dateRange(flags, today);
  const types = list('--type', flags.type, /^[a-z0-9_]{1,64}$/i);
  const reports = list('--reports', flags.reports, /^[A-Za-z0-9_.@-]{1,100}$/);
  const limit = parseIntFlag('--limit', flags.limit, 1, 1_000_000) ?? null;
  // Both checked before anything is opened: a missing key must not start a database first.
  const settings = readShadowserverSettings(process.env);
  const config = ctx.config();
  const database = await openDatabase(config);
  try {
    ctx.stdout.write(`${header()}\n`);
    let exit = 0;
    const failed: ReportOutcome[] = [];
    const result = await collectShadowserver({
      db: database.db, api: new ShadowserverClient(settings), home: config.home, from, to, types, reports, limit, dryRun: flags.dryRun === true,
      onReport: (r) => {
        ctx.stdout.write(`${line(r)}\n`);
        if (r.status === 'failed') failed.push(r);
        if (r.error !== null) {
          ctx.stderr.write(`tocsin: ${r.error.code}: ${sanitiseText(r.error.message, { max: 500 })}\n`);
          if (exit === 0) exit = ERROR_CODES[r.error.code as ErrorCode].exit;
        }
      },
    });
    const done = result.outcomes.filter((r) => r.status !== 'failed' && r.status !== 'would-fetch');
    const rows = done.reduce((a, r) => ({ read: a.read + (r.import?.rowsRead ?? 0), imported: a.imported + (r.import?.imported ?? 0), quarantined: a.quarantined + (r.import?.status === 'imported' ? r.import.quarantined : 0) }), { read: 0, imported: 0, quarantined: 0 });
    const range = from === to ? from : `${from}..${to}`;
    ctx.stderr.write(`tocsin: ${result.listed} report(s) listed for ${range}, ${result.known} fetched before` +
      (flags.dryRun === true ? `, ${result.outcomes.length} would be downloaded (dry run: nothing stored)` : `, ${done.length} downloaded and imported (${rows.read} row(s) read, ${rows.imported} imported, ${rows.quarantined} quarantined)`) +
      (result.deferred > 0 ? `, ${result.deferred} left for a later run (--limit)` : '') +
      (result.malformed > 0 ? `; ${result.malformed} malformed list entr${result.malformed === 1 ? 'y' : 'ies'} ignored` : '') + '\n');
    if (failed.length > 0) {
      ctx.stderr.write(`tocsin: ${failed.length} report(s) could not be downloaded (${failed.map((r) => sanitiseText(r.id, { max: 80 })).join(', ')}); ` +
        'the others were imported; run `tocsin feeds fetch` again with the same dates to retry only those\n');
      exit = ERROR_CODES.TOCSIN_FEED_FETCH.exit;
    }
    return exit;
  } finally {
    await database.close();
  }
}

function header(): string {
  return ['STATUS'.padEnd(11), 'DATE'.padEnd(10), 'TYPE'.padEnd(20), 'BYTES'.padStart(11), 'READ'.padStart(9), 'IMPORTED'.padStart(9), 'QUARANTINED'.padStart(11), '  FILE'].join(' ');
}

function line(r: ReportOutcome): string {
  const status = r.status === 'duplicate-report' ? 'same' : r.status;
  const imp = r.import;
  return [status.padEnd(11), r.date.padEnd(10), sanitiseText(r.type, { max: 40 }).padEnd(20), String(r.bytes).padStart(11),
    String(imp?.rowsRead ?? 0).padStart(9), String(imp?.imported ?? 0).padStart(9), String(imp?.status === 'imported' ? imp.quarantined : 0).padStart(11),
    ` ${sanitiseText(r.path ?? r.file, { max: 300 })}`].join(' ');
}

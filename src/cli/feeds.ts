/**
 * `tocsin feeds import PATH... [--format auto|shadowserver|nmap-xml|masscan|zmap] [--report-type T] [--source NAME]`,
 * `tocsin feeds quarantine [--format table|jsonl]` and `tocsin feeds targets [--port N]`.
 * Thin: parse → src/services/ingest.ts or the feed store → print. Per-file counts on stdout; a rejected file's
 * coded error on stderr (the other files are still imported) and the command exits with that error's status.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { ERROR_CODES, TocsinError, type ErrorCode } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { openPortAddresses, quarantineRecords, type QuarantineRecord } from '../platform/db/feed-store.js';
import { importFeeds, type FileResult } from '../services/ingest.js';
import { registerFetch } from './feeds-fetch.js';

interface ImportFlags {
  format?: string;
  reportType?: string;
  source?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const feeds = program.command('feeds').description('import third-party feeds (Shadowserver, nmap, masscan, zmap) and review what could not be read');
  feeds
    .command('import')
    .description('import feed files, folders, .gz, .zip or - (stdin); prints rows read / imported / duplicate / quarantined per file')
    .argument('<paths...>', 'files, folders (recursively), .gz, .zip, or - for stdin')
    .option('--format <format>', 'auto | shadowserver | nmap-xml | masscan | zmap (default auto: from the content and name)')
    .option('--report-type <type>', 'Shadowserver report type (e.g. scan_exchange) when the file name is not YYYY-MM-DD-TYPE-....csv')
    .option('--source <name>', 'feed name stored as the source (default: shadowserver, nmap, masscan or zmap)')
    .action(async (paths: string[], flags: ImportFlags) => {
      process.exitCode = await importCommand(ctx, paths, flags);
    });
  feeds
    .command('quarantine')
    .description('list the feed lines that could not be read: file, line, raw text, error')
    .option('--format <format>', 'table | jsonl (default table)')
    .action(async (flags: { format?: string }) => {
      process.exitCode = await quarantineCommand(ctx, flags.format ?? 'table');
    });
  feeds
    .command('targets')
    .description('print the addresses with an open port from nmap/masscan/zmap imports, one per line (for `tocsin scan @file`)')
    .option('--port <port>', 'only addresses with this port open')
    .action(async (flags: { port?: string }) => {
      process.exitCode = await targetsCommand(ctx, parseIntFlag('--port', flags.port, 0, 65535) ?? null);
    });
  registerFetch(feeds, ctx);
}

export async function importCommand(ctx: CliContext, paths: readonly string[], flags: ImportFlags): Promise<number> {
  if (paths.filter((p) => p === '-').length > 1) throw new TocsinError('TOCSIN_ARG_INVALID', 'standard input (-) can be read only once');
  const database = await openDatabase(ctx.config());
  try {
    // The header goes out with the first file's line: a path that cannot be read fails before any table starts.
    let headed = false;
    let exit = 0;
    const results = await importFeeds(paths, {
      db: database.db,
      format: flags.format ?? 'auto',
      reportType: flags.reportType ?? null,
      source: flags.source ?? null,
      stdin: process.stdin,
      onFile: (r) => {
        if (!headed) ctx.stdout.write(`${header()}\n`);
        headed = true;
        ctx.stdout.write(`${line(r)}\n`);
        if (r.error !== null) {
          ctx.stderr.write(`tocsin: ${r.error.code}: ${sanitiseText(r.error.message, { max: 500 })}\n`);
          if (exit === 0) exit = ERROR_CODES[r.error.code as ErrorCode].exit;
        }
      },
    });
    const t = results.reduce((a, r) => ({ read: a.read + r.rowsRead, imported: a.imported + r.imported, duplicate: a.duplicate + r.duplicate, quarantined: a.quarantined + (r.status === 'imported' ? r.quarantined : 0) }), { read: 0, imported: 0, duplicate: 0, quarantined: 0 });
    const rejected = results.filter((r) => r.status === 'rejected').length;
    ctx.stderr.write(`tocsin: ${results.length} file(s): ${t.read} row(s) read, ${t.imported} imported, ${t.duplicate} duplicate, ${t.quarantined} quarantined` +
      `${rejected > 0 ? `; ${rejected} file(s) rejected (nothing stored from them)` : ''}${t.quarantined > 0 ? '; see `tocsin feeds quarantine`' : ''}\n`);
    return exit;
  } finally {
    await database.close();
  }
}

function header(): string {
  return ['STATUS'.padEnd(10), 'FORMAT'.padEnd(13), 'READ'.padStart(9), 'IMPORTED'.padStart(9), 'DUPLICATE'.padStart(9), 'QUARANTINED'.padStart(11), '  FILE'].join(' ');
}

export function line(r: FileResult): string {
  const status = r.status === 'duplicate-report' ? 'same' : r.status;
  const file = sanitiseText(r.file, { max: 200 }) + (r.sameAs !== null ? ` (same content as import ${r.sameAs}: nothing stored)` : '');
  return [status.padEnd(10), (r.format ?? '-').padEnd(13), String(r.rowsRead).padStart(9), String(r.imported).padStart(9), String(r.duplicate).padStart(9),
    String(r.status === 'imported' ? r.quarantined : 0).padStart(11), ` ${file}`].join(' ');
}

export async function quarantineCommand(ctx: CliContext, format: string): Promise<number> {
  if (format !== 'table' && format !== 'jsonl') {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be table or jsonl, got ${JSON.stringify(sanitiseText(format, { max: 20 }))}`);
  }
  const database = await openDatabase(ctx.config());
  try {
    let n = 0;
    for await (const q of quarantineRecords(database.db)) {
      if (ctx.stdoutClosed?.aborted === true) return 141;
      n++;
      ctx.stdout.write(`${format === 'jsonl' ? jsonl(q) : tableLine(q)}\n`);
    }
    if (format === 'table' && n === 0) ctx.stdout.write('no quarantined lines\n');
    return 0;
  } finally {
    await database.close();
  }
}

/** JSON escapes every control character; bidi and zero-width characters are escaped too (sanitise 'json'). */
function jsonl(q: QuarantineRecord): string {
  const rec = { file: q.file, line: q.line, raw: q.raw, error: q.error, feed: q.feed, format: q.format, importId: q.importId, importedAt: q.importedAt };
  return sanitiseText(JSON.stringify(rec), { style: 'json' });
}

function tableLine(q: QuarantineRecord): string {
  return `${sanitiseText(q.file, { max: 120 })}:${q.line}: ${sanitiseText(q.error, { max: 200 })}\n    ${sanitiseText(q.raw, { style: 'escape', max: 300 })}`;
}

export async function targetsCommand(ctx: CliContext, port: number | null): Promise<number> {
  const database = await openDatabase(ctx.config());
  try {
    for await (const ip of openPortAddresses(database.db, port)) {
      if (ctx.stdoutClosed?.aborted === true) return 141;
      ctx.stdout.write(`${ip}\n`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

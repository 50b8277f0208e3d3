/**
 * `tocsin results [--scan ID] [--format table|jsonl|csv] [--output FILE]`: the stored hosts of one scan
 * (default: the latest), as the same records `tocsin scan` printed for them. jsonl and csv are the
 * scan's own writers over the stored records, so a line differs from the scan's only in its place (the
 * scan prints in the order hosts answer; this prints in address, then port, order). The table is the
 * scan's table: sorted, narrow, headline CVEs first.
 *
 * Read-only: it never changes a scan. A scan that is not finished is listed as far as it is stored, with
 * a note on stderr saying so.
 */
import type { Command } from 'commander';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { CliContext } from './context.js';
import { outputFormat, type FormatByExtension } from './args.js';
import { TocsinError } from '../core/errors.js';
import { createRecordWriter, parseFormat, safeText, type OutputFormat } from '../scan/output.js';
import { configuredScanStorage } from '../services/scan-storage.js';
import { isScanId, scanRecords } from '../services/scan-service.js';

export interface ResultsFlags {
  scan?: string;
  /** Unset: from the --output extension, else table. */
  format?: string;
  output?: string;
}

/** As for `tocsin scan --output`: a .csv file gets CSV, .jsonl/.ndjson/.json JSON Lines, .txt the table. */
const FORMAT_BY_EXTENSION: FormatByExtension<OutputFormat> = { '.csv': 'csv', '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.json': 'jsonl', '.txt': 'table' };

export function register(program: Command, ctx: CliContext): void {
  program
    .command('results')
    .description('list the stored hosts of a scan (default: the latest): the records the scan printed, as a table, jsonl or csv')
    .option('--scan <id>', 'the scan to list (default: the latest; ids: tocsin report --scans)')
    .option('--format <format>', 'table | jsonl | csv (default: from the --output extension .csv/.jsonl/.json/.txt, else table)')
    .option('--output <file>', 'write to FILE instead of stdout')
    .action(async (flags: ResultsFlags) => {
      process.exitCode = await resultsCommand(ctx, flags);
    });
}

export async function resultsCommand(ctx: CliContext, flags: ResultsFlags): Promise<number> {
  const format = parseFormat(outputFormat(flags.format, flags.output, FORMAT_BY_EXTENSION, 'table'));
  // A malformed id is refused before the database is opened (or started).
  if (flags.scan !== undefined && !isScanId(flags.scan)) {
    throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${JSON.stringify(safeText(flags.scan, 40))} (scan ids are numbers)`);
  }
  const storage = await configuredScanStorage(ctx.config()).open();
  let out: WriteStream | null = null;
  try {
    const { scan, records } = await scanRecords(storage, flags.scan ?? null);
    // The file is opened only once the scan is found: a mistyped id must not truncate a good file.
    if (flags.output !== undefined) out = await openOutput(flags.output);
    const sink: Writable = out ?? ctx.stdout;
    const writer = createRecordWriter(format, sink);
    // Nobody reads stdout any more (`tocsin results | head`): stop reading the database, but still say
    // what the scan is (the note below goes to stderr, which is still there).
    const outputGone = (): boolean => out === null && ctx.stdoutClosed?.aborted === true;
    let n = 0;
    try {
      for await (const r of records) {
        if (outputGone()) break;
        await writer.write(r);
        n++;
      }
      if (!outputGone()) await writer.close();
    } catch (e) {
      if (!outputGone()) throw e;
    }
    const state =
      scan.status === 'finished' ? 'finished'
        : scan.status === 'running' ? 'running: listed as far as stored so far'
          : `${scan.status}: listed as far as stored; finish it with \`tocsin scan --resume ${scan.id}\``;
    const listed = outputGone() ? `${n} host(s) listed before the output was closed` : `${n} host(s) answered`;
    ctx.stderr.write(`tocsin: scan ${scan.id} (${state}): ${listed}${flags.output === undefined ? '' : `, written to ${safeText(flags.output, 200)}`}\n`);
    return 0;
  } finally {
    if (out !== null) {
      const o = out;
      await new Promise<void>((resolve) => o.end(() => resolve()));
    }
    await storage.close();
  }
}

async function openOutput(path: string): Promise<WriteStream> {
  const stream = createWriteStream(path, { flags: 'w' });
  await once(stream, 'open').catch((e: unknown) => {
    throw new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write --output ${path}: ${e instanceof Error ? e.message : String(e)}`);
  });
  return stream;
}

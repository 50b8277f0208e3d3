/**
 * `tocsin scan TARGET...` and `tocsin scan --resume ID`: the entry point of the scan service
 * (src/services/scan-service.ts, which plans, stores, resumes and says what a run did). Here: parse the
 * flags, build the service's dependencies from the process (database, stdin, SIGINT/SIGTERM, a closed
 * stdout, the --output file), draw the progress bar and print the messages and the summary on stderr
 * (stdout: records only), and turn the result into the exit status.
 */
import type { Command } from 'commander';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { CliContext } from './context.js';
import { outputFormat, parseIntFlag, type FormatByExtension } from './args.js';
import { TocsinError } from '../core/errors.js';
import { DEFAULT_LIMITS } from '../core/contracts/probe.js';
import { createRecordWriter, parseFormat, safeText, type OutputFormat } from '../scan/output.js';
import { Progress } from '../scan/progress.js';
import type { ScanPlan } from '../scan/plan.js';
import { MAX_CONNECT_TRIES } from '../scan/engine.js';
import { configuredScanStorage, type ScanStorageProvider } from '../services/scan-storage.js';
import {
  EXIT_UNANSWERED, planScan, resumeScan, scanExitStatus, startScan, type RecordSink, type ScanDeps, type ScanResult,
} from '../services/scan-service.js';

/**
 * Default of `--block-size` (src/services/distributed-scan.ts's DEFAULT_BLOCK_SIZE; a test checks they agree). Not
 * imported from there: that module loads the job queue (graphile-worker), and `--distributed` and
 * `--from-discovery` load their modules only when given, so a plain scan starts with its own modules only.
 */
export const DISTRIBUTED_BLOCK_SIZE = 256;

/**
 * Exit status of a scan that completed but left attempts unanswered after their retries (connect
 * timeouts): the records are good, the picture is not complete; `--resume ID` tries those again.
 * (0 = complete, 130/141 = interrupted/output closed, other codes = errors: see src/core/errors.ts.)
 */
export { EXIT_UNANSWERED };

export interface ScanFlags {
  ports?: string;
  /** Unset: from the --output extension, else jsonl. */
  format?: string;
  output?: string;
  store: boolean;
  exclude?: string[];
  rate?: string;
  ratePerNetwork?: string;
  concurrency?: string;
  workers?: string;
  resume?: string;
  timeoutMs?: string;
  hostBudgetMs?: string;
  progress: boolean;
  /** Issue 11: blocks for `tocsin worker` processes instead of scanning here (src/cli/worker.ts). */
  distributed?: boolean;
  detach?: boolean;
  blockSize?: string;
  /** Issue 11 §3: masscan/zmap/nmap output; only its open ports are fingerprinted (src/cli/scan-discovery.ts). */
  fromDiscovery?: string;
}

/** `--output x.csv` writes CSV; JSON Lines under .json too (one object per line is what a scan streams). */
const SCAN_FORMAT_BY_EXTENSION: FormatByExtension<OutputFormat> = { '.csv': 'csv', '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.json': 'jsonl', '.txt': 'table' };

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('scan')
    .description('scan addresses, CIDRs or hostnames for Exchange servers, fingerprint the build and decide per CVE')
    .argument('[targets...]', 'IPv4/IPv6 addresses, CIDRs, hostnames, @file (one per line, # comments), - for stdin')
    .option('--ports <list>', 'ports, e.g. 443,80: 443 (and 4443/8443/9443) is TLS, 80/8080 plain HTTP, other ports TLS then HTTP; force with 8000/tls or 8000/http (default 443)')
    .option('--format <format>', 'jsonl | csv | table (default: from the --output extension .jsonl/.json/.csv/.txt, else jsonl)')
    .option('--output <file>', 'write records to FILE instead of stdout')
    .option('--no-store', 'do not store results in the database')
    .option('--exclude <file|cidr>', 'exclusion list file (address/CIDR per line) or one address/CIDR; repeatable; adds to TOCSIN_EXCLUDE_FILES', collect)
    .option('--rate <n>', 'new connections per second overall (0 = unlimited)')
    .option('--rate-per-network <n>', 'new connections per second into one /24 or /64 (0 = unlimited)')
    .option('--concurrency <n>', 'attempts in flight')
    .option('--workers <n>', 'worker threads (0 = automatic)')
    .option('--timeout-ms <n>', `per-phase deadline for connect, TLS and each request (default ${DEFAULT_LIMITS.connectTimeoutMs}/${DEFAULT_LIMITS.tlsTimeoutMs}/${DEFAULT_LIMITS.requestTimeoutMs})`)
    .option('--host-budget-ms <n>', `all probes of one (ip, port) together (default ${DEFAULT_LIMITS.hostBudgetMs})`)
    .option('--resume <id>', 'finish a stored scan that was interrupted: skips what is stored, reuses its plan')
    .option('--no-progress', 'no progress bar even on a terminal')
    .option('--distributed', 'queue the scan as blocks for `tocsin worker` processes (any host on the same database) and wait for them')
    .option('--detach', 'with --distributed: return once the scan is queued')
    .option('--block-size <n>', `with --distributed: addresses per block, whole /24s and /64s (default ${DISTRIBUTED_BLOCK_SIZE})`)
    .option('--from-discovery <file>', 'masscan (-oL/-oJ/-oD), zmap CSV or nmap XML output: scan only the ports it saw open, per address')
    .action(async (targets: string[], flags: ScanFlags) => {
      process.exitCode = await scanCommand(ctx, targets, flags);
    });
}


export async function scanCommand(ctx: CliContext, args: readonly string[], flags: ScanFlags): Promise<number> {
  const config = ctx.config();
  const format: OutputFormat = parseFormat(outputFormat(flags.format, flags.output, SCAN_FORMAT_BY_EXTENSION, 'jsonl'));
  if (flags.resume !== undefined && !flags.store) {
    throw new TocsinError('TOCSIN_SCAN_NEEDS_STORE', '--resume needs the stored scan and cannot be combined with --no-store');
  }
  if (flags.resume !== undefined && args.length > 0) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--resume reuses the stored targets; give no targets with it');
  }
  if (flags.distributed !== true && (flags.detach === true || flags.blockSize !== undefined)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--detach and --block-size go with --distributed');
  }
  if (flags.distributed === true && (flags.resume !== undefined || !flags.store || flags.workers !== undefined)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--distributed stores the scan for the workers: it cannot be combined with --resume, --no-store or --workers');
  }
  if (flags.resume !== undefined) {
    // A resume finishes the scan as it was planned: same ports, limits, rates and exclusions.
    const ignored = ([['--ports', flags.ports], ['--exclude', flags.exclude], ['--rate', flags.rate], ['--rate-per-network', flags.ratePerNetwork],
      ['--concurrency', flags.concurrency], ['--timeout-ms', flags.timeoutMs], ['--host-budget-ms', flags.hostBudgetMs]] as const)
      .filter(([, v]) => v !== undefined).map(([n]) => n);
    if (ignored.length > 0) ctx.stderr.write(`tocsin: warning: ${ignored.join(', ')} ignored with --resume (the stored plan is reused)\n`);
  }
  const workers = parseIntFlag('--workers', flags.workers, 0, 64) ?? config.workers;
  const common = { format, store: flags.store, progress: flags.progress, workers, ...(flags.output === undefined ? {} : { output: flags.output }) };
  if (flags.resume !== undefined) {
    return scanExitStatus(await runScanOnTerminal(ctx, { resume: flags.resume }, common));
  }
  // Everything is validated before the database is opened or a packet is sent.
  const timeoutMs = parseIntFlag('--timeout-ms', flags.timeoutMs, 100, 600_000);
  const hostBudgetMs = parseIntFlag('--host-budget-ms', flags.hostBudgetMs, 100, 3_600_000);
  if (flags.fromDiscovery !== undefined) {
    const o = { args, ports: flags.ports, resume: flags.resume, distributed: flags.distributed === true, output: flags.output, format };
    const { scanFromDiscovery } = await import('./scan-discovery.js');
    return scanFromDiscovery(ctx, flags.fromDiscovery, o, (targets, ports) => planScan({
      targets, ports, excludeFiles: config.excludeFiles, exclude: flags.exclude ?? [],
      concurrency: parseIntFlag('--concurrency', flags.concurrency, 1, 100_000) ?? config.concurrency,
      rate: parseIntFlag('--rate', flags.rate, 0, 10_000_000) ?? config.rateLimit,
      ratePerNetwork: parseIntFlag('--rate-per-network', flags.ratePerNetwork, 0, 10_000_000) ?? config.ratePerNetwork,
      ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(hostBudgetMs === undefined ? {} : { hostBudgetMs }), userAgent: config.userAgent,
    }, { stdin: process.stdin }), async (plan) => scanExitStatus(await runScanOnTerminal(ctx, { plan }, common)));
  }
  const plan = await planScan({
    targets: args,
    ...(flags.ports === undefined ? {} : { ports: flags.ports }),
    excludeFiles: config.excludeFiles,
    exclude: flags.exclude ?? [],
    concurrency: parseIntFlag('--concurrency', flags.concurrency, 1, 100_000) ?? config.concurrency,
    rate: parseIntFlag('--rate', flags.rate, 0, 10_000_000) ?? config.rateLimit,
    ratePerNetwork: parseIntFlag('--rate-per-network', flags.ratePerNetwork, 0, 10_000_000) ?? config.ratePerNetwork,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(hostBudgetMs === undefined ? {} : { hostBudgetMs }),
    userAgent: config.userAgent,
  }, { stdin: process.stdin, warning: (m) => ctx.stderr.write(`tocsin: warning: ${m}\n`) });
  if (flags.distributed === true) {
    const { runDistributedScan } = await import('./worker.js');
    return runDistributedScan(ctx, plan, { format, progress: flags.progress, detach: flags.detach === true,
      ...(flags.output === undefined ? {} : { output: flags.output }), ...(flags.blockSize === undefined ? {} : { blockSize: flags.blockSize }) });
  }
  return scanExitStatus(await runScanOnTerminal(ctx, { plan }, common));
}

export interface TerminalScanOptions {
  readonly format: OutputFormat;
  /** A file for the records; default stdout. */
  readonly output?: string;
  readonly store: boolean;
  /** Draw the bar on a terminal (the summary line is written either way). */
  readonly progress: boolean;
  /** Worker threads, 0 = automatic. */
  readonly workers: number;
  /** Where records are stored when `store` (default: the configured database, opened for the scan). */
  readonly storage?: ScanStorageProvider;
}

/**
 * Runs a new scan or a resume through the scan service as a terminal user sees it: SIGINT/SIGTERM and a
 * closed stdout cancel it, the bar and messages go to stderr, records to stdout or the file, and the summary
 * ends it. Also used by `tocsin demo`. Throws the service's coded errors.
 */
export async function runScanOnTerminal(ctx: CliContext, what: { readonly plan: ScanPlan } | { readonly resume: string }, o: TerminalScanOptions): Promise<ScanResult> {
  const config = ctx.config();
  const ac = new AbortController();
  const stop = (message: string, reason: string): void => {
    if (!ac.signal.aborted) ctx.stderr.write(message);
    ac.abort(reason);
  };
  const onSignal = (): void => stop('\ntocsin: stopping (in-flight attempts are dropped and redone on resume)…\n', 'stopped by a signal');
  // A closed stdout (`tocsin scan ... | head -1`) stops the scan like Ctrl+C: what is stored stays, resume finishes it.
  const gone = o.output === undefined ? ctx.stdoutClosed : undefined;
  const onStdoutClosed = (): void => stop('\ntocsin: standard output was closed; stopping (in-flight attempts are dropped and redone on resume)…\n', 'standard output closed');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  gone?.addEventListener('abort', onStdoutClosed);

  // --no-progress: no bar, but the summary line (counts, unanswered) still reaches stderr.
  const newProgress = (total: number): Progress =>
    new Progress(o.progress ? ctx.stderr : { isTTY: false, write: (s: string) => ctx.stderr.write(s) }, { total });
  let progress: Progress | null = null;
  // jsonl/csv records streamed to the terminal the bar is on: the bar steps aside for them.
  // (A table is written only after the bar is cleared for good: see close() below.)
  const recordsOnTerminal = o.output === undefined && ctx.stdout.isTTY === true && o.format !== 'table';
  const deps: ScanDeps = {
    storage: o.store ? (o.storage ?? configuredScanStorage(config)) : null,
    signal: ac.signal,
    clock: { now: () => Date.now() },
    output: {
      // A file is rewritten from the stored records on resume; stdout gets the new records only.
      replayStored: o.output !== undefined,
      ...(gone === undefined ? {} : { gone }),
      open: async (): Promise<RecordSink> => {
        const file = o.output === undefined ? null : await openOutput(o.output);
        const writer = createRecordWriter(o.format, file ?? ctx.stdout);
        return {
          write: async (r) => {
            if (recordsOnTerminal) progress?.erase();
            await writer.write(r);
          },
          writeMany: async (records) => {
            if (recordsOnTerminal) progress?.erase();
            await writer.writeMany(records);
          },
          close: async () => {
            // The bar goes first: a table is printed whole by close() and must never meet it on the terminal.
            progress?.clear();
            await writer.close();
          },
          release: async () => {
            if (file !== null) await new Promise<void>((resolve) => file.end(() => resolve()));
          },
        };
      },
    },
    events: {
      stored: (id) => ctx.stderr.write(`tocsin: scan ${id} (resume with: tocsin scan --resume ${id})\n`),
      resuming: (id, n) => ctx.stderr.write(`tocsin: resuming scan ${id}: ${n} attempts already stored\n`),
      running: ({ remaining }) => {
        progress = newProgress(remaining);
      },
      progress: (c) => progress?.add(c),
      // Above the bar when there is one (with --no-progress note() writes the plain line).
      warning: (m) => (progress ?? newProgress(0)).note(`tocsin: warning: ${safeText(m, 300)}\n`),
    },
  };
  try {
    const result = 'plan' in what ? await startScan(what.plan, deps, { workers: o.workers }) : await resumeScan(what.resume, deps, { workers: o.workers });
    const { stats, scanId } = result;
    const bar: Progress = progress ?? newProgress(0);
    bar.finish(scanId === null ? 'scan' : `scan ${scanId}`);
    if (stats.excluded > 0) ctx.stderr.write(`tocsin: ${stats.excluded} excluded (not contacted)\n`);
    // Attempts that ended with an answer other than HTTP: without this line a scan of closed ports ends on
    // "answered 0" and nothing says why. Timeouts are counted on their own line below.
    const noHttp = stats.attempted - stats.answered - stats.timedOut;
    if (noHttp > 0) ctx.stderr.write(`tocsin: ${noHttp} attempt(s) got no HTTP answer (connection refused or reset, TLS or protocol error)\n`);
    if (stats.timedOut > 0 || stats.retried > 0 || stats.unanswered > 0) {
      ctx.stderr.write(`tocsin: ${stats.timedOut} timed out, ${stats.retried} retried, ${stats.unanswered} unanswered after retries\n`);
    }
    if (result.status === 'interrupted') {
      // Cancelled from another process (`tocsin cancel`, the API): say who, since nobody here pressed Ctrl+C.
      const how = result.cancelledBy === null ? 'interrupted' : `cancelled by ${safeText(result.cancelledBy, 200)}`;
      if (scanId !== null) ctx.stderr.write(`tocsin: ${how}; finish with: tocsin scan --resume ${scanId}\n`);
      else if (result.stoppedBy === 'output-closed') ctx.stderr.write('tocsin: stopped early (nothing stored with --no-store: run the scan again to get every record)\n');
    } else if (stats.unanswered > 0) {
      // Not known to be down: a full accept queue, loss or a filter look the same. Never a silent "done".
      ctx.stderr.write(`tocsin: ${stats.unanswered} attempt(s) got no answer to the connect after ${MAX_CONNECT_TRIES} tries; ` +
        (scanId !== null ? `try them again with: tocsin scan --resume ${scanId}\n` : 'nothing is stored with --no-store: scan those addresses again\n'));
    }
    return result;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    gone?.removeEventListener('abort', onStdoutClosed);
  }
}

async function openOutput(path: string): Promise<WriteStream> {
  const stream = createWriteStream(path, { flags: 'w' });
  // once() rejects with the raw 'error' (e.g. ENOENT of a missing folder): turn it into a user error.
  await once(stream, 'open').catch((e: unknown) => {
    throw new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write --output ${path}: ${e instanceof Error ? e.message : String(e)}`);
  });
  return stream;
}

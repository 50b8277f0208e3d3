/**
 * `tocsin scan TARGET...`: validate every target and exclusion first (nothing is sent if one is
 * malformed), store the scan (unless --no-store), run the engine across worker threads, store each
 * batch, then print its records (stdout: records only; ids, progress and warnings go to stderr).
 *
 * Resume (`--resume ID`): the stored plan is reused as it was (targets, ports, limits, exclusions),
 * every (ip, port) already stored is skipped, and with --output the file is rewritten from the stored
 * records before new ones are appended, so it holds every host exactly once even after a `kill -9`.
 * Records reach the output only after their batch is stored, so nothing printed is ever lost to a crash.
 */
import type { Command } from 'commander';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { CliContext } from './context.js';
import { outputFormat, parseIntFlag, type FormatByExtension } from './args.js';
import { TocsinError } from '../core/errors.js';
import type { ScanRecord } from '../core/contracts/scan-record.js';
import { DEFAULT_LIMITS, type NetLimits } from '../core/contracts/probe.js';
import { openDatabase, type Database } from '../platform/db/connect.js';
import { createScanStore } from '../platform/db/scan-store.js';
import { claimScan, markScanInterrupted, startHeartbeat } from '../platform/db/scan-liveness.js';
import { scanStorageError } from '../platform/db/storage-errors.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';
import type { AttemptResult, ScanStore } from '../scan/ports.js';
import { formatPorts, parsePorts, DEFAULT_PORTS } from '../scan/port-spec.js';
import { createRecordWriter, parseFormat, safeText, type OutputFormat, type RecordWriter } from '../scan/output.js';
import { Progress } from '../scan/progress.js';
import { autoWorkers, runPlan } from '../scan/worker-pool.js';
import type { ScanPlan } from '../scan/plan.js';
import { countJobs, loadExclusions, loadTargets } from '../scan/setup.js';
import { EXCHANGE } from '../scan/assess.js';
import { MAX_CONNECT_TRIES } from '../scan/engine.js';

/**
 * Exit status of a scan that completed but left attempts unanswered after their retries (connect
 * timeouts): the records are good, the picture is not complete; `--resume ID` tries those again.
 * (0 = complete, 130/141 = interrupted/output closed, other codes = errors: see src/core/errors.ts.)
 */
export const EXIT_UNANSWERED = 3;

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
    .action(async (targets: string[], flags: ScanFlags) => {
      process.exitCode = await scanCommand(ctx, targets, flags);
    });
}

interface StoreHandle {
  readonly store: ScanStore;
  readonly scanId: string;
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
  if (flags.resume !== undefined) {
    // A resume finishes the scan as it was planned: same ports, limits, rates and exclusions.
    const ignored = ([['--ports', flags.ports], ['--exclude', flags.exclude], ['--rate', flags.rate], ['--rate-per-network', flags.ratePerNetwork],
      ['--concurrency', flags.concurrency], ['--timeout-ms', flags.timeoutMs], ['--host-budget-ms', flags.hostBudgetMs]] as const)
      .filter(([, v]) => v !== undefined).map(([n]) => n);
    if (ignored.length > 0) ctx.stderr.write(`tocsin: warning: ${ignored.join(', ')} ignored with --resume (the stored plan is reused)\n`);
  }
  const workersFlag = parseIntFlag('--workers', flags.workers, 0, 64) ?? config.workers;

  let plan: ScanPlan | null = null;
  if (flags.resume === undefined) {
    if (args.length === 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'no targets given (addresses, CIDRs, hostnames, @file or -)');
    // Everything is validated before the database is opened or a packet is sent.
    const targets = await loadTargets(args, process.stdin, (name, reason) => {
      ctx.stderr.write(`tocsin: warning: ${safeText(name, 255)} does not resolve (${safeText(reason)}); skipped\n`);
    });
    if (targets.length === 0) throw new TocsinError('TOCSIN_TARGET_INVALID', 'no target left to scan (no host name resolved)');
    const exclusions = await loadExclusions(config.excludeFiles, flags.exclude ?? []);
    const timeout = parseIntFlag('--timeout-ms', flags.timeoutMs, 100, 600_000);
    const budget = parseIntFlag('--host-budget-ms', flags.hostBudgetMs, 100, 3_600_000);
    const limits: NetLimits = {
      ...DEFAULT_LIMITS,
      ...(timeout === undefined ? {} : { connectTimeoutMs: timeout, tlsTimeoutMs: timeout, requestTimeoutMs: timeout }),
      ...(budget === undefined ? {} : { hostBudgetMs: budget }),
      userAgent: config.userAgent,
    };
    plan = {
      targets,
      ports: flags.ports === undefined ? DEFAULT_PORTS : parsePorts(flags.ports),
      concurrency: parseIntFlag('--concurrency', flags.concurrency, 1, 100_000) ?? config.concurrency,
      limits,
      exclusions,
      rate: parseIntFlag('--rate', flags.rate, 0, 10_000_000) ?? config.rateLimit,
      ratePerNetwork: parseIntFlag('--rate-per-network', flags.ratePerNetwork, 0, 10_000_000) ?? config.ratePerNetwork,
    };
  }

  let database: Database | null = null;
  const ac = new AbortController();
  const onSignal = (): void => {
    if (!ac.signal.aborted) ctx.stderr.write('\ntocsin: stopping (in-flight attempts are dropped and redone on resume)…\n');
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed stdout (`tocsin scan ... | head -1`) stops the scan like Ctrl+C: what is stored stays, resume finishes it.
  const outputGone = (): boolean => flags.output === undefined && ctx.stdoutClosed?.aborted === true;
  const onStdoutClosed = (): void => {
    if (!outputGone()) return;
    if (!ac.signal.aborted) ctx.stderr.write('\ntocsin: standard output was closed; stopping (in-flight attempts are dropped and redone on resume)…\n');
    ac.abort();
  };
  ctx.stdoutClosed?.addEventListener('abort', onStdoutClosed);
  let out: WriteStream | null = null;
  let storeReady: Promise<StoreHandle> | null = null;
  // Liveness (src/platform/db/scan-liveness.ts): the stored scan this process runs, and its heartbeat.
  let ownedScan: string | null = null;
  let heartbeat: { stop(): void } | null = null;
  try {
    let done: Set<string> = new Set();
    let resumed: StoreHandle | null = null;
    if (flags.resume !== undefined) {
      database = await openDatabase(config);
      const store = createScanStore(database.db, { kbRevision: loadExchangeKb().version });
      const stored = await store.getScan(flags.resume);
      if (stored === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no stored scan with id ${JSON.stringify(flags.resume)}`);
      plan = planFromStored(stored.options, stored.targets);
      // Take it over (refused while another live process runs it); from here it shows as running again.
      await claimScan(database.db, stored.id);
      ownedScan = stored.id;
      heartbeat = startHeartbeat(database.db, stored.id);
      done = await store.doneKeys(stored.id);
      resumed = { store, scanId: stored.id };
      storeReady = Promise.resolve(resumed);
      ctx.stderr.write(`tocsin: resuming scan ${stored.id}: ${done.size} attempts already stored\n`);
    } else if (flags.store && plan !== null) {
      // The output file is opened before the scan is stored, so an unwritable --output leaves no empty scan.
      // (On resume it is opened only once the stored scan is found: truncating first could lose a good file.)
      if (flags.output !== undefined) out = await openOutput(flags.output);
      // Opening the database (starting the embedded server, checking migrations) overlaps the first
      // probes: batches simply wait for it. If it fails, the first batch fails and the scan stops.
      const p = plan;
      storeReady = (async () => {
        database = await openDatabase(config);
        const store = createScanStore(database.db, { kbRevision: loadExchangeKb().version });
        const created = await store.createScan({ targets: p.targets, ports: p.ports.map((x) => x.port), options: planOptions(p) });
        ownedScan = created.id;
        heartbeat = startHeartbeat(database.db, created.id);
        ctx.stderr.write(`tocsin: scan ${created.id} (resume with: tocsin scan --resume ${created.id})\n`);
        return { store, scanId: created.id };
      })();
      storeReady.catch(() => undefined); // awaited below; this only avoids an unhandled-rejection report
    }
    if (plan === null) throw new TocsinError('TOCSIN_INTERNAL', 'no scan plan');

    // Output: stdout, or a file (rewritten from the stored records on resume, then appended to).
    let writer: RecordWriter;
    if (flags.output !== undefined) {
      out ??= await openOutput(flags.output);
      writer = createRecordWriter(format, out);
      if (resumed !== null) for await (const r of resumed.store.records(resumed.scanId)) await writer.write(r);
    } else writer = createRecordWriter(format, ctx.stdout);

    const jobs = countJobs(plan.targets, plan.ports.length);
    const remaining = Math.max(jobs - done.size, 0);
    const workers = workersFlag > 0 ? workersFlag : autoWorkers(remaining);
    // --no-progress: no bar, but the summary line (counts, unanswered) still reaches stderr.
    const progress = new Progress(flags.progress ? ctx.stderr : { isTTY: false, write: (s: string) => ctx.stderr.write(s) }, { total: remaining });
    // jsonl/csv records streamed to the terminal the bar is on: the bar steps aside for each batch.
    // (A table is written only after the bar is cleared for good: see writer.close() below.)
    const recordsOnTerminal = flags.output === undefined && ctx.stdout.isTTY === true && format !== 'table';
    const warned = new Set<string>();
    const stats = await runPlan({
      plan,
      done,
      workers,
      signal: ac.signal,
      onWarning: (m) => {
        // Same bug on many hosts: say it once per distinct text.
        if (warned.size < 50 && !warned.has(m)) {
          warned.add(m);
          const line = `tocsin: warning: ${safeText(m, 300)}\n`;
          // Above the bar when there is one (with --no-progress note() writes the plain line).
          progress.note(line);
        }
      },
      onBatch: async (batch: readonly AttemptResult[]) => {
        // Stored first, printed second: a record on the output is always in the database too.
        if (storeReady !== null) {
          const h = await storeReady;
          (database as Database | null)?.assertUsable();
          await h.store.recordBatch(h.scanId, batch);
        }
        let answered = 0;
        let exchange = 0;
        let vulnerable = 0;
        if (recordsOnTerminal && batch.some((r) => r.record !== null)) progress.erase();
        for (const r of batch) {
          if (r.record === null) continue;
          answered++;
          if (r.record.product === EXCHANGE) exchange++;
          if (r.record.vulnerable.length > 0) vulnerable++;
          // Nobody reads stdout any more: the record is stored; printing it would only raise EPIPE again.
          if (!outputGone()) await writer.write(r.record satisfies ScanRecord).catch((e: unknown) => {
            if (!outputGone()) throw e;
          });
        }
        progress.add({ done: batch.length, answered, exchange, vulnerable });
      },
    });
    // The bar goes first: a table is printed whole by close() and must never meet it on the terminal.
    progress.clear();
    if (!outputGone()) await writer.close().catch((e: unknown) => {
      if (!outputGone()) throw e;
    });
    const handle = storeReady === null ? null : await storeReady;
    progress.finish(handle === null ? 'scan' : `scan ${handle.scanId}`);
    if (stats.excluded > 0) ctx.stderr.write(`tocsin: ${stats.excluded} excluded (not contacted)\n`);
    if (stats.timedOut > 0 || stats.retried > 0 || stats.unanswered > 0) {
      ctx.stderr.write(`tocsin: ${stats.timedOut} timed out, ${stats.retried} retried, ${stats.unanswered} unanswered after retries\n`);
    }
    if (ac.signal.aborted) {
      if (handle !== null) {
        heartbeat?.stop();
        const db = (database as Database | null)?.db;
        if (db !== undefined) await markScanInterrupted(db, handle.scanId, outputGone() ? 'standard output closed' : 'stopped by a signal');
        ctx.stderr.write(`tocsin: interrupted; finish with: tocsin scan --resume ${handle.scanId}\n`);
      }
      else if (outputGone()) ctx.stderr.write('tocsin: stopped early (nothing stored with --no-store: run the scan again to get every record)\n');
      return outputGone() ? 141 : 130;
    }
    if (handle !== null) {
      (database as Database | null)?.assertUsable();
      await handle.store.finishScan(handle.scanId, 'finished');
    }
    if (stats.unanswered > 0) {
      // Not known to be down: a full accept queue, loss or a filter look the same. Never a silent "done".
      ctx.stderr.write(`tocsin: ${stats.unanswered} attempt(s) got no answer to the connect after ${MAX_CONNECT_TRIES} tries; ` +
        (handle !== null ? `try them again with: tocsin scan --resume ${handle.scanId}\n` : 'nothing is stored with --no-store: scan those addresses again\n'));
      return EXIT_UNANSWERED;
    }
    return 0;
  } catch (e) {
    // A storage failure (database gone, disk full, read-only) is a coded error naming the scan and its
    // resume command; the scan is marked interrupted if the database still takes that write.
    heartbeat?.stop();
    const failure = scanStorageError(e, { scanId: ownedScan, embeddedHome: config.databaseUrl === null ? config.home : null });
    const db = (database as Database | null)?.db;
    if (ownedScan !== null && db !== undefined) {
      await markScanInterrupted(db, ownedScan, failure instanceof Error ? failure.message : String(failure));
    }
    throw failure;
  } finally {
    heartbeat?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.stdoutClosed?.removeEventListener('abort', onStdoutClosed);
    if (out !== null) {
      const o = out;
      await new Promise<void>((resolve) => o.end(() => resolve()));
    }
    // The database may still be opening (an early error): wait for it, so it is closed, not leaked.
    if (storeReady !== null) await (storeReady as Promise<StoreHandle>).catch(() => undefined);
    // Closing must not hide the scan's own error (with the database gone, releasing it can fail too).
    await (database as Database | null)?.close().catch(() => undefined);
  }
}

async function openOutput(path: string): Promise<WriteStream> {
  const stream = createWriteStream(path, { flags: 'w' });
  // once() rejects with the raw 'error' (e.g. ENOENT of a missing folder): turn it into a user error.
  await once(stream, 'open').catch((e: unknown) => {
    throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot write --output ${path}: ${e instanceof Error ? e.message : String(e)}`);
  });
  return stream;
}

/** What a resume must reuse, stored in scans.options. */
function planOptions(plan: ScanPlan): Record<string, unknown> {
  return {
    ports: formatPorts(plan.ports),
    concurrency: plan.concurrency,
    limits: { ...plan.limits },
    exclusions: [...plan.exclusions],
    rate: plan.rate,
    ratePerNetwork: plan.ratePerNetwork,
  };
}

function planFromStored(options: Readonly<Record<string, unknown>>, targets: readonly string[]): ScanPlan {
  const bad = (what: string): TocsinError => new TocsinError('TOCSIN_SCAN_NOT_FOUND', `the stored scan has no usable ${what}; it cannot be resumed`);
  const num = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(what);
    return v;
  };
  if (typeof options.ports !== 'string') throw bad('ports');
  const l = options.limits;
  if (typeof l !== 'object' || l === null) throw bad('limits');
  const lim = l as Record<string, unknown>;
  const limits: NetLimits = {
    connectTimeoutMs: num(lim.connectTimeoutMs, 'limits'),
    tlsTimeoutMs: num(lim.tlsTimeoutMs, 'limits'),
    requestTimeoutMs: num(lim.requestTimeoutMs, 'limits'),
    hostBudgetMs: num(lim.hostBudgetMs, 'limits'),
    maxHeaderBytes: num(lim.maxHeaderBytes, 'limits'),
    maxBodyBytes: num(lim.maxBodyBytes, 'limits'),
    maxRedirects: num(lim.maxRedirects, 'limits'),
    userAgent: typeof lim.userAgent === 'string' ? lim.userAgent : DEFAULT_LIMITS.userAgent,
  };
  const exclusions = options.exclusions;
  if (!Array.isArray(exclusions) || !exclusions.every((e): e is string => typeof e === 'string')) throw bad('exclusions');
  return {
    targets,
    ports: parsePorts(options.ports),
    concurrency: num(options.concurrency, 'concurrency'),
    limits,
    exclusions,
    rate: num(options.rate, 'rate'),
    ratePerNetwork: num(options.ratePerNetwork, 'ratePerNetwork'),
  };
}

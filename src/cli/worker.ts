/**
 * `tocsin worker [--concurrency N] [--once] [--no-schedules]`: a scan worker that takes blocks of distributed scans
 * from the PostgreSQL job queue (any number of them, on any host that reaches the database) and, once a minute, the
 * schedules' tick (what `tocsin schedule run` does, so schedules run wherever workers run; not with --once), and
 * `tocsin workers status [--format table|json]`: live workers, blocks per scan, rate and ETA.
 * Also the terminal side of `tocsin scan --distributed` (runDistributedScan, called by scan.ts): submit, print
 * the scan id, follow the workers with progress lines, then print the stored records as a local scan would.
 * The design is in src/services/distributed-scan.ts.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { resultsCommand } from './results.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import type { ScanPlan } from '../scan/plan.js';
import type { OutputFormat } from '../scan/output.js';
import { openDatabase, type Database } from '../platform/db/connect.js';
import {
  DEFAULT_BLOCK_SIZE, DEFAULT_LEASE_SECONDS, runWorker, submitDistributedScan, waitForScan, workersStatus, type DistributedProgress, type WorkersStatus,
} from '../services/distributed-scan.js';
import { EXIT_INTERRUPTED, EXIT_UNANSWERED } from '../services/scan-service.js';
import { schedulerDepsFromConfig } from './schedule.js';

interface WorkerFlags {
  concurrency?: string;
  once?: boolean;
  pollMs?: string;
  /** false with --no-schedules. */
  schedules?: boolean;
}

interface StatusFlags {
  format?: string;
}

/** TOCSIN_WORKER_LEASE_SECONDS: how long a silent worker keeps its blocks before others take them over. */
export function leaseSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.TOCSIN_WORKER_LEASE_SECONDS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_LEASE_SECONDS;
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n < 2 || n > 86_400) {
    throw new TocsinError('TOCSIN_CONFIG_INVALID', `TOCSIN_WORKER_LEASE_SECONDS must be a whole number of seconds from 2 to 86400, got ${JSON.stringify(sanitiseText(raw, { max: 40 }))}`);
  }
  return n;
}

/**
 * TOCSIN_SCHEDULE_TICK_SECONDS: queue the schedules' tick every so many seconds instead of at each minute of the
 * crontab (tests, demonstrations; a tick with nothing due costs a few queries). Unset: the crontab.
 */
export function scheduleTickSeconds(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.TOCSIN_SCHEDULE_TICK_SECONDS;
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > 86_400) {
    throw new TocsinError('TOCSIN_CONFIG_INVALID', `TOCSIN_SCHEDULE_TICK_SECONDS must be a whole number of seconds from 1 to 86400, got ${JSON.stringify(sanitiseText(raw, { max: 40 }))}`);
  }
  return n;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run blocks of distributed scans (tocsin scan --distributed) from the PostgreSQL job queue until Ctrl+C')
    .option('--concurrency <n>', 'blocks run at once by this process (default 1)')
    .option('--once', 'exit when no block is queued or running any more (takes no schedule tick)')
    .option('--no-schedules', 'take no schedule tick (by default every worker runs the due schedules once a minute, as `tocsin schedule run` does)')
    .option('--poll-ms <n>', 'how often to look for retried or unlocked jobs (default 1000; new jobs arrive at once)')
    .action(async (flags: WorkerFlags) => {
      process.exitCode = await workerCommand(ctx, flags);
    });
  const workers = program.command('workers').description('the scan workers and their distributed scans');
  workers
    .command('status')
    .description('live workers (heartbeat age), blocks queued / in flight / done per scan, hosts per second over the last minute, ETA')
    .option('--format <format>', 'table | json (default table)')
    .action(async (flags: StatusFlags) => {
      process.exitCode = await workersStatusCommand(ctx, flags);
    });
}

async function withDatabase<T>(ctx: CliContext, fn: (d: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(ctx.config());
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}

export async function workerCommand(ctx: CliContext, flags: WorkerFlags): Promise<number> {
  const concurrency = parseIntFlag('--concurrency', flags.concurrency, 1, 256) ?? 1;
  const pollMs = parseIntFlag('--poll-ms', flags.pollMs, 50, 60_000) ?? 1000;
  const lease = leaseSeconds();
  const tickSeconds = scheduleTickSeconds();
  // A --once worker ends when the blocks are done: it must not wait for (or be cut off in) a minute's tick.
  const withSchedules = flags.schedules !== false && flags.once !== true;
  const ac = new AbortController();
  const onSignal = (): void => {
    if (!ac.signal.aborted) ctx.stderr.write('\ntocsin: worker stopping: running blocks are given back to the queue…\n');
    ac.abort('stopped by a signal');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Built once per process (the mailer stays connected between ticks) and closed when the worker stops.
  let built: Awaited<ReturnType<typeof schedulerDepsFromConfig>> | null = null;
  try {
    if (withSchedules) built = await schedulerDepsFromConfig(ctx, { signal: ac.signal });
    const summary = await withDatabase(ctx, (database) => runWorker({
      database, concurrency, leaseSeconds: lease, once: flags.once === true, signal: ac.signal, pollMs,
      ...(built === null ? {} : { schedules: { deps: built.deps, ...(tickSeconds === undefined ? {} : { everySeconds: tickSeconds }) } }),
      onEvent: (m) => ctx.stderr.write(`tocsin: ${sanitiseText(m, { max: 500 })}\n`),
    }));
    ctx.stderr.write(`tocsin: worker ${summary.id} stopped: ${summary.blocksDone} block(s) done, ${summary.blocksReleased} given back, ${summary.attempts} attempt(s)\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await built?.close();
  }
}

export async function workersStatusCommand(ctx: CliContext, flags: StatusFlags): Promise<number> {
  const format = flags.format ?? 'table';
  if (format !== 'table' && format !== 'json') throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be table or json, got ${JSON.stringify(sanitiseText(format, { max: 40 }))}`);
  const lease = leaseSeconds();
  const status = await withDatabase(ctx, (d) => workersStatus(d, lease));
  ctx.stdout.write(format === 'json' ? `${JSON.stringify(status)}\n` : statusTable(status));
  return 0;
}

function age(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function eta(s: number | null): string {
  if (s === null) return '-';
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Host names and ids come from the database (any host may register): printed through sanitiseText. */
export function statusTable(s: WorkersStatus): string {
  const lines: string[] = [];
  const live = s.workers.filter((w) => w.heartbeatAgeMs <= s.leaseSeconds * 1000);
  lines.push(`workers: ${live.length} live, ${s.workers.length - live.length} stale (lease ${s.leaseSeconds} s)`);
  if (s.workers.length > 0) {
    lines.push('  WORKER                                   HOST                 PID      HEARTBEAT  BLOCKS  STATE');
    for (const w of s.workers) {
      lines.push(`  ${sanitiseText(w.id, { max: 40 }).padEnd(40)} ${sanitiseText(w.host, { max: 20 }).padEnd(20)} ${String(w.pid).padEnd(8)} ${age(w.heartbeatAgeMs).padStart(9)}  ` +
        `${`${w.blocksRunning}/${w.concurrency}`.padStart(6)}  ${w.heartbeatAgeMs <= s.leaseSeconds * 1000 ? 'live' : 'stale'}`);
    }
  }
  lines.push(`distributed scans: ${s.scans.length}`);
  if (s.scans.length > 0) {
    lines.push('  SCAN    STATUS       QUEUED  IN FLIGHT  DONE  STORED/HOSTS        HOSTS/S  ETA');
    for (const x of s.scans) {
      lines.push(`  ${String(x.scanId).padEnd(7)} ${x.status.padEnd(12)} ${String(x.blocks.queued).padStart(6)}  ${String(x.blocks.running).padStart(9)}  ${String(x.blocks.done).padStart(4)}  ` +
        `${`${x.stored}/${x.hosts}`.padEnd(18)} ${x.hostsPerSecond.toFixed(1).padStart(8)}  ${eta(x.etaSeconds)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export interface DistributedScanOptions {
  readonly format: OutputFormat;
  readonly output?: string;
  readonly progress: boolean;
  readonly detach: boolean;
  readonly blockSize?: string;
}

function progressLine(id: string, p: DistributedProgress, jobs: number): string {
  const total = p.blocks.queued + p.blocks.running + p.blocks.done + p.blocks.cancelled;
  return `tocsin: scan ${id}: ${p.stored}/${jobs} attempts stored, blocks ${p.blocks.done}/${total} done, ${p.blocks.running} in flight, ` +
    `${(p.lastMinute / 60).toFixed(1)} hosts/s, ${p.identified} identified\n`;
}

/**
 * `tocsin scan TARGETS --distributed [--detach]`: stores the scan as blocks for the workers, prints its id on
 * stderr, and (unless --detach) waits with progress lines until the workers finish it, then prints the stored
 * records and exits like a local scan (0, 3 with unanswered attempts, 130 when cancelled). Ctrl+C stops the
 * waiting only: the scan keeps running on the workers.
 */
export async function runDistributedScan(ctx: CliContext, plan: ScanPlan, o: DistributedScanOptions): Promise<number> {
  const blockSize = parseIntFlag('--block-size', o.blockSize, 1, 16_777_216) ?? DEFAULT_BLOCK_SIZE;
  const config = ctx.config();
  const jobsPerHost = plan.ports.length;
  const ac = new AbortController();
  const onSignal = (): void => ac.abort('signal');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let final: DistributedProgress | null = null;
  let scanId = '';
  try {
    const database = await openDatabase(config);
    try {
      const s = await submitDistributedScan(database, plan, { blockSize });
      scanId = s.scanId;
      ctx.stderr.write(`tocsin: scan ${s.scanId} (distributed: ${s.hosts} address(es) in ${s.blocks} block(s) for the workers; ` +
        `follow with: tocsin workers status; records: tocsin results --scan ${s.scanId}; stop with: tocsin cancel ${s.scanId})\n`);
      if (o.detach) return 0;
      let last = '';
      let lastAt = 0;
      final = await waitForScan(database, s.scanId, {
        signal: ac.signal,
        onProgress: (p) => {
          if (!o.progress) return;
          const line = progressLine(s.scanId, p, s.hosts * jobsPerHost);
          // A line when something changed, at most every 2 s (a log, not a bar: workers may take hours).
          if (line !== last && Date.now() - lastAt >= 2000) {
            ctx.stderr.write(line);
            last = line;
            lastAt = Date.now();
          }
        },
      });
    } finally {
      await database.close();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (ac.signal.aborted) {
    ctx.stderr.write(`\ntocsin: stopped waiting; scan ${scanId} keeps running on the workers. Stop it with: tocsin cancel ${scanId}; ` +
      `its records: tocsin results --scan ${scanId}\n`);
    return EXIT_INTERRUPTED;
  }
  if (final === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `scan ${scanId} is gone from the database`);
  await resultsCommand(ctx, { scan: scanId, format: o.format, ...(o.output === undefined ? {} : { output: o.output }) });
  const p = final;
  ctx.stderr.write(`tocsin: scan ${scanId} ${p.status}: ${p.stored} attempt(s) stored, ${p.answered} answered, ${p.identified} identified as a known product, ${p.vulnerable} vulnerable (to any CVE)\n`);
  if (p.excluded > 0) ctx.stderr.write(`tocsin: ${p.excluded} excluded (not contacted)\n`);
  if (p.status !== 'finished') {
    const how = p.cancelledBy === null ? `interrupted (${sanitiseText(p.interruptedReason ?? 'unknown', { max: 200 })})` : `cancelled by ${sanitiseText(p.cancelledBy, { max: 200 })}`;
    ctx.stderr.write(`tocsin: ${how}; finish with: tocsin scan --resume ${scanId}\n`);
    return EXIT_INTERRUPTED;
  }
  if (p.unanswered > 0) {
    ctx.stderr.write(`tocsin: ${p.unanswered} attempt(s) got no answer to the connect after their retries; try them again with: tocsin scan --resume ${scanId}\n`);
    return EXIT_UNANSWERED;
  }
  return 0;
}

/**
 * The job queue seam: the only file that imports graphile-worker (0.17.x, the last line that runs on Node 20),
 * a PostgreSQL-backed queue that keeps its own schema (`graphile_worker`) in the same database and migrates it
 * itself (under its own lock, so many workers starting at once are safe). Nothing else in Tocsin knows its
 * tables or API: swapping the engine means rewriting this file only.
 *
 * What we use of it: durable jobs with a job key (adding a scan's blocks twice queues each once), LISTEN/NOTIFY
 * so idle workers start within milliseconds, SKIP LOCKED hand-out (one job to one worker), retries with
 * back-off for failed jobs, and `forceUnlockWorkers` for the workers our own lease declared dead: its built-in
 * stale-lock recovery waits 4 hours, ours (worker-store.ts) waits TOCSIN_WORKER_LEASE_SECONDS.
 */
import { EventEmitter } from 'node:events';
import { Logger, makeWorkerUtils, parseCrontab, run, type JobHelpers, type Runner, type TaskList, type WorkerEvents, type WorkerUtils } from 'graphile-worker';
import { TocsinError } from '../core/errors.js';

/** The one task Tocsin queues today: run one block of a distributed scan. */
export const SCAN_BLOCK_TASK = 'tocsin_scan_block';

/**
 * The schedules' tick (issue 11 §4): one job a minute from the engine's crontab in every worker that runs schedules.
 * The job key folds the minutes of all workers into one queued job (at most one waits behind a running tick, however
 * long it takes); one attempt, since the next minute ticks again anyway. Two workers running ticks at once is safe:
 * the scheduler's per-schedule lease lets one tick of a schedule run at a time (the other reports it busy).
 */
export const SCHEDULE_TICK_TASK = 'tocsin_schedule_tick';
const SCHEDULE_CRONTAB = `* * * * * ${SCHEDULE_TICK_TASK} ?jobKey=${SCHEDULE_TICK_TASK}&max=1`;

export interface BlockJob {
  readonly scanId: number;
  readonly blockNo: number;
}

/** Tries of one block job through the queue (a block released by a clean stop counts one). */
const MAX_ATTEMPTS = 25;

/** A logger that drops the engine's chatter and passes its warnings and errors on (worker's stderr). */
function quietLogger(onProblem: (message: string) => void): Logger {
  return new Logger(() => (level, message) => {
    const l = String(level);
    // The first line: a stack trace is for debugging the engine, not for an operator's log.
    if (l === 'error' || l === 'warning') onProblem(message.split('\n')[0] ?? message);
  });
}

function queueError(what: string, e: unknown): TocsinError {
  return new TocsinError('TOCSIN_JOB_QUEUE', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** Adding jobs and unlocking dead workers' jobs (what the scan client and every worker need). */
export interface JobQueue {
  /** Queues one job per block, keyed by scan and block (idempotent). */
  addBlockJobs(scanId: number, blockNos: readonly number[]): Promise<void>;
  /** Makes the jobs these (dead) queue workers held available again at once. */
  forceUnlock(queueWorkerIds: readonly string[]): Promise<void>;
  /** Queues a schedule tick now (the interval mode of TOCSIN_SCHEDULE_TICK_SECONDS; the key keeps it to one). */
  addScheduleTick(): Promise<void>;
  release(): Promise<void>;
}

/** Opens the queue on the database at `connectionString`, migrating its schema if needed. */
export async function openJobQueue(connectionString: string, o: { readonly onProblem?: (message: string) => void } = {}): Promise<JobQueue> {
  let utils: WorkerUtils;
  try {
    utils = await makeWorkerUtils({ connectionString, maxPoolSize: 2, logger: quietLogger(o.onProblem ?? (() => undefined)) });
    await utils.migrate();
  } catch (e) {
    throw queueError('cannot open the job queue (graphile_worker schema)', e);
  }
  return {
    async addBlockJobs(scanId, blockNos) {
      // In chunks: one statement per chunk, a bounded parameter however many blocks a scan has.
      for (let i = 0; i < blockNos.length; i += 1000) {
        await utils.addJobs(blockNos.slice(i, i + 1000).map((blockNo) => ({
          identifier: SCAN_BLOCK_TASK,
          payload: { scanId, blockNo } satisfies BlockJob,
          jobKey: `scan:${scanId}:block:${blockNo}`,
          maxAttempts: MAX_ATTEMPTS,
        })));
      }
    },
    async forceUnlock(ids) {
      if (ids.length > 0) await utils.forceUnlockWorkers([...ids]);
    },
    async addScheduleTick() {
      await utils.addJob(SCHEDULE_TICK_TASK, {}, { jobKey: SCHEDULE_TICK_TASK, maxAttempts: 1 });
    },
    release: async () => {
      await utils.release();
    },
  };
}

export interface QueueRunner {
  /** The engine's worker ids in this process (known once started). */
  readonly queueWorkerIds: readonly string[];
  /** Jobs running now. */
  readonly running: number;
  /** Stops taking jobs, aborts running ones through their signal and waits for them. */
  stop(): Promise<void>;
  /** Settles when the runner stopped (by stop() or a fatal error). */
  readonly done: Promise<void>;
}

export interface RunOptions {
  readonly connectionString: string;
  /** Jobs run at once by this process. */
  readonly concurrency: number;
  /** Poll for due jobs (retries, unlocked jobs) this often; new jobs arrive through LISTEN at once. */
  readonly pollIntervalMs: number;
  /** Runs a block; throw to have it retried later. `signal` aborts on stop(). */
  runBlock(job: BlockJob, signal: AbortSignal): Promise<void>;
  /**
   * Runs one schedule tick; absent: this process takes no tick jobs. `cron` false: no crontab here (the caller
   * queues ticks itself with addScheduleTick, or leaves them to other workers).
   */
  readonly scheduleTick?: { run(signal: AbortSignal): Promise<void>; readonly cron: boolean };
  onProblem(message: string): void;
}

function isBlockJob(p: unknown): p is BlockJob {
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  return Number.isSafeInteger(o.scanId) && Number.isSafeInteger(o.blockNo);
}

/** Starts taking block jobs. Signals are ours to handle (the CLI stops the runner on SIGINT/SIGTERM). */
export async function runJobQueue(o: RunOptions): Promise<QueueRunner> {
  const ids: string[] = [];
  const events = new EventEmitter() as unknown as WorkerEvents;
  // Jobs are locked in the name of the pool (0.17: locked_by = the pool's id), older versions name the
  // worker: both are recorded, so forceUnlockWorkers frees a dead process's jobs whichever it is.
  events.on('pool:create', ({ workerPool }) => {
    ids.push(workerPool.id);
  });
  events.on('worker:create', ({ worker }) => {
    ids.push(worker.workerId);
  });
  let running = 0;
  const aborts = new Set<AbortController>();
  /** A job's own signal, aborted by stop() at once (the engine's own abort comes only after a shutdown delay). */
  const withSignal = async (helpers: JobHelpers, body: (signal: AbortSignal) => Promise<void>): Promise<void> => {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort('worker stopping');
    helpers.abortSignal.addEventListener('abort', onAbort, { once: true });
    aborts.add(ac);
    try {
      await body(ac.signal);
    } finally {
      aborts.delete(ac);
      helpers.abortSignal.removeEventListener('abort', onAbort);
    }
  };
  const tick = o.scheduleTick;
  const tickTasks: TaskList = tick === undefined ? {} : {
    [SCHEDULE_TICK_TASK]: async (_payload: unknown, helpers: JobHelpers) => withSignal(helpers, (signal) => tick.run(signal)),
  };
  let runner: Runner;
  try {
    runner = await run({
      connectionString: o.connectionString,
      // The block jobs' own queries go through Tocsin's pool; the engine needs its LISTEN client and a few more.
      maxPoolSize: Math.max(4, o.concurrency + 2),
      concurrency: o.concurrency,
      pollInterval: o.pollIntervalMs,
      noHandleSignals: true,
      // Jobs get our stop signal themselves; the engine must not wait 5 s before telling them.
      gracefulShutdownAbortTimeout: 0,
      logger: quietLogger(o.onProblem),
      events,
      // Always explicit: without it the engine would read a `crontab` file from the working directory.
      parsedCronItems: tick?.cron === true ? parseCrontab(SCHEDULE_CRONTAB) : [],
      taskList: {
        ...tickTasks,
        [SCAN_BLOCK_TASK]: async (payload: unknown, helpers: JobHelpers) => {
          if (!isBlockJob(payload)) {
            // A job someone queued by hand with a bad payload: finished, not retried 25 times.
            o.onProblem(`job ${helpers.job.id}: not a block job payload; dropped`);
            return;
          }
          running++;
          try {
            await withSignal(helpers, (signal) => o.runBlock({ scanId: payload.scanId, blockNo: payload.blockNo }, signal));
          } finally {
            running--;
          }
        },
      },
    });
  } catch (e) {
    throw queueError('cannot start the job queue worker', e);
  }
  let stopping: Promise<void> | null = null;
  return {
    get queueWorkerIds() {
      return ids;
    },
    get running() {
      return running;
    },
    stop() {
      stopping ??= (async () => {
        for (const ac of aborts) ac.abort('worker stopping');
        await runner.stop();
      })();
      return stopping;
    },
    done: runner.promise,
  };
}

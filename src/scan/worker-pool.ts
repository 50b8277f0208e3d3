/**
 * Runs a scan plan in N worker threads, or in this thread when N is 1.
 *
 * Why threads: TLS handshakes are CPU-bound and one Node thread tops out near 1.1k handshakes/s on this
 * kind of machine; threads use the other cores. Targets are sharded deterministically by position
 * (index % N), so each worker rebuilds the same lazy target iterator from the plan and takes its share:
 * no target list crosses a thread boundary and memory stays bounded. Results come back in batches over
 * the worker's MessagePort; the main thread does storage and output and acknowledges each batch, and a
 * worker pauses when it has too many unacknowledged batches (back-pressure end to end).
 *
 * The pool does not know the probe kit nor the worker entry: both come from the composition root
 * (src/services), which wires the real modules. The worker entry is a module that builds its own kit in
 * its thread (a kit holds functions and cannot cross the thread boundary).
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { AttemptResult } from './ports.js';
import type { EngineStats } from './engine.js';
import { emptyStats, runScan } from './engine.js';
import type { ScanPlan } from './plan.js';
import { Batcher } from './batcher.js';
import { engineOptionsFor } from './setup.js';
import type { ScanKit } from './kit.js';
import { exchangeKbTables, type KbTables } from '../products/exchange/kb/index.js';

export interface PoolOptions {
  readonly plan: ScanPlan;
  /** attemptKey(ip, port) already stored (resume). */
  readonly done: ReadonlySet<string>;
  /** Worker threads; 1 = run in this thread (also when `workerEntry` is null). */
  readonly workers: number;
  /** The probe kit of a scan run in this thread. */
  kit(): ScanKit;
  /**
   * The worker-thread entry module (it answers the messages below and builds its own kit), compiled .js or,
   * under tsx (tests, development), the .ts source. Null: never spawn threads.
   */
  readonly workerEntry: URL | null;
  readonly signal?: AbortSignal;
  /** Storage and output; awaited before the batch is acknowledged. */
  onBatch(results: readonly AttemptResult[]): Promise<void>;
  onWarning?(message: string): void;
}

/** Messages from a worker. */
export type FromWorker =
  | { readonly type: 'batch'; readonly seq: number; readonly results: readonly AttemptResult[] }
  | { readonly type: 'warning'; readonly message: string }
  | { readonly type: 'done'; readonly stats: EngineStats }
  | { readonly type: 'error'; readonly message: string };

/** Messages to a worker. */
export type ToWorker = { readonly type: 'ack'; readonly seq: number } | { readonly type: 'stop' };

export interface WorkerInit {
  readonly plan: ScanPlan;
  readonly done: readonly string[];
  readonly shard: { readonly index: number; readonly count: number };
  /** The knowledge base the main thread loaded and validated: the worker does not read the CSV files again. */
  readonly kb?: KbTables;
}

export const BATCH_SIZE = 256;
export const BATCH_AGE_MS = 100;
export const MAX_UNACKED = 4;

/**
 * Automatic worker count: threads pay only when there is enough work to amortise their start-up
 * (each loads the detectors and the knowledge base), and one core is left to the main thread (storage,
 * output), the database server and the kernel's share of TLS: a thread per core made the threads contend
 * for the CPU they saved. On 2 cores that means the scan runs in the main thread: measured with
 * bench/scan-vs-nmap.ts (bench/README.md, stop 13), 21% less CPU per host and a shorter wall time than
 * two worker threads.
 */
export function autoWorkers(jobCount: number | null, cores: number = availableParallelism()): number {
  if (cores < 3) return 1;
  if (jobCount !== null && jobCount < 1024) return 1;
  return Math.min(cores - 1, 4);
}

export async function runPlan(o: PoolOptions): Promise<EngineStats> {
  return o.workers <= 1 || o.workerEntry === null ? runInThread(o) : runInWorkers(o, o.workerEntry);
}

async function runInThread(o: PoolOptions): Promise<EngineStats> {
  const batcher = new Batcher({ maxBatch: BATCH_SIZE, maxAgeMs: BATCH_AGE_MS, maxInFlight: MAX_UNACKED, sink: (b) => o.onBatch(b) });
  const stats = await runScan(engineOptionsFor(o.plan, {
    done: o.done,
    ...(o.signal === undefined ? {} : { signal: o.signal }),
    onResult: (r) => batcher.push(r),
    ...(o.onWarning === undefined ? {} : { onWarning: o.onWarning }),
  }, o.kit()));
  await batcher.close();
  return stats;
}

/** A worker on the entry module: compiled .js as it is, the .ts source under tsx (tests, dev). */
function spawnWorker(entry: URL, init: WorkerInit): Worker {
  if (entry.pathname.endsWith('.ts')) {
    // Node 20 does not run --import hooks in worker threads: register tsx inside the worker first.
    const tsx = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
    return new Worker(code, { eval: true, workerData: init });
  }
  return new Worker(entry, { workerData: init });
}

async function runInWorkers(o: PoolOptions, entry: URL): Promise<EngineStats> {
  const count = o.workers;
  const done = [...o.done];
  const kb = exchangeKbTables();
  const total: EngineStats = emptyStats();
  // Storage/output is serialised across workers: one batch at a time, in arrival order.
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown = null;
  const workers: Worker[] = [];
  const stopAll = (): void => {
    for (const w of workers) w.postMessage({ type: 'stop' } satisfies ToWorker);
  };
  o.signal?.addEventListener('abort', stopAll, { once: true });
  try {
    await Promise.all(Array.from({ length: count }, (_, index) => new Promise<void>((resolve, reject) => {
      const w = spawnWorker(entry, { plan: o.plan, done, shard: { index, count }, kb });
      workers.push(w);
      let finished = false;
      w.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'batch':
            chain = chain.then(async () => {
              if (failure === null) {
                try {
                  await o.onBatch(m.results);
                } catch (e) {
                  failure ??= e;
                  stopAll();
                }
              }
              w.postMessage({ type: 'ack', seq: m.seq } satisfies ToWorker);
            });
            break;
          case 'warning':
            o.onWarning?.(m.message);
            break;
          case 'done':
            finished = true;
            for (const k of Object.keys(total) as Array<keyof EngineStats>) total[k] += m.stats[k];
            break;
          case 'error':
            failure ??= new Error(`scan worker ${index}: ${m.message}`);
            stopAll();
            break;
        }
      });
      w.on('error', (e) => {
        failure ??= e;
        stopAll();
      });
      w.on('exit', (code) => {
        if (!finished && failure === null && code !== 0) failure = new Error(`scan worker ${index} exited with code ${code}`);
        if (failure !== null && !finished) reject(failure);
        else resolve();
      });
    })));
  } finally {
    o.signal?.removeEventListener('abort', stopAll);
    await chain;
  }
  if (failure !== null) throw failure;
  return total;
}

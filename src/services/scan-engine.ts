/**
 * The real scan engine wiring: the default probe kit in this thread and the worker-thread entry beside this
 * file (src/services/scan-worker.ts, compiled to .js). The scan layer takes both as parameters, so it never
 * imports the composition root; this is where they are chosen.
 */
import { runPlan as runPool, type PoolOptions } from '../scan/worker-pool.js';
import type { EngineStats } from '../scan/engine.js';
import type { ScanKit } from '../scan/kit.js';
import { defaultKit } from './default-kit.js';

/** The compiled worker next to this module, or its source when running under tsx (tests, development). */
export const SCAN_WORKER_ENTRY: URL = new URL(import.meta.url.endsWith('.ts') ? './scan-worker.ts' : './scan-worker.js', import.meta.url);

/** What runs a plan: the kit of a scan in this thread, and the worker entry (null: one thread only). */
export interface ScanEngine {
  kit(): ScanKit;
  readonly workerEntry: URL | null;
}

export const DEFAULT_ENGINE: ScanEngine = { kit: defaultKit, workerEntry: SCAN_WORKER_ENTRY };

/** runPlan of src/scan/worker-pool.ts on the real kit and worker entry (or the engine given). */
export function runPlan(o: Omit<PoolOptions, 'kit' | 'workerEntry'>, engine: ScanEngine = DEFAULT_ENGINE): Promise<EngineStats> {
  return runPool({ ...o, kit: engine.kit, workerEntry: engine.workerEntry });
}

/**
 * The scan use case, for every entry point (the CLI today; the HTTP API and job workers later): plan a scan,
 * start it, resume it, cancel it, list what it stored. Everything from outside comes in `ScanDeps`: the
 * storage (or none: `--no-store`), where records go, the cancel signal, the clock, the engine, and callbacks
 * for what a user sees while it runs. Nothing here reads process state (argv, stdin, signals, exit codes):
 * the entry point maps those, and `scanExitStatus` turns the result into the documented exit status.
 *
 * Guarantees (kept from the CLI it came from):
 * - a record reaches the output only after its batch is stored, so nothing printed is lost to a crash;
 * - a resume reuses the stored plan as it was, skips every (ip, port) already stored and, with
 *   `replayStored`, writes the stored records first, so an output file holds every host exactly once;
 * - a new scan's output is opened before the scan is stored (an unusable destination leaves no empty scan),
 *   a resume's only once the stored scan is found (a mistyped id never truncates a good file);
 * - cancelling (the signal) stops new attempts, keeps what is stored and marks the scan interrupted, so
 *   `resumeScan` finishes it; a storage failure is a coded error naming the scan and its resume command;
 * - another process cancels a stored scan with `cancelScan`: a request on the scan that the runner's
 *   heartbeat reads (within one beat), then it stops exactly as for the signal, with "cancelled by <who>".
 */
import type { Readable } from 'node:stream';
import { TocsinError } from '../core/errors.js';
import type { ScanRecord } from '../core/contracts/scan-record.js';
import { DEFAULT_LIMITS, type NetLimits } from '../core/contracts/probe.js';
import type { AttemptResult, StoredScan } from '../scan/ports.js';
import { DEFAULT_PORTS, parsePorts } from '../scan/port-spec.js';
import { safeText } from '../scan/output.js';
import type { ProgressCounts } from '../scan/progress.js';
import { autoWorkers } from '../scan/worker-pool.js';
import { planFromStored, planToStored, type ScanPlan } from '../scan/plan.js';
import { countJobs, loadExclusions, loadTargets } from '../scan/setup.js';
import type { EngineStats } from '../scan/engine.js';
import { parseScanId } from '../platform/db/scan-store.js';
import { DEFAULT_ENGINE, runPlan, type ScanEngine } from './scan-engine.js';
import type { ScanStorage, ScanStorageProvider } from './scan-storage.js';

/**
 * Exit status of a scan that completed but left attempts unanswered after their retries (connect
 * timeouts): the records are good, the picture is not complete; a resume tries those again.
 */
export const EXIT_UNANSWERED = 3;
/** Cancelled (Ctrl+C, SIGTERM, an API cancel): what is stored is kept; a resume finishes it. */
export const EXIT_INTERRUPTED = 130;
/** Nobody reads the output any more (128 + SIGPIPE, as a shell shows for `yes | head -1`). */
export const EXIT_OUTPUT_CLOSED = 141;

/** A scan's plan as the user gives it; numbers already parsed (an entry point validates its own syntax). */
export interface PlanInput {
  /** Addresses, CIDRs, ranges, hostnames, name=ip, @file, `-` (deps.stdin). */
  readonly targets: readonly string[];
  /** Port list text ("443,80/http"); default 443/tls. */
  readonly ports?: string;
  /** Exclusion files from the configuration, and exclusion values given for this scan (file, @file or address/CIDR). */
  readonly excludeFiles: readonly string[];
  readonly exclude: readonly string[];
  readonly concurrency: number;
  readonly rate: number;
  readonly ratePerNetwork: number;
  /** Connect, TLS and request deadline; default DEFAULT_LIMITS. */
  readonly timeoutMs?: number;
  readonly hostBudgetMs?: number;
  readonly userAgent: string;
}

/**
 * Validates every target and exclusion (nothing is sent if one is malformed; errors name file and line) and
 * resolves host names once, so the plan can be stored and resumed without DNS.
 */
export async function planScan(input: PlanInput, deps: { readonly stdin: Readable; warning?(message: string): void }): Promise<ScanPlan> {
  if (input.targets.length === 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'no targets given (addresses, CIDRs, hostnames, @file or -)');
  const targets = await loadTargets(input.targets, deps.stdin, (name, reason) => {
    deps.warning?.(`${safeText(name, 255)} does not resolve (${safeText(reason)}); skipped`);
  });
  if (targets.length === 0) throw new TocsinError('TOCSIN_TARGET_INVALID', 'no target left to scan (no host name resolved)');
  const exclusions = await loadExclusions(input.excludeFiles, input.exclude);
  const t = input.timeoutMs;
  const limits: NetLimits = {
    ...DEFAULT_LIMITS,
    ...(t === undefined ? {} : { connectTimeoutMs: t, tlsTimeoutMs: t, requestTimeoutMs: t }),
    ...(input.hostBudgetMs === undefined ? {} : { hostBudgetMs: input.hostBudgetMs }),
    userAgent: input.userAgent,
  };
  return {
    targets,
    ports: input.ports === undefined ? DEFAULT_PORTS : parsePorts(input.ports),
    concurrency: input.concurrency,
    limits,
    exclusions,
    rate: input.rate,
    ratePerNetwork: input.ratePerNetwork,
  };
}

/** Where records go: a file, a stream, a collector in a test. */
export interface RecordSink {
  write(record: ScanRecord): Promise<void>;
  /** Several records in one write (one libuv request per stored batch instead of one per host); optional. */
  writeMany?(records: readonly ScanRecord[]): Promise<void>;
  /** End of the records (a table is written whole here); the destination stays open. */
  close(): Promise<void>;
  /** Gives the destination back (ends a file); called once whatever happened. */
  release(): Promise<void>;
}

export interface ScanOutput {
  /** Opens the destination (see the module comment for when). */
  open(): Promise<RecordSink>;
  /** On resume, write the scan's stored records first (a file rewritten whole), not only the new ones. */
  readonly replayStored: boolean;
  /**
   * Aborted when nobody reads the output any more (a closed stdout). The entry point cancels the scan for it;
   * records are then still stored but no longer written, and the exit status is 141.
   */
  readonly gone?: AbortSignal;
}

/** What a user sees while a scan runs. All optional; none may throw. */
export interface ScanEvents {
  /** A new scan is stored: its id is the handle to resume it with. */
  stored?(scanId: string): void;
  resuming?(scanId: string, alreadyStored: number): void;
  /** About to send: attempts left to make, worker threads. */
  running?(o: { readonly remaining: number; readonly workers: number }): void;
  /** A batch was stored (and written). */
  progress?(counts: ProgressCounts): void;
  /** Something is wrong on our side (a detector threw); each distinct text once, at most 50 texts. */
  warning?(message: string): void;
}

export interface ScanDeps {
  /** Null: nothing is stored (`--no-store`); a resume needs it. */
  readonly storage: ScanStorageProvider | null;
  readonly output: ScanOutput;
  /**
   * Cancels the scan: in-flight attempts are dropped (a resume redoes them), what is stored stays, the scan is
   * marked interrupted. A string reason is stored as the reason (e.g. "stopped by a signal").
   */
  readonly signal: AbortSignal;
  /** Milliseconds, for the elapsed time in the result. */
  readonly clock: { now(): number };
  /** The kit and worker entry; default the real ones. */
  readonly engine?: ScanEngine;
  readonly events?: ScanEvents;
}

export interface ScanResult {
  /** Null when nothing is stored. */
  readonly scanId: string | null;
  /** `interrupted`: cancelled or its output closed; resumable when stored. */
  readonly status: 'finished' | 'interrupted';
  readonly stoppedBy: 'cancelled' | 'output-closed' | null;
  /** Who cancelled it from another process (`cancelScan`); null when it was not cancelled that way. */
  readonly cancelledBy: string | null;
  /** Counts of this run (a resume counts only what it did): attempted, answered, unanswered, ... */
  readonly stats: Readonly<EngineStats>;
  readonly resumed: boolean;
  /** Attempts stored before this run (resume). */
  readonly alreadyStored: number;
  readonly elapsedMs: number;
}

/** The exit status of a scan's result: 0, 3 (complete but unanswered attempts), 130 (cancelled), 141 (output closed). */
export function scanExitStatus(r: Pick<ScanResult, 'status' | 'stoppedBy' | 'stats'>): number {
  if (r.status === 'interrupted') return r.stoppedBy === 'output-closed' ? EXIT_OUTPUT_CLOSED : EXIT_INTERRUPTED;
  return r.stats.unanswered > 0 ? EXIT_UNANSWERED : 0;
}

/** Starts a new scan of `plan`. `workers`: threads, 0 = automatic. */
export function startScan(plan: ScanPlan, deps: ScanDeps, o: { readonly workers?: number } = {}): Promise<ScanResult> {
  return run({ plan, workers: o.workers ?? 0 }, deps);
}

/** Finishes a stored scan (interrupted, crashed, or with unanswered attempts) with its stored plan. */
export function resumeScan(scanId: string, deps: ScanDeps, o: { readonly workers?: number } = {}): Promise<ScanResult> {
  return run({ resume: scanId, workers: o.workers ?? 0 }, deps);
}

type Request = { readonly plan: ScanPlan; readonly workers: number } | { readonly resume: string; readonly workers: number };

interface Handle {
  readonly storage: ScanStorage;
  readonly scanId: string;
}

async function run(req: Request, deps: ScanDeps): Promise<ScanResult> {
  const started = deps.clock.now();
  const events = deps.events ?? {};
  const gone = (): boolean => deps.output.gone?.aborted === true;
  // Mutable state shared with the storage opening below (which may still run when an error ends the scan).
  const state = { storage: null as ScanStorage | null, ownedScan: null as string | null, heartbeat: null as { stop(): void } | null };
  let ready: Promise<Handle> | null = null;
  let sink: RecordSink | null = null;
  // The scan stops for the caller's signal or for a cancel another process stored (seen by the heartbeat).
  const cancel = new AbortController();
  const follow = (): void => cancel.abort(deps.signal.reason);
  if (deps.signal.aborted) follow();
  else deps.signal.addEventListener('abort', follow, { once: true });
  let cancelledBy: string | null = null;
  const onCancelRequest = (by: string): void => {
    if (cancel.signal.aborted) return;
    cancelledBy = by;
    cancel.abort(`cancelled by ${by}`);
  };
  try {
    let plan: ScanPlan;
    let done: ReadonlySet<string> = new Set();
    if ('resume' in req) {
      if (deps.storage === null) throw new TocsinError('TOCSIN_SCAN_NEEDS_STORE', '--resume needs the stored scan and cannot be combined with --no-store');
      const storage = await deps.storage.open();
      state.storage = storage;
      const stored = await storage.store.getScan(req.resume);
      if (stored === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no stored scan with id ${JSON.stringify(req.resume)}`);
      plan = planFromStored(stored.id, stored.options, stored.targets);
      // Take it over (refused while another live process runs it); from here it shows as running again.
      await storage.claim(stored.id);
      state.ownedScan = stored.id;
      state.heartbeat = storage.startHeartbeat(stored.id, onCancelRequest);
      done = await storage.store.doneKeys(stored.id);
      ready = Promise.resolve({ storage, scanId: stored.id });
      events.resuming?.(stored.id, done.size);
      sink = await deps.output.open();
      if (deps.output.replayStored) for await (const r of storage.store.records(stored.id)) await sink.write(r);
    } else {
      plan = req.plan;
      sink = await deps.output.open();
      if (deps.storage !== null) {
        // The storage is opened (embedded server started, migrations checked) BEFORE the first probe:
        // overlapping them saved ~0.5 s of wall, but thousands of handshakes in this thread starved the
        // start-up's own connections (2 s login check): on a loaded 2-core machine 4,096-host scans died
        // with TOCSIN_DB_EMBEDDED_START ("timeout expired") before storing anything. Awaited below.
        const provider = deps.storage;
        const p = plan;
        ready = (async () => {
          const storage = await provider.open();
          state.storage = storage;
          const created = await storage.store.createScan({ targets: p.targets, ports: p.ports.map((x) => x.port), options: { ...planToStored(p) } });
          state.ownedScan = created.id;
          state.heartbeat = storage.startHeartbeat(created.id, onCancelRequest);
          events.stored?.(created.id);
          return { storage, scanId: created.id };
        })();
        ready.catch(() => undefined); // awaited below; this only avoids an unhandled-rejection report
      }
    }

    const out = sink;
    const handleReady = ready;
    if (handleReady !== null) await handleReady;
    const remaining = Math.max(countJobs(plan.targets, plan.ports.length) - done.size, 0);
    const workers = req.workers > 0 ? req.workers : autoWorkers(remaining);
    events.running?.({ remaining, workers });
    const engine = deps.engine ?? DEFAULT_ENGINE;
    // A record names a registered product when that product's fingerprint claimed the service (counted as
    // the engine counts EngineStats.exchange).
    const products = new Set(engine.kit().products.map((x) => x.id));
    const warned = new Set<string>();
    const stats = await runPlan({
      plan,
      done,
      workers,
      signal: cancel.signal,
      onWarning: (m) => {
        // Same bug on many hosts: say it once per distinct text.
        if (warned.size < 50 && !warned.has(m)) {
          warned.add(m);
          events.warning?.(m);
        }
      },
      onBatch: async (batch: readonly AttemptResult[]) => {
        // Stored first, written second: a record on the output is always in the storage too.
        if (handleReady !== null) {
          const h = await handleReady;
          h.storage.assertUsable();
          await h.storage.store.recordBatch(h.scanId, batch);
        }
        let answered = 0;
        let exchange = 0;
        let vulnerable = 0;
        const records: ScanRecord[] = [];
        for (const r of batch) {
          if (r.record === null) continue;
          answered++;
          if (r.record.product !== null && products.has(r.record.product)) exchange++;
          if (r.record.vulnerable.length > 0) vulnerable++;
          records.push(r.record);
        }
        // Nobody reads the output any more: the records are stored; writing them would only fail again.
        const write = async (): Promise<void> => {
          if (out.writeMany !== undefined) await out.writeMany(records);
          else for (const r of records) if (!gone()) await out.write(r);
        };
        if (records.length > 0 && !gone()) await write().catch((e: unknown) => {
          if (!gone()) throw e;
        });
        events.progress?.({ done: batch.length, answered, exchange, vulnerable });
      },
    }, engine);
    // Decided now: a cancel seen after the last attempt was stored does not undo a complete scan.
    const aborted = cancel.signal.aborted;
    state.heartbeat?.stop();
    if (!gone()) await out.close().catch((e: unknown) => {
      if (!gone()) throw e;
    });
    const handle = handleReady === null ? null : await handleReady;
    const base = { scanId: handle?.scanId ?? null, stats, resumed: 'resume' in req, alreadyStored: done.size };
    if (aborted) {
      const byRequest = gone() ? null : cancelledBy;
      if (handle !== null) {
        const reason = gone() ? 'standard output closed' : typeof cancel.signal.reason === 'string' ? cancel.signal.reason : 'cancelled';
        await handle.storage.markInterrupted(handle.scanId, reason);
      }
      return { ...base, status: 'interrupted', stoppedBy: gone() ? 'output-closed' : 'cancelled', cancelledBy: byRequest, elapsedMs: deps.clock.now() - started };
    }
    if (handle !== null) {
      handle.storage.assertUsable();
      await handle.storage.store.finishScan(handle.scanId, 'finished');
    }
    return { ...base, status: 'finished', stoppedBy: null, cancelledBy: null, elapsedMs: deps.clock.now() - started };
  } catch (e) {
    // A storage failure (database gone, disk full, read-only) is a coded error naming the scan and its
    // resume command; the scan is marked interrupted if the storage still takes that write.
    state.heartbeat?.stop();
    const failure = deps.storage === null ? e : deps.storage.explainFailure(e, state.ownedScan);
    if (state.ownedScan !== null && state.storage !== null) {
      await state.storage.markInterrupted(state.ownedScan, failure instanceof Error ? failure.message : String(failure)).catch(() => undefined);
    }
    throw failure;
  } finally {
    deps.signal.removeEventListener('abort', follow);
    state.heartbeat?.stop();
    await sink?.release();
    // The storage may still be opening (an early error): wait for it, so it is closed, not leaked.
    if (ready !== null) await ready.catch(() => undefined);
    // Closing must not hide the scan's own error (with the database gone, releasing it can fail too).
    await state.storage?.close().catch(() => undefined);
  }
}

/** Scan ids are positive integers; anything else names no scan (checked before any storage is opened). */
export function isScanId(id: string): boolean {
  return parseScanId(id) !== null;
}

/**
 * One stored scan (default: the latest) and its answered records in (ip, port) order, as the scan wrote
 * them. Read-only. TOCSIN_SCAN_NOT_FOUND when there is no such scan (or none at all).
 */
export async function scanRecords(storage: ScanStorage, scanId: string | null): Promise<{ readonly scan: StoredScan; readonly records: AsyncIterable<ScanRecord> }> {
  if (scanId !== null && !isScanId(scanId)) {
    throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${JSON.stringify(safeText(scanId, 40))} (scan ids are numbers)`);
  }
  const id = scanId ?? (await storage.latestScanId());
  if (id === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', 'no scan is stored yet; run `tocsin scan TARGET...` (or `tocsin demo`) first');
  const scan = await storage.store.getScan(id);
  if (scan === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no stored scan with id ${JSON.stringify(safeText(id, 40))}`);
  return { scan, records: storage.store.records(scan.id) };
}

/** What a cancel did (cancelScan). */
export interface CancelResult {
  readonly scanId: string;
  /**
   * `stopping`: its runner (owner) stops it at its next heartbeat, as interrupted, resumable.
   * `not-running`: it was already interrupted (stopped, or its process died): nothing to stop; the request is
   * recorded and the scan stays resumable.
   */
  readonly state: 'stopping' | 'not-running';
  /** The process running it (host, pid), when one is recorded. */
  readonly runner: { readonly host: string; readonly pid: number } | null;
  /** Who is recorded as cancelling: `by`, or whoever asked first when a request was already pending. */
  readonly by: string;
  /** True when an earlier request was pending (this one changed nothing). */
  readonly alreadyRequested: boolean;
}

/**
 * Cancels a stored scan that any process (this one, another, on another host) runs: records the request,
 * which the runner's heartbeat reads. Returns at once, without waiting for the runner. A scan that ended
 * is TOCSIN_SCAN_NOT_RUNNING; an unknown id TOCSIN_SCAN_NOT_FOUND. `by` names who asked (a user, an API
 * client); it is stored and shown as "cancelled by <by>".
 */
export async function cancelScan(storage: ScanStorage, scanId: string, o: { readonly by: string }): Promise<CancelResult> {
  if (!isScanId(scanId)) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${JSON.stringify(safeText(scanId, 40))} (scan ids are numbers)`);
  // Stored and later printed on terminals: no control characters, bounded.
  const by = safeText(o.by.trim(), 200);
  if (by === '') throw new TocsinError('TOCSIN_ARG_INVALID', 'a cancel must say who asked for it (by)');
  const r = await storage.requestCancel(scanId, by);
  if (r.kind === 'not-found') throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no stored scan with id ${JSON.stringify(safeText(scanId, 40))}`);
  if (r.kind === 'ended') throw new TocsinError('TOCSIN_SCAN_NOT_RUNNING', `scan ${parseScanId(scanId) ?? scanId} is ${r.status}: there is nothing to cancel`);
  return {
    scanId: String(parseScanId(scanId) ?? scanId),
    state: r.status === 'running' ? 'stopping' : 'not-running',
    runner: r.owner,
    by: r.by,
    alreadyRequested: r.previousBy !== null,
  };
}

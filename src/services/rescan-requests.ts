/**
 * Verification rescans (issue 10 §4): an organisation asks us to scan its own exposed services again after it
 * patched; the REAL scanner runs on exactly those ip:port pairs (the configured exclusions, rates and limits of any
 * scan apply), the findings are folded, and the result closes them (patched build seen, service gone) or keeps them
 * (still vulnerable; unreachable is never "fixed").
 *
 * Two halves that share only the table (migration 0018):
 * - `requestRescan` (the web API): checks that every asked address is one of the caller's organisation's own
 *   exposures (refused as a whole otherwise, naming none of them: the refusal must not tell which addresses belong
 *   to someone else), applies the per-organisation limits (one pending at a time, `maxPerDay` a day) and inserts a row;
 * - the runner (`runNextRescan`, `startRescanRunner`; `tocsin serve` runs one in-process, the job engine of issue
 *   11 will take the same rows): claims the oldest queued row (SKIP LOCKED), scans, folds, records the outcome.
 */
import { Readable } from 'node:stream';
import { hostname } from 'node:os';
import { TocsinError } from '../core/errors.js';
import type { TocsinConfig } from '../core/config.js';
import { normalizeIp } from '../core/ip.js';
import { sanitiseText } from '../core/text.js';
import type { Database } from '../platform/db/connect.js';
import {
  claimNextRescan, finishRescan, findingsOfOrg, lastPortSpecs, queueRescan, requeueRescan, rescanById, rescanOutcome, rescansOfOrg,
  type RescanRow, type RescanTarget,
} from '../platform/db/rescan-store.js';
import { formatPorts, parsePorts } from '../scan/port-spec.js';
import type { AccountsDb } from './accounts.js';
import { exposureFilter, listExposures } from './exposures.js';
import { foldFindings } from './findings.js';
import { planScan, startScan, type RecordSink, type ScanOutput } from './scan-service.js';
import { scanStorageOn } from './scan-storage.js';

export type { RescanRow, RescanTarget };

/** Per-organisation limits of verification rescans. */
export interface RescanLimits {
  /** Requests per organisation in any 24 hours (default 6). */
  readonly maxPerDay: number;
  /** ip:port pairs in one request (default 256: an organisation with more asks an analyst). */
  readonly maxTargets: number;
}

export const DEFAULT_RESCAN_LIMITS: RescanLimits = { maxPerDay: 6, maxTargets: 256 };

/** Refused by the limits: TOCSIN_RESCAN_THROTTLED (429) with the seconds to wait (the API's Retry-After). */
export class RescanThrottledError extends TocsinError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super('TOCSIN_RESCAN_THROTTLED', message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** How long a client is told to wait while a request is pending: about one runner poll and a small scan. */
const PENDING_RETRY_SECONDS = 60;

/** The organisation the request is for (decided from the caller, never from input) and who asked. */
export interface RescanRequester {
  readonly orgId: number;
  readonly org: string;
  readonly userId: number;
  readonly email: string;
}

/** A request as the API shows it (a published shape). */
export interface RescanView {
  readonly id: number;
  readonly status: RescanRow['status'];
  readonly targets: readonly RescanTarget[];
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly scanIds: readonly number[];
  /** Findings among the targets that the rescan closed, and those still open after it (null until done). */
  readonly closed: number | null;
  readonly stillOpen: number | null;
  readonly error: string | null;
}

export function rescanView(r: RescanRow): RescanView {
  return {
    id: r.id, status: r.status, targets: r.targets, requestedBy: r.requestedBy, requestedAt: r.requestedAt.toISOString(),
    startedAt: r.startedAt?.toISOString() ?? null, finishedAt: r.finishedAt?.toISOString() ?? null, scanIds: r.scanIds,
    closed: r.closed, stillOpen: r.stillOpen, error: r.error,
  };
}

/** The organisation's exposed services (ip:port) as stored now, and which of them have something open. */
async function ownServices(db: AccountsDb, orgId: number, org: string): Promise<{ all: RescanTarget[]; exposed: RescanTarget[] }> {
  const { records } = await listExposures(db, exposureFilter({ org }));
  const open = new Set((await findingsOfOrg(db, orgId)).filter((f) => f.state === 'open' && f.port !== null).map((f) => `${f.ip}|${String(f.port)}`));
  const all: RescanTarget[] = [];
  const exposed: RescanTarget[] = [];
  for await (const r of records) {
    // Defence in depth: the store filtered by organisation; anything else here is a bug and is never scanned.
    if (r.orgId !== orgId) throw new TocsinError('TOCSIN_INTERNAL', 'scoped exposure listing returned another organisation\'s record');
    if (r.port === null) continue;
    const t = { ip: r.ip, port: r.port };
    all.push(t);
    if (r.vulnerable.length > 0 || r.indeterminate.length > 0 || open.has(`${r.ip}|${String(r.port)}`)) exposed.push(t);
  }
  return { all, exposed };
}

/**
 * Queues a verification rescan of `ips` (default: every own service with a vulnerable or undetermined verdict or an
 * open finding). Every address must be one of the organisation's own exposures, else TOCSIN_FORBIDDEN naming none.
 * @throws TocsinError TOCSIN_ARG_INVALID, TOCSIN_FORBIDDEN; RescanThrottledError
 */
export async function requestRescan(db: AccountsDb, who: RescanRequester, ips: readonly string[] | undefined, limits: RescanLimits = DEFAULT_RESCAN_LIMITS): Promise<RescanView> {
  let wanted: Set<string> | null = null;
  if (ips !== undefined) {
    if (ips.length === 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'ips is empty: leave it out to rescan every exposed service');
    wanted = new Set();
    for (const ip of ips) {
      const n = normalizeIp(ip.trim());
      // Not echoed: the answer names no address it was given.
      if (n === null) throw new TocsinError('TOCSIN_ARG_INVALID', 'ips must hold IPv4 or IPv6 addresses only');
      wanted.add(n);
    }
  }
  const { all, exposed } = await ownServices(db, who.orgId, who.org);
  let targets: RescanTarget[];
  if (wanted === null) {
    targets = exposed;
    if (targets.length === 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'your organisation has no exposed service to verify');
  } else {
    const own = new Set(all.map((t) => normalizeIp(t.ip)));
    const foreign = [...wanted].filter((ip) => !own.has(ip)).length;
    if (foreign > 0) {
      throw new TocsinError('TOCSIN_FORBIDDEN', `${foreign} of the ${wanted.size} addresses are not exposures of your organisation; nothing was queued (ask for your own addresses only)`);
    }
    const w = wanted;
    targets = all.filter((t) => w.has(normalizeIp(t.ip) ?? t.ip));
  }
  if (targets.length > limits.maxTargets) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `${targets.length} services in one request; at most ${limits.maxTargets} (name the addresses with ips, or ask an analyst)`);
  }
  const answer = await queueRescan(db, { orgId: who.orgId, userId: who.userId, email: who.email, targets, maxPerDay: limits.maxPerDay });
  if (answer.kind === 'pending') {
    throw new RescanThrottledError(`a verification rescan of your organisation is already pending${answer.pendingId > 0 ? ` (request ${answer.pendingId})` : ''}; ask again when it is done`, PENDING_RETRY_SECONDS);
  }
  if (answer.kind === 'daily') {
    const wait = Math.max(1, Math.ceil((answer.oldest.getTime() + 86_400_000 - Date.now()) / 1000));
    throw new RescanThrottledError(`your organisation asked for ${limits.maxPerDay} verification rescans in the last 24 hours, the most allowed`, wait);
  }
  return rescanView(answer.row);
}

export async function listRescans(db: AccountsDb, orgId: number): Promise<RescanView[]> {
  return (await rescansOfOrg(db, orgId)).map(rescanView);
}

/** Requests read per keyset page by a download. */
export const RESCAN_EXPORT_PAGE = 500;

/**
 * Every request of the organisation (not only the newest 100 listRescans shows), newest first, as a lazy stream of
 * keyset pages filtered by the organisation in the query (a download).
 */
export async function* rescanRecords(db: AccountsDb, orgId: number, pageSize = RESCAN_EXPORT_PAGE): AsyncGenerator<RescanView> {
  let beforeId: number | undefined;
  for (;;) {
    const rows = await rescansOfOrg(db, orgId, pageSize, beforeId);
    for (const r of rows) {
      // Defence in depth: the store filtered by organisation; another one's request here is a bug, never shown.
      if (r.orgId !== orgId) throw new TocsinError('TOCSIN_INTERNAL', 'scoped rescan listing returned another organisation\'s request');
      yield rescanView(r);
    }
    const last = rows[rows.length - 1];
    if (rows.length < pageSize || last === undefined) return;
    beforeId = last.id;
  }
}

// --- The runner.

/** What the runner needs: the open database (its scans are stored there) and the scan settings of the configuration. */
export interface RescanRunnerOptions {
  readonly database: Database;
  readonly config: Pick<TocsinConfig, 'excludeFiles' | 'concurrency' | 'rateLimit' | 'ratePerNetwork' | 'userAgent' | 'workers'>;
  /** How often an idle runner looks for a queued request (default 5 s). */
  readonly pollMs?: number;
  /** Names this runner on the rows it takes (default host:pid). */
  readonly runner?: string;
  /** A request running longer than this is taken to have lost its server (default 60 minutes). */
  readonly staleAfterMinutes?: number;
  /** Per-phase network deadline for the rescan's probes (default: the scanner's). */
  readonly timeoutMs?: number;
  /** Something went wrong outside a request (the database); the loop keeps polling. */
  onError?(e: unknown): void;
  /** A request finished (done or failed). */
  onDone?(r: RescanRow): void;
}

const NULL_SINK: RecordSink = { write: async () => undefined, close: async () => undefined, release: async () => undefined };
/** The rescan's records are stored (that is their use); nothing is written anywhere else. */
const NULL_OUTPUT: ScanOutput = { open: async () => NULL_SINK, replayStored: false };

/** The targets grouped by how their port is scanned ("4443/tls"), as the scan that found them spoke to them. */
async function portGroups(o: RescanRunnerOptions, targets: readonly RescanTarget[]): Promise<Map<string, string[]>> {
  const ports = [...new Set(targets.map((t) => t.port))];
  const stored = await lastPortSpecs(o.database.db, ports);
  const specOf = new Map<number, string>();
  for (const port of ports) {
    const text = stored.get(port);
    let spec = String(port); // never scanned by us (a feed's port): TLS, then plain HTTP
    if (text !== undefined) {
      try {
        const p = parsePorts(text).find((x) => x.port === port);
        if (p !== undefined) spec = formatPorts([p]);
      } catch {
        // a damaged stored plan: keep the default
      }
    }
    specOf.set(port, spec);
  }
  const groups = new Map<string, string[]>();
  for (const t of targets) {
    const spec = specOf.get(t.port) ?? String(t.port);
    groups.set(spec, [...(groups.get(spec) ?? []), t.ip]);
  }
  return groups;
}

function failureText(e: unknown): string {
  const text = e instanceof TocsinError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  return sanitiseText(text, { max: 300 });
}

/**
 * Takes the oldest queued request and runs it to the end. Returns the finished row, or null when nothing was
 * queued. When `signal` aborts mid-scan, the request goes back to the queue (another runner, or this one after a
 * restart, runs it again) and null is returned.
 */
export async function runNextRescan(o: RescanRunnerOptions, signal: AbortSignal = new AbortController().signal): Promise<RescanRow | null> {
  const db = o.database.db;
  const row = await claimNextRescan(db, o.runner ?? `${hostname()}:${process.pid}`, o.staleAfterMinutes ?? 60);
  if (row === null) return null;
  const scanIds: number[] = [];
  try {
    for (const [spec, ips] of await portGroups(o, row.targets)) {
      // What `tocsin scan IP... --ports SPEC` plans with the configured exclusions, rates and limits.
      const plan = await planScan({
        targets: ips, ports: spec, excludeFiles: o.config.excludeFiles, exclude: [], concurrency: o.config.concurrency,
        rate: o.config.rateLimit, ratePerNetwork: o.config.ratePerNetwork, userAgent: o.config.userAgent,
        ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
      }, { stdin: Readable.from([]) });
      const result = await startScan(plan, {
        storage: { open: async () => scanStorageOn(o.database, { ownsDatabase: false }), explainFailure: (e) => e },
        output: NULL_OUTPUT,
        signal,
        clock: { now: () => Date.now() },
      }, { workers: o.config.workers });
      if (result.scanId !== null) scanIds.push(Number(result.scanId));
      if (result.status === 'interrupted') {
        if (signal.aborted) {
          await requeueRescan(db, row.id);
          return null;
        }
        throw new Error(`the rescan's scan was cancelled${result.cancelledBy === null ? '' : ` by ${result.cancelledBy}`}`);
      }
    }
    // The fold may defer new evidence while a long import holds the tables: try again before counting.
    for (let i = 0; i < 5; i++) {
      const fold = await foldFindings(db, { who: `rescan ${row.id}` });
      if (!fold.deferred) break;
    }
    // Closed by this rescan: at or after its start (a few seconds of slack for the two clocks: ours, the server's).
    const since = new Date((row.startedAt ?? new Date()).getTime() - 5_000);
    const outcome = await rescanOutcome(db, row.targets, since);
    await finishRescan(db, row.id, { status: 'done', scanIds, closed: outcome.closed, stillOpen: outcome.stillOpen, error: null });
  } catch (e) {
    await finishRescan(db, row.id, { status: 'failed', scanIds, closed: null, stillOpen: null, error: failureText(e) });
  }
  const done = await rescanById(db, row.id);
  if (done !== null) o.onDone?.(done);
  return done;
}

export interface RescanRunner {
  /** Stops polling; a running request is put back in the queue. Resolves once the loop has ended. */
  stop(): Promise<void>;
}

/** Polls for queued requests and runs them one at a time until stopped (what `tocsin serve` runs in-process). */
export function startRescanRunner(o: RescanRunnerOptions): RescanRunner {
  const ac = new AbortController();
  let wake: (() => void) | null = null;
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(t);
      resolve();
    };
  });
  const loop = (async () => {
    while (!ac.signal.aborted) {
      let ran = false;
      try {
        ran = (await runNextRescan(o, ac.signal)) !== null;
      } catch (e) {
        if (!ac.signal.aborted) o.onError?.(e);
      }
      // Another request may be queued behind the one just run: look again at once.
      if (!ran && !ac.signal.aborted) await sleep(o.pollMs ?? 5_000);
    }
  })();
  return {
    stop: async () => {
      ac.abort('the server is stopping');
      (wake as (() => void) | null)?.();
      await loop;
    },
  };
}

/**
 * Is a stored scan still running? (migration 0002)
 *
 * The process running a scan is its owner: host name + pid, written when it creates or resumes the scan,
 * and a heartbeat (heartbeat_at = the database's now()) refreshed every HEARTBEAT_MS. A scan stored as
 * `running` is shown as `interrupted` when its owner is gone:
 * - on this host, the owner's pid is not alive (kill -9, a closed terminal): seen at once;
 * - anywhere, the heartbeat is older than STALE_MS (another host's process died, or a pid was reused).
 * A clean stop (SIGINT/SIGTERM, a closed stdout) and a storage failure write `interrupted` themselves when
 * the database still takes the write. Times are the database's, so clocks of several hosts do not matter.
 */
import { hostname } from 'node:os';
import { sql, type Kysely } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import { isAlive } from './os.js';
import type { DbSchema, ScanStatus } from './schema.js';
import { parseScanId } from './scan-store.js';

/** How often the owner refreshes its heartbeat. */
export const HEARTBEAT_MS = 5_000;
/** A heartbeat older than this means the owner is gone (12 missed beats: a busy event loop is not death). */
export const STALE_MS = 60_000;

export interface ScanOwner {
  readonly host: string;
  readonly pid: number;
}

export function currentOwner(): ScanOwner {
  return { host: hostname(), pid: process.pid };
}

/** What a reader needs to decide; heartbeatAgeMs is measured by the database (null: never beat). */
export interface LivenessFacts {
  readonly status: ScanStatus;
  readonly ownerHost: string | null;
  readonly ownerPid: number | null;
  readonly heartbeatAgeMs: number | null;
  /** Age of the scan itself (for scans stored before migration 0002, which have no heartbeat). */
  readonly startedAgeMs: number;
}

/**
 * The status to show: a `running` scan whose owner is gone is `interrupted`. Pure but for `alive`
 * (defaults to a signal-0 probe of the pid, meaningful only for owners on this host).
 */
export function liveStatus(f: LivenessFacts, here: string = hostname(), alive: (pid: number) => boolean = isAlive): ScanStatus {
  if (f.status !== 'running') return f.status;
  if (f.ownerHost === here && f.ownerPid !== null && f.ownerPid !== process.pid && !alive(f.ownerPid)) return 'interrupted';
  const age = f.heartbeatAgeMs ?? f.startedAgeMs;
  return age > STALE_MS ? 'interrupted' : 'running';
}

/** SQL columns that give LivenessFacts for `scans s` (append to a SELECT list). */
export const LIVENESS_COLUMNS = sql`s.owner_host, s.owner_pid,
  (extract(epoch FROM now() - s.heartbeat_at) * 1000)::float8 AS heartbeat_age_ms,
  (extract(epoch FROM now() - s.started_at) * 1000)::float8 AS started_age_ms`;

export interface LivenessRow {
  readonly status: ScanStatus;
  readonly owner_host: string | null;
  readonly owner_pid: number | null;
  readonly heartbeat_age_ms: number | null;
  readonly started_age_ms: number;
}

export function liveStatusOfRow(row: LivenessRow): ScanStatus {
  return liveStatus({
    status: row.status,
    ownerHost: row.owner_host,
    ownerPid: row.owner_pid,
    heartbeatAgeMs: row.heartbeat_age_ms,
    startedAgeMs: row.started_age_ms,
  });
}

/**
 * Make this process the owner of a scan it is about to run (a new scan, or `--resume`): status becomes
 * `running`, heartbeat now. Refused with TOCSIN_SCAN_BUSY when another live process runs it. The update is
 * a compare-and-swap on what was read, so two resumes racing for one interrupted scan cannot both win.
 */
export async function claimScan(db: Kysely<DbSchema>, scanId: string, owner: ScanOwner = currentOwner()): Promise<void> {
  const n = parseScanId(scanId);
  if (n === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no stored scan with id ${JSON.stringify(scanId)}`);
  // heartbeat_at as text: exact to the microsecond for the compare-and-swap below (a JS Date keeps ms).
  const r = await sql<LivenessRow & { heartbeat: string | null }>`
    SELECT s.status, s.heartbeat_at::text AS heartbeat, ${LIVENESS_COLUMNS} FROM scans s WHERE s.id = ${n}::bigint`.execute(db);
  const row = r.rows[0];
  if (row === undefined) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no stored scan with id ${n}`);
  const ours = row.owner_host === owner.host && row.owner_pid === owner.pid;
  if (!ours && liveStatusOfRow(row) === 'running') throw busy(n, row);
  const updated = await sql`
    UPDATE scans SET status = 'running', owner_host = ${owner.host}, owner_pid = ${owner.pid}, heartbeat_at = now(),
                     finished_at = NULL, interrupted_reason = NULL, cancel_requested_at = NULL, cancel_requested_by = NULL
    WHERE id = ${n}::bigint AND status = ${row.status}
      AND owner_host IS NOT DISTINCT FROM ${row.owner_host}::text AND owner_pid IS NOT DISTINCT FROM ${row.owner_pid}::int
      AND heartbeat_at::text IS NOT DISTINCT FROM ${row.heartbeat}::text`.execute(db);
  if (Number(updated.numAffectedRows ?? 0) !== 1) throw busy(n, row);
}

function busy(id: number, row: LivenessRow): TocsinError {
  const who = row.owner_host === null ? 'another process' : `pid ${row.owner_pid ?? '?'} on ${row.owner_host}`;
  return new TocsinError('TOCSIN_SCAN_BUSY', `scan ${id} is being run by ${who} (heartbeat ${row.heartbeat_age_ms === null ? 'never' : `${Math.round(row.heartbeat_age_ms / 1000)} s ago`})`, {
    details: [`When it has stopped (or ${Math.round(STALE_MS / 1000)} s after it died), finish it with: tocsin scan --resume ${id}`],
  });
}

export interface HeartbeatOptions {
  readonly owner?: ScanOwner;
  /** Default HEARTBEAT_MS; tests beat faster. */
  readonly intervalMs?: number;
  /**
   * Another process asked to cancel the scan (migration 0005): called once, with who asked, from the first
   * beat that sees the request. The runner aborts the scan; the heartbeat keeps beating until stop().
   */
  onCancel?(by: string): void;
}

/**
 * Refresh the heartbeat every intervalMs until stop(), and read a cancel request in the same statement
 * (one round trip per beat whatever the number of readers). Failures are ignored here: a database that is
 * gone fails the scan's next write, which reports it. The timer does not keep the process alive.
 */
export function startHeartbeat(db: Kysely<DbSchema>, scanId: string, o: HeartbeatOptions = {}): { stop(): void } {
  const n = parseScanId(scanId);
  if (n === null) return { stop: () => undefined };
  const owner = o.owner ?? currentOwner();
  let busyBeat = false;
  let stopped = false;
  let cancelSeen = false;
  const timer = setInterval(() => {
    if (busyBeat) return;
    busyBeat = true;
    sql<{ cancel_requested_at: Date | null; cancel_requested_by: string | null }>`
        UPDATE scans SET heartbeat_at = now()
        WHERE id = ${n}::bigint AND status = 'running' AND owner_host = ${owner.host} AND owner_pid = ${owner.pid}
        RETURNING cancel_requested_at, cancel_requested_by`
      .execute(db)
      .then((r) => {
        const row = r.rows[0];
        if (stopped || cancelSeen || row === undefined || row.cancel_requested_at === null) return;
        cancelSeen = true;
        o.onCancel?.(row.cancel_requested_by ?? 'another process');
      })
      .catch(() => undefined)
      .finally(() => {
        busyBeat = false;
      });
  }, o.intervalMs ?? HEARTBEAT_MS);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** What a cancel request found (requestCancel). */
export type CancelRequest =
  | { readonly kind: 'not-found' }
  /** Finished or failed: there is nothing to stop (and nothing is recorded). */
  | { readonly kind: 'ended'; readonly status: ScanStatus }
  /**
   * Recorded. `running`: its runner stops it at its next heartbeat. `interrupted`: nobody runs it (stopped,
   * or its process died); it stays resumable and the request only records who asked.
   * `previousBy`: an earlier request not yet acted on (the first asker stays recorded).
   */
  | {
      readonly kind: 'requested';
      readonly status: 'running' | 'interrupted';
      readonly owner: ScanOwner | null;
      readonly by: string;
      readonly previousBy: string | null;
    };

/**
 * Ask the runner of a scan to cancel it (any process, any host). The request is one UPDATE that keeps an
 * earlier request (who asked first is who cancelled) and refuses a scan that ended meanwhile, so a cancel
 * racing the scan's own finish either lands before it or reports `ended`.
 */
export async function requestCancel(db: Kysely<DbSchema>, scanId: string, by: string): Promise<CancelRequest> {
  const n = parseScanId(scanId);
  if (n === null) return { kind: 'not-found' };
  const who = by.slice(0, 200);
  // now() is the transaction's start: a request stored by an earlier statement is older than it.
  const r = await sql<LivenessRow & { cancel_requested_by: string; earlier: boolean }>`
    UPDATE scans s SET cancel_requested_at = coalesce(s.cancel_requested_at, now()),
                       cancel_requested_by = coalesce(s.cancel_requested_by, ${who}::text)
    WHERE s.id = ${n}::bigint AND s.status IN ('running', 'interrupted')
    RETURNING s.status, s.cancel_requested_by, s.cancel_requested_at < now() AS earlier, ${LIVENESS_COLUMNS}`.execute(db);
  const row = r.rows[0];
  if (row === undefined) {
    const s = await sql<{ status: ScanStatus }>`SELECT status FROM scans WHERE id = ${n}::bigint`.execute(db);
    const status = s.rows[0]?.status;
    if (status === undefined) return { kind: 'not-found' };
    return { kind: 'ended', status };
  }
  const live = liveStatusOfRow(row);
  return {
    kind: 'requested',
    status: live === 'running' ? 'running' : 'interrupted',
    owner: row.owner_host === null || row.owner_pid === null ? null : { host: row.owner_host, pid: row.owner_pid },
    by: row.cancel_requested_by,
    previousBy: row.earlier ? row.cancel_requested_by : null,
  };
}

/**
 * Record that this process stopped running the scan before its end. Only our own `running` scan is
 * changed (a scan another process took over meanwhile is theirs). Gives up after `timeoutMs`: the
 * database may be the thing that failed, and readers detect a dead owner anyway.
 */
export async function markScanInterrupted(db: Kysely<DbSchema>, scanId: string, reason: string, timeoutMs = 3_000, owner: ScanOwner = currentOwner()): Promise<boolean> {
  const n = parseScanId(scanId);
  if (n === null) return false;
  const write = sql`
    UPDATE scans SET status = 'interrupted', interrupted_reason = ${reason.slice(0, 500)}, heartbeat_at = now()
    WHERE id = ${n}::bigint AND status = 'running' AND owner_host = ${owner.host} AND owner_pid = ${owner.pid}`
    .execute(db)
    .then((r) => Number(r.numAffectedRows ?? 0) === 1, () => false);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([write, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

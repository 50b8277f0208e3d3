/**
 * Distributed scans on PostgreSQL (migration 0019): the blocks of a scan, the workers' heartbeats and leases,
 * and the scan's shared rate bucket. Everything that decides who runs what is one statement or one short
 * transaction, with the database's clock (several hosts' clocks never matter).
 *
 * Exactly once: a block is run by the worker that holds its lease (`leased_by`, `attempts` as a fencing
 * token); a worker whose heartbeat is older than the lease is dead, its blocks are queued again and run by
 * another worker, which reads the attempts already stored in the block's span and skips them (the scan store's
 * resume machinery: doneKeys + idempotent recordBatch on (scan, ip, port)). So a block retried after `kill -9`
 * stores nothing twice, and even a worker that was wrongly presumed dead cannot store a host twice.
 */
import { sql, type Kysely } from 'kysely';
import { attemptKey } from '../../scan/ports.js';
import type { DbSchema, ScanBlockState } from './schema.js';
import { jsonForPostgres } from './scan-store.js';

/** One block as stored: the target texts of whole /24 or /64 networks of one address family. */
export interface BlockSpec {
  readonly targets: readonly string[];
  readonly hosts: number;
  readonly firstIp: string;
  readonly lastIp: string;
}

export interface WorkerIdentity {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly concurrency: number;
}

/** Blocks inserted per statement when a scan is distributed (bounded parameter size). */
const INSERT_CHUNK = 2000;

/**
 * Stores the blocks of a new distributed scan and its rate bucket, and leaves the scan without an owner
 * process: its workers keep its heartbeat, so the scan reads as running while any worker works on it.
 */
export async function createDistribution(
  db: Kysely<DbSchema>, scanId: number, blocks: readonly BlockSpec[], rate: { readonly perSecond: number; readonly burst: number } | null,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < blocks.length; i += INSERT_CHUNK) {
      const rows = blocks.slice(i, i + INSERT_CHUNK).map((b, j) => ({
        block_no: i + j, targets: b.targets, hosts: b.hosts, first_ip: b.firstIp, last_ip: b.lastIp,
      }));
      await sql`
        INSERT INTO scan_blocks (scan_id, block_no, targets, hosts, first_ip, last_ip)
        SELECT ${scanId}::bigint, block_no, targets, hosts, first_ip, last_ip
        FROM jsonb_to_recordset(${jsonForPostgres(rows)}::jsonb)
          AS t (block_no int, targets jsonb, hosts int, first_ip inet, last_ip inet)`.execute(trx);
    }
    if (rate !== null) {
      await trx.insertInto('scan_rate_buckets').values({ scan_id: scanId, per_second: rate.perSecond, burst: rate.burst }).execute();
    }
    await sql`UPDATE scans SET owner_host = NULL, owner_pid = NULL, heartbeat_at = now() WHERE id = ${scanId}::bigint`.execute(trx);
  });
}

export async function registerWorker(db: Kysely<DbSchema>, w: WorkerIdentity): Promise<void> {
  await db.insertInto('scan_workers').values({ id: w.id, host: w.host, pid: w.pid, concurrency: w.concurrency }).execute();
}

/** The job engine's worker ids of this process (what a reaper unlocks when this process dies). */
export async function setQueueWorkerIds(db: Kysely<DbSchema>, id: string, queueWorkerIds: readonly string[]): Promise<void> {
  await db.updateTable('scan_workers').set({ queue_worker_ids: [...queueWorkerIds] }).where('id', '=', id).execute();
}

/** What a heartbeat learnt: whether this worker still holds its lease, and the cancel requests of its scans. */
export interface Beat {
  readonly alive: boolean;
  readonly cancelled: ReadonlyArray<{ readonly scanId: number; readonly by: string }>;
}

/**
 * Refreshes this worker's heartbeat and the heartbeat of the scans it is running (so `tocsin report --scans`
 * shows them running), and reads their cancel requests. `alive` false: the row is gone, another worker
 * declared this one dead and requeued its blocks: it must stop them at once (fencing).
 */
export async function beat(db: Kysely<DbSchema>, id: string, scanIds: readonly number[]): Promise<Beat> {
  const w = await sql<{ id: string }>`UPDATE scan_workers SET heartbeat_at = now() WHERE id = ${id} RETURNING id`.execute(db);
  if (w.rows.length === 0) return { alive: false, cancelled: [] };
  if (scanIds.length === 0) return { alive: true, cancelled: [] };
  // A cancel is read whatever the status: another worker (or the waiting client) may have applied it already.
  const s = await sql<{ id: number; cancel_requested_by: string | null }>`
    WITH beat AS (UPDATE scans SET heartbeat_at = now() WHERE id = ANY(${[...scanIds]}::bigint[]) AND status = 'running')
    SELECT id, cancel_requested_by FROM scans WHERE id = ANY(${[...scanIds]}::bigint[]) AND cancel_requested_by IS NOT NULL`.execute(db);
  return {
    alive: true,
    cancelled: s.rows.filter((r) => r.cancel_requested_by !== null).map((r) => ({ scanId: r.id, by: r.cancel_requested_by ?? '' })),
  };
}

/** Workers whose heartbeat is older than the lease, with their job engine ids. */
export async function deadWorkers(db: Kysely<DbSchema>, leaseSeconds: number): Promise<Array<{ readonly id: string; readonly queueWorkerIds: readonly string[] }>> {
  const r = await sql<{ id: string; queue_worker_ids: string[] }>`
    SELECT id, queue_worker_ids FROM scan_workers WHERE heartbeat_at < now() - make_interval(secs => ${leaseSeconds}::float8)`.execute(db);
  return r.rows.map((x) => ({ id: x.id, queueWorkerIds: x.queue_worker_ids }));
}

/**
 * Forgets dead workers (after their queue jobs were unlocked): their running blocks go back to `queued`.
 * Also requeues running blocks whose worker row is gone (a worker that unregistered while it was cut off).
 * Returns the blocks requeued.
 */
export async function reapWorkers(db: Kysely<DbSchema>, ids: readonly string[], leaseSeconds: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    // Only rows still stale: a worker that came back meanwhile keeps its lease.
    const gone = await sql<{ id: string }>`
      DELETE FROM scan_workers WHERE id = ANY(${[...ids]}::text[]) AND heartbeat_at < now() - make_interval(secs => ${leaseSeconds}::float8)
      RETURNING id`.execute(trx);
    const dead = gone.rows.map((x) => x.id);
    const r = await sql`
      UPDATE scan_blocks SET state = 'queued', leased_by = NULL, leased_at = NULL
      WHERE state = 'running' AND (leased_by = ANY(${dead}::text[]) OR NOT EXISTS (SELECT 1 FROM scan_workers w WHERE w.id = leased_by))`.execute(trx);
    return Number(r.numAffectedRows ?? 0);
  });
}

/** A clean stop: the worker's row goes and its running blocks are queued again for the others. */
export async function unregisterWorker(db: Kysely<DbSchema>, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`UPDATE scan_blocks SET state = 'queued', leased_by = NULL, leased_at = NULL WHERE state = 'running' AND leased_by = ${id}`.execute(trx);
    await sql`DELETE FROM scan_workers WHERE id = ${id}`.execute(trx);
  });
}

export type Claim =
  | { readonly kind: 'claimed'; readonly attempt: number; readonly block: BlockSpec }
  /** Nothing to do: done, cancelled, or its scan is gone. */
  | { readonly kind: 'settled'; readonly state: ScanBlockState | 'missing' }
  /** Another live worker holds it (cannot happen through the queue; reported so the job is retried later). */
  | { readonly kind: 'busy'; readonly by: string };

/**
 * Takes the lease of a block: one compare-and-swap, so one block is never run by two live workers at once.
 * A running block whose worker is dead (no row or a stale heartbeat) may be taken over; `attempt` (the new
 * attempt count) is the fencing token finishBlock and releaseBlock check. A scan with a cancel request gets its
 * open blocks cancelled here (the request may have come while no worker ran it).
 */
export async function claimBlock(db: Kysely<DbSchema>, scanId: number, blockNo: number, workerId: string, leaseSeconds: number): Promise<Claim> {
  const cancel = await sql<{ cancel_requested_by: string | null; status: string }>`
    SELECT cancel_requested_by, status FROM scans WHERE id = ${scanId}::bigint`.execute(db);
  const scan = cancel.rows[0];
  if (scan === undefined) return { kind: 'settled', state: 'missing' };
  if (scan.cancel_requested_by !== null) {
    await cancelDistributed(db, scanId, scan.cancel_requested_by);
    return { kind: 'settled', state: 'cancelled' };
  }
  const r = await sql<{ attempts: number; targets: string[]; hosts: number; first_ip: string; last_ip: string }>`
    UPDATE scan_blocks b SET state = 'running', leased_by = ${workerId}, leased_at = now(), attempts = b.attempts + 1
    WHERE b.scan_id = ${scanId}::bigint AND b.block_no = ${blockNo}::int
      AND (b.state = 'queued'
           OR (b.state = 'running' AND NOT EXISTS (
                 SELECT 1 FROM scan_workers w
                 WHERE w.id = b.leased_by AND w.heartbeat_at >= now() - make_interval(secs => ${leaseSeconds}::float8))))
    RETURNING b.attempts, b.targets, b.hosts, host(b.first_ip) AS first_ip, host(b.last_ip) AS last_ip`.execute(db);
  const row = r.rows[0];
  if (row !== undefined) {
    // A scan another worker already marked interrupted (e.g. a resume took it over) is running again now.
    await sql`UPDATE scans SET heartbeat_at = now() WHERE id = ${scanId}::bigint AND status = 'running'`.execute(db);
    const block = { targets: row.targets, hosts: row.hosts, firstIp: row.first_ip, lastIp: row.last_ip };
    return { kind: 'claimed', attempt: row.attempts, block };
  }
  const s = await sql<{ state: ScanBlockState; leased_by: string | null }>`
    SELECT state, leased_by FROM scan_blocks WHERE scan_id = ${scanId}::bigint AND block_no = ${blockNo}::int`.execute(db);
  const cur = s.rows[0];
  if (cur === undefined) return { kind: 'settled', state: 'missing' };
  if (cur.state === 'running') return { kind: 'busy', by: cur.leased_by ?? '?' };
  return { kind: 'settled', state: cur.state };
}

/**
 * The block is done (every attempt stored). Only the lease holder with the same attempt may say so; the
 * scan is finished in the same transaction when no block is left open (the scan row is locked first, so two
 * workers finishing the last two blocks at once cannot both miss the end). `lost`: the lease was taken over.
 */
export async function finishBlock(db: Kysely<DbSchema>, scanId: number, blockNo: number, workerId: string, attempt: number): Promise<{ readonly lost: boolean; readonly scanFinished: boolean }> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT id FROM scans WHERE id = ${scanId}::bigint FOR UPDATE`.execute(trx);
    const r = await sql`
      UPDATE scan_blocks SET state = 'done', finished_at = now(), leased_by = NULL
      WHERE scan_id = ${scanId}::bigint AND block_no = ${blockNo}::int AND state = 'running'
        AND leased_by = ${workerId} AND attempts = ${attempt}::int`.execute(trx);
    const lost = Number(r.numAffectedRows ?? 0) !== 1;
    const f = await sql`
      UPDATE scans SET status = 'finished', finished_at = now(), heartbeat_at = now()
      WHERE id = ${scanId}::bigint AND status IN ('running', 'interrupted') AND cancel_requested_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM scan_blocks WHERE scan_id = ${scanId}::bigint AND state <> 'done')`.execute(trx);
    return { lost, scanFinished: Number(f.numAffectedRows ?? 0) === 1 };
  });
}

/** Gives a block back (clean shutdown, a failure): queued again for any worker, if this worker still holds it. */
export async function releaseBlock(db: Kysely<DbSchema>, scanId: number, blockNo: number, workerId: string, attempt: number): Promise<void> {
  await sql`
    UPDATE scan_blocks SET state = 'queued', leased_by = NULL, leased_at = NULL
    WHERE scan_id = ${scanId}::bigint AND block_no = ${blockNo}::int AND state = 'running'
      AND leased_by = ${workerId} AND attempts = ${attempt}::int`.execute(db);
}

/**
 * A cancel request was seen: every block not done is cancelled (running ones stop at their worker's next
 * heartbeat) and the scan is interrupted with who asked. Idempotent. `tocsin scan --resume ID` finishes it.
 */
export async function cancelDistributed(db: Kysely<DbSchema>, scanId: number, by: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`UPDATE scan_blocks SET state = 'cancelled', leased_by = NULL, finished_at = now() WHERE scan_id = ${scanId}::bigint AND state IN ('queued', 'running')`.execute(trx);
    await sql`
      UPDATE scans SET status = 'interrupted', interrupted_reason = ${`cancelled by ${by}`.slice(0, 500)}, heartbeat_at = now()
      WHERE id = ${scanId}::bigint AND status = 'running'`.execute(trx);
  });
}

/** Keys "ip|port" already stored (and not unanswered) within a block's span: what a retried block skips. */
export async function doneKeysInSpan(db: Kysely<DbSchema>, scanId: number, firstIp: string, lastIp: string): Promise<Set<string>> {
  const r = await sql<{ ip: string; port: number }>`
    SELECT host(ip) AS ip, port FROM scan_attempts
    WHERE scan_id = ${scanId}::bigint AND ip >= ${firstIp}::inet AND ip <= ${lastIp}::inet AND NOT unanswered`.execute(db);
  return new Set(r.rows.map((x) => attemptKey(x.ip, x.port)));
}

/**
 * Reserves `n` consecutive slots of the scan's shared rate bucket (GCRA: slots are 1/rate apart across all
 * workers; up to `burst` slots may lie in the past). One UPDATE ... RETURNING per batch. Returns when the
 * first slot is due (ms from the database's now, may be negative within the burst) and the spacing; null
 * when the scan has no overall rate.
 */
export async function reserveSlots(db: Kysely<DbSchema>, scanId: number, n: number): Promise<{ readonly firstInMs: number; readonly intervalMs: number } | null> {
  const r = await sql<{ first_ms: number; per_second: number }>`
    UPDATE scan_rate_buckets
    SET tat = greatest(tat, now() - make_interval(secs => (burst - 1) / per_second)) + make_interval(secs => ${n}::int / per_second)
    WHERE scan_id = ${scanId}::bigint
    RETURNING (extract(epoch FROM (tat - now())) * 1000 - ${n}::int * 1000 / per_second)::float8 AS first_ms, per_second`.execute(db);
  const row = r.rows[0];
  if (row === undefined) return null;
  return { firstInMs: row.first_ms, intervalMs: 1000 / row.per_second };
}

/** Does the scan have blocks (it was started with --distributed)? */
export async function isDistributed(db: Kysely<DbSchema>, scanId: number): Promise<boolean> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_blocks WHERE scan_id = ${scanId}::bigint`.execute(db);
  return (r.rows[0]?.n ?? 0) > 0;
}

export interface DistributedProgress {
  readonly status: string;
  readonly interruptedReason: string | null;
  readonly cancelledBy: string | null;
  readonly blocks: Readonly<Record<ScanBlockState, number>>;
  /** Addresses in the plan (sum over blocks). */
  readonly hosts: number;
  /** Attempts stored (any outcome), answered, unanswered, excluded. */
  readonly stored: number;
  readonly answered: number;
  readonly unanswered: number;
  readonly excluded: number;
  /** Observations identified as any registered product (the store knows no product by name). */
  readonly identified: number;
  readonly vulnerable: number;
  /** Attempts stored in the last minute. */
  readonly lastMinute: number;
}

export async function distributedProgress(db: Kysely<DbSchema>, scanId: number): Promise<DistributedProgress | null> {
  const s = await sql<{ status: string; interrupted_reason: string | null; cancel_requested_by: string | null }>`
    SELECT status, interrupted_reason, cancel_requested_by FROM scans WHERE id = ${scanId}::bigint`.execute(db);
  const scan = s.rows[0];
  if (scan === undefined) return null;
  const b = await sql<{ state: ScanBlockState; n: number; hosts: number }>`
    SELECT state, count(*)::int AS n, coalesce(sum(hosts), 0)::int AS hosts FROM scan_blocks WHERE scan_id = ${scanId}::bigint GROUP BY state`.execute(db);
  const blocks: Record<ScanBlockState, number> = { queued: 0, running: 0, done: 0, cancelled: 0 };
  let hosts = 0;
  for (const x of b.rows) {
    blocks[x.state] = x.n;
    hosts += x.hosts;
  }
  const a = await sql<{ stored: number; answered: number; unanswered: number; excluded: number; last_minute: number }>`
    SELECT count(*)::int AS stored,
           count(*) FILTER (WHERE outcome = 'answered')::int AS answered,
           count(*) FILTER (WHERE unanswered)::int AS unanswered,
           count(*) FILTER (WHERE outcome = 'excluded')::int AS excluded,
           count(*) FILTER (WHERE attempted_at > now() - interval '60 seconds')::int AS last_minute
    FROM scan_attempts WHERE scan_id = ${scanId}::bigint`.execute(db);
  const o = await sql<{ identified: number; vulnerable: number }>`
    SELECT count(*) FILTER (WHERE o.product IS NOT NULL)::int AS identified,
           count(*) FILTER (WHERE cardinality(a.vulnerable) > 0)::int AS vulnerable
    FROM observations o
    LEFT JOIN LATERAL (SELECT vulnerable FROM assessments WHERE observation_id = o.id ORDER BY id DESC LIMIT 1) a ON TRUE
    WHERE o.scan_id = ${scanId}::bigint`.execute(db);
  const c = a.rows[0];
  return {
    status: scan.status,
    interruptedReason: scan.interrupted_reason,
    cancelledBy: scan.cancel_requested_by,
    blocks,
    hosts,
    stored: c?.stored ?? 0,
    answered: c?.answered ?? 0,
    unanswered: c?.unanswered ?? 0,
    excluded: c?.excluded ?? 0,
    identified: o.rows[0]?.identified ?? 0,
    vulnerable: o.rows[0]?.vulnerable ?? 0,
    lastMinute: c?.last_minute ?? 0,
  };
}

export interface WorkerRow {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly concurrency: number;
  readonly heartbeatAgeMs: number;
  readonly startedAt: Date;
  readonly blocksRunning: number;
}

export async function listWorkers(db: Kysely<DbSchema>): Promise<WorkerRow[]> {
  const r = await sql<{ id: string; host: string; pid: number; concurrency: number; age_ms: number; started_at: Date; running: number }>`
    SELECT w.id, w.host, w.pid, w.concurrency, (extract(epoch FROM now() - w.heartbeat_at) * 1000)::float8 AS age_ms, w.started_at,
           (SELECT count(*)::int FROM scan_blocks b WHERE b.state = 'running' AND b.leased_by = w.id) AS running
    FROM scan_workers w ORDER BY w.started_at, w.id`.execute(db);
  return r.rows.map((x) => ({ id: x.id, host: x.host, pid: x.pid, concurrency: x.concurrency, heartbeatAgeMs: x.age_ms, startedAt: x.started_at, blocksRunning: x.running }));
}

/** Distributed scans with blocks still open, plus those that ended in the last `recentMinutes`. */
export async function activeDistributedScans(db: Kysely<DbSchema>, recentMinutes = 10): Promise<number[]> {
  const r = await sql<{ id: number }>`
    SELECT s.id FROM scans s
    WHERE EXISTS (SELECT 1 FROM scan_blocks b WHERE b.scan_id = s.id
                  AND (b.state IN ('queued', 'running') OR b.finished_at > now() - make_interval(mins => ${recentMinutes}::int)))
    ORDER BY s.id`.execute(db);
  return r.rows.map((x) => x.id);
}

/**
 * Blocks given back (released or requeued from a dead worker: attempts > 0) that wait in `queued` in a running
 * scan: their queue job is added again (the queue keeps one per block key), so a job lost or delayed by the
 * queue's back-off never strands a block.
 */
export async function requeuedBlocks(db: Kysely<DbSchema>, limit = 1000): Promise<Array<{ readonly scanId: number; readonly blockNo: number }>> {
  const r = await sql<{ scan_id: number; block_no: number }>`
    SELECT b.scan_id, b.block_no FROM scan_blocks b JOIN scans s ON s.id = b.scan_id
    WHERE b.state = 'queued' AND b.attempts > 0 AND s.status = 'running' AND s.cancel_requested_at IS NULL
    ORDER BY b.scan_id, b.block_no LIMIT ${limit}::int`.execute(db);
  return r.rows.map((x) => ({ scanId: x.scan_id, blockNo: x.block_no }));
}

/** Blocks queued or running in any scan: `tocsin worker --once` exits when none is left. */
export async function openBlockCount(db: Kysely<DbSchema>): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_blocks WHERE state IN ('queued', 'running')`.execute(db);
  return r.rows[0]?.n ?? 0;
}

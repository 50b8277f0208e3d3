/**
 * Findings in PostgreSQL (migration 0009): the incremental, set-based fold of assessments, scan attempts and
 * feed rows into findings and their events, and the reads and analyst writes the CLI, campaigns and the API use.
 *
 * The fold applies the rules of src/findings/lifecycle.ts (`step`) in SQL, a batch of new evidence at a time:
 * 1. Evidence newer than the cursors (findings_fold_state) goes into a temporary table, one row per
 *    (ip, port) and time: an assessed observation (its latest assessment only), a refused (or answered but
 *    unassessed) attempt of a scan, a compromised feed row (host level, port key -1). Each row is ranked within its
 *    (ip, port) by time.
 * 2. Rank by rank (usually one: one scan per fold), the evidence is applied to the current findings of its
 *    (ip, port) (one UPDATE and one INSERT of events for all of them), then the CVEs seen without a current
 *    finding open new ones (one INSERT ... RETURNING feeding the `opened` events). Ranks keep every
 *    intermediate transition (closed at day 10, reopened at day 30) when several scans are folded at once.
 * 3. The cursors move in the same transaction: a crash leaves nothing half-folded, and a second fold with
 *    nothing new writes nothing.
 * Owner changes (attributions, refreshed by the service first) and expired analyst closures are swept after.
 * Folds are serialised by an advisory lock (two processes folding at once would open a CVE twice).
 *
 * Cursors are ids, and ids are handed out at insert time, not commit time: a writer still open while a fold reads
 * (a scan batch, a feed import) could commit ids below ones already folded, and those rows would never be folded.
 * So the fold first fixes its upper bounds in a short transaction that takes SHARE locks on the three tables: the
 * lock waits until every writer holding ids at or below the bounds has committed (or rolled back), and new writers
 * get higher ids. The lock is held for two max(id) reads only, with a short lock_timeout: a pending SHARE request
 * queues every new writer behind it, so the fold must not wait long on a long import. When it cannot get the lock in
 * time it folds nothing new (`deferred`), the cursors stay, and the next fold picks the rows up.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import {
  COMPROMISED,
  REOPEN_WINDOW_DAYS,
  checkAnalystClose,
  checkAnalystReopen,
  type CloseReason,
  type FindingEventKind,
  type FindingSnapshot,
  type FindingState,
  type FindingVerdict,
} from '../../findings/index.js';
import type { DbSchema, Json } from './schema.js';
import { jsonForPostgres } from './scan-store.js';

type Executor = Kysely<DbSchema>;

/** Advisory lock key of the fold ("tocsin-findings-fold"). */
const FOLD_LOCK = 0x7f1d_0009;
/**
 * Assessments (and as many attempts and feed rows) per fold transaction: ~10 findings each. Each batch costs a
 * fixed ~0.5 s (temporary tables, their ANALYZE); 50,000 keeps that small and the temporary tables within work_mem.
 */
export const DEFAULT_FOLD_BATCH = 50_000;

export interface FoldOptions {
  /** The fold's clock: expiries are judged at this time, and sweeps stamp their events with it. */
  readonly now: Date;
  /** Who the fold's events name. */
  readonly who: string;
  readonly batchSize?: number;
}

export interface FoldCounts {
  readonly evidence: number;
  readonly opened: number;
  readonly closed: number;
  readonly reopened: number;
  readonly events: number;
  readonly ownerChanged: number;
  readonly batches: number;
  /** Writers held the evidence tables past the lock timeout: new evidence was left for the next fold. */
  readonly deferred: boolean;
}

/** How long the fold waits for writers to finish before deferring new evidence to the next fold. */
const BOUNDS_LOCK_TIMEOUT = '3s';

interface Bounds {
  readonly a: number;
  readonly t: number;
  readonly f: number;
}

/** Upper ids such that every row at or below them is committed (see the header comment); null when deferred. */
async function committedBounds(db: Executor): Promise<Bounds | null> {
  try {
    return await db.transaction().execute(async (trx) => {
      await sql`SET LOCAL lock_timeout = ${sql.lit(BOUNDS_LOCK_TIMEOUT)}`.execute(trx);
      // assessments is a view since migration 0028: locking it locks its tables (assessment_rows, verdict_sets).
      await sql`LOCK TABLE assessments, scan_attempts, feed_observations IN SHARE MODE`.execute(trx);
      const r = (await sql<{ a: number | null; t: number | null; f: number | null }>`
        SELECT (SELECT max(id) FROM assessments) AS a, (SELECT max(id) FROM scan_attempts) AS t,
               (SELECT max(id) FROM feed_observations) AS f`.execute(trx)).rows[0];
      return { a: r?.a ?? 0, t: r?.t ?? 0, f: r?.f ?? 0 };
    });
  } catch (e) {
    // 55P03 lock_not_available: a long writer (a feed import runs in one transaction) holds a table.
    if ((e as { code?: unknown }).code === '55P03') return null;
    throw e;
  }
}

interface Cursors {
  readonly last_assessment_id: number;
  readonly last_attempt_id: number;
  readonly last_feed_row_id: number;
}

/** Folds every piece of evidence newer than the cursors, then the owner and expiry sweeps. */
export async function foldEvidence(db: Executor, opts: FoldOptions): Promise<FoldCounts> {
  const batch = opts.batchSize ?? DEFAULT_FOLD_BATCH;
  const bounds = await committedBounds(db);
  const total = { evidence: 0, opened: 0, closed: 0, reopened: 0, events: 0, ownerChanged: 0, batches: 0, deferred: bounds === null };
  for (;;) {
    if (bounds === null) break;
    const r = await db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${FOLD_LOCK})`.execute(trx);
      // A batch hashes ~10 rows per assessment: at the default 4 MB they spilled to disk (tens of MB per batch);
      // JIT compiled every statement for ~50 ms and saved nothing on these plans; the temporary tables' ANALYZE
      // needs row counts and distinct counts, not 30,000-row samples (~0.3 s each per batch at 100).
      // The commit need not wait for its WAL to reach the disk: a batch and its cursors commit together, so a
      // crash that loses the last batches loses nothing the next fold does not fold again (tens of MB of WAL per
      // batch made that wait long on a busy disk).
      await sql`SET LOCAL work_mem = '64MB'`.execute(trx);
      await sql`SET LOCAL jit = off`.execute(trx);
      await sql`SET LOCAL default_statistics_target = 10`.execute(trx);
      await sql`SET LOCAL synchronous_commit = off`.execute(trx);
      return foldBatch(trx, batch, opts.who, bounds);
    });
    if (r === null) break;
    total.batches++;
    total.evidence += r.evidence;
    total.opened += r.opened;
    total.closed += r.closed;
    total.reopened += r.reopened;
    total.events += r.events;
  }
  const sweep = await db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${FOLD_LOCK})`.execute(trx);
    const owner = await sweepOwners(trx, opts);
    const expiry = await sweepExpiries(trx, opts);
    return { owner, expiry };
  });
  total.ownerChanged += sweep.owner.changed;
  total.closed += sweep.owner.closed;
  total.reopened += sweep.owner.reopened + sweep.expiry;
  total.events += sweep.owner.changed + sweep.owner.closed + sweep.owner.reopened + sweep.expiry;
  return total;
}

interface BatchCounts {
  readonly evidence: number;
  readonly opened: number;
  readonly closed: number;
  readonly reopened: number;
  readonly events: number;
}

/** One batch in the caller's transaction; null when there is nothing new. */
async function foldBatch(trx: Transaction<DbSchema>, batch: number, who: string, bounds: Bounds): Promise<BatchCounts | null> {
  const cur = (await sql<Cursors>`
    SELECT last_assessment_id, last_attempt_id, last_feed_row_id FROM findings_fold_state WHERE id = 1 FOR UPDATE`.execute(trx)).rows[0];
  if (cur === undefined) throw new Error('findings_fold_state has no row (migration 0009)');
  const hi = (await sql<{ a: number | null; t: number | null; f: number | null }>`
    SELECT (SELECT max(id) FROM (SELECT id FROM assessments WHERE id > ${cur.last_assessment_id} AND id <= ${bounds.a} ORDER BY id LIMIT ${batch}) x) AS a,
           (SELECT max(id) FROM (SELECT id FROM scan_attempts WHERE id > ${cur.last_attempt_id} AND id <= ${bounds.t} ORDER BY id LIMIT ${batch}) x) AS t,
           (SELECT max(id) FROM (SELECT id FROM feed_observations WHERE id > ${cur.last_feed_row_id} AND id <= ${bounds.f} ORDER BY id LIMIT ${batch}) x) AS f`
    .execute(trx)).rows[0];
  const aHi = hi?.a ?? cur.last_assessment_id;
  const tHi = hi?.t ?? cur.last_attempt_id;
  const fHi = hi?.f ?? cur.last_feed_row_id;
  if (aHi === cur.last_assessment_id && tHi === cur.last_attempt_id && fHi === cur.last_feed_row_id) return null;

  // 1. The batch's evidence, ranked per (ip, port). A reassessment of an old observation counts at that
  // observation's time (so it cannot override a newer observation); only an observation's latest assessment counts.
  await sql`
    CREATE TEMP TABLE fold_ev ON COMMIT DROP AS
    SELECT *, row_number() OVER (PARTITION BY ip, port_key ORDER BY at, kind DESC, observation_id) AS rnk
    FROM (
      SELECT o.ip, o.port AS port_key, o.scanned_at AS at, o.id AS observation_id, 'verdict'::text AS kind,
             CASE WHEN a.fingerprint IS NULL THEN o.product ELSE a.fingerprint->>'product' END AS product,
             (CASE WHEN a.fingerprint IS NULL THEN o.build ELSE a.fingerprint->>'build' END) IS NOT NULL AS build_known,
             o.scan_id IS NOT NULL AS from_scan, a.vulnerable, a.indeterminate
      FROM assessments a JOIN observations o ON o.id = a.observation_id
      WHERE a.id > ${cur.last_assessment_id} AND a.id <= ${aHi}
        AND NOT EXISTS (SELECT 1 FROM assessments b WHERE b.observation_id = a.observation_id AND b.id > a.id)
      UNION ALL
      -- A covering scan found the port closed, or answering with nothing that became an observation.
      SELECT t.ip, t.port, t.attempted_at, NULL, 'gone', NULL, false, true, '{}', '{}'
      FROM scan_attempts t
      WHERE t.id > ${cur.last_attempt_id} AND t.id <= ${tHi}
        AND (t.outcome = 'refused' OR (t.outcome = 'answered' AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.attempt_id = t.id)))
      UNION ALL
      SELECT f.ip, -1, coalesce(f.seen_at, f.report_date::timestamptz), f.observation_id, 'compromised', NULL, false, false, '{}', '{}'
      FROM feed_observations f
      WHERE f.id > ${cur.last_feed_row_id} AND f.id <= ${fHi} AND (f.compromised OR 'webshell' = ANY (f.tags))
    ) e
    -- free after the window's sort; the table is then stored in key order, which the later statements' scans keep
    -- (index locality of the findings they insert and update, no sort of their own)
    ORDER BY ip, port_key`.execute(trx);
  await sql`ANALYZE fold_ev`.execute(trx);
  const ranks = (await sql<{ n: number; r: number | null }>`SELECT count(*)::int AS n, max(rnk)::int AS r FROM fold_ev`.execute(trx)).rows[0];
  const counts = { evidence: ranks?.n ?? 0, opened: 0, closed: 0, reopened: 0, events: 0 };
  await sql`
    CREATE TEMP TABLE fold_seen (ip inet, port_key int, cve text, verdict text, product text, at timestamptz, observation_id bigint)
    ON COMMIT DROP`.execute(trx);
  await sql`
    CREATE TEMP TABLE fold_act (finding_id bigint, ip inet, port_key int, cve text, action text, verdict text, at timestamptz,
                                observation_id bigint)
    ON COMMIT DROP`.execute(trx);
  for (let r = 1; r <= (ranks?.r ?? 0); r++) {
    const c = await foldRank(trx, r, who);
    counts.opened += c.opened;
    counts.closed += c.closed;
    counts.reopened += c.reopened;
    counts.events += c.events;
  }
  await sql`
    UPDATE findings_fold_state SET last_assessment_id = ${aHi}, last_attempt_id = ${tHi}, last_feed_row_id = ${fHi}, folded_at = now()
    WHERE id = 1`.execute(trx);
  return counts;
}

async function foldRank(trx: Transaction<DbSchema>, rank: number, who: string): Promise<BatchCounts> {
  await sql`TRUNCATE fold_seen, fold_act`.execute(trx);
  // The CVEs each piece of evidence shows (vulnerable wins over indeterminate should a list hold both). A rank
  // holds one row per (ip, port), so the duplicates to remove are within one row's lists: deduplicated per row
  // (a sort of ~10 values, memoized across rows with the same lists) instead of one sort of the whole batch.
  await sql`
    INSERT INTO fold_seen (ip, port_key, cve, verdict, product, at, observation_id)
    SELECT e.ip, e.port_key, c.cve, c.verdict, e.product, e.at, e.observation_id
    FROM fold_ev e
    CROSS JOIN LATERAL (
      SELECT DISTINCT ON (u.cve) u.cve, u.verdict FROM (
        SELECT unnest(e.vulnerable) AS cve, 'vulnerable' AS verdict, 1 AS pref
        UNION ALL SELECT unnest(e.indeterminate), 'indeterminate', 2
        UNION ALL SELECT ${COMPROMISED}, 'compromised', 0 WHERE e.kind = 'compromised'
      ) u
      ORDER BY u.cve, u.pref
    ) c
    WHERE e.rnk = ${rank}`.execute(trx);
  await sql`ANALYZE fold_seen`.execute(trx);

  // What the evidence does to each current finding of its (ip, port): lifecycle.ts `effectOn` then `step`. Every
  // current finding of those (ip, port)s gets a row, 'none' included: the opening below needs to know which CVEs
  // have one. The findings are read per evidence row through the unique current key (the lateral subquery with
  // OFFSET 0 is not flattened, so this stays a nested loop of index probes: a merge join walked the key index from
  // its first entry in every batch, and the estimates for coalesce(port, -1) are too poor to leave it to chance).
  await sql`
    INSERT INTO fold_act (finding_id, ip, port_key, cve, action, verdict, at, observation_id)
    SELECT id, ip, port_key, cve, action, verdict, at, observation_id FROM (
      SELECT x.id, x.ip, x.port_key, x.cve, x.verdict, x.at, x.observation_id,
        CASE
          WHEN x.eff = 'none' OR x.late THEN 'none'
          WHEN x.state = 'open' THEN
            CASE x.eff WHEN 'fixed' THEN 'close-patched' WHEN 'gone' THEN 'close-service-gone'
              ELSE CASE WHEN x.verdict = x.old_verdict THEN 'touch' WHEN x.verdict = 'vulnerable' THEN 'verified' ELSE 'changed' END END
          WHEN x.close_reason IN ('false-positive', 'accepted-risk') THEN
            CASE WHEN x.eff = 'seen' AND x.closed_until IS NOT NULL AND x.closed_until <= x.at THEN 'reopen'
                 WHEN x.eff = 'seen' THEN 'touch' ELSE 'absent' END
          WHEN x.eff <> 'seen' THEN 'absent'
          -- out of every organisation's networks still: seen, but it stays closed
          WHEN x.close_reason = 'left-scope' AND x.owner IS NULL THEN 'touch'
          WHEN x.at - coalesce(x.closed_at, x.last_at) <= make_interval(days => ${REOPEN_WINDOW_DAYS}) THEN 'reopen'
          ELSE 'supersede'
        END AS action
      FROM (
        SELECT f.id, e.ip, e.port_key, f.cve, f.state, f.close_reason, f.closed_at, f.closed_until, f.last_at, f.verdict AS old_verdict,
               att.org_id AS owner, s.verdict, e.at, e.observation_id, e.at < f.last_at AS late,
               CASE
                 WHEN s.cve IS NOT NULL THEN 'seen'
                 WHEN f.cve = ${COMPROMISED} OR e.kind = 'compromised' THEN 'none'
                 WHEN e.kind = 'gone' THEN 'gone'
                 WHEN e.product IS DISTINCT FROM f.product THEN CASE WHEN e.from_scan THEN 'gone' ELSE 'none' END
                 WHEN e.build_known THEN 'fixed'
                 ELSE 'none'
               END AS eff
        FROM fold_ev e
        CROSS JOIN LATERAL (
          SELECT f.id, f.cve, f.state, f.close_reason, f.closed_at, f.closed_until, f.last_at, f.verdict, f.product
          FROM findings f WHERE f.current AND f.ip = e.ip AND coalesce(f.port, -1) = e.port_key
          OFFSET 0
        ) f
        LEFT JOIN fold_seen s ON s.ip = e.ip AND s.port_key = e.port_key AND s.cve = f.cve
        LEFT JOIN attributions att ON att.ip = e.ip
        WHERE e.rnk = ${rank}
      ) x
    ) y`.execute(trx);
  await sql`ANALYZE fold_act`.execute(trx);

  const changed = (await sql<{ closed: number; reopened: number }>`
    WITH upd AS (
      UPDATE findings f SET
        state = CASE WHEN a.action LIKE 'close-%' THEN 'closed' WHEN a.action = 'reopen' THEN 'open' ELSE f.state END,
        close_reason = CASE WHEN a.action LIKE 'close-%' THEN substr(a.action, 7) WHEN a.action = 'reopen' THEN NULL ELSE f.close_reason END,
        closed_at = CASE WHEN a.action LIKE 'close-%' THEN a.at WHEN a.action = 'reopen' THEN NULL ELSE f.closed_at END,
        closed_until = CASE WHEN a.action LIKE 'close-%' OR a.action = 'reopen' THEN NULL ELSE f.closed_until END,
        verdict = coalesce(a.verdict, f.verdict),
        present = a.verdict IS NOT NULL,
        last_seen = CASE WHEN a.verdict IS NOT NULL THEN a.at ELSE f.last_seen END,
        last_at = a.at,
        last_observation_id = coalesce(a.observation_id, f.last_observation_id),
        current = a.action <> 'supersede'
      FROM fold_act a WHERE f.id = a.finding_id AND a.action <> 'none'
      RETURNING a.action
    )
    SELECT count(*) FILTER (WHERE action LIKE 'close-%')::int AS closed, count(*) FILTER (WHERE action = 'reopen')::int AS reopened FROM upd`
    .execute(trx)).rows[0];
  const events = (await sql<{ n: number }>`
    WITH ins AS (
      INSERT INTO finding_events (finding_id, kind, at, observation_id, who, detail)
      SELECT finding_id,
             CASE WHEN action LIKE 'close-%' THEN 'closed' WHEN action = 'reopen' THEN 'reopened' ELSE action END,
             at, observation_id, ${who},
             CASE WHEN action LIKE 'close-%' THEN jsonb_build_object('reason', substr(action, 7))
                  WHEN action = 'reopen' THEN jsonb_build_object('reason', 'seen again', 'verdict', verdict)
                  ELSE jsonb_build_object('verdict', verdict) END
      FROM fold_act WHERE action IN ('close-patched', 'close-service-gone', 'reopen', 'verified', 'changed')
      ORDER BY finding_id
      RETURNING 1
    ) SELECT count(*)::int AS n FROM ins`.execute(trx)).rows[0]?.n ?? 0;

  // CVEs seen with no current finding (never seen, or superseded just above): open one each. Which have one is in
  // fold_act (an anti-join of two temporary tables: against findings itself it hashed or walked the whole table
  // per batch, and ON CONFLICT DO NOTHING cost a speculative-insertion record per row). Rows come in key order
  // (fold_ev's), so ids and index insertions follow it without a sort.
  const opened = (await sql<{ n: number }>`
    WITH ins AS (
      INSERT INTO findings (ip, port, cve, product, state, verdict, present, org_id, first_seen, last_seen, last_at,
                            first_observation_id, last_observation_id)
      SELECT s.ip, nullif(s.port_key, -1), s.cve, s.product, 'open', s.verdict, true, att.org_id, s.at, s.at, s.at,
             s.observation_id, s.observation_id
      FROM fold_seen s
      LEFT JOIN attributions att ON att.ip = s.ip
      WHERE NOT EXISTS (SELECT 1 FROM fold_act a WHERE a.ip = s.ip AND a.port_key = s.port_key AND a.cve = s.cve AND a.action <> 'supersede')
      RETURNING id, first_seen, first_observation_id, verdict
    ), ev AS (
      INSERT INTO finding_events (finding_id, kind, at, observation_id, who, detail)
      SELECT id, 'opened', first_seen, first_observation_id, ${who}, NULL FROM ins
    )
    SELECT count(*)::int AS n FROM ins`.execute(trx)).rows[0]?.n ?? 0;
  return { evidence: 0, opened, closed: changed?.closed ?? 0, reopened: changed?.reopened ?? 0, events: events + opened };
}

/**
 * Owner changes: a current finding whose address is now attributed to another organisation (or to none) gets
 * an `owner-changed` event and the new owner; an open one whose address left every organisation's networks is
 * closed `left-scope`; a left-scope one still seen whose address is back in scope is reopened. An address with
 * no stored attribution yet is not a change (nothing is known).
 */
async function sweepOwners(trx: Transaction<DbSchema>, opts: FoldOptions): Promise<{ changed: number; closed: number; reopened: number }> {
  const r = (await sql<{ changed: number; closed: number; reopened: number }>`
    WITH ch AS (
      SELECT f.id, f.org_id AS from_org, a.org_id AS to_org, f.state, f.close_reason, f.present
      FROM findings f JOIN attributions a ON a.ip = f.ip
      WHERE f.current AND f.org_id IS DISTINCT FROM a.org_id
    ), upd AS (
      UPDATE findings f SET
        org_id = ch.to_org,
        state = CASE WHEN ch.state = 'open' AND ch.to_org IS NULL THEN 'closed'
                     WHEN ch.close_reason = 'left-scope' AND ch.to_org IS NOT NULL AND ch.present THEN 'open' ELSE f.state END,
        close_reason = CASE WHEN ch.state = 'open' AND ch.to_org IS NULL THEN 'left-scope'
                            WHEN ch.close_reason = 'left-scope' AND ch.to_org IS NOT NULL AND ch.present THEN NULL ELSE f.close_reason END,
        closed_at = CASE WHEN ch.state = 'open' AND ch.to_org IS NULL THEN ${opts.now.toISOString()}::timestamptz
                         WHEN ch.close_reason = 'left-scope' AND ch.to_org IS NOT NULL AND ch.present THEN NULL ELSE f.closed_at END
      FROM ch WHERE f.id = ch.id
      RETURNING f.id
    ), events AS (
      INSERT INTO finding_events (finding_id, kind, at, observation_id, who, detail)
      SELECT id, 'owner-changed', ${opts.now.toISOString()}::timestamptz, NULL::bigint, ${opts.who}, jsonb_build_object('from', from_org, 'to', to_org) FROM ch
      UNION ALL
      SELECT id, 'closed', ${opts.now.toISOString()}::timestamptz, NULL, ${opts.who}, jsonb_build_object('reason', 'left-scope')
      FROM ch WHERE state = 'open' AND to_org IS NULL
      UNION ALL
      SELECT id, 'reopened', ${opts.now.toISOString()}::timestamptz, NULL, ${opts.who}, jsonb_build_object('reason', 'back in scope')
      FROM ch WHERE close_reason = 'left-scope' AND to_org IS NOT NULL AND present
    )
    SELECT (SELECT count(*) FROM ch)::int AS changed,
           (SELECT count(*) FROM ch WHERE state = 'open' AND to_org IS NULL)::int AS closed,
           (SELECT count(*) FROM ch WHERE close_reason = 'left-scope' AND to_org IS NOT NULL AND present)::int AS reopened`
    .execute(trx)).rows[0];
  return r ?? { changed: 0, closed: 0, reopened: 0 };
}

/** False-positive / accepted-risk closures past their expiry whose CVE is still seen come back (lifecycle.ts `expired`). */
async function sweepExpiries(trx: Transaction<DbSchema>, opts: FoldOptions): Promise<number> {
  const r = (await sql<{ n: number }>`
    WITH upd AS (
      UPDATE findings SET state = 'open', close_reason = NULL, closed_at = NULL
      WHERE current AND state = 'closed' AND close_reason IN ('false-positive', 'accepted-risk')
        AND closed_until IS NOT NULL AND closed_until <= ${opts.now.toISOString()}::timestamptz AND present
      RETURNING id, closed_until
    ), ev AS (
      INSERT INTO finding_events (finding_id, kind, at, observation_id, who, detail)
      SELECT id, 'reopened', closed_until, NULL, ${opts.who}, jsonb_build_object('reason', 'expired') FROM upd
    )
    SELECT count(*)::int AS n FROM upd`.execute(trx)).rows[0];
  return r?.n ?? 0;
}

// --- Reads and analyst writes.

export interface Finding {
  readonly id: number;
  readonly ip: string;
  readonly port: number | null;
  readonly cve: string;
  readonly product: string | null;
  readonly state: FindingState;
  readonly closeReason: CloseReason | null;
  readonly closedAt: string | null;
  readonly closedUntil: string | null;
  readonly note: string | null;
  readonly verdict: FindingVerdict;
  readonly present: boolean;
  readonly orgId: number | null;
  readonly org: string | null;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly firstObservationId: number | null;
  readonly lastObservationId: number | null;
  readonly current: boolean;
}

export interface FindingEvent {
  readonly id: number;
  readonly findingId: number;
  readonly kind: FindingEventKind;
  readonly at: string;
  readonly observationId: number | null;
  readonly who: string;
  readonly detail: Json | null;
}

export interface FindingQuery {
  readonly state?: FindingState | 'all';
  /** Organisation name (case-insensitive). */
  readonly org?: string;
  readonly cve?: string;
}

interface FindingRow {
  id: number; ip: string; port: number | null; cve: string; product: string | null; state: FindingState;
  close_reason: CloseReason | null; closed_at: Date | null; closed_until: Date | null; note: string | null;
  verdict: FindingVerdict; present: boolean; org_id: number | null; org: string | null; first_seen: Date; last_seen: Date;
  first_observation_id: number | null; last_observation_id: number | null; current: boolean; last_at: Date;
}

function toFinding(r: FindingRow): Finding {
  return {
    id: r.id, ip: r.ip, port: r.port, cve: r.cve, product: r.product, state: r.state, closeReason: r.close_reason,
    closedAt: r.closed_at?.toISOString() ?? null, closedUntil: r.closed_until?.toISOString() ?? null, note: r.note,
    verdict: r.verdict, present: r.present, orgId: r.org_id, org: r.org, firstSeen: r.first_seen.toISOString(),
    lastSeen: r.last_seen.toISOString(), firstObservationId: r.first_observation_id, lastObservationId: r.last_observation_id,
    current: r.current,
  };
}

function findingsBase(db: Executor) {
  return db.selectFrom('findings as f')
    .leftJoin('organisations as o', 'o.id', 'f.org_id')
    .select(['f.id', 'f.ip', 'f.port', 'f.cve', 'f.product', 'f.state', 'f.close_reason', 'f.closed_at', 'f.closed_until', 'f.note',
      'f.verdict', 'f.present', 'f.org_id', 'o.name as org', 'f.first_seen', 'f.last_seen', 'f.first_observation_id',
      'f.last_observation_id', 'f.current', 'f.last_at']);
}

/** Current findings matching the query, by id, in keyset pages (memory stays bounded however many there are). */
export async function* listFindings(db: Executor, q: FindingQuery = {}, page = 2000): AsyncGenerator<Finding> {
  let after = 0;
  for (;;) {
    let query = findingsBase(db).where('f.current', '=', true).where('f.id', '>', after);
    if (q.state !== undefined && q.state !== 'all') query = query.where('f.state', '=', q.state);
    if (q.cve !== undefined) query = query.where(sql<string>`upper(f.cve)`, '=', q.cve.toUpperCase());
    if (q.org !== undefined) query = query.where(sql<string>`lower(o.name)`, '=', q.org.toLowerCase());
    const rows = await query.orderBy('f.id').limit(page).execute();
    for (const r of rows) yield toFinding(r);
    if (rows.length < page) return;
    after = rows[rows.length - 1]!.id;
  }
}

export async function getFinding(db: Executor, id: number): Promise<Finding | null> {
  const r = await findingsBase(db).where('f.id', '=', id).executeTakeFirst();
  return r === undefined ? null : toFinding(r);
}

export async function findingEvents(db: Executor, findingId: number): Promise<FindingEvent[]> {
  const rows = await db.selectFrom('finding_events').selectAll().where('finding_id', '=', findingId).orderBy('id').execute();
  return rows.map((e) => ({
    id: e.id, findingId: e.finding_id, kind: e.kind, at: e.at.toISOString(), observationId: e.observation_id, who: e.who, detail: e.detail,
  }));
}

export interface NewFindingEvent {
  readonly findingId: number;
  readonly kind: FindingEventKind;
  readonly at?: Date;
  readonly observationId?: number | null;
  readonly who: string;
  readonly detail?: Json | null;
}

/**
 * Appends an event to a finding's history (campaigns: `notified`, `acknowledged`). Throws TOCSIN_FINDING_NOT_FOUND
 * for an unknown finding. Takes an executor so that it can run in the caller's transaction (the outbox's).
 */
export async function recordFindingEvent(db: Executor, e: NewFindingEvent): Promise<number> {
  const r = await sql<{ id: number }>`
    INSERT INTO finding_events (finding_id, kind, at, observation_id, who, detail)
    SELECT id, ${e.kind}, ${(e.at ?? new Date()).toISOString()}::timestamptz, ${e.observationId ?? null}::bigint, ${e.who},
           ${e.detail === undefined || e.detail === null ? null : jsonForPostgres(e.detail)}::jsonb
    FROM findings WHERE id = ${e.findingId}
    RETURNING id`.execute(db);
  const id = r.rows[0]?.id;
  if (id === undefined) throw new TocsinError('TOCSIN_FINDING_NOT_FOUND', `no finding ${e.findingId}`);
  return id;
}

function snapshotOf(f: FindingRow): FindingSnapshot {
  return {
    state: f.state, closeReason: f.close_reason, closedAt: f.closed_at, closedUntil: f.closed_until, product: f.product,
    verdict: f.verdict, present: f.present, lastAt: f.last_at,
  };
}

async function lockedFinding(trx: Transaction<DbSchema>, id: number): Promise<FindingRow> {
  await sql`SELECT 1 FROM findings WHERE id = ${id} FOR UPDATE`.execute(trx);
  const r = await findingsBase(trx).where('f.id', '=', id).executeTakeFirst();
  if (r === undefined) throw new TocsinError('TOCSIN_FINDING_NOT_FOUND', `no finding ${id}`);
  return r;
}

export interface AnalystClose {
  readonly id: number;
  readonly reason: string;
  readonly until: Date | null;
  readonly note: string | null;
  readonly who: string;
  readonly now: Date;
}

/** An analyst closes an open finding as false-positive or accepted-risk (optionally until a date). */
export async function closeFinding(db: Executor, c: AnalystClose): Promise<Finding> {
  return db.transaction().execute(async (trx) => {
    const f = await lockedFinding(trx, c.id);
    const reason = checkAnalystClose(snapshotOf(f), c.reason, c.until, c.now);
    await trx.updateTable('findings').set({
      state: 'closed', close_reason: reason, closed_at: c.now, closed_until: c.until, note: c.note,
    }).where('id', '=', c.id).execute();
    await recordFindingEvent(trx, {
      findingId: c.id, kind: 'closed', at: c.now, who: c.who,
      detail: { reason, until: c.until?.toISOString() ?? null, note: c.note },
    });
    const after = await getFinding(trx, c.id);
    if (after === null) throw new TocsinError('TOCSIN_FINDING_NOT_FOUND', `no finding ${c.id}`);
    return after;
  });
}

/** An analyst reopens a closed finding (any reason), saying why. */
export async function reopenFinding(db: Executor, r: { readonly id: number; readonly reason: string; readonly who: string; readonly now: Date }): Promise<Finding> {
  return db.transaction().execute(async (trx) => {
    const f = await lockedFinding(trx, r.id);
    checkAnalystReopen(snapshotOf(f), r.reason);
    // A finding replaced by a newer one (reappeared after the reopen window) is history: reopen the current one.
    if (!f.current) throw new TocsinError('TOCSIN_FINDING_STATE', `finding ${r.id} was replaced by a newer finding of the same ip, port and CVE`);
    await trx.updateTable('findings').set({ state: 'open', close_reason: null, closed_at: null, closed_until: null })
      .where('id', '=', r.id).execute();
    await recordFindingEvent(trx, { findingId: r.id, kind: 'reopened', at: r.now, who: r.who, detail: { reason: r.reason } });
    const after = await getFinding(trx, r.id);
    if (after === null) throw new TocsinError('TOCSIN_FINDING_NOT_FOUND', `no finding ${r.id}`);
    return after;
  });
}

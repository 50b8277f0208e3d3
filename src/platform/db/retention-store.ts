/**
 * Retention (issue 11 §5): `tocsin db prune` and `tocsin db vacuum`.
 *
 * Prune deletes what is older than the configured retention, in one transaction (a dry run rolls it back, so its
 * counts are exactly what a real run deletes), and NEVER:
 * - the latest observation of an (ip, port) (the exposures and the national picture read it),
 * - an observation a finding names (first or last evidence) or a finding event names (incidents link findings,
 *   so what an incident references is kept with its findings), nor the raw responses of any of those,
 * - the attempt an observation hangs on, the latest attempt of an (ip, port), or attempts of a scan that is not
 *   finished (a resume needs them).
 * Raw response blobs no observation references any more are removed whatever their age, once they are an hour
 * old (a scan storing a batch inserts its blobs before linking them, in one transaction that never lasts that long).
 * Findings, their events, campaigns and feed rows are history, not evidence copies: they are not pruned here.
 *
 * Observations and attempts are partitioned by month (migration 0023). A month wholly older than the cut-off is
 * dropped as a table instead of deleted row by row: the same rules pick its removable rows, the rows it must keep
 * are moved into the archive partition (same ids, same values), then the month is detached and dropped. The
 * partial month, the archive and the default partition are pruned row by row. The foreign keys to observations
 * are gone with partitioning, so the dependent rows of a removed observation (assessments, response links, a feed
 * row's link) are removed here, as ON DELETE did. A dry run counts exactly and stops before any partition step.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { ensurePartitions, monthEnd, monthPartitions, type MonthPartition, type PartitionedTable } from './partitions.js';
import type { DbSchema } from './schema.js';

type Db = Kysely<DbSchema>;

export interface PruneCutoffs {
  /** Observations (and bare attempts) seen before this; null = keep all. */
  readonly observations: Date | null;
  /** Raw responses of observations seen before this; null = keep (unreferenced blobs are removed anyway). */
  readonly raw: Date | null;
  /** Audit rows (web API, constituency changes) before this; null = keep. */
  readonly audit: Date | null;
}

export interface PruneCounts {
  readonly observations: number;
  readonly attempts: number;
  readonly responseLinks: number;
  readonly blobs: number;
  readonly blobBytes: number;
  readonly webAudit: number;
  readonly constituencyAudit: number;
  /** Observations older than the cut-off that were kept because they are protected (latest, referenced). */
  readonly keptProtected: number;
  /** Monthly partitions dropped whole (their protected rows moved to the archive partition first). */
  readonly droppedPartitions: readonly string[];
}

class DryRun extends Error {
  constructor(readonly counts: PruneCounts) {
    super('dry run');
  }
}

async function n(tx: Transaction<DbSchema>, q: ReturnType<typeof sql<{ n: string | number }>>): Promise<number> {
  return Number((await q.execute(tx)).rows[0]?.n ?? 0);
}

export async function pruneRetention(db: Db, cut: PruneCutoffs, o: { readonly dryRun?: boolean } = {}): Promise<PruneCounts> {
  // The months up to now exist (contiguous), so the months to drop are a prefix of the monthly partitions.
  if (o.dryRun !== true) await ensurePartitions(db);
  try {
    return await db.transaction().execute(async (tx) => {
      // What is protected, computed once in this snapshot.
      await sql`CREATE TEMP TABLE prune_keep (id bigint PRIMARY KEY) ON COMMIT DROP`.execute(tx);
      await sql`INSERT INTO prune_keep
        SELECT id FROM (SELECT DISTINCT ON (ip, port) id FROM observations ORDER BY ip, port, scanned_at DESC, id DESC) latest
        UNION SELECT first_observation_id FROM findings WHERE first_observation_id IS NOT NULL
        UNION SELECT last_observation_id FROM findings WHERE last_observation_id IS NOT NULL
        UNION SELECT observation_id FROM finding_events WHERE observation_id IS NOT NULL
        ON CONFLICT DO NOTHING`.execute(tx);
      // Observations this prune removes (row by row or with their month), for their dependent rows and the attempts.
      await sql`CREATE TEMP TABLE prune_gone (id bigint PRIMARY KEY) ON COMMIT DROP`.execute(tx);
      let observations = 0, attempts = 0, responseLinks = 0, webAudit = 0, constituencyAudit = 0, keptProtected = 0;
      const dropObs: MonthPartition[] = [], dropAtt: MonthPartition[] = [];
      const oldest = [cut.observations, cut.raw].filter((d): d is Date => d !== null).sort((a, b) => b.getTime() - a.getTime())[0] ?? null;
      if (oldest !== null) {
        keptProtected = await n(tx, sql<{ n: string }>`SELECT count(*) AS n FROM observations o WHERE o.scanned_at < ${oldest}
          AND EXISTS (SELECT 1 FROM prune_keep k WHERE k.id = o.id)`);
      }
      if (cut.raw !== null) {
        responseLinks = await n(tx, sql<{ n: string }>`WITH d AS (
          DELETE FROM observation_responses r USING observations o
          WHERE r.observation_id = o.id AND o.scanned_at < ${cut.raw} AND NOT EXISTS (SELECT 1 FROM prune_keep k WHERE k.id = o.id)
          RETURNING 1) SELECT count(*) AS n FROM d`);
      }
      if (cut.observations !== null) {
        const cutObs = cut.observations;
        // Whole months older than the cut-off go as partitions: their removable rows are listed (not deleted), what
        // they must keep is moved to the archive partition at the end. The rest (the partial month, the archive,
        // the default partition) is deleted row by row as before.
        dropObs.push(...(await monthPartitions(tx, 'observations')).filter((p) => monthEnd(p.month) <= cutObs));
        const obsSpan = span(dropObs);
        for (const p of dropObs) {
          observations += await n(tx, sql<{ n: string }>`WITH g AS (
            INSERT INTO prune_gone SELECT o.id FROM ${sql.table(p.name)} o WHERE NOT EXISTS (SELECT 1 FROM prune_keep k WHERE k.id = o.id)
            ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) AS n FROM g`);
        }
        observations += await n(tx, sql<{ n: string }>`WITH d AS (
          DELETE FROM observations o WHERE o.scanned_at < ${cutObs} AND NOT EXISTS (SELECT 1 FROM prune_keep k WHERE k.id = o.id)
            AND ${obsSpan === null ? sql`TRUE` : sql`NOT (o.scanned_at >= ${obsSpan.from} AND o.scanned_at < ${obsSpan.to})`}
          RETURNING o.id), g AS (INSERT INTO prune_gone SELECT id FROM d ON CONFLICT DO NOTHING RETURNING 1)
          SELECT count(*) AS n FROM g`);
        // What the foreign keys' ON DELETE actions did before migration 0023 (partitioned tables cannot be
        // referenced by id alone): an observation's assessments and response links go with it, a feed row keeps
        // its raw line and loses the link.
        await sql`DELETE FROM assessment_rows a USING prune_gone g WHERE a.observation_id = g.id`.execute(tx);
        await sql`DELETE FROM observation_responses r USING prune_gone g WHERE r.observation_id = g.id`.execute(tx);
        await sql`UPDATE feed_observations f SET observation_id = NULL FROM prune_gone g WHERE f.observation_id = g.id`.execute(tx);

        // Attempts: old ones of finished scans, unless an observation that stays hangs on it or it is the latest of its ip:port.
        dropAtt.push(...(await monthPartitions(tx, 'scan_attempts')).filter((p) => monthEnd(p.month) <= cutObs));
        await sql`CREATE TEMP TABLE prune_latest_attempt (id bigint PRIMARY KEY) ON COMMIT DROP`.execute(tx);
        await sql`INSERT INTO prune_latest_attempt
          SELECT DISTINCT ON (ip, port) id FROM scan_attempts ORDER BY ip, port, attempted_at DESC, id DESC`.execute(tx);
        await sql`CREATE TEMP TABLE prune_gone_attempts (id bigint PRIMARY KEY) ON COMMIT DROP`.execute(tx);
        const removable = (a: string) => sql`${sql.ref(`${a}.attempted_at`)} < ${cutObs}
            AND EXISTS (SELECT 1 FROM scans s WHERE s.id = ${sql.ref(`${a}.scan_id`)} AND s.status = 'finished')
            AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.attempt_id = ${sql.ref(`${a}.id`)}
                            AND NOT EXISTS (SELECT 1 FROM prune_gone g WHERE g.id = o.id))
            AND NOT EXISTS (SELECT 1 FROM prune_latest_attempt l WHERE l.id = ${sql.ref(`${a}.id`)})`;
        const attSpan = span(dropAtt);
        for (const p of dropAtt) {
          attempts += await n(tx, sql<{ n: string }>`WITH g AS (
            INSERT INTO prune_gone_attempts SELECT a.id FROM ${sql.table(p.name)} a WHERE ${removable('a')}
            ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) AS n FROM g`);
        }
        attempts += await n(tx, sql<{ n: string }>`WITH d AS (
          DELETE FROM scan_attempts a WHERE ${removable('a')}
            AND ${attSpan === null ? sql`TRUE` : sql`NOT (a.scan_month >= ${attSpan.fromDay}::date AND a.scan_month < ${attSpan.toDay}::date)`}
          RETURNING 1) SELECT count(*) AS n FROM d`);
      }
      const blobs = (await sql<{ n: string; bytes: string | null }>`WITH d AS (
          DELETE FROM raw_responses b WHERE b.first_seen < now() - interval '1 hour'
            AND NOT EXISTS (SELECT 1 FROM observation_responses r WHERE r.head_sha256 = b.sha256)
            AND NOT EXISTS (SELECT 1 FROM observation_responses r WHERE r.body_sha256 = b.sha256)
          RETURNING size) SELECT count(*) AS n, sum(size) AS bytes FROM d`.execute(tx)).rows[0];
      if (cut.audit !== null) {
        webAudit = await n(tx, sql<{ n: string }>`WITH d AS (DELETE FROM web_audit WHERE at < ${cut.audit} RETURNING 1) SELECT count(*) AS n FROM d`);
        constituencyAudit = await n(tx, sql<{ n: string }>`WITH d AS (DELETE FROM constituency_audit WHERE at < ${cut.audit} RETURNING 1) SELECT count(*) AS n FROM d`);
      }
      const counts: PruneCounts = {
        observations, attempts, responseLinks, blobs: Number(blobs?.n ?? 0), blobBytes: Number(blobs?.bytes ?? 0), webAudit, constituencyAudit, keptProtected,
        droppedPartitions: [...dropObs, ...dropAtt].map((p) => p.name),
      };
      // A dry run stops here: the counts above are final (the partition steps below delete nothing more).
      if (o.dryRun === true) throw new DryRun(counts);
      // Last, so the ACCESS EXCLUSIVE locks DETACH takes on the parents are held only to the commit.
      await retireMonths(tx, 'observations', dropObs, 'prune_gone');
      await retireMonths(tx, 'scan_attempts', dropAtt, 'prune_gone_attempts');
      return counts;
    });
  } catch (e) {
    if (e instanceof DryRun) return e.counts;
    throw e;
  }
}

/** The range of months covered by a contiguous, ordered list of monthly partitions. */
function span(months: readonly MonthPartition[]): { from: Date; to: Date; fromDay: string; toDay: string } | null {
  const first = months[0], last = months[months.length - 1];
  if (first === undefined || last === undefined) return null;
  const to = monthEnd(last.month);
  return { from: new Date(`${first.month}T00:00:00Z`), to, fromDay: first.month, toDay: to.toISOString().slice(0, 10) };
}

/**
 * Drops whole months of `table`: the archive partition is re-attached to reach the end of the last month dropped,
 * the months are detached, the rows they must keep (not listed in `gone`) are inserted through the parent (so they
 * land in the archive, ids and values unchanged), and the detached tables are dropped. DETACH and ATTACH of the
 * archive need ACCESS EXCLUSIVE on the parent; re-attaching the archive scans it once to check its new bound.
 */
async function retireMonths(tx: Transaction<DbSchema>, table: PartitionedTable, months: readonly MonthPartition[], gone: string): Promise<void> {
  const s = span(months);
  if (s === null) return;
  const archive = `${table}_archive`;
  const parent = sql.table(table);
  const bound = table === 'observations' ? `${s.toDay} 00:00:00+00` : s.toDay;
  const cols = (await sql<{ c: string }>`
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS c FROM pg_attribute
    WHERE attrelid = ${table}::regclass AND attnum > 0 AND NOT attisdropped`.execute(tx)).rows[0]?.c;
  if (cols === undefined) throw new Error(`no columns for ${table}`);
  await sql`ALTER TABLE ${parent} DETACH PARTITION ${sql.table(archive)}`.execute(tx);
  for (const p of months) await sql`ALTER TABLE ${parent} DETACH PARTITION ${sql.table(p.name)}`.execute(tx);
  await sql`ALTER TABLE ${parent} ATTACH PARTITION ${sql.table(archive)} FOR VALUES FROM (MINVALUE) TO (${sql.lit(bound)})`.execute(tx);
  for (const p of months) {
    // Column names come from the catalogue (quote_ident), partition names from monthPartitions' pattern.
    await sql`INSERT INTO ${parent} (${sql.raw(cols)}) ${table === 'scan_attempts' ? sql`OVERRIDING SYSTEM VALUE` : sql``}
      SELECT ${sql.raw(cols)} FROM ${sql.table(p.name)} x WHERE NOT EXISTS (SELECT 1 FROM ${sql.table(gone)} g WHERE g.id = x.id)`.execute(tx);
    await sql`DROP TABLE ${sql.table(p.name)}`.execute(tx);
  }
}

/** The tables that grow with history: what `tocsin db vacuum` vacuums and analyses. */
export const BIG_TABLES = [
  'observations', 'assessment_rows', 'observation_responses', 'raw_responses', 'scan_attempts', 'findings', 'finding_events',
  'feed_observations', 'attributions', 'campaign_messages', 'web_audit', 'constituency_audit',
] as const;

/** VACUUM (ANALYZE) each big table (outside any transaction, one statement per table); the tables done. */
export async function vacuumBigTables(db: Db, o: { readonly full?: boolean } = {}): Promise<string[]> {
  const done: string[] = [];
  for (const t of BIG_TABLES) {
    // Table names come from the constant list above, never from input.
    await sql.raw(`VACUUM (${o.full === true ? 'FULL, ' : ''}ANALYZE) ${t}`).execute(db);
    done.push(t);
  }
  return done;
}

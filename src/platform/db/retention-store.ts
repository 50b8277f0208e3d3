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
 */
import { sql, type Kysely, type Transaction } from 'kysely';
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
      let observations = 0, attempts = 0, responseLinks = 0, webAudit = 0, constituencyAudit = 0, keptProtected = 0;
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
        // Assessments and response links go with their observation (ON DELETE CASCADE); a feed row keeps its raw line.
        observations = await n(tx, sql<{ n: string }>`WITH d AS (
          DELETE FROM observations o WHERE o.scanned_at < ${cut.observations} AND NOT EXISTS (SELECT 1 FROM prune_keep k WHERE k.id = o.id)
          RETURNING 1) SELECT count(*) AS n FROM d`);
        attempts = await n(tx, sql<{ n: string }>`WITH latest AS (
            SELECT DISTINCT ON (ip, port) id FROM scan_attempts ORDER BY ip, port, attempted_at DESC, id DESC
          ), d AS (
          DELETE FROM scan_attempts a WHERE a.attempted_at < ${cut.observations}
            AND EXISTS (SELECT 1 FROM scans s WHERE s.id = a.scan_id AND s.status = 'finished')
            AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.attempt_id = a.id)
            AND NOT EXISTS (SELECT 1 FROM latest l WHERE l.id = a.id)
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
      };
      if (o.dryRun === true) throw new DryRun(counts);
      return counts;
    });
  } catch (e) {
    if (e instanceof DryRun) return e.counts;
    throw e;
  }
}

/** The tables that grow with history: what `tocsin db vacuum` vacuums and analyses. */
export const BIG_TABLES = [
  'observations', 'assessments', 'observation_responses', 'raw_responses', 'scan_attempts', 'findings', 'finding_events',
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

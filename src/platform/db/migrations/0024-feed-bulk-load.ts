/**
 * Migration 0024: a cheaper write path for feed rows (issue 8 §6; measured in bench/README.md, feeds-ingest.ts).
 *
 * `EXPLAIN (ANALYZE, WAL)` of one 50,000-row chunk of a Shadowserver import showed the time in index insertions
 * and foreign-key triggers, not in reading rows. What changes, and why each is safe:
 * - feed_observations: one unique index (ip, port, report date, report type, feed) replaces the dedup key
 *   (feed, report type, ip, port, report date) AND migration 0011's (ip, port) index: the same columns, so the
 *   import's ON CONFLICT still infers it, and ip-first it serves the exposures' and attribution's "rows of this
 *   ip:port / ip" lookups that 0011's index served. One index write per row instead of two.
 * - feed_observations.import_id loses its foreign key: the import writes the feed_imports row and its rows in one
 *   transaction, and nothing deletes imports; the check was a trigger call per row (~20% of the chunk's time).
 * - observations_scan_ip_port and the attempt_id unique key only index scan rows (WHERE ... IS NOT NULL): feed
 *   observations have neither, and every lookup by them is by a value (`scan_id = $1`, the cascade from
 *   scan_attempts), which a partial index serves.
 * - The two foreign keys into observations that only cascade deletes (feed_observations.observation_id ON DELETE
 *   SET NULL, deferred; assessments.observation_id ON DELETE CASCADE) become one statement-level trigger on
 *   observations doing the same with the deleted rows as a set. Their per-row insert checks protected little:
 *   the feed import writes an observation, its assessment and its feed row in one statement with the id from
 *   nextval(), the scan store an observation and its assessment in one transaction, and reassess adds assessments
 *   to observations it has just read. Retention (retention-store.ts) deletes observations and relies on the
 *   cascade: it still happens, in the same statement. What is lost: an assessment added by a reassess running at
 *   the same moment as a retention delete of its observation is no longer refused; it is an orphan no reader sees
 *   (every reader joins assessments to observations).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE UNIQUE INDEX IF NOT EXISTS feed_observations_ip_key
      ON feed_observations (ip, (coalesce(port, -1)), report_date, report_type, feed)`.execute(db);
  await sql`DROP INDEX IF EXISTS feed_observations_key`.execute(db);
  await sql`DROP INDEX IF EXISTS feed_observations_ip_port`.execute(db);
  await sql`ALTER TABLE feed_observations DROP CONSTRAINT IF EXISTS feed_observations_import_id_fkey`.execute(db);

  await sql`CREATE INDEX IF NOT EXISTS observations_scan_ip_port_partial ON observations (scan_id, ip, port) WHERE scan_id IS NOT NULL`.execute(db);
  await sql`DROP INDEX IF EXISTS observations_scan_ip_port`.execute(db);
  await sql`ALTER INDEX observations_scan_ip_port_partial RENAME TO observations_scan_ip_port`.execute(db);
  await sql`ALTER TABLE observations DROP CONSTRAINT IF EXISTS observations_attempt_id_key`.execute(db);
  // Partitioned by month since migration 0023 (relkind 'p'): a unique index would need scanned_at, and 0023 made
  // this partial index already (plain: the scan store writes one observation per new attempt by construction).
  await sql`
    DO $$ BEGIN
      IF (SELECT relkind FROM pg_class WHERE oid = 'observations'::regclass) <> 'p' THEN
        CREATE UNIQUE INDEX IF NOT EXISTS observations_attempt_id_key ON observations (attempt_id) WHERE attempt_id IS NOT NULL;
      END IF;
    END $$`.execute(db);

  await sql`ALTER TABLE feed_observations DROP CONSTRAINT IF EXISTS feed_observations_observation_id_fkey`.execute(db);
  await sql`ALTER TABLE assessments DROP CONSTRAINT IF EXISTS assessments_observation_id_fkey`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION tocsin_observations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM assessments a USING gone g WHERE a.observation_id = g.id;
      UPDATE feed_observations f SET observation_id = NULL FROM gone g WHERE f.observation_id = g.id;
      RETURN NULL;
    END $$`.execute(db);
  await sql`DROP TRIGGER IF EXISTS observations_deleted ON observations`.execute(db);
  await sql`
    CREATE TRIGGER observations_deleted AFTER DELETE ON observations
      REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tocsin_observations_deleted()`.execute(db);
}

/**
 * Migration 0028: content-addressed verdict sets (issue 8 §6; measured in bench/README.md, feeds-ingest.ts).
 *
 * Every assessment carried its build's vulnerable and indeterminate CVE ids (33-156 for an old Exchange build):
 * ~1.45 KB of WAL per row, the largest cost of a feed import, although a knowledge base gives a few hundred
 * distinct pairs of arrays. Now:
 * - `verdict_sets` holds each distinct (vulnerable, indeterminate) pair once, under `key` =
 *   tocsin_verdict_key(vulnerable, indeterminate): sha256 of the two arrays as JSON, in their stored order (the
 *   order is what readers get back, so two orders are two sets). Sets are never updated or deleted: writers
 *   memoise id by content in the process (verdict-sets.ts), and a few hundred rows cost nothing to keep.
 * - the physical table is `assessment_rows`, with `verdict_set_id` instead of the arrays. No foreign key to
 *   verdict_sets: the check would be a trigger call and a KEY SHARE row lock on one of a few dozen hot rows per
 *   inserted assessment (every concurrent writer locking the same rows); writers take ids from the upsert, which
 *   commits before they use them, and nothing deletes a set.
 * - `assessments` is a VIEW with exactly the old columns, so every reader is unchanged. It is a LEFT JOIN: a
 *   reader that needs no array (the fold's `max(id)`) does not join at all (join removal on verdict_sets' key).
 *   `LOCK TABLE assessments` locks the view's base tables (PostgreSQL >= 11), which is what the findings fold
 *   relies on. Writers (scan store, reassess, feed import, retention, the delete trigger of 0024) write
 *   `assessment_rows`; an INSERT into the view fails loudly (it is not updatable).
 * - `tocsin_verdict_set(vulnerable, indeterminate)` upserts one set and returns its id: for this conversion, tests
 *   and benches that write rows in SQL; the application's writers upsert a batch's distinct sets in one statement.
 *
 * Conversion, in this migration's one transaction: the distinct pairs of the old table become sets, the rows are
 * copied with their ids into the new table (ids continue: the findings fold's assessment watermark stays valid),
 * the old table is dropped. It holds ACCESS EXCLUSIVE on assessments for its duration (seconds per million rows).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // IMMUTABLE by our word: text[] output depends on no setting. JSON arrays delimit themselves, so the
  // concatenation of two is unambiguous.
  await sql`
    CREATE OR REPLACE FUNCTION tocsin_verdict_key(vulnerable text[], indeterminate text[]) RETURNS bytea
      LANGUAGE sql IMMUTABLE PARALLEL SAFE
      AS $$ SELECT sha256(convert_to(array_to_json(vulnerable)::text || array_to_json(indeterminate)::text, 'UTF8')) $$`.execute(db);
  await sql`
    CREATE TABLE verdict_sets (
      id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      key            bytea NOT NULL UNIQUE,
      vulnerable     text[] NOT NULL,
      indeterminate  text[] NOT NULL
    )`.execute(db);
  // Kept in the row (up to a page) rather than moved to TOAST past 2 KB (156 CVE ids are ~2.5 KB): readers join a
  // set per assessment, and an out-of-line value is two more index lookups each time.
  await sql`ALTER TABLE verdict_sets ALTER COLUMN vulnerable SET STORAGE MAIN, ALTER COLUMN indeterminate SET STORAGE MAIN`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION tocsin_verdict_set(vulnerable text[], indeterminate text[]) RETURNS bigint
      LANGUAGE plpgsql AS $$
      DECLARE
        k bytea := tocsin_verdict_key(vulnerable, indeterminate);
        r bigint;
      BEGIN
        SELECT s.id INTO r FROM verdict_sets s WHERE s.key = k;
        IF r IS NULL THEN
          INSERT INTO verdict_sets (key, vulnerable, indeterminate) VALUES (k, vulnerable, indeterminate)
            ON CONFLICT (key) DO NOTHING RETURNING id INTO r;
          IF r IS NULL THEN
            SELECT s.id INTO r FROM verdict_sets s WHERE s.key = k;
          END IF;
        END IF;
        RETURN r;
      END $$`.execute(db);

  await sql`ALTER TABLE assessments RENAME TO assessments_old`.execute(db);
  await sql`
    CREATE TABLE assessment_rows (
      id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      observation_id  bigint NOT NULL,
      kb_revision     text,
      verdict_set_id  bigint NOT NULL,
      notes           jsonb NOT NULL DEFAULT '[]'::jsonb,
      assessed_at     timestamptz NOT NULL DEFAULT now(),
      fingerprint     jsonb
    )`.execute(db);
  await sql`
    INSERT INTO verdict_sets (key, vulnerable, indeterminate)
    SELECT DISTINCT ON (k) k, vulnerable, indeterminate
    FROM (SELECT tocsin_verdict_key(vulnerable, indeterminate) AS k, vulnerable, indeterminate FROM assessments_old) d
    ORDER BY k`.execute(db);
  await sql`
    INSERT INTO assessment_rows (id, observation_id, kb_revision, verdict_set_id, notes, assessed_at, fingerprint) OVERRIDING SYSTEM VALUE
    SELECT a.id, a.observation_id, a.kb_revision, s.id, a.notes, a.assessed_at, a.fingerprint
    FROM assessments_old a JOIN verdict_sets s ON s.key = tocsin_verdict_key(a.vulnerable, a.indeterminate)
    ORDER BY a.id`.execute(db);
  // Ids continue where the old sequence was (not merely after the largest id left: a deleted newest row's id is
  // not handed out again, as before).
  await sql`
    SELECT setval(pg_get_serial_sequence('assessment_rows', 'id'), s.last_value, s.is_called)
    FROM pg_sequences q, LATERAL (SELECT q.last_value IS NOT NULL AS is_called, coalesce(q.last_value, 1) AS last_value) s
    WHERE q.schemaname = current_schema() AND q.sequencename = 'assessments_id_seq'`.execute(db);
  await sql`DROP TABLE assessments_old`.execute(db);
  await sql`CREATE INDEX assessment_rows_observation ON assessment_rows (observation_id, id DESC)`.execute(db);
  await sql`
    CREATE VIEW assessments AS
      SELECT a.id, a.observation_id, a.kb_revision, v.vulnerable, v.indeterminate, a.notes, a.assessed_at, a.fingerprint
      FROM assessment_rows a LEFT JOIN verdict_sets v ON v.id = a.verdict_set_id`.execute(db);

  // Migration 0024's statement-level cascade from observations, against the table (a view cannot be deleted from).
  await sql`
    CREATE OR REPLACE FUNCTION tocsin_observations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM assessment_rows a USING gone g WHERE a.observation_id = g.id;
      UPDATE feed_observations f SET observation_id = NULL FROM gone g WHERE f.observation_id = g.id;
      RETURN NULL;
    END $$`.execute(db);
  await sql`ANALYZE verdict_sets`.execute(db);
  await sql`ANALYZE assessment_rows`.execute(db);
}

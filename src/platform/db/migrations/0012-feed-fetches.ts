/**
 * Migration 0012: what the Shadowserver reports API collector (`tocsin feeds fetch`) has fetched.
 *
 * One row per (feed, report id) once the report was downloaded and handed to the feed import, whatever the
 * import said (imported, the same content as an earlier import, or rejected: the file stays on disk for
 * `tocsin feeds import` after a fix), so a second run downloads nothing again. A download that failed is not
 * recorded: the next run tries it again. The import itself (rows, quarantine, the content hash that stores a
 * report once) stays in feed_imports; `import_id` links the two.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS feed_fetches (
      feed         text NOT NULL,
      report_id    text NOT NULL,
      report_type  text NOT NULL,
      report_name  text NOT NULL DEFAULT '',
      report_date  date NOT NULL,
      file         text NOT NULL,
      path         text NOT NULL,
      bytes        bigint NOT NULL CHECK (bytes >= 0),
      sha256       bytea NOT NULL CHECK (octet_length(sha256) = 32),
      status       text NOT NULL CHECK (status IN ('imported', 'duplicate-report', 'rejected')),
      import_id    bigint REFERENCES feed_imports (id) ON DELETE SET NULL,
      error        text,
      fetched_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (feed, report_id)
    )`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS feed_fetches_date ON feed_fetches (report_date)`.execute(db);
}

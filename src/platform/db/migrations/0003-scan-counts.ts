/**
 * Migration 0003: retries and unanswered attempts, so that no host is lost silently.
 *
 * - `scan_attempts.tries`: how often the engine tried this (ip, port) (1 = once). Attempts that fail the
 *   way congestion makes them fail (a connect or TLS handshake that times out, a TLS-phase reset) are
 *   tried again after a backoff; `report --scans` counts the retried ones.
 * - `scan_attempts.unanswered`: nothing came back from the address even after the retries (connect
 *   timeouts). Such a row is stored, so the counts and the report see it, but it is not "done": resume
 *   (doneKeys) skips only the other rows, and a later result for the same (scan, ip, port) replaces it.
 *
 * The counts (timed out / retried / unanswered per scan) are derived from these columns rather than kept
 * on `scans`: a resume that reaches an unanswered host then corrects them by itself. Both columns have
 * constant defaults, so adding them does not rewrite the table (PostgreSQL 11+).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE scan_attempts
      ADD COLUMN tries smallint NOT NULL DEFAULT 1 CHECK (tries >= 1),
      ADD COLUMN unanswered boolean NOT NULL DEFAULT false`.execute(db);
}

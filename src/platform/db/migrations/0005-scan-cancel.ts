/**
 * Migration 0005: cancel a scan from another process (the HTTP API, a job worker, `tocsin cancel`).
 *
 * Only the process running a scan can stop it cleanly (drop its in-flight attempts, mark it interrupted),
 * so a cancel from elsewhere is a request stored on the scan: `cancel_requested_at` (the database's now())
 * and `cancel_requested_by` (who asked, free text). The runner's heartbeat reads it and aborts the scan,
 * which ends `interrupted` with the reason "cancelled by <who>" and stays resumable. A resume (claim) clears
 * the request, so a resumed scan is not cancelled again by an old one. No default, no rewrite of the table.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE scans
      ADD COLUMN cancel_requested_at timestamptz,
      ADD COLUMN cancel_requested_by text`.execute(db);
}

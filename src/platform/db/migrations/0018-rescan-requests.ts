/**
 * Migration 0018: verification rescans an organisation asks for through the portal (issue 10 §4).
 *
 * - `rescan_requests`: one row per request: the organisation, who asked, the exact (ip, port) targets (checked
 *   against the organisation's own exposures when the request was made), the status queued → running → done |
 *   failed, the scans that ran it and the outcome (findings closed / still open among the targets).
 * - At most one pending (queued or running) request per organisation is a unique partial index, so two requests
 *   racing from two servers cannot both be queued; the per-day limit is counted by the service.
 * - Runners take the oldest queued row with FOR UPDATE SKIP LOCKED (index on requested_at where queued), so any
 *   number of servers (and the job engine of issue 11) can run them without taking the same one twice.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE rescan_requests (
      id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      org_id              bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
      requested_by        bigint REFERENCES users (id) ON DELETE SET NULL,
      requested_by_email  text NOT NULL,
      targets             jsonb NOT NULL CHECK (jsonb_typeof(targets) = 'array'),
      status              text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
      scan_id             bigint REFERENCES scans (id) ON DELETE SET NULL,
      scan_ids            bigint[] NOT NULL DEFAULT '{}',
      runner              text,
      requested_at        timestamptz NOT NULL DEFAULT now(),
      started_at          timestamptz,
      finished_at         timestamptz,
      closed              integer,
      still_open          integer,
      error               text
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX rescan_requests_one_pending ON rescan_requests (org_id) WHERE status IN ('queued', 'running')`.execute(db);
  await sql`CREATE INDEX rescan_requests_queue ON rescan_requests (requested_at, id) WHERE status = 'queued'`.execute(db);
  await sql`CREATE INDEX rescan_requests_org ON rescan_requests (org_id, requested_at)`.execute(db);
}

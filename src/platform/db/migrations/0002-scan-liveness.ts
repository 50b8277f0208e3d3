/**
 * Migration 0002: tell a running scan from an interrupted one.
 *
 * A scan used to stay `running` forever when its process died (kill -9, a closed terminal, a storage
 * failure), so a dead scan looked live in `tocsin report --scans`. Now:
 * - status may also be `interrupted` (written on SIGINT/SIGTERM and on a storage failure, when the
 *   database still takes the write), with the reason;
 * - the process running a scan records itself as its owner (host name + pid) and refreshes heartbeat_at
 *   every few seconds; a reader shows a `running` scan as interrupted when the owner's pid on this host is
 *   gone or the heartbeat is stale (src/platform/db/scan-store.ts, scanLiveStatus);
 * - `tocsin scan --resume ID` of an interrupted scan takes it over (owner and heartbeat become its own).
 * Scans stored before this migration have no owner: a reader judges them by started_at alone.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE scans DROP CONSTRAINT IF EXISTS scans_status_check`.execute(db);
  await sql`
    ALTER TABLE scans
      ADD CONSTRAINT scans_status_check CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
      ADD COLUMN owner_host          text,
      ADD COLUMN owner_pid           integer,
      ADD COLUMN heartbeat_at        timestamptz,
      ADD COLUMN interrupted_reason  text`.execute(db);
}

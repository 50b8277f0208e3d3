/**
 * Migration 0022: an index for the dashboard's national picture (platform/db/dashboard-store.ts pictureRows).
 * "Notified" = a finding with at least one `notified` event; without this index each summary read every event
 * (opened, closed, changed, ...: several per finding) to find the few notified ones. Partial and narrow: one entry
 * per notification, probed index-only (finding_events is append-only, so its pages stay all-visible after vacuum).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX finding_events_notified ON finding_events (finding_id) WHERE kind = 'notified'`.execute(db);
}

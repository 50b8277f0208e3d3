/**
 * Migration 0011: indexes for the exposures (src/platform/db/exposure-store.ts; issue 8 §4).
 *
 * `tocsin exposures` walks every (ip, port) in address order with keyset pages and, per key, reads the newest
 * observation and every feed row of that key. Without these, each page is a scan of both tables.
 * - observations (ip, port, scanned_at DESC): the "latest observation per ip:port" index migration 0001 left to
 *   the first reader that needs it. One more index on the scan's write path; measured by bench/ as before.
 * - feed_observations (ip, coalesce(port, -1)): the feed side of the same walk (the unique key of migration 0007
 *   starts with the feed name, so it cannot serve it); a row without a port is keyed -1, as in that key.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS observations_ip_port_time ON observations (ip, port, scanned_at DESC)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS feed_observations_ip_port ON feed_observations (ip, (coalesce(port, -1)))`.execute(db);
}

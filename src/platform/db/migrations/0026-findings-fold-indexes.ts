/**
 * Migration 0026: the findings fold writes fewer index entries (issue 9 §6: 1,000,000 findings folded in <= 30 s).
 *
 * Drops three indexes of migration 0021 that no query uses and that every fold paid for:
 * - `findings_last_observation`: `last_observation_id` changes on every rescan of every seen finding, so with this
 *   index no such update could be HOT (fillfactor 70 leaves the room for it): each one wrote all five index entries
 *   again instead of none.
 * - `findings_first_observation`, `finding_events_observation`: one more entry per opened finding and per event.
 * `tocsin db prune` (retention-store.ts) reads these columns whole into its protected set (sequential scans, no
 * lookup by observation id), so it does not need them. Measured on the fold bench: the insert of 200,000 findings
 * with their `opened` events went from 4.2 s to 3.15 s of database CPU, the WAL from ~840 to ~650 bytes per finding.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS findings_last_observation`.execute(db);
  await sql`DROP INDEX IF EXISTS findings_first_observation`.execute(db);
  await sql`DROP INDEX IF EXISTS finding_events_observation`.execute(db);
}

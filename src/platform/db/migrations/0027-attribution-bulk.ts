/**
 * Migration 0027: a cheaper write path for the stored attributions (issue 8 §6; bench/attribution-refresh.ts).
 *
 * Measured on 1,000,000 answers COPYed into `attributions` (server CPU of the backend): 22 s with the foreign key
 * to organisations, 12 s without it. The key's check is one SPI query with a row lock per row; the refresh writes
 * the same few thousand organisation ids a million times. What replaces it, and why that is safe:
 * - Inserts and updates: only the refresh writes `attributions`, with organisation ids from the registry it read
 *   in the same REPEATABLE READ snapshot, and before it commits it takes FOR KEY SHARE on exactly the organisations
 *   it wrote (attribution-store.ts): one set-based statement doing what the per-row check did. An organisation
 *   deleted after the snapshot makes that statement fail with a serialisation error (the refresh is rolled back,
 *   as the key's check would have done); a delete after the lock waits for the refresh to commit.
 * - ON DELETE SET NULL: one statement-level trigger on organisations does the same with the deleted rows as a set
 *   (as migration 0024 did for observations).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE attributions DROP CONSTRAINT IF EXISTS attributions_org_id_fkey`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION tocsin_organisations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE attributions a SET org_id = NULL FROM gone g WHERE a.org_id = g.id;
      RETURN NULL;
    END $$`.execute(db);
  await sql`DROP TRIGGER IF EXISTS organisations_deleted ON organisations`.execute(db);
  await sql`
    CREATE TRIGGER organisations_deleted AFTER DELETE ON organisations
      REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tocsin_organisations_deleted()`.execute(db);
}

/**
 * Applies pending migrations. Safe when many processes start at once: everything happens on one
 * connection holding a session advisory lock, so a second process waits, then finds nothing to do.
 * Each migration runs in its own transaction and is recorded in `tocsin_migrations` in that transaction,
 * so a failure leaves the database at the last good version.
 */
import { sql, type Kysely } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

/** Arbitrary constant naming "tocsin schema migrations" among advisory locks. */
const MIGRATION_LOCK_KEY = 7_305_113_201;

export interface MigrationRun {
  /** Ids applied by this call, in order (empty when the schema was current). */
  readonly applied: readonly string[];
  /** Every id recorded after the call. */
  readonly current: readonly string[];
}

export async function runMigrations(db: Kysely<unknown>, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationRun> {
  return db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY}::bigint)`.execute(conn);
    try {
      await sql`
        CREATE TABLE IF NOT EXISTS tocsin_migrations (
          id          text PRIMARY KEY,
          applied_at  timestamptz NOT NULL DEFAULT now()
        )`.execute(conn);
      const done = new Set((await sql<{ id: string }>`SELECT id FROM tocsin_migrations`.execute(conn)).rows.map((r) => r.id));
      const applied: string[] = [];
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        try {
          await conn.transaction().execute(async (trx) => {
            await m.up(trx);
            await sql`INSERT INTO tocsin_migrations (id) VALUES (${m.id})`.execute(trx);
          });
        } catch (e) {
          throw new TocsinError('TOCSIN_DB_MIGRATION', `migration ${m.id} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        applied.push(m.id);
        done.add(m.id);
      }
      const unknown = [...done].filter((id) => !migrations.some((m) => m.id === id));
      if (unknown.length > 0) {
        throw new TocsinError('TOCSIN_DB_MIGRATION', 'the database has migrations this version of tocsin does not know', {
          details: [...unknown.map((id) => `unknown migration: ${id}`), 'Upgrade tocsin, or point it at another database.'],
        });
      }
      return { applied, current: migrations.filter((m) => done.has(m.id)).map((m) => m.id) };
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY}::bigint)`.execute(conn);
    }
  });
}

/** Ids recorded as applied, without applying anything (for `tocsin db status`). */
export async function appliedMigrations(db: Kysely<unknown>): Promise<readonly string[]> {
  const exists = await sql<{ t: string | null }>`SELECT to_regclass('tocsin_migrations')::text AS t`.execute(db);
  if (exists.rows[0]?.t == null) return [];
  return (await sql<{ id: string }>`SELECT id FROM tocsin_migrations ORDER BY id`.execute(db)).rows.map((r) => r.id);
}

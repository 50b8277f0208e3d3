/**
 * One pooled connection as both a raw pg client and a Kysely instance: for work that needs the wire protocol
 * Kysely does not speak (COPY FROM STDIN, used by the feed import) inside a transaction that also runs Kysely
 * queries. Services are handed a Kysely instance only; connect.ts registers the pool behind each instance it
 * builds, so the adapter finds it from the instance without changing every caller's signature.
 */
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { TocsinError } from '../../core/errors.js';
import type { DbSchema } from './schema.js';

const pools = new WeakMap<object, pg.Pool>();

/** Called by openDatabase(): the pool behind `db`. */
export function registerPool(db: Kysely<DbSchema>, pool: pg.Pool): void {
  pools.set(db, pool);
}

export interface Session {
  /** Kysely on this one connection (a transaction opened on it runs on the same connection as `client`). */
  readonly db: Kysely<DbSchema>;
  readonly client: pg.PoolClient;
}

/**
 * Runs `fn` on one connection of the pool behind `db`. The connection goes back to the pool afterwards, or is
 * closed when `fn` failed: a COPY cut short leaves the protocol in a state the next user must not inherit.
 * @throws TocsinError TOCSIN_INTERNAL when `db` was not built by openDatabase() (no pool is known for it).
 */
export async function withSession<T>(db: Kysely<DbSchema>, fn: (s: Session) => Promise<T>): Promise<T> {
  const pool = pools.get(db);
  if (pool === undefined) throw new TocsinError('TOCSIN_INTERNAL', 'no connection pool is registered for this database handle (open it with openDatabase())');
  const client = await pool.connect();
  // Kysely asks its "pool" for a connection per query or transaction: always this one, never released by it.
  const one: PostgresPoolClient = {
    query: client.query.bind(client) as PostgresPoolClient['query'],
    release: () => undefined,
  };
  const single: PostgresPool = { connect: () => Promise.resolve(one), end: () => Promise.resolve() };
  const sessionDb = new Kysely<DbSchema>({ dialect: new PostgresDialect({ pool: single }) });
  let failed = true;
  try {
    const r = await fn({ db: sessionDb, client });
    failed = false;
    return r;
  } finally {
    await sessionDb.destroy().catch(() => undefined);
    client.release(failed);
  }
}

/**
 * Opening the database: a real server when TOCSIN_DATABASE_URL is set, else the embedded PostgreSQL
 * under TOCSIN_HOME. Migrations run at open, so every caller sees the current schema.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { TocsinConfig } from '../../core/config.js';
import { TocsinError, isTocsinError } from '../../core/errors.js';
import { acquireEmbedded, type EmbeddedLease } from './embedded.js';
import { runMigrations } from './migrate.js';
import { registerPool } from './raw-client.js';
import type { DbSchema } from './schema.js';

export interface Database {
  readonly db: Kysely<DbSchema>;
  readonly pool: pg.Pool;
  /** Connection URL (may contain a password: print it with redactDatabaseUrl). */
  readonly url: string;
  /** True when this is the embedded server of TOCSIN_HOME. */
  readonly embedded: boolean;
  /** Close the pool and give back the lease on the embedded server (which stops when no process needs it). */
  close(): Promise<void>;
  /**
   * Throws TOCSIN_DB_LOST when the embedded server's data directory is gone (TOCSIN_HOME deleted): the
   * server keeps writing into deleted files for a while, so without this check a scan would end "done"
   * with nothing kept. One stat(); a no-op for a server given by TOCSIN_DATABASE_URL.
   */
  assertUsable(): void;
}

export interface OpenOptions {
  /** Apply pending migrations (default true). `tocsin db status` opens without migrating. */
  readonly migrate?: boolean;
  /** Pool size (default 10). */
  readonly maxConnections?: number;
}

const INT8_OID = 20;

/**
 * Type parsers for this pool only (not the process-wide pg.types): int8 (bigint ids, count(*)) as a JS
 * number. Ids and counts stay far below 2^53; numeric (e.g. sum of int8) is left as a string, cast in SQL.
 */
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};

/** Open the configured database (see module comment). Throws TocsinError TOCSIN_DB_CONNECT / _EMBEDDED_START / _MIGRATION. */
export async function openDatabase(config: Pick<TocsinConfig, 'home' | 'databaseUrl'>, options: OpenOptions = {}): Promise<Database> {
  let lease: EmbeddedLease | null = null;
  let url: string;
  if (config.databaseUrl !== null) url = config.databaseUrl;
  else {
    lease = await acquireEmbedded(config.home);
    url = lease.url;
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    // Also bounds the wait for a free pooled client. 10 s was too short on a loaded 2-core machine: a scan keeps
    // the pool busy and a later checkout timed out ("timeout exceeded when trying to connect" -> TOCSIN_DB_LOST).
    // A server that is down still fails at once (connection refused); only a hung one takes this long to report.
    connectionTimeoutMillis: 30_000,
    application_name: 'tocsin',
    types: typeParsers,
  });
  // An idle client's error (server restarted, `tocsin db stop`) must not crash the process: the next
  // query on the pool fails with a clear error instead.
  pool.on('error', () => undefined);
  // The same for a client that is checked out but between queries when the server dies (kill -9 of the
  // postmaster): without a listener its 'error' event kills the process with a stack trace; with one, its
  // next query fails, and that failure is reported as TOCSIN_DB_LOST with the scan's resume command.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  const db = new Kysely<DbSchema>({ dialect: new PostgresDialect({ pool }) });
  registerPool(db, pool);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await db.destroy().catch(() => undefined);
    await lease?.release();
  };
  try {
    const client = await pool.connect();
    client.release();
  } catch (e) {
    await close();
    throw new TocsinError('TOCSIN_DB_CONNECT', `cannot connect to ${redactDatabaseUrl(url)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (options.migrate !== false) {
    try {
      await runMigrations(db as unknown as Kysely<unknown>);
    } catch (e) {
      await close();
      if (isTocsinError(e)) throw e;
      throw new TocsinError('TOCSIN_DB_MIGRATION', `migrations failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  const home = lease === null ? null : config.home;
  const assertUsable = (): void => {
    if (home === null || existsSync(join(home, 'pg', 'PG_VERSION'))) return;
    throw new TocsinError('TOCSIN_DB_LOST', `the embedded database under TOCSIN_HOME=${home} is gone (was the folder deleted?)`);
  };
  return { db, pool, url, embedded: lease !== null, close, assertUsable };
}

/** The URL with its password replaced by ***, for messages and `tocsin db status`. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

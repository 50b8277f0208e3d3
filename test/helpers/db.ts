/**
 * Fresh, isolated databases for tests, on both backends (kysely's rule: no mocks, real servers):
 * - "embedded": one embedded PostgreSQL shared by every test process (TOCSIN_HOME under the system temp
 *   directory, started on first use, stopped when the last test process releases it), with a fresh
 *   database per test made by CREATE DATABASE.
 * - "server": the real server at TOCSIN_TEST_PG_URL (.ci/run starts Debian's), again with a fresh
 *   database per test. With CI=true a missing TOCSIN_TEST_PG_URL fails the test; elsewhere the
 *   real-server cases are skipped with the reason.
 *
 * Usage:
 *   import { testEachBackend } from '../test/helpers/db.js';
 *   testEachBackend('round trip', async ({ database }) => { ... });
 */
import { after, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase, type Database, type OpenOptions } from '../../src/platform/db/connect.js';
import { acquireEmbedded, type EmbeddedLease } from '../../src/platform/db/embedded.js';

export type BackendName = 'embedded' | 'server';
export const BACKENDS: readonly BackendName[] = ['embedded', 'server'];

/** TOCSIN_HOME of the embedded server shared by the test processes. */
export const SHARED_TEST_HOME = join(tmpdir(), `tocsin-test-pg-${process.getuid?.() ?? 'u'}`);

export interface FreshDatabase {
  readonly backend: BackendName;
  /** URL of the fresh database (superuser on it). */
  readonly url: string;
  /** Drop the database (closing any connection left on it). */
  drop(): Promise<void>;
}

export interface TestDb extends FreshDatabase {
  /** openDatabase() on the fresh database: migrated, ready. Closed after the test. */
  readonly database: Database;
}

/** Why a backend's cases are skipped here, or false if they run. Never skips in CI. */
export function backendSkip(backend: BackendName): string | false {
  if (backend === 'embedded') return false;
  if (process.env.TOCSIN_TEST_PG_URL) return false;
  if (process.env.CI === 'true') return false; // adminUrl() then fails the test
  return 'TOCSIN_TEST_PG_URL is not set (the real-server cases run in CI; .ci/run sets it)';
}

let embeddedLease: Promise<EmbeddedLease> | undefined;

after(async () => {
  if (embeddedLease !== undefined) await (await embeddedLease).release();
});

async function adminUrl(backend: BackendName): Promise<string> {
  if (backend === 'server') {
    const url = process.env.TOCSIN_TEST_PG_URL;
    if (!url) throw new Error('CI=true but TOCSIN_TEST_PG_URL is not set: the real-server database tests cannot run');
    return url;
  }
  embeddedLease ??= acquireEmbedded(SHARED_TEST_HOME);
  return (await embeddedLease).url;
}

/** A new empty database on the backend. */
export async function freshDatabase(backend: BackendName): Promise<FreshDatabase> {
  const admin = await adminUrl(backend);
  const name = `tocsin_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(admin, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    backend,
    url: u.toString(),
    async drop() {
      await withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
    },
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Register one test per backend, each with a fresh migrated database, closed and dropped afterwards.
 * The test's name gets the backend in brackets.
 */
export function testEachBackend(name: string, fn: (t: TestDb) => Promise<void>, options: OpenOptions = {}): void {
  for (const backend of BACKENDS) {
    const skip = backendSkip(backend);
    test(`${name} [${backend}]`, skip === false ? {} : { skip }, async () => {
      const fresh = await freshDatabase(backend);
      let database: Database | undefined;
      try {
        database = await openDatabase({ home: SHARED_TEST_HOME, databaseUrl: fresh.url }, options);
        await fn({ ...fresh, database });
      } finally {
        await database?.close();
        await fresh.drop();
      }
    });
  }
}

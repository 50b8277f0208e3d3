/**
 * The feed import's COPY staging path (src/platform/db/feed-store.ts, migration 0024), on both backends:
 * - the file's distinct verdicts are staged once and joined by key: every row gets its own build's verdicts
 *   (compared with the verdicts of the same builds imported one row each);
 * - an import whose connection is killed half-way (pg_terminate_backend of its backend during a chunk) leaves
 *   nothing behind, no staging table survives, and a re-run imports every row exactly once;
 * - deleting observations (retention) still removes their assessments and unlinks their feed rows, now by
 *   migration 0024's statement trigger instead of foreign keys.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { importFeeds } from '../src/services/ingest.js';
import { productRuntimes } from '../src/products/registry.js';
import type { Database } from '../src/platform/db/connect.js';
import { testEachBackend } from './helpers/db.js';

const products = productRuntimes();
const HEADER = 'timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,sector,version,servername,url';
const BUILDS = ['15.1.2176', '15.2.858', '15.0.1497', '15.2.1544', '15.1.2507', ''];

function report(day: string, rows: number, build: (i: number) => string): string {
  const out = [HEADER];
  for (let i = 1; i <= rows; i++) {
    out.push(`"${day} 01:02:03",critical,10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255},tcp,443,mail${i}.example.org,"exchange;cve-2021-26855",` +
      `64500,ZZ,R,C,517311,ptr,"Sector, one",${build(i)},EX${i},https://mail${i}.example.org/owa/`);
  }
  return `${out.join('\n')}\n`;
}

async function counts(database: Database): Promise<Record<string, number>> {
  const r = await sql<Record<string, number>>`
    SELECT (SELECT count(*)::int FROM feed_imports) AS imports, (SELECT count(*)::int FROM feed_observations) AS rows,
           (SELECT count(*)::int FROM observations) AS observations, (SELECT count(*)::int FROM assessments) AS assessments,
           (SELECT count(*)::int FROM feed_quarantine) AS quarantine`.execute(database.db);
  return r.rows[0] ?? {};
}

async function stagingTables(database: Database): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('feed_stage', 'feed_stage_verdicts')`.execute(database.db);
  return r.rows[0]?.n ?? -1;
}

testEachBackend('staged verdicts: every row of a mixed-build report gets its own build\'s verdicts, in several chunks', async ({ database }) => {
  const db = database.db;
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-feeds-staging-'));
  try {
    // One row per build first (a verdict set each), then 3,000 rows cycling through the builds in chunks of 700.
    writeFileSync(join(dir, '2024-06-01-scan_exchange-single.csv'), report('2024-06-01', BUILDS.length, (i) => BUILDS[i - 1] ?? ''));
    writeFileSync(join(dir, '2024-06-02-scan_exchange-mixed.csv'), report('2024-06-02', 3000, (i) => BUILDS[(i * 7) % BUILDS.length] ?? ''));
    const [single] = await importFeeds([join(dir, '2024-06-01-scan_exchange-single.csv')], { db, products });
    const [mixed] = await importFeeds([join(dir, '2024-06-02-scan_exchange-mixed.csv')], { db, products, batchSize: 700 });
    assert.deepEqual([single?.imported, mixed?.imported, mixed?.duplicate], [BUILDS.length, 3000, 0]);

    const bySet = await sql<{ build: string | null; sets: number; rows: number; same: boolean }>`
      WITH v AS (
        SELECT f.build, f.report_date, a.kb_revision, a.vulnerable, a.indeterminate, a.notes, o.cu, o.edition
        FROM feed_observations f JOIN observations o ON o.id = f.observation_id JOIN assessments a ON a.observation_id = o.id
      ), ref AS (SELECT * FROM v WHERE report_date = '2024-06-01')
      SELECT m.build, count(DISTINCT (m.kb_revision, m.vulnerable, m.indeterminate, m.notes, m.cu, m.edition))::int AS sets, count(*)::int AS rows,
             bool_and(m.vulnerable = r.vulnerable AND m.indeterminate = r.indeterminate AND m.notes = r.notes
                      AND m.cu IS NOT DISTINCT FROM r.cu AND m.kb_revision IS NOT DISTINCT FROM r.kb_revision) AS same
      FROM v m JOIN ref r ON r.build IS NOT DISTINCT FROM m.build
      WHERE m.report_date = '2024-06-02'
      GROUP BY m.build ORDER BY m.build NULLS LAST`.execute(db);
    assert.equal(bySet.rows.length, BUILDS.length, 'every build of the report was judged');
    for (const r of bySet.rows) {
      assert.equal(r.sets, 1, `one verdict set for build ${r.build ?? '(none)'}`);
      assert.equal(r.same, true, `build ${r.build ?? '(none)'}: the verdicts of the one-row import`);
      assert.equal(r.rows, 500);
    }
    const vulnerable = await sql<{ n: number }>`SELECT count(DISTINCT vulnerable)::int AS n FROM assessments`.execute(db);
    assert.ok((vulnerable.rows[0]?.n ?? 0) >= 3, 'the builds differ in their verdicts (the test can tell a mix-up)');
    // Shadowserver fields a column or the raw line holds are not stored twice; the others are.
    const f = await sql<{ fields: Record<string, string> }>`SELECT fields FROM feed_observations WHERE line = 2 AND report_date = '2024-06-02'`.execute(db);
    assert.deepEqual(Object.keys(f.rows[0]?.fields ?? {}).sort(), ['asn', 'city', 'geo', 'hostname_source', 'naics', 'region', 'sector', 'servername', 'severity', 'url']);
    assert.equal(await stagingTables(database), 0, 'the staging tables end with the transaction');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testEachBackend('an import whose connection dies half-way leaves nothing; the re-run imports every row exactly once', async ({ database, url }) => {
  const db = database.db;
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-feeds-killed-'));
  const ROWS = 12_000;
  try {
    const file = join(dir, '2024-06-03-scan_exchange-killed.csv');
    writeFileSync(file, report('2024-06-03', ROWS, (i) => BUILDS[i % BUILDS.length] ?? ''));
    // Watch from outside the pool: once the import has moved a chunk (its feed_imports row exists only in its
    // transaction, so look for its statements), terminate its backend, as a crash or a killed process would.
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    let killed = 0;
    const watch = (async () => {
      for (let i = 0; i < 6000 && killed === 0; i++) {
        const r = await watcher.query<{ pid: number }>(`
          SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND (query LIKE 'COPY feed_stage%' OR query LIKE '%INSERT INTO feed_observations%' OR query LIKE 'TRUNCATE feed_stage%')
            AND xact_start < now() - interval '200 milliseconds'`);
        const pid = r.rows[0]?.pid;
        if (pid !== undefined) {
          await watcher.query('SELECT pg_terminate_backend($1)', [pid]);
          killed = pid;
        } else await sleep(20);
      }
    })();
    const first = await importFeeds([file], { db, products, batchSize: 500 }).then(() => null, (e: unknown) => e);
    await watch;
    await watcher.end();
    assert.ok(killed !== 0, 'the import was caught half-way');
    assert.ok(first instanceof Error, 'the import whose connection died fails');
    assert.deepEqual(await counts(database), { imports: 0, rows: 0, observations: 0, assessments: 0, quarantine: 0 });
    assert.equal(await stagingTables(database), 0);

    const [again] = await importFeeds([file], { db, products, batchSize: 500 });
    assert.deepEqual([again?.status, again?.imported, again?.duplicate], ['imported', ROWS, 0]);
    assert.deepEqual(await counts(database), { imports: 1, rows: ROWS, observations: ROWS, assessments: ROWS, quarantine: 0 });
    const [third] = await importFeeds([file], { db, products });
    assert.deepEqual([third?.status, third?.imported], ['duplicate-report', 0]);
    assert.deepEqual(await counts(database), { imports: 1, rows: ROWS, observations: ROWS, assessments: ROWS, quarantine: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testEachBackend('deleting observations removes their assessments and unlinks their feed rows (migration 0024 trigger)', async ({ database }) => {
  const db = database.db;
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-feeds-gone-'));
  try {
    writeFileSync(join(dir, '2024-06-04-scan_exchange-gone.csv'), report('2024-06-04', 10, (i) => BUILDS[i % BUILDS.length] ?? ''));
    const [r] = await importFeeds([join(dir, '2024-06-04-scan_exchange-gone.csv')], { db, products });
    assert.equal(r?.imported, 10);
    await sql`DELETE FROM observations WHERE id IN (SELECT observation_id FROM feed_observations WHERE line <= 5)`.execute(db);
    const after = await sql<{ rows: number; linked: number; observations: number; assessments: number; orphans: number }>`
      SELECT (SELECT count(*)::int FROM feed_observations) AS rows,
             (SELECT count(*)::int FROM feed_observations WHERE observation_id IS NOT NULL) AS linked,
             (SELECT count(*)::int FROM observations) AS observations, (SELECT count(*)::int FROM assessments) AS assessments,
             (SELECT count(*)::int FROM assessments a WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.id = a.observation_id)) AS orphans`.execute(db);
    assert.deepEqual(after.rows[0], { rows: 10, linked: 6, observations: 6, assessments: 6, orphans: 0 }, 'lines 2-5 lost their observation; the feed rows stay');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

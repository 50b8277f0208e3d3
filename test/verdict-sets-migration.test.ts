/**
 * Verdict sets (issue 8 §6, migration 0028), on both backends:
 * - the migration, run on a database holding old-shape assessments (the CVE arrays in every row), keeps every row
 *   with its id and values as the `assessments` view shows them, stores each distinct pair of arrays once (arrays
 *   in their stored order), and ids continue after it;
 * - the writers (scan store's writeAssessments, the feed import) store one set for assessments with the same
 *   verdicts, and the view reads back identical arrays for each.
 */
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMigrations } from '../src/platform/db/migrate.js';
import { MIGRATIONS } from '../src/platform/db/migrations/index.js';
import { writeAssessments } from '../src/platform/db/scan-store.js';
import type { DbSchema } from '../src/platform/db/schema.js';
import { importFeeds } from '../src/services/ingest.js';
import { testEachBackend } from './helpers/db.js';

const BEFORE_0028 = MIGRATIONS.findIndex((m) => m.id === '0028-verdict-sets');

const OLD = ['CVE-2021-34473', 'CVE-2021-26855', 'CVE-2021-27065'];
const IND = ['CVE-2022-41040'];

async function observation(db: Kysely<DbSchema>, ip: string): Promise<number> {
  const r = await sql<{ id: number }>`INSERT INTO observations (source, ip, port, tls, product, build, scanned_at)
    VALUES ('scan', ${ip}::inet, 443, true, 'ms-exchange', '15.1.2176.9', now()) RETURNING id`.execute(db);
  return Number(r.rows[0]?.id);
}

const viewSnapshot = sql<{ id: number; j: string }>`SELECT id, to_jsonb(a)::text AS j FROM assessments a ORDER BY id`;

testEachBackend('migration 0028 converts old-shape assessments: ids and values kept, each distinct pair stored once', async ({ database }) => {
  const db = database.db;
  assert.ok(BEFORE_0028 > 0, 'migration 0028 is registered');
  await runMigrations(db as unknown as Kysely<unknown>, MIGRATIONS.slice(0, BEFORE_0028));
  const o1 = await observation(db, '127.0.0.1');
  const o2 = await observation(db, '127.0.0.2');
  const o3 = await observation(db, '127.0.0.3');
  // Old shape: the arrays in the row. Rows 1 and 2 (different observations) and 4 (a later re-assessment) share a pair.
  await sql`INSERT INTO assessments (observation_id, kb_revision, vulnerable, indeterminate, notes)
    VALUES (${o1}, 'kb1', ${OLD}::text[], ${IND}::text[], '["build 15.1.2176.9"]'),
           (${o2}, 'kb1', ${OLD}::text[], ${IND}::text[], '[]'),
           (${o3}, NULL, DEFAULT, DEFAULT, DEFAULT)`.execute(db);
  await sql`INSERT INTO assessments (observation_id, kb_revision, vulnerable, indeterminate, fingerprint)
    VALUES (${o1}, 'kb2', ${OLD}::text[], ${IND}::text[], '{"product":"ms-exchange","build":"15.1.2176.9"}')`.execute(db);
  // A deleted newest row: its id is not handed out again after the migration either.
  const gone = await sql<{ id: number }>`INSERT INTO assessments (observation_id, vulnerable) VALUES (${o3}, '{CVE-2020-0688}') RETURNING id`.execute(db);
  await sql`DELETE FROM assessments WHERE id = ${gone.rows[0]?.id}`.execute(db);
  const before = (await viewSnapshot.execute(db)).rows;
  assert.equal(before.length, 4);

  await runMigrations(db as unknown as Kysely<unknown>);

  assert.deepEqual((await viewSnapshot.execute(db)).rows, before, 'every assessment, id and value kept, read through the view');
  const kind = await sql<{ relkind: string }>`SELECT relkind FROM pg_class WHERE relname = 'assessments' AND relnamespace = current_schema()::regnamespace`.execute(db);
  assert.equal(kind.rows[0]?.relkind, 'v', 'assessments is a view now');
  const sets = await sql<{ vulnerable: string[]; indeterminate: string[] }>`SELECT vulnerable, indeterminate FROM verdict_sets ORDER BY id`.execute(db);
  assert.equal(sets.rows.length, 2, 'two distinct pairs, two sets');
  assert.ok(sets.rows.some((s) => JSON.stringify(s.vulnerable) === JSON.stringify(OLD)), 'arrays kept in their stored order');
  const shared = await sql<{ n: number }>`SELECT count(DISTINCT verdict_set_id)::int AS n FROM assessment_rows WHERE kb_revision IN ('kb1', 'kb2')`.execute(db);
  assert.equal(shared.rows[0]?.n, 1, 'the three rows with the same verdicts point to one set');
  const next = await sql<{ id: number }>`INSERT INTO assessment_rows (observation_id, verdict_set_id) VALUES (${o2}, tocsin_verdict_set('{}', '{}')) RETURNING id`.execute(db);
  assert.ok(Number(next.rows[0]?.id) > Number(gone.rows[0]?.id), 'ids continue after the old sequence');
  assert.equal((await sql<{ n: number }>`SELECT count(*)::int AS n FROM verdict_sets`.execute(db)).rows[0]?.n, 2, 'the empty pair existed already');
  // The statement-level cascade (0024's trigger, recreated against the table) still removes an observation's assessments.
  await sql`DELETE FROM observations WHERE id = ${o1}`.execute(db);
  assert.equal((await sql<{ n: number }>`SELECT count(*)::int AS n FROM assessments WHERE observation_id = ${o1}`.execute(db)).rows[0]?.n, 0);
  assert.equal((await sql<{ n: number }>`SELECT count(*)::int AS n FROM assessment_rows`.execute(db)).rows[0]?.n, 3);
}, { migrate: false });

testEachBackend('assessments with the same verdicts share one verdict set and read back identical arrays', async ({ database }) => {
  const db = database.db;
  const a = await observation(db, '127.0.0.1');
  const b = await observation(db, '127.0.0.2');
  const c = await observation(db, '127.0.0.3');
  // Two batches (the second finds the set in memory), and a different order of the same ids (another set).
  await writeAssessments(db, [
    { observationId: a, kbRevision: 'kb1', vulnerable: OLD, indeterminate: IND, notes: ['a'], fingerprint: null },
  ]);
  await writeAssessments(db, [
    { observationId: b, kbRevision: 'kb1', vulnerable: OLD, indeterminate: IND, notes: ['b'], fingerprint: null },
    { observationId: c, kbRevision: 'kb1', vulnerable: [...OLD].reverse(), indeterminate: [], notes: [], fingerprint: null },
  ]);
  const rows = await db.selectFrom('assessments').select(['observation_id', 'vulnerable', 'indeterminate', 'notes']).orderBy('id').execute();
  assert.deepEqual(rows, [
    { observation_id: a, vulnerable: OLD, indeterminate: IND, notes: ['a'] },
    { observation_id: b, vulnerable: OLD, indeterminate: IND, notes: ['b'] },
    { observation_id: c, vulnerable: [...OLD].reverse(), indeterminate: [], notes: [] },
  ]);
  const ids = await db.selectFrom('assessment_rows').select(['observation_id', 'verdict_set_id']).orderBy('id').execute();
  assert.equal(ids[0]?.verdict_set_id, ids[1]?.verdict_set_id, 'same verdicts, same set');
  assert.notEqual(ids[1]?.verdict_set_id, ids[2]?.verdict_set_id, 'another order is another set');
  assert.equal((await sql<{ n: number }>`SELECT count(*)::int AS n FROM verdict_sets`.execute(db)).rows[0]?.n, 2);

  // A feed import: 4 rows of two builds give two sets (at most), shared by the rows of each build.
  const dir = await mkdtemp(join(tmpdir(), 'tocsin-verdict-sets-'));
  try {
    const header = '"timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","version"';
    const line = (ip: string, version: string): string => `"2026-01-12 01:02:03","critical","${ip}","tcp",443,"","exchange;cve-2021-26855",64500,"ZZ","R","C","${version}"`;
    const file = join(dir, '2026-01-12-scan_exchange-test.csv');
    await writeFile(file, [header, line('192.0.2.1', '15.1.2176'), line('192.0.2.2', '15.1.2176'), line('192.0.2.3', '15.0.1497'), line('192.0.2.4', '15.0.1497'), ''].join('\n'));
    const [r] = await importFeeds([file], { db });
    assert.equal(r?.imported, 4, JSON.stringify(r));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const feed = await sql<{ build: string; sets: number; arrays: number; cves: number }>`
    SELECT o.build, count(DISTINCT r.verdict_set_id)::int AS sets, count(DISTINCT (a.vulnerable, a.indeterminate))::int AS arrays,
           max(cardinality(a.vulnerable) + cardinality(a.indeterminate))::int AS cves
    FROM observations o JOIN assessment_rows r ON r.observation_id = o.id JOIN assessments a ON a.id = r.id
    WHERE o.source LIKE 'feed:%' GROUP BY o.build ORDER BY o.build`.execute(db);
  assert.equal(feed.rows.length, 2, JSON.stringify(feed.rows));
  for (const f of feed.rows) {
    assert.equal(f.sets, 1, `rows of build ${f.build} share one set`);
    assert.equal(f.arrays, 1);
    assert.ok(f.cves > 0, `build ${f.build} has verdicts`);
  }
});

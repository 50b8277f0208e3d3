/**
 * Retention (issue 11 §5): `pruneRetention` (what `tocsin db prune` runs) deletes history beyond the retention and
 * keeps what must stay. On both backends, the lab at 127.84.0.0 is scanned twice with a fold after each, then the
 * first scan is made 100 days old. A prune with 30-day retention must:
 * - keep the latest observation of every (ip, port), every observation a finding or a finding event names, and
 *   the raw responses of all of those (reassess still has them);
 * - delete the other old observations (with their assessments and responses), their bare attempts, raw blobs no
 *   longer referenced (but not one stored minutes ago: a scan may be about to link it), old audit rows;
 * - count exactly the same in a dry run, and change nothing then; delete nothing more when run again.
 * The CLI refuses a malformed TOCSIN_RETENTION_* before touching the database.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { startLab } from '../lab/server.js';
import type { Database } from '../src/platform/db/connect.js';
import { pruneRetention, vacuumBigTables } from '../src/platform/db/retention-store.js';
import { foldFindings } from '../src/services/findings.js';
import { planScan, startScan, type ScanDeps } from '../src/services/scan-service.js';
import { scanStorageOn } from '../src/services/scan-storage.js';
import { test } from 'node:test';
import { testEachBackend } from './helpers/db.js';
import { runCli } from './helpers/independent-estate/cli.js';

const BASE = '127.84.0.0';
const HOSTS = 48;
const DAY = 86_400_000;

function deps(database: Database): ScanDeps {
  return {
    storage: { open: async () => scanStorageOn(database, { ownsDatabase: false }), explainFailure: (e) => e },
    output: { replayStored: false, open: async () => ({ write: async () => undefined, close: async () => undefined, release: async () => undefined }) },
    signal: new AbortController().signal,
    clock: { now: () => Date.now() },
  };
}

async function ids(database: Database, q: ReturnType<typeof sql<{ id: number }>>): Promise<number[]> {
  return (await q.execute(database.db)).rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

async function num(database: Database, q: ReturnType<typeof sql<{ n: number }>>): Promise<number> {
  return Number((await q.execute(database.db)).rows[0]?.n ?? -1);
}

const latestIds = sql<{ id: number }>`SELECT id FROM (SELECT DISTINCT ON (ip, port) id FROM observations ORDER BY ip, port, scanned_at DESC, id DESC) x`;
const referencedIds = sql<{ id: number }>`SELECT first_observation_id AS id FROM findings WHERE first_observation_id IS NOT NULL
  UNION SELECT last_observation_id FROM findings WHERE last_observation_id IS NOT NULL
  UNION SELECT observation_id FROM finding_events WHERE observation_id IS NOT NULL`;

testEachBackend('prune keeps the latest and referenced observations with their raw responses, deletes the rest beyond retention', async ({ database }) => {
  const lab = await startLab({ hosts: HOSTS, base: BASE, seed: 9 });
  let scans: string[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const plan = await planScan({
        targets: [`${BASE}-127.84.0.${HOSTS - 1}`], ports: `${lab.httpsPort}/tls`, excludeFiles: [], exclude: [], concurrency: 32, rate: 0, ratePerNetwork: 0,
        timeoutMs: 3000, hostBudgetMs: 10_000, userAgent: 'tocsin-test',
      }, { stdin: process.stdin });
      const r = await startScan(plan, deps(database), { workers: 1 });
      assert.equal(r.status, 'finished');
      scans = [...scans, r.scanId!];
      await foldFindings(database.db, { who: 'tester' });
    }
  } finally {
    await lab.close();
  }
  const [old] = scans.map(Number);
  const db = database.db;
  // The first scan, 100 days ago; every blob old enough to be judged; two orphan blobs, one old, one just stored.
  await sql`UPDATE observations SET scanned_at = scanned_at - interval '100 days' WHERE scan_id = ${old}`.execute(db);
  await sql`UPDATE scan_attempts SET attempted_at = attempted_at - interval '100 days' WHERE scan_id = ${old}`.execute(db);
  await sql`UPDATE raw_responses SET first_seen = first_seen - interval '2 hours'`.execute(db);
  const orphan = (s: string): Buffer => createHash('sha256').update(s).digest();
  await sql`INSERT INTO raw_responses (sha256, encoding, size, data, first_seen) VALUES
    (${orphan('old orphan')}, 'identity', 3, ${Buffer.from('old')}, now() - interval '2 days'),
    (${orphan('new orphan')}, 'identity', 3, ${Buffer.from('new')}, now())`.execute(db);
  await sql`INSERT INTO web_audit (at, method, route, status) VALUES (now() - interval '40 days', 'GET', '/api/exposures', 200), (now(), 'GET', '/api/exposures', 200)`.execute(db);
  await sql`INSERT INTO constituency_audit (at, who, action, entity, entity_id, org_id, source) VALUES
    (now() - interval '40 days', 'tester', 'create', 'organisation', 1, 1, 'test'), (now(), 'tester', 'create', 'organisation', 2, 2, 'test')`.execute(db);

  const all = await ids(database, sql<{ id: number }>`SELECT id FROM observations`);
  const latest = await ids(database, latestIds);
  const referenced = await ids(database, referencedIds);
  const keep = new Set([...latest, ...referenced]);
  const oldObs = await ids(database, sql<{ id: number }>`SELECT id FROM observations WHERE scan_id = ${old}`);
  const expectGone = oldObs.filter((id) => !keep.has(id));
  const keptOld = oldObs.filter((id) => keep.has(id));
  assert.ok(expectGone.length >= 5, `old observations to prune: ${expectGone.length}`);
  assert.ok(keptOld.length >= 3, `old observations a finding names: ${keptOld.length}`);
  const bareOldAttempts = await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_attempts a WHERE a.scan_id = ${old}
    AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.attempt_id = a.id AND o.id = ANY (${keptOld}::bigint[]))`);
  const cut = { observations: new Date(Date.now() - 30 * DAY), raw: new Date(Date.now() - 30 * DAY), audit: new Date(Date.now() - 30 * DAY) };

  // Dry run: the counts of the real run, nothing changed.
  const counts = async (): Promise<number[]> => [
    await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM observations`),
    await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM observation_responses`),
    await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM raw_responses`),
    await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_attempts`),
    await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM web_audit`),
  ];
  const before = await counts();
  const dry = await pruneRetention(db, cut, { dryRun: true });
  assert.deepEqual(await counts(), before, 'a dry run changes nothing');
  const real = await pruneRetention(db, cut);
  assert.deepEqual(real, dry, 'the dry run counted what the prune deleted');

  assert.equal(real.observations, expectGone.length);
  assert.equal(real.keptProtected, keptOld.length);
  const left = await ids(database, sql<{ id: number }>`SELECT id FROM observations`);
  assert.deepEqual(left, all.filter((id) => !expectGone.includes(id)));
  for (const id of keep) assert.ok(left.includes(id), `kept observation ${id}`);
  assert.deepEqual(await ids(database, latestIds), latest, 'the latest observation of every ip:port is unchanged');
  // Every finding still has its evidence, with its raw responses (reassess can replay it).
  assert.equal(await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM (${referencedIds}) r WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.id = r.id)`), 0);
  assert.equal(await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM observations o
    WHERE o.product IS NOT NULL AND NOT EXISTS (SELECT 1 FROM observation_responses r WHERE r.observation_id = o.id)`), 0, 'kept observations keep their responses');
  // Blobs: exactly the referenced ones remain, plus the one stored just now.
  const referencedBlobs = await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM (SELECT head_sha256 FROM observation_responses UNION SELECT body_sha256 FROM observation_responses) x`);
  assert.equal(await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM raw_responses`), referencedBlobs + 1);
  assert.equal(await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM raw_responses WHERE sha256 = ${orphan('new orphan')}`), 1);
  assert.ok(real.blobs >= 1 && real.blobBytes >= 3);
  // Attempts: the old scan keeps only those its kept observations hang on (and the latest per ip:port).
  assert.ok(real.attempts > 0 && real.attempts <= bareOldAttempts, `${real.attempts} attempts pruned of ${bareOldAttempts}`);
  assert.equal(await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM observations o WHERE o.attempt_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM scan_attempts a WHERE a.id = o.attempt_id)`), 0);
  assert.deepEqual([real.webAudit, real.constituencyAudit], [1, 1]);
  assert.equal(await num(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM web_audit`), 1);

  // Again: nothing more to delete.
  const again = await pruneRetention(db, cut);
  assert.deepEqual([again.observations, again.attempts, again.responseLinks, again.blobs, again.webAudit], [0, 0, 0, 0, 0]);
  // Without retention settings only unreferenced blobs would go: nothing here.
  const none = await pruneRetention(db, { observations: null, raw: null, audit: null });
  assert.deepEqual([none.observations, none.attempts, none.responseLinks, none.blobs], [0, 0, 0, 0]);
  const vacuumed = await vacuumBigTables(db);
  assert.ok(vacuumed.includes('observations') && vacuumed.includes('raw_responses'));
});

test('tocsin db prune refuses a malformed TOCSIN_RETENTION_* before it opens the database', async () => {
  const r = await runCli(['db', 'prune', '--dry-run'], { TOCSIN_RETENTION_RAW_DAYS: 'ninety', TOCSIN_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }, 120_000);
  const err = r.stderr.toString('utf8');
  assert.equal(r.code, 78, err);
  assert.match(err, /TOCSIN_CONFIG_INVALID/);
  assert.match(err, /TOCSIN_RETENTION_RAW_DAYS="ninety" is not a whole number/);
});

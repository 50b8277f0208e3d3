/**
 * Monthly partitions of observations and scan_attempts (issue 11 §5, migration 0023), on both backends:
 * - the migration, run on a database holding rows across several months, keeps every row with its id and values,
 *   puts each in its month (attempts by their SCAN's start month, even when attempted the next month; feed rows
 *   older than the partitioned months in the archive), and ids continue after it;
 * - the scan store's new rows land in the right partition, and a replayed batch still stores each (scan, ip, port)
 *   once, also for a scan started last month;
 * - a row far in the future lands in the default partition without error, and creating its month moves it there;
 * - prune drops whole old months as partitions, removes what the rules remove (with assessments, response links and
 *   feed links), moves what they keep into the archive unchanged, and counts exactly the same in a dry run.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../src/platform/db/connect.js';
import { runMigrations } from '../src/platform/db/migrate.js';
import { MIGRATIONS } from '../src/platform/db/migrations/index.js';
import { ensurePartitions, monthPartitions, partitionOf } from '../src/platform/db/partitions.js';
import { pruneRetention } from '../src/platform/db/retention-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { DbSchema } from '../src/platform/db/schema.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { testEachBackend } from './helpers/db.js';

const BEFORE_0023 = MIGRATIONS.findIndex((m) => m.id === '0023-partitions');

/** First day of the UTC month `offset` months from now. */
function month(offset: number): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
}
const day = (d: Date, days: number): Date => new Date(d.getTime() + days * 86_400_000);
const suffix = (d: Date): string => `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`;

async function migrateTo0022(database: Database): Promise<void> {
  assert.ok(BEFORE_0023 > 0, 'migration 0023 is registered');
  await runMigrations(database.db as unknown as Kysely<unknown>, MIGRATIONS.slice(0, BEFORE_0023));
}

async function rows<T>(db: Kysely<DbSchema>, q: ReturnType<typeof sql<T>>): Promise<T[]> {
  return (await q.execute(db)).rows;
}

async function count(db: Kysely<DbSchema>, q: ReturnType<typeof sql<{ n: number }>>): Promise<number> {
  return Number((await q.execute(db)).rows[0]?.n ?? -1);
}

interface Seeded {
  readonly scans: number[];
  readonly obs: Record<string, number>;
  readonly attempts: Record<string, number>;
}

/**
 * History before migration 0023 (plain tables): scans started in months -4, -3 (still running: a resume needs its
 * attempts) and 0. Observations: A seen at -4 and 0; B only at -4 (its latest); C at -4, named by a finding, and at 0;
 * E at -3, linked to a feed row, and at 0; F, a feed observation dated 30 months back. Attempt D refused at -4 and at 0.
 * The first scan's last attempt is made in month -3 (it ran across the month boundary).
 */
async function seed(db: Kysely<DbSchema>): Promise<Seeded> {
  const scans: number[] = [];
  for (const [m, status] of [[-4, 'finished'], [-3, 'running'], [0, 'finished']] as const) {
    const r = await sql<{ id: number }>`INSERT INTO scans (targets, ports, status, started_at)
      VALUES ('["127.0.0.0/24"]', '{443}', ${status}, ${day(month(m), 2)}) RETURNING id`.execute(db);
    scans.push(Number(r.rows[0]?.id));
  }
  const [s4, s3, s0] = scans as [number, number, number];
  const attempts: Record<string, number> = {};
  const obs: Record<string, number> = {};
  const attempt = async (key: string, scan: number, ip: string, at: Date, outcome = 'answered'): Promise<number> => {
    const r = await sql<{ id: number }>`INSERT INTO scan_attempts (scan_id, ip, port, outcome, attempted_at)
      VALUES (${scan}, ${ip}::inet, 443, ${outcome}, ${at}) RETURNING id`.execute(db);
    attempts[key] = Number(r.rows[0]?.id);
    return attempts[key] as number;
  };
  const head = createHash('sha256').update('head').digest();
  const body = createHash('sha256').update('body').digest();
  await sql`INSERT INTO raw_responses (sha256, encoding, size, data, first_seen) VALUES
    (${head}, 'identity', 4, ${Buffer.from('head')}, now() - interval '1 year'),
    (${body}, 'identity', 4, ${Buffer.from('body')}, now() - interval '1 year')`.execute(db);
  const observe = async (key: string, scan: number | null, attemptId: number | null, ip: string, at: Date, source = 'scan'): Promise<void> => {
    const r = await sql<{ id: number }>`INSERT INTO observations (source, attempt_id, scan_id, ip, port, tls, product, build, scanned_at)
      VALUES (${source}, ${attemptId}, ${scan}, ${ip}::inet, 443, true, 'exchange', '15.1.2176.9', ${at}) RETURNING id`.execute(db);
    const id = Number(r.rows[0]?.id);
    obs[key] = id;
    await sql`INSERT INTO assessments (observation_id, kb_revision, vulnerable) VALUES (${id}, 'kb1', '{CVE-2021-26855}')`.execute(db);
    await sql`INSERT INTO observation_responses (observation_id, ord, probe_id, url, status, head_sha256, body_sha256, body_bytes, client_truncated, stored_truncated)
      VALUES (${id}, 0, 'owa', 'https://x/owa/', 200, ${head}, ${body}, 4, false, false)`.execute(db);
  };
  const t4 = day(month(-4), 3);
  await observe('A-4', s4, await attempt('A-4', s4, '127.0.0.1', t4), '127.0.0.1', t4);
  await observe('B-4', s4, await attempt('B-4', s4, '127.0.0.2', t4), '127.0.0.2', t4);
  await observe('C-4', s4, await attempt('C-4', s4, '127.0.0.3', t4), '127.0.0.3', t4);
  await attempt('D-4', s4, '127.0.0.4', t4, 'refused');
  // the scan of month -4 reached this host in month -3
  await attempt('G-4', s4, '127.0.0.7', day(month(-3), 1), 'refused');
  const t3 = day(month(-3), 5);
  await observe('E-3', s3, await attempt('E-3', s3, '127.0.0.5', t3), '127.0.0.5', t3);
  const t0 = new Date(Math.max(month(0).getTime(), Date.now() - 3_600_000));
  await observe('A0', s0, await attempt('A0', s0, '127.0.0.1', t0), '127.0.0.1', t0);
  await observe('C0', s0, await attempt('C0', s0, '127.0.0.3', t0), '127.0.0.3', t0);
  await observe('E0', s0, await attempt('E0', s0, '127.0.0.5', t0), '127.0.0.5', t0);
  await attempt('D0', s0, '127.0.0.4', t0, 'refused');
  await observe('F-30', null, null, '127.0.0.6', day(month(-30), 4), 'feed:shadowserver');
  // Feed rows linked to E and F (the link goes when its observation goes).
  const imp = await sql<{ id: number }>`INSERT INTO feed_imports (feed, format, file) VALUES ('shadowserver', 'csv', 'x.csv') RETURNING id`.execute(db);
  for (const [k, line, ip] of [['E-3', 1, '127.0.0.5'], ['F-30', 2, '127.0.0.6']] as const) {
    await sql`INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, line, raw)
      VALUES (${imp.rows[0]?.id}, ${obs[k]}, 'shadowserver', 'exchange', 'scan_exchange', ${day(month(-3), 5)}, ${ip}::inet, 443, ${line}, 'raw')`.execute(db);
  }
  await sql`INSERT INTO findings (ip, port, cve, state, verdict, first_seen, last_seen, last_at, first_observation_id, last_observation_id)
    VALUES ('127.0.0.3', 443, 'CVE-2021-26855', 'open', 'vulnerable', ${t4}, ${t0}, ${t0}, ${obs['C-4']}, ${obs.C0})`.execute(db);
  return { scans, obs, attempts };
}

const obsSnapshot = sql<{ id: number; j: string }>`SELECT id, to_jsonb(o)::text AS j FROM observations o ORDER BY id`;
const attSnapshot = sql<{ id: number; j: string }>`SELECT id, (to_jsonb(a) - 'scan_month')::text AS j FROM scan_attempts a ORDER BY id`;

function result(ip: string, port: number, at: Date, outcome: AttemptResult['outcome'] = 'refused', unanswered = false): AttemptResult {
  return {
    ip, port, hostname: null, outcome, detail: null, attemptedAt: at.toISOString(), record: null, facts: [], detectorRevisions: {}, tlsCert: null,
    unanswered,
  };
}

testEachBackend('migration 0023 keeps every row and id, each in its month; new rows land in their partition and dedup holds', async ({ database }) => {
  const db = database.db;
  await migrateTo0022(database);
  const seeded = await seed(db);
  const obsBefore = await rows(db, obsSnapshot);
  const attBefore = await rows(db, attSnapshot);
  const nextObs = Number((await sql<{ n: number }>`SELECT last_value AS n FROM observations_id_seq`.execute(db)).rows[0]?.n);

  await runMigrations(db as unknown as Kysely<unknown>);

  assert.deepEqual(await rows(db, obsSnapshot), obsBefore, 'every observation, id and value kept');
  assert.deepEqual(await rows(db, attSnapshot), attBefore, 'every attempt, id and value kept');
  assert.equal(await partitionOf(db, 'observations', seeded.obs['A-4'] as number), `observations_p${suffix(month(-4))}`);
  assert.equal(await partitionOf(db, 'observations', seeded.obs['E-3'] as number), `observations_p${suffix(month(-3))}`);
  assert.equal(await partitionOf(db, 'observations', seeded.obs.A0 as number), `observations_p${suffix(month(0))}`);
  assert.equal(await partitionOf(db, 'observations', seeded.obs['F-30'] as number), 'observations_archive', 'older than 24 months: the archive');
  assert.equal(await partitionOf(db, 'scan_attempts', seeded.attempts['G-4'] as number), `scan_attempts_p${suffix(month(-4))}`,
    'an attempt made in month -3 by a scan started in month -4 stays with its scan');
  assert.equal(await partitionOf(db, 'scan_attempts', seeded.attempts['E-3'] as number), `scan_attempts_p${suffix(month(-3))}`);
  const months = (await monthPartitions(db, 'observations')).map((p) => p.name);
  assert.deepEqual(months, [-4, -3, -2, -1, 0, 1].map((m) => `observations_p${suffix(month(m))}`), 'contiguous months up to next month');
  assert.deepEqual((await monthPartitions(db, 'scan_attempts')).map((p) => p.name), [-4, -3, -2, -1, 0, 1].map((m) => `scan_attempts_p${suffix(month(m))}`));

  // New rows through the scan store: ids continue; the partitions are this month's.
  const store = createScanStore(db);
  const scan = await store.createScan({ targets: ['127.0.1.0/24'], ports: [443], options: {} });
  const now = new Date();
  await store.recordBatch(scan.id, [result('127.0.1.1', 443, now), result('127.0.1.2', 443, now, 'timeout', true)]);
  const fresh = await rows(db, sql<{ id: number; p: string; ip: string }>`SELECT id, tableoid::regclass::text AS p, host(ip) AS ip
    FROM scan_attempts WHERE scan_id = ${Number(scan.id)} ORDER BY ip`);
  assert.equal(fresh.length, 2);
  for (const r of fresh) {
    assert.equal(r.p, `scan_attempts_p${suffix(month(0))}`);
    assert.ok(r.id > Math.max(...attBefore.map((a) => a.id)), `attempt ids continue (${r.id})`);
  }
  const o = await sql<{ id: number; p: string }>`INSERT INTO observations (ip, port, tls, scanned_at) VALUES ('127.0.1.3', 443, true, now())
    RETURNING id, tableoid::regclass::text AS p`.execute(db);
  assert.ok(Number(o.rows[0]?.id) > nextObs, 'observation ids continue after the migrated ones');
  assert.equal(o.rows[0]?.p, `observations_p${suffix(month(0))}`);

  // Resume: replaying the batch stores nothing twice; the unanswered attempt is replaced, not duplicated.
  await store.recordBatch(scan.id, [result('127.0.1.1', 443, now), result('127.0.1.2', 443, now, 'refused')]);
  const after = await rows(db, sql<{ ip: string; outcome: string; tries: number; unanswered: boolean }>`
    SELECT host(ip) AS ip, outcome, tries, unanswered FROM scan_attempts WHERE scan_id = ${Number(scan.id)} ORDER BY ip`);
  assert.deepEqual(after, [
    { ip: '127.0.1.1', outcome: 'refused', tries: 1, unanswered: false },
    { ip: '127.0.1.2', outcome: 'refused', tries: 2, unanswered: false },
  ]);
  assert.deepEqual([...(await store.doneKeys(scan.id))].sort(), ['127.0.1.1|443', '127.0.1.2|443']);

  // A scan started last month and resumed now: its attempts stay in last month's partition, once each.
  const old = await store.createScan({ targets: ['127.0.2.0/24'], ports: [443], options: {} });
  await sql`UPDATE scans SET started_at = ${day(month(-1), 20)} WHERE id = ${Number(old.id)}`.execute(db);
  await store.recordBatch(old.id, [result('127.0.2.1', 443, now)]);
  await store.recordBatch(old.id, [result('127.0.2.1', 443, now), result('127.0.2.2', 443, now)]);
  const resumed = await rows(db, sql<{ p: string; n: number }>`SELECT tableoid::regclass::text AS p, count(*)::int AS n
    FROM scan_attempts WHERE scan_id = ${Number(old.id)} GROUP BY 1`);
  assert.deepEqual(resumed, [{ p: `scan_attempts_p${suffix(month(-1))}`, n: 2 }]);
  await assert.rejects(
    sql`INSERT INTO scan_attempts (scan_id, ip, port, outcome, attempted_at, scan_month) VALUES (${Number(old.id)}, '127.0.2.1', 443, 'refused', now(), ${day(month(-1), 0)})`.execute(db),
    /duplicate key/, 'the unique key still refuses a second (scan, ip, port)');
}, { migrate: false });

testEachBackend('a row far in the future lands in the default partition; creating its month moves it there', async ({ database }) => {
  const db = database.db;
  const far = await sql<{ p: string }>`INSERT INTO observations (ip, port, tls, scanned_at) VALUES ('127.0.3.1', 443, true, '2999-06-15T00:00:00Z')
    RETURNING tableoid::regclass::text AS p`.execute(db);
  assert.equal(far.rows[0]?.p, 'observations_default');
  const scan = await sql<{ id: number }>`INSERT INTO scans (targets, ports) VALUES ('[]', '{443}') RETURNING id`.execute(db);
  const att = await sql<{ p: string }>`INSERT INTO scan_attempts (scan_id, ip, port, outcome, attempted_at, scan_month)
    VALUES (${scan.rows[0]?.id}, '127.0.3.1', 443, 'refused', now(), '2999-06-01') RETURNING tableoid::regclass::text AS p`.execute(db);
  assert.equal(att.rows[0]?.p, 'scan_attempts_default');

  // Three months ahead: in the default until maintenance creates that month, then in its month.
  const ahead = await sql<{ id: number; p: string }>`INSERT INTO observations (ip, port, tls, scanned_at) VALUES ('127.0.3.2', 443, true, ${day(month(3), 9)})
    RETURNING id, tableoid::regclass::text AS p`.execute(db);
  assert.equal(ahead.rows[0]?.p, 'observations_default');
  assert.equal(await ensurePartitions(db, month(3)), 4, 'months +2 and +3 of both tables');
  assert.equal(await ensurePartitions(db, month(3)), 0, 'idempotent');
  assert.equal(await partitionOf(db, 'observations', Number(ahead.rows[0]?.id)), `observations_p${suffix(month(3))}`);
  assert.equal(await count(db, sql<{ n: number }>`SELECT count(*)::int AS n FROM observations_default`), 1, 'only the year-2999 row is left there');
  // A clock 975 years off does not create 11,000 tables.
  assert.ok(await ensurePartitions(db, new Date('2999-06-01T00:00:00Z')) <= 2 * 37);
});

testEachBackend('prune drops whole old months as partitions and keeps exactly what the rules keep', async ({ database }) => {
  const db = database.db;
  await migrateTo0022(database);
  const { obs, attempts } = await seed(db);
  await runMigrations(db as unknown as Kysely<unknown>);
  const obsBefore = new Map((await rows(db, obsSnapshot)).map((r) => [r.id, r.j]));
  const attBefore = new Map((await rows(db, attSnapshot)).map((r) => [r.id, r.j]));
  // Months -4 and -3 end on or before the cut-off: they go as partitions; -2 onwards stay whole.
  const cut = { observations: month(-2), raw: null, audit: null };

  const tables = sql<{ t: string }>`SELECT c.relname AS t FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent IN ('observations'::regclass, 'scan_attempts'::regclass) ORDER BY 1`;
  const tablesBefore = await rows(db, tables);
  const dry = await pruneRetention(db, cut, { dryRun: true });
  assert.deepEqual(await rows(db, tables), tablesBefore, 'a dry run drops nothing');
  assert.equal(await count(db, sql<{ n: number }>`SELECT count(*)::int AS n FROM observations`), obsBefore.size, 'a dry run deletes nothing');
  const real = await pruneRetention(db, cut);
  assert.deepEqual(real, dry, 'the dry run counted what the prune did');
  assert.deepEqual([...real.droppedPartitions].sort(), [-4, -3].flatMap((m) => [`observations_p${suffix(month(m))}`, `scan_attempts_p${suffix(month(m))}`]).sort());
  for (const name of real.droppedPartitions) {
    assert.equal((await sql<{ r: string | null }>`SELECT to_regclass(${name})::text AS r`.execute(db)).rows[0]?.r, null, `${name} dropped`);
  }

  // Observations: A-4 (superseded, unreferenced) and E-3 go; B-4 (latest of its ip:port) and C-4 (a finding's
  // evidence) stay, unchanged, in the archive; so does F-30 (latest of its ip:port).
  const gone = [obs['A-4'], obs['E-3']] as number[];
  assert.equal(real.observations, gone.length);
  const left = new Map((await rows(db, obsSnapshot)).map((r) => [r.id, r.j]));
  assert.deepEqual([...left.keys()].sort((a, b) => a - b), [...obsBefore.keys()].filter((id) => !gone.includes(id)).sort((a, b) => a - b));
  for (const [id, j] of left) assert.equal(j, obsBefore.get(id), `observation ${id} unchanged`);
  for (const k of ['B-4', 'C-4', 'F-30']) assert.equal(await partitionOf(db, 'observations', obs[k] as number), 'observations_archive', k);
  // Their dependants went with them (what ON DELETE did); the kept ones keep theirs.
  assert.equal(await count(db, sql<{ n: number }>`SELECT count(*)::int AS n FROM assessments WHERE observation_id = ANY (${gone}::bigint[])`), 0);
  assert.equal(await count(db, sql<{ n: number }>`SELECT count(*)::int AS n FROM observation_responses WHERE observation_id = ANY (${gone}::bigint[])`), 0);
  assert.equal(await count(db, sql<{ n: number }>`SELECT count(*)::int AS n FROM assessments a WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.id = a.observation_id)`), 0);
  assert.equal(await count(db, sql<{ n: number }>`SELECT count(*)::int AS n FROM observation_responses r WHERE r.observation_id = ${obs['C-4']}`), 1);
  assert.deepEqual(await rows(db, sql<{ line: number; observation_id: number | null }>`SELECT line, observation_id FROM feed_observations ORDER BY line`),
    [{ line: 1, observation_id: null }, { line: 2, observation_id: obs['F-30'] }], 'a feed row keeps its line, loses the link to a removed observation');

  // Attempts: D-4 (bare, superseded by D0, scan finished) and A-4 (its observation is gone) go; G-4 (bare,
  // attempted in month -3, the latest of 127.0.0.7) stays; E-3 stays though its observation went (a running scan).
  const attGone = [attempts['D-4'], attempts['A-4']] as number[];
  assert.equal(real.attempts, attGone.length);
  const attLeft = new Map((await rows(db, attSnapshot)).map((r) => [r.id, r.j]));
  assert.deepEqual([...attLeft.keys()].sort((a, b) => a - b), [...attBefore.keys()].filter((id) => !attGone.includes(id)).sort((a, b) => a - b));
  for (const [id, j] of attLeft) assert.equal(j, attBefore.get(id), `attempt ${id} unchanged`);
  for (const k of ['B-4', 'C-4', 'G-4', 'E-3']) assert.equal(await partitionOf(db, 'scan_attempts', attempts[k] as number), 'scan_attempts_archive', k);

  // Inserts keep working, a second prune finds nothing more, and the archive now starts month -2.
  const o = await sql<{ p: string }>`INSERT INTO observations (ip, port, tls, scanned_at) VALUES ('127.0.9.1', 443, true, ${day(month(-4), 1)})
    RETURNING tableoid::regclass::text AS p`.execute(db);
  assert.equal(o.rows[0]?.p, 'observations_archive');
  const again = await pruneRetention(db, cut);
  assert.equal(again.observations, 0);
  assert.equal(again.attempts, 0);
  assert.deepEqual(again.droppedPartitions, []);
  assert.equal((await monthPartitions(db, 'observations'))[0]?.name, `observations_p${suffix(month(-2))}`);
}, { migrate: false });

/**
 * Benchmark: monthly partitions (issue 11 §5, migration 0023). Does retention get cheap, and does the national picture
 * stay fast, as history grows?
 *
 *   npx tsx bench/partitions.ts [--observations 2000000] [--months 12] [--drop-months 3] [--database-url URL]
 *
 * Makes two fresh databases on the server of --database-url / TOCSIN_TEST_PG_URL with the same history (two scans a
 * month over MONTHS months; every host answered each time: an attempt, an observation and an assessment per host and
 * scan; every 20th host gone after the first month, so its latest observation sits in an old month and must be kept;
 * a finding naming the first observation of every 50th host): `plain` stops at migration 0022, `part` is then
 * converted by migration 0023 (timed). Then, on both: the national picture (`tocsin report`'s queries over all scans,
 * queryReportRows), a prune of the oldest DROP_MONTHS months (`plain`: the row-wise DELETE prune of before 0023, kept
 * below as the baseline; `part`: pruneRetention, which drops those months as partitions), and the national picture
 * again. Each step prints wall time, the database backend's CPU (one connection; /proc of the server's backend, so
 * the server must run on this machine) and the WAL the whole server wrote meanwhile (other databases' too: on a shared
 * server it is an upper bound).
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { openDatabase, type Database } from '../src/platform/db/connect.js';
import { runMigrations } from '../src/platform/db/migrate.js';
import { MIGRATIONS } from '../src/platform/db/migrations/index.js';
import { queryReportRows } from '../src/platform/db/report.js';
import { pruneRetention } from '../src/platform/db/retention-store.js';
import type { DbSchema } from '../src/platform/db/schema.js';
import { opt, withClient } from './lib/args.js';
import { procCpuMs } from './lib/proc.js';

const OBSERVATIONS = Number(opt('observations') ?? '2000000');
const MONTHS = Number(opt('months') ?? '12');
const DROP_MONTHS = Number(opt('drop-months') ?? '3');
const ADMIN = opt('database-url') ?? process.env.TOCSIN_TEST_PG_URL ?? '';
const SCANS = MONTHS * 2;
const HOSTS = Math.ceil(OBSERVATIONS / SCANS);

/** First day of the UTC month `offset` months from now. */
function month(offset: number): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
}

async function timed<T>(database: Database, label: string, fn: () => Promise<T>): Promise<T> {
  const db = database.db;
  const pid = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0]!.pid;
  const lsn0 = (await sql<{ l: string }>`SELECT pg_current_wal_lsn()::text AS l`.execute(db)).rows[0]!.l;
  const c0 = procCpuMs(pid);
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  const c1 = procCpuMs(pid);
  const wal = (await sql<{ b: string }>`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn0}::pg_lsn)::bigint::text AS b`.execute(db)).rows[0]!.b;
  console.log(`  ${label}: ${(ms / 1000).toFixed(2)} s wall, database CPU ${c0 === null || c1 === null ? 'n/a' : `${((c1 - c0) / 1000).toFixed(2)} s`}, ` +
    `WAL ${(Number(wal) / 1048576).toFixed(1)} MiB`);
  return r;
}

async function freshDb(name: string): Promise<{ database: Database; drop: () => Promise<void> }> {
  const db = `tocsin_bench_part_${name}_${randomBytes(3).toString('hex')}`;
  await withClient(ADMIN, (c) => c.query(`CREATE DATABASE ${db}`));
  const u = new URL(ADMIN);
  u.pathname = `/${db}`;
  // One connection: every statement runs in one backend, whose CPU /proc shows.
  const database = await openDatabase({ home: '/tmp/tocsin-bench-partitions', databaseUrl: u.toString() }, { migrate: false, maxConnections: 1 });
  return { database, drop: async () => { await database.close(); await withClient(ADMIN, (c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)); } };
}

/** The history described above, set-based, one scan at a time. */
async function generate(db: Kysely<DbSchema>): Promise<void> {
  for (let k = 0; k < SCANS; k++) {
    const at = new Date(month(-(MONTHS - 1) + Math.floor(k / 2)).getTime() + ((k % 2) * 14 + 1) * 86_400_000);
    const scan = (await sql<{ id: number }>`INSERT INTO scans (targets, ports, status, started_at, finished_at)
      VALUES ('["10.0.0.0/8"]', '{443}', 'finished', ${at}, ${at}) RETURNING id`.execute(db)).rows[0]!.id;
    await sql`
      WITH a AS (
        INSERT INTO scan_attempts (scan_id, ip, port, outcome, attempted_at)
        SELECT ${scan}::bigint, '10.0.0.0'::inet + i, 443, 'answered', ${at}::timestamptz + make_interval(secs => i / 1000.0)
        FROM generate_series(0, ${HOSTS - 1}::int) i WHERE i % 20 <> 0 OR ${k}::int < 2
        RETURNING id, ip, attempted_at
      ), o AS (
        INSERT INTO observations (id, source, attempt_id, scan_id, ip, port, tls, product, edition, build, build_precision, cu, su,
                                  status, facts, evidence, scanned_at)
        SELECT nextval('observations_id_seq'), 'scan', a.id, ${scan}::bigint, a.ip, 443, true, 'ms-exchange', 'Exchange Server 2016',
               '15.1.2176.2', 'exact', 'CU17', 'SU1', 200,
               '[{"detector":"owa-version-header","build":"15.1.2176.2","precision":"exact"}]'::jsonb,
               '[{"kind":"header","name":"X-OWA-Version","value":"15.1.2176.2","probe":"owa"},{"kind":"status","value":"HTTP/1.1 302 Found"}]'::jsonb,
               a.attempted_at
        FROM a RETURNING id
      )
      INSERT INTO assessment_rows (observation_id, kb_revision, verdict_set_id)
      SELECT id, 'bench', tocsin_verdict_set('{CVE-2021-26855,CVE-2021-26857,CVE-2021-26858,CVE-2021-27065,CVE-2021-34473}', '{}') FROM o`.execute(db);
  }
  await sql`
    INSERT INTO findings (ip, port, cve, state, verdict, first_seen, last_seen, last_at, first_observation_id, last_observation_id)
    SELECT o.ip, 443, 'CVE-2021-26855', 'open', 'vulnerable', o.scanned_at, o.scanned_at, o.scanned_at, o.id, o.id
    FROM observations o JOIN scans s ON s.id = o.scan_id
    WHERE s.id = (SELECT min(id) FROM scans) AND (o.ip - '10.0.0.0'::inet) % 50 = 0`.execute(db);
}

/** The prune of before migration 0023 (row by row, cascades by foreign key), the baseline. */
async function pruneByDelete(db: Kysely<DbSchema>, cut: Date): Promise<{ observations: number; attempts: number }> {
  return db.transaction().execute(async (tx) => {
    await sql`CREATE TEMP TABLE prune_keep (id bigint PRIMARY KEY) ON COMMIT DROP`.execute(tx);
    await sql`INSERT INTO prune_keep
      SELECT id FROM (SELECT DISTINCT ON (ip, port) id FROM observations ORDER BY ip, port, scanned_at DESC, id DESC) latest
      UNION SELECT first_observation_id FROM findings WHERE first_observation_id IS NOT NULL
      UNION SELECT last_observation_id FROM findings WHERE last_observation_id IS NOT NULL
      UNION SELECT observation_id FROM finding_events WHERE observation_id IS NOT NULL
      ON CONFLICT DO NOTHING`.execute(tx);
    const o = (await sql<{ n: number }>`WITH d AS (
      DELETE FROM observations o WHERE o.scanned_at < ${cut} AND NOT EXISTS (SELECT 1 FROM prune_keep k WHERE k.id = o.id)
      RETURNING 1) SELECT count(*)::int AS n FROM d`.execute(tx)).rows[0]!.n;
    // The latest attempt per ip:port materialised with a key, as pruneRetention now does: the CTE of before 0023 was
    // planned as a nested loop re-sorting every attempt once per candidate row (measured: 455 s for 11,500 attempts
    // out of 46,000; quadratic), which would make this baseline meaningless at any size.
    await sql`CREATE TEMP TABLE prune_latest_attempt (id bigint PRIMARY KEY) ON COMMIT DROP`.execute(tx);
    await sql`INSERT INTO prune_latest_attempt SELECT DISTINCT ON (ip, port) id FROM scan_attempts ORDER BY ip, port, attempted_at DESC, id DESC`.execute(tx);
    const a = (await sql<{ n: number }>`WITH d AS (
      DELETE FROM scan_attempts a WHERE a.attempted_at < ${cut}
        AND EXISTS (SELECT 1 FROM scans s WHERE s.id = a.scan_id AND s.status = 'finished')
        AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.attempt_id = a.id)
        AND NOT EXISTS (SELECT 1 FROM prune_latest_attempt l WHERE l.id = a.id)
      RETURNING 1) SELECT count(*)::int AS n FROM d`.execute(tx)).rows[0]!.n;
    return { observations: o, attempts: a };
  });
}

const QUERY = { product: 'ms-exchange', countedApart: [], sets: [{ name: 'ProxyLogon', cves: ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'] }] };

async function picture(database: Database, label: string): Promise<void> {
  const r = await timed(database, label, () => queryReportRows(database.db, { kind: 'all' }, QUERY));
  console.log(`    ${r.servers.toLocaleString('en')} servers, ${r.hosts.attempted.toLocaleString('en')} ip:ports attempted`);
}

async function main(): Promise<void> {
  if (ADMIN === '') throw new Error('--database-url or TOCSIN_TEST_PG_URL: a server on this machine');
  const upTo0022 = MIGRATIONS.slice(0, MIGRATIONS.findIndex((m) => m.id === '0023-partitions'));
  console.log(`partitions bench: ${(HOSTS * SCANS).toLocaleString('en')} observations (upper bound) over ${MONTHS} months, ${HOSTS.toLocaleString('en')} hosts x ${SCANS} scans; ` +
    `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const cut = month(-(MONTHS - 1) + DROP_MONTHS);
  for (const name of ['plain', 'part'] as const) {
    const { database, drop } = await freshDb(name);
    try {
      const db = database.db;
      await runMigrations(db as unknown as Kysely<unknown>, upTo0022);
      console.log(`${name}:`);
      await timed(database, 'generate', () => generate(db));
      if (name === 'part') await timed(database, 'migration 0023 (convert the history)', () => runMigrations(db as unknown as Kysely<unknown>));
      await sql`ANALYZE`.execute(db);
      const n = (await sql<{ o: number; a: number }>`SELECT (SELECT count(*) FROM observations)::int AS o, (SELECT count(*) FROM scan_attempts)::int AS a`.execute(db)).rows[0]!;
      console.log(`    ${n.o.toLocaleString('en')} observations, ${n.a.toLocaleString('en')} attempts`);
      await picture(database, 'national picture (report, all scans)');
      await picture(database, 'national picture again (warm)');
      const pruned = await timed(database, `prune of the oldest ${DROP_MONTHS} months (cut-off ${cut.toISOString().slice(0, 10)})`,
        () => (name === 'plain' ? pruneByDelete(db, cut) : pruneRetention(db, { observations: cut, raw: null, audit: null })));
      console.log(`    ${JSON.stringify(pruned)}`);
      await sql`ANALYZE`.execute(db);
      await picture(database, 'national picture after prune');
    } finally {
      await drop();
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

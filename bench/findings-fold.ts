/**
 * Benchmark: findings folded from stored assessments (issue 9 §6: 1,000,000 findings in <= 30 s).
 *
 *   npx tsx bench/findings-fold.ts [--hosts 100000] [--cves 10] [--database-url URL]
 *
 * Makes a fresh database (on the server of --database-url / TOCSIN_TEST_PG_URL, else the embedded one of
 * TOCSIN_HOME), generates HOSTS observations each with an assessment naming CVES vulnerable CVEs (set-based, in
 * SQL), then times `foldFindings` (attributions as stored: the refresh is attribution's own benchmark) and a
 * second fold that must find nothing. Prints findings/s, and CPU per 1,000 findings for this process and for the
 * database backend (one connection, so its /proc stat is the fold's database CPU; readable when the server runs
 * on this machine). Then a rescan where every tenth host is patched, folded incrementally.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type Database } from '../src/platform/db/connect.js';
import type { DbSchema } from '../src/platform/db/schema.js';
import { foldFindings } from '../src/services/findings.js';
import { procCpuMs } from './lib/proc.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const HOSTS = Number(arg('--hosts', '100000'));
const CVES = Number(arg('--cves', '10'));
const ADMIN = arg('--database-url', process.env.TOCSIN_TEST_PG_URL ?? '');

async function backendPid(database: Database): Promise<number> {
  return (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(database.db)).rows[0]!.pid;
}

async function timed(database: Database, label: string, findings: number, fn: () => Promise<unknown>): Promise<void> {
  const pid = await backendPid(database);
  const db0 = procCpuMs(pid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const db1 = procCpuMs(pid);
  const nodeMs = (cpu.user + cpu.system) / 1000;
  const per1k = (x: number): string => (findings > 0 ? (x / (findings / 1000)).toFixed(2) : '-');
  console.log(`${label}: ${(ms / 1000).toFixed(2)} s, ${findings > 0 ? Math.round(findings / (ms / 1000)).toLocaleString('en') : '-'} findings/s; ` +
    `CPU per 1k findings: node ${per1k(nodeMs)} ms, database ${db0 === null || db1 === null ? 'n/a' : `${per1k(db1 - db0)} ms`}`);
  console.log(`  ${JSON.stringify(r)}`);
}

async function main(): Promise<void> {
  let url: string | null = null;
  let drop: (() => Promise<void>) | null = null;
  if (ADMIN !== '') {
    const name = `tocsin_bench_findings_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: ADMIN });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(ADMIN);
    u.pathname = `/${name}`;
    url = u.toString();
    drop = async () => {
      const c = new pg.Client({ connectionString: ADMIN });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  }
  const home = process.env.TOCSIN_HOME ?? '/tmp/tocsin-bench-findings';
  // One connection: the fold runs in one backend whose CPU we can read.
  const database = await openDatabase({ home, databaseUrl: url }, { maxConnections: 1 });
  try {
    console.log(`findings fold bench: ${HOSTS.toLocaleString('en')} hosts x ${CVES} CVEs = ${(HOSTS * CVES).toLocaleString('en')} findings; ` +
      `${url === null ? 'embedded server' : 'server'}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    const g0 = performance.now();
    await generate(database, 0, HOSTS, CVES, 0);
    console.log(`generated in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
    // TOCSIN_FOLD_DEBUG=1: every statement over 50 ms is printed with its time (a logging Kysely on the same pool).
    const folder = process.env.TOCSIN_FOLD_DEBUG === '1' ? new Kysely<DbSchema>({
      dialect: new PostgresDialect({ pool: database.pool }),
      log: (e) => { if (e.queryDurationMillis > 50) console.log(`  ${e.queryDurationMillis.toFixed(0)} ms  ${e.query.sql.replace(/\s+/g, ' ').slice(0, 110)}`); },
    }) : database.db;
    await timed(database, 'first fold', HOSTS * CVES, () => foldFindings(folder, { attributions: 'stored', now: new Date('2026-06-02T00:00:00Z') }));
    await timed(database, 'second fold (nothing new)', 0, () => foldFindings(database.db, { attributions: 'stored', now: new Date('2026-06-02T00:00:00Z') }));
    // A rescan a week later: every tenth host patched (its CVEs close), the rest still vulnerable (no event).
    await generate(database, 0, HOSTS, CVES, 7);
    await timed(database, 'rescan fold (10% patched)', HOSTS * CVES, () => foldFindings(folder, { attributions: 'stored', now: new Date('2026-06-10T00:00:00Z') }));
    const n = (await sql<{ open: number; closed: number; events: number }>`
      SELECT (SELECT count(*) FROM findings WHERE state = 'open')::int AS open, (SELECT count(*) FROM findings WHERE state = 'closed')::int AS closed,
             (SELECT count(*) FROM finding_events)::int AS events`.execute(database.db)).rows[0];
    console.log(`stored: ${JSON.stringify(n)}`);
  } finally {
    await database.close();
    if (drop !== null) await drop();
  }
}

/** HOSTS observations (one scan) at day `day`, each with CVES vulnerable CVEs; on a rescan (day > 0) every tenth host is patched. */
async function generate(database: Database, from: number, hosts: number, cves: number, dayNo: number): Promise<void> {
  const scan = (await sql<{ id: number }>`INSERT INTO scans (targets, ports) VALUES ('["10.0.0.0/8"]', '{443}') RETURNING id`.execute(database.db)).rows[0]!.id;
  const at = new Date(Date.parse('2026-06-01T00:00:00Z') + dayNo * 86_400_000).toISOString();
  const step = 50_000;
  for (let lo = from; lo < from + hosts; lo += step) {
    const hi = Math.min(from + hosts, lo + step);
    await sql`
      WITH o AS (
        INSERT INTO observations (id, source, scan_id, ip, port, tls, product, edition, build, build_precision, scanned_at)
        SELECT nextval('observations_id_seq'), 'scan', ${scan}::bigint, '10.0.0.0'::inet + i, 443, true, 'ms-exchange',
               'Exchange Server 2016', '15.1.2176.2', 'exact', ${at}::timestamptz
        FROM generate_series(${lo}::int, ${hi - 1}::int) i
        RETURNING id, ip
      )
      INSERT INTO assessment_rows (observation_id, kb_revision, verdict_set_id)
      SELECT o.id, 'bench', tocsin_verdict_set(
             CASE WHEN ${dayNo}::int > 0 AND (o.ip - '10.0.0.0'::inet) % 10 = 0 THEN '{}'::text[]
                  ELSE ARRAY(SELECT 'CVE-2021-' || (26000 + (((o.ip - '10.0.0.0'::inet)::int * 7 + j) % 100)) FROM generate_series(1, ${cves}::int) j) END,
             '{}')
      FROM o ORDER BY o.id`.execute(database.db);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

/**
 * Benchmark: the `tocsin exposures` walk (src/platform/db/exposure-store.ts) over N generated (ip, port) keys,
 * every one with a scan observation and its assessment (~40 CVE ids), half of them also in a Shadowserver feed row
 * (an observation, its assessment and the feed row, as the feed import stores them), and an attribution per
 * address. Baseline in the same run: a plain `SELECT` of the observations with their latest assessment in one
 * ordered query (no merging, no attribution), read through a cursor-free keyset walk of the same page size.
 *
 *   node --import tsx bench/exposures.ts [--rows 1000000] [--database URL]
 *
 * --database (default TOCSIN_DATABASE_URL, else TOCSIN_TEST_PG_URL): a fresh database is created on it for the
 * run and dropped afterwards. Prints records/s of both, the ratio, and peak RSS sampled every 50 ms (bounded
 * memory: it must not grow with N). The attribution refresh is not part of it (bench/attribution.ts measures it).
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { openDatabase } from '../src/platform/db/connect.js';
import { exposureRows, EXPOSURE_PAGE } from '../src/platform/db/exposure-store.js';
import { toExposureRecord } from '../src/services/exposures.js';
import { opt, withClient } from './lib/args.js';

const ROWS = Number(opt('rows') ?? 1_000_000);
const admin = opt('database') ?? process.env.TOCSIN_DATABASE_URL ?? process.env.TOCSIN_TEST_PG_URL;
if (admin === undefined) throw new Error('give --database URL (or TOCSIN_TEST_PG_URL)');


const name = `tocsin_bench_exp_${randomBytes(4).toString('hex')}`;
await withClient(admin, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
const u = new URL(admin);
u.pathname = `/${name}`;
let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 50);
const database = await openDatabase({ home: '/nonexistent', databaseUrl: u.toString() });
try {
  const db = database.db;
  const t0 = performance.now();
  const cves = Array.from({ length: 40 }, (_v, i) => `CVE-2021-${String(30000 + i)}`);
  // N addresses from 10.0.0.0 on, port 443; the first half also in a feed.
  await sql`INSERT INTO organisations (name, sector, layer, source) SELECT 'org ' || g, 'sector ' || (g % 10), 'imported', 'bench' FROM generate_series(1, 100) g`.execute(db);
  await sql`
    INSERT INTO observations (id, source, ip, port, tls, product, edition, build, build_precision, cu, scanned_at)
    SELECT g, 'scan', '10.0.0.0'::inet + g, 443, true, 'ms-exchange', 'Exchange Server 2016', '15.1.2176.9', 'exact', 'CU19', now() - interval '1 day'
    FROM generate_series(1, ${ROWS}) g`.execute(db);
  await sql`INSERT INTO feed_imports (feed, format, file) VALUES ('shadowserver', 'shadowserver', 'bench.csv')`.execute(db);
  await sql`
    INSERT INTO observations (id, source, ip, port, tls, product, build, build_precision, scanned_at)
    SELECT ${ROWS} + g, 'feed:shadowserver', '10.0.0.0'::inet + g, 443, true, 'ms-exchange', '15.1.2176', 'cu', now() - interval '2 days'
    FROM generate_series(1, ${ROWS / 2}) g`.execute(db);
  await sql`SELECT setval('observations_id_seq', ${ROWS * 2})`.execute(db);
  await sql`
    INSERT INTO assessment_rows (observation_id, kb_revision, verdict_set_id)
    SELECT id, 'bench', tocsin_verdict_set(${cves.slice(0, 30)}::text[], ${cves.slice(30)}::text[]) FROM observations`.execute(db);
  await sql`
    INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, tags, reported_cves, product, build, build_precision, line, raw)
    SELECT 1, ${ROWS} + g, 'shadowserver', 'exchange', 'scan_exchange', current_date, '10.0.0.0'::inet + g, 443, '{exchange,cve-2021-26855}',
           '{CVE-2021-26855}', 'ms-exchange', '15.1.2176', 'cu', g, 'raw'
    FROM generate_series(1, ${ROWS / 2}) g`.execute(db);
  await sql`
    INSERT INTO attributions (ip, org_id, rule, confidence, evidence, registry_rev)
    SELECT '10.0.0.0'::inet + g, CASE WHEN g % 7 = 0 THEN NULL ELSE 1 + g % 100 END, CASE WHEN g % 7 = 0 THEN NULL ELSE 'network' END,
           0.95, '{"network":"10.0.0.0/8"}', 1
    FROM generate_series(1, ${ROWS}) g`.execute(db);
  await sql`ANALYZE`.execute(db);
  console.log(`generated ${ROWS} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Baseline: the observations with their latest assessment, keyset pages of the same size, no merging.
  const b0 = performance.now();
  let after = 0;
  let base = 0;
  for (;;) {
    const rows = (await sql<{ id: number }>`
      SELECT o.id, host(o.ip) AS ip, o.port, o.build, a.vulnerable, a.indeterminate FROM observations o
      JOIN LATERAL (SELECT vulnerable, indeterminate FROM assessments WHERE observation_id = o.id ORDER BY id DESC LIMIT 1) a ON TRUE
      WHERE o.id > ${after} AND o.source = 'scan' ORDER BY o.id LIMIT ${EXPOSURE_PAGE}`.execute(db)).rows;
    base += rows.length;
    if (rows.length < EXPOSURE_PAGE) break;
    after = rows[rows.length - 1]?.id ?? after;
  }
  const baseS = (performance.now() - b0) / 1000;

  const e0 = performance.now();
  let n = 0;
  let merged = 0;
  for await (const r of exposureRows(db, {})) {
    const rec = toExposureRecord(r);
    n++;
    if (rec.sources.length === 2) merged++;
  }
  const expS = (performance.now() - e0) / 1000;
  if (n !== ROWS || merged !== ROWS / 2) throw new Error(`expected ${ROWS} records (${ROWS / 2} merged), got ${n} (${merged})`);
  console.log(`baseline (observations + latest assessment): ${base} rows in ${baseS.toFixed(1)} s = ${Math.round(base / baseS)} rows/s`);
  console.log(`exposures walk (merged, attributed):        ${n} records in ${expS.toFixed(1)} s = ${Math.round(n / expS)} records/s`);
  console.log(`ratio exposures/baseline time: ${(expS / baseS).toFixed(2)}; peak RSS ${(peak / 1048576).toFixed(0)} MB`);
} finally {
  clearInterval(sampler);
  await database.close();
  await withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
}

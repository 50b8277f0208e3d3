/**
 * Benchmark: the STORED attribution refresh (src/services/attribute.ts `refreshAttributions` over
 * src/platform/db/attribution-store.ts) on N stored addresses (default 1,000,000): half with a scan observation
 * (a third of those with the Host/SNI used, a third with a TLS certificate), half with a Shadowserver feed row
 * (with its ASN, a quarter with a hostname), against a registry of 100,000 networks (90,000 /24s and 10,000
 * nested /26s of other organisations), 10,000 ASNs and 10,000 domains of 20,000 organisations. Everything is
 * generated with set-based SQL in a fresh database, dropped afterwards.
 *
 *   node --import tsx bench/attribution-refresh.ts [--addresses 1000000] [--database URL]
 *
 * --database (default TOCSIN_DATABASE_URL, else TOCSIN_TEST_PG_URL). Measures, in order: the baseline (a plain
 * `SELECT ip FROM` both tables, then the engine alone over the same facts, read once into memory), a full first
 * refresh, a no-op refresh, and a registry change touching ~1% of the addresses (1,000 of the /24s move to
 * another organisation). Prints wall, CPU of this process (user+sys), CPU of the PostgreSQL server processes
 * (summed from /proc/PID/stat of every `postgres` process: on a shared server this includes other clients'
 * work; parallel workers that exit before the end are not counted), rows/s, peak RSS (sampled every 50 ms) and
 * the 1-minute load average (on a shared machine compare CPU, not wall). Asserts nothing about time; it does check
 * the answers' counts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { sql } from 'kysely';
import { openDatabase } from '../src/platform/db/connect.js';
import { createAttributionStore } from '../src/platform/db/attribution-store.js';
import { refreshAttributions, type RefreshSummary } from '../src/services/attribute.js';
import { attributeMany, buildAttributionIndex, type ExposureFacts } from '../src/attribution/index.js';
import { opt, withClient } from './lib/args.js';

const N = Number(opt('addresses') ?? 1_000_000);
const admin = opt('database') ?? process.env.TOCSIN_DATABASE_URL ?? process.env.TOCSIN_TEST_PG_URL;
if (admin === undefined) throw new Error('give --database URL (or TOCSIN_TEST_PG_URL)');


/**
 * CPU seconds (user+sys) per server process serving the bench's database (pg_stat_activity, then /proc/PID/stat:
 * the Debian server runs on this machine); null when /proc cannot be read (another host).
 */
async function serverCpu(): Promise<Map<number, number> | null> {
  const pids = await withClient(admin!, (c) => c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]));
  const out = new Map<number, number>();
  for (const { pid } of pids.rows) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      return null;
    }
  }
  return out;
}

let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 50);

async function measure<T>(label: string, rows: number, fn: () => Promise<T>): Promise<T> {
  peak = process.memoryUsage.rss();
  const c0 = process.cpuUsage();
  const s0 = await serverCpu();
  const t0 = performance.now();
  const out = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const s1 = await serverCpu();
  // A backend that ended meanwhile is not counted (the refresh keeps its connection; the pool keeps them open).
  const server = s0 === null || s1 === null ? 'n/a' : `${[...s1].reduce((t, [pid, cpu]) => t + cpu - (s0.get(pid) ?? 0), 0).toFixed(1)} s`;
  console.log(`${label.padEnd(34)} wall ${wall.toFixed(2).padStart(6)} s  cpu(node) ${((c.user + c.system) / 1e6).toFixed(2).padStart(6)} s  cpu(postgres) ${server.padStart(7)}  ${Math.round(rows / wall).toLocaleString('en').padStart(10)} rows/s  peak RSS ${(peak / 1048576).toFixed(0)} MB  load ${(loadavg()[0] ?? 0).toFixed(1)}`);
  return out;
}

const show = (s: RefreshSummary): string =>
  `  -> considered ${s.considered}, attributed ${s.attributed}, unattributed ${s.unattributed}, changed owner ${s.changed}, written ${s.written ?? 'n/a'}` +
  (s.phases === undefined ? '' : `; registry ${s.phases.registryMs} ms, read ${s.phases.readMs} ms, engine ${s.phases.engineMs} ms, write ${s.phases.writeMs} ms`);

const name = `tocsin_bench_attr_${randomBytes(4).toString('hex')}`;
await withClient(admin, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
const u = new URL(admin);
u.pathname = `/${name}`;
const database = await openDatabase({ home: '/nonexistent', databaseUrl: u.toString() });
try {
  const db = database.db;
  console.log(`attribution refresh bench: ${N} addresses; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const g0 = performance.now();
  const ORGS = 20_000;
  const STEP = Math.max(1, Math.floor(35_000_000 / N));
  await sql`INSERT INTO organisations (name, sector, layer, source) SELECT 'org ' || g, 'sector ' || (g % 10), 'imported', 'bench' FROM generate_series(1, ${ORGS}) g`.execute(db);
  // 90,000 /24s from 10.0.0.0 (org 1 + g % ORGS), then 10,000 /26s nested in the first 10,000 /24s (another org).
  await sql`
    INSERT INTO constituency_networks (org_id, network, text, layer, source)
    SELECT 1 + g % ${ORGS}, set_masklen('10.0.0.0'::inet + g * 256, 24)::cidr, 'bench', 'imported', 'bench' FROM generate_series(0, 89999) g`.execute(db);
  await sql`
    INSERT INTO constituency_networks (org_id, network, text, layer, source)
    SELECT 1 + (g + 7) % ${ORGS}, set_masklen('10.0.0.0'::inet + g * 256 + 64, 26)::cidr, 'bench', 'imported', 'bench' FROM generate_series(0, 9999) g`.execute(db);
  await sql`INSERT INTO constituency_asns (org_id, asn, layer, source) SELECT 1 + g % ${ORGS}, 64500 + g, 'imported', 'bench' FROM generate_series(1, 10000) g`.execute(db);
  await sql`INSERT INTO constituency_domains (org_id, domain, layer, source) SELECT 1 + (g * 3) % ${ORGS}, 'd' || g || '.example', 'imported', 'bench' FROM generate_series(1, 10000) g`.execute(db);
  // Address g = 10.0.0.0 + g * STEP, STEP chosen so that ~2/3 of the addresses fall in a /24 (23 million
  // addresses, whatever N); the rest are attributed by ASN (feed rows) or domain (hostnames), or not at all.
  await sql`
    INSERT INTO observations (source, ip, port, hostname, tls, product, tls_cert, scanned_at)
    SELECT 'scan', '10.0.0.0'::inet + g::bigint * ${STEP}, 443,
           CASE WHEN g % 3 = 0 THEN 'mail' || g || '.d' || (1 + g % 12000) || '.example' END, true, 'ms-exchange',
           CASE WHEN g % 3 = 1 THEN jsonb_build_object('subjectCn', 'owa.d' || (1 + g % 11000) || '.example', 'sans', jsonb_build_array('owa.d' || (1 + g % 11000) || '.example', 'autodiscover.d' || (1 + g % 11000) || '.example')) END,
           now() - interval '1 day'
    FROM generate_series(1, ${N}, 2) g`.execute(db);
  await sql`INSERT INTO feed_imports (feed, format, file) VALUES ('shadowserver', 'shadowserver', 'bench.csv')`.execute(db);
  await sql`
    INSERT INTO feed_observations (import_id, feed, kind, report_type, report_date, ip, port, hostname, fields, line, raw)
    SELECT 1, 'shadowserver', 'exchange', 'scan_exchange', current_date, '10.0.0.0'::inet + g::bigint * ${STEP}, 443,
           CASE WHEN g % 4 = 0 THEN 'h' || g || '.d' || (1 + g % 13000) || '.example' END,
           jsonb_build_object('asn', (64500 + g % 12000)::text), g, 'raw'
    FROM generate_series(2, ${N}, 2) g`.execute(db);
  await sql`ANALYZE`.execute(db);
  console.log(`generated in ${((performance.now() - g0) / 1000).toFixed(1)} s`);

  // ---- baseline: read the addresses; the engine alone over facts already in memory ----
  await measure('baseline: SELECT ip (both tables)', N, async () => {
    const r = await sql<{ ip: string }>`SELECT host(ip) AS ip FROM observations UNION ALL SELECT host(ip) FROM feed_observations`.execute(db);
    if (r.rows.length !== N) throw new Error(`expected ${N} rows, got ${r.rows.length}`);
  });
  // In a function: the baseline's facts, snapshot and index are garbage before the refreshes start.
  const engineAttributed = await (async (): Promise<number> => {
    const facts: ExposureFacts[] = [];
    {
      const rows = await sql<{ ip: string; hostname: string | null; cn: string | null; sans: string[] | null; asn: string | null }>`
        SELECT host(ip) AS ip, hostname, tls_cert->>'subjectCn' AS cn, ARRAY(SELECT jsonb_array_elements_text(tls_cert->'sans')) AS sans, NULL AS asn FROM observations
        UNION ALL SELECT host(ip), hostname, NULL, NULL, fields->>'asn' FROM feed_observations`.execute(db);
      for (const r of rows.rows) {
        facts.push({
          ip: r.ip, asn: r.asn === null ? null : Number(r.asn), feedHostname: r.asn === null ? null : r.hostname, requestHost: r.asn === null ? r.hostname : null,
          certificate: r.cn === null ? null : { cn: r.cn, sans: r.sans ?? [] },
        });
      }
    }
    const registry = await createAttributionStore(db).registry();
    const index = await measure('baseline: index build', registry.snapshot.networks.length, () => Promise.resolve(buildAttributionIndex(registry.snapshot)));
    return measure('baseline: engine only (in memory)', N, () => {
      let n = 0;
      for (let i = 0; i < facts.length; i += 10_000) for (const a of attributeMany(index, facts.slice(i, i + 10_000), { candidates: false })) if (a.orgId !== null) n++;
      return Promise.resolve(n);
    });
  })();

  // ---- the store ----
  const full = await measure('refresh: first (every address)', N, () => refreshAttributions(db));
  console.log(show(full));
  if (full.considered !== N || full.attributed !== engineAttributed) throw new Error(`first refresh: ${full.considered} considered, ${full.attributed} attributed; expected ${N}, ${engineAttributed}`);
  const noop = await measure('refresh: nothing changed', N, () => refreshAttributions(db));
  console.log(show(noop));
  if (noop.considered !== 0) throw new Error(`no-op refresh considered ${noop.considered}`);
  // ~1% of the addresses: the /24s (256 / STEP addresses each) from the 50,000th on move to the next organisation.
  const from = 50_000 * 256;
  const span = Math.ceil((N * STEP) / 100);
  const moved = await sql<{ n: number }>`
    WITH m AS (UPDATE constituency_networks SET org_id = 1 + org_id % ${ORGS}
               WHERE masklen(network) = 24 AND network::inet >= '10.0.0.0'::inet + ${from}::bigint AND network::inet < '10.0.0.0'::inet + ${from + span}::bigint
               RETURNING network)
    SELECT count(*)::int AS n FROM attributions a JOIN m ON a.ip >= m.network::inet AND a.ip <= host(broadcast(m.network))::inet`.execute(db);
  // (The join is a range on the primary key per moved /24: `a.ip << m.network` has no index to use, and with the
  // planner guessing a few moved rows it compared every stored address with every moved network, minutes at 1M.)
  const touched = moved.rows[0]?.n ?? 0;
  const change = await measure(`refresh: registry change (${touched} addr)`, N, () => refreshAttributions(db));
  console.log(show(change));
  await measure('refresh: --full (recompute all)', N, async () => {
    console.log(show(await refreshAttributions(db, { full: true })));
  });
} finally {
  clearInterval(sampler);
  await database.close();
  await withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
}

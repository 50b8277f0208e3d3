import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { runMigrations } from '../src/platform/db/migrate.js';
import { exposureRows } from '../src/platform/db/exposure-store.js';
import type { DbSchema } from '../src/platform/db/schema.js';
const admin = 'postgres://tocsin:tocsin@127.0.0.1:5432/tocsin_ci';
const name = `tocsin_h2_explain_${randomBytes(3).toString('hex')}`;
const a = new pg.Client({ connectionString: admin }); await a.connect(); await a.query(`CREATE DATABASE ${name}`);
const u = new URL(admin); u.pathname = `/${name}`;
const pool = new pg.Pool({ connectionString: u.toString(), max: 2 });
const explains: string[] = [];
const db = new Kysely<DbSchema>({ dialect: new PostgresDialect({ pool }) });
try {
  await runMigrations(db as unknown as Kysely<unknown>);
  const ROWS = 50000;
  const cves = Array.from({ length: 40 }, (_v, i) => `CVE-2021-${String(30000 + i)}`);
  await sql`INSERT INTO organisations (name, sector, layer, source) SELECT 'org ' || g, 'sector ' || (g % 10), 'imported', 'bench' FROM generate_series(1, 100) g`.execute(db);
  await sql`INSERT INTO observations (id, source, ip, port, tls, product, build, build_precision, scanned_at) SELECT g, 'scan', '10.0.0.0'::inet + g, 443, true, 'ms-exchange', '15.1.2176.9', 'exact', now() FROM generate_series(1, ${ROWS}) g`.execute(db);
  await sql`INSERT INTO feed_imports (feed, format, file) VALUES ('shadowserver', 'shadowserver', 'bench.csv')`.execute(db);
  await sql`INSERT INTO observations (id, source, ip, port, tls, product, build, build_precision, scanned_at) SELECT ${ROWS} + g, 'feed:shadowserver', '10.0.0.0'::inet + g, 443, true, 'ms-exchange', '15.1.2176', 'cu', now() - interval '2 days' FROM generate_series(1, ${ROWS / 2}) g`.execute(db);
  await sql`INSERT INTO assessments (observation_id, kb_revision, vulnerable, indeterminate) SELECT id, 'bench', ${cves.slice(0, 30)}::text[], ${cves.slice(30)}::text[] FROM observations`.execute(db);
  await sql`INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, tags, reported_cves, product, build, build_precision, line, raw) SELECT 1, ${ROWS} + g, 'shadowserver', 'exchange', 'scan_exchange', current_date, '10.0.0.0'::inet + g, 443, '{exchange}', '{CVE-2021-26855}', 'ms-exchange', '15.1.2176', 'cu', g, 'raw' FROM generate_series(1, ${ROWS / 2}) g`.execute(db);
  await sql`INSERT INTO attributions (ip, org_id, rule, confidence, evidence, registry_rev) SELECT '10.0.0.0'::inet + g, CASE WHEN g % 7 = 0 THEN NULL ELSE 1 + g % 100 END, CASE WHEN g % 7 = 0 THEN NULL ELSE 'network' END, 0.95, '{}', 1 FROM generate_series(1, ${ROWS}) g`.execute(db);
  await sql`ANALYZE`.execute(db);
  const proto = pg.Client.prototype as unknown as { query: (...x: unknown[]) => Promise<unknown> }; const origQ = proto.query;
  let n = 0;
  proto.query = async function (this: unknown, ...x: unknown[]) { const orig = (...y: unknown[]) => origQ.apply(this, y);
    const cfg = x[0] as { text?: string; values?: unknown[] } | string;
    const text = typeof cfg === 'string' ? cfg : cfg.text ?? '';
    const values = typeof cfg === 'string' ? (x[1] as unknown[]) : cfg.values;
    if (n < 4 && /WITH keys|SELECT host\(ip\)/.test(text) && !text.startsWith('EXPLAIN')) {
      n++;
      const r = (await orig({ text: `EXPLAIN (ANALYZE, BUFFERS off) ${text}`, values })) as { rows: Array<Record<string, string>> };
      explains.push(r.rows.map((row) => Object.values(row)[0]).join('\n'));
    }
    return orig(...x);
  };
  const which = process.argv[2] ?? 'all';
  let c = 0;
  const q = which === 'org' ? { orgId: 5 } : which === 'cve' ? { cve: 'CVE-2021-30001' } : {};
  const t0 = performance.now();
  for await (const _r of exposureRows(db, q, 2000)) { void _r; c++; }
  console.log(which, c, 'records', Math.round(performance.now() - t0), 'ms');
  for (const e of explains.slice(2, 4)) console.log(e, '\n-----');
} finally {
  await db.destroy();
  await a.query(`DROP DATABASE ${name} WITH (FORCE)`); await a.end();
}

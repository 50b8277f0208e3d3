/**
 * Benchmark (issue 10 §8): the dashboard's summary endpoints over 1,000,000 findings and 10,000 organisations,
 * target p99 < 50 ms at 200 requests/s on loopback, with the database size and the page weight of the first load.
 *
 *   node --import tsx bench/web-summary.ts [--findings 1000000] [--orgs 10000] [--rate 200] [--seconds 15]
 *                                          [--database URL] [--reuse]
 *
 * --database (default TOCSIN_DATABASE_URL, else TOCSIN_TEST_PG_URL): the server the data set is made on. A fresh
 * database is generated set-based (generate_series; findings, their events, organisations, a campaign with one
 * message per organisation) and dropped afterwards; with --reuse it is named after its size and kept, and a later
 * --reuse run of the same size skips the generation.
 *
 * The app (buildApp, as `tocsin serve` builds it, with the same dashboard warm-up) runs in a CHILD process on
 * 127.0.0.1:0, so its CPU (/proc/PID/stat) is the server's alone and the load generator does not share its event
 * loop. Authentication: a staff (analyst) bearer token. The load generator is open-loop: request i is sent at
 * start + i / rate whether or not earlier ones were answered, over keep-alive sockets, so latency includes queueing
 * (a closed loop would slow down with the server and hide it). Phases, each --seconds long:
 *   an untimed warm-up, baseline GET /api/me (no data: the best case of the same server), /api/summary,
 *   /api/stats/patch-curve, /api/campaigns, a mix of the three, and the baseline again (the ratio's reference is
 *   the mean of the two baselines: the load on a shared machine drifts).
 * Printed per phase: p50/p99/max latency, achieved rate, errors, server CPU per request, and p99 / baseline p99.
 * Also: the cold first read (the first GET /api/summary right after the server listens, which waits for the warm-up
 * started at listen), the database size (pg_database_size), and the first load's page weight (/, app.css, app.js,
 * the chart SVG; uncompressed and gzip).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { openDatabase } from '../src/platform/db/connect.js';
import { reportSubject } from '../src/services/report.js';
import { opt, benchArgs, withClient } from './lib/args.js';
import { procCpuMs } from './lib/proc.js';

const ROLE = opt('role') ?? 'driver';

// ---------------------------------------------------------------------------------------------------------------
// the server (child process)

async function serve(url: string): Promise<void> {
  const { buildApp } = await import('../src/web/app.js');
  const { warmDashboard } = await import('../src/services/dashboard.js');
  const database = await openDatabase({ home: '/nonexistent', databaseUrl: url });
  const app = await buildApp({ db: database.db });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const t0 = performance.now();
  // As `tocsin serve` does: listen at once, compute the dashboard's answers in the background.
  const warm = warmDashboard(database.db).then(() => performance.now() - t0, (e: unknown) => { throw e; });
  process.send?.({ address });
  const ms = await warm;
  process.send?.({ warmMs: ms });
  process.on('message', (m: unknown) => {
    if (m === 'stop') void app.close().then(() => database.close()).then(() => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the data set

async function generate(url: string, findings: number, orgs: number): Promise<void> {
  const database = await openDatabase({ home: '/nonexistent', databaseUrl: url });
  try {
    const db = database.db;
    const cves = [...new Set(reportSubject().groups.groups.flatMap((g) => g.cves)), 'CVE-2020-0688'];
    // Four findings per host; a host's CVEs are distinct (stride 5 over the list, coprime with its length or not,
    // the four offsets 0, 5, 10, 15 are distinct modulo any length > 15); every 25th host has compromise evidence
    // in place of its fourth finding (port NULL, as feeds store it). Every 13th host is unattributed.
    const n = cves.length;
    if (n <= 15) throw new Error(`need more than 15 CVEs, got ${n}`);
    const t0 = performance.now();
    await sql`
      INSERT INTO organisations (name, sector, layer, source)
      SELECT 'org ' || g, CASE WHEN g % 50 = 0 THEN NULL ELSE 'sector ' || (g % 20) END, 'imported', 'bench' FROM generate_series(1, ${orgs}::int) g`.execute(db);
    await sql`SET synchronous_commit = off`.execute(db);
    const step = 250_000;
    for (let lo = 0; lo < findings; lo += step) {
      const hi = Math.min(findings, lo + step) - 1;
      await sql`
        INSERT INTO findings (ip, port, cve, product, state, close_reason, closed_at, verdict, org_id, first_seen, last_seen, last_at)
        SELECT '10.0.0.0'::inet + h, CASE WHEN c THEN NULL ELSE 443 END,
               CASE WHEN c THEN 'compromised' ELSE (${cves}::text[])[1 + (h * 3 + k * 5) % ${n}::int] END, 'ms-exchange',
               CASE WHEN (g * 7) % 10 < 6 THEN 'open' ELSE 'closed' END,
               CASE WHEN (g * 7) % 10 < 6 THEN NULL WHEN (g * 7) % 10 < 9 THEN 'patched' ELSE 'service-gone' END,
               CASE WHEN (g * 7) % 10 < 6 THEN NULL ELSE fs + (g % 30) * interval '1 day' END,
               CASE WHEN c THEN 'compromised' WHEN h % 3 = 0 THEN 'indeterminate' ELSE 'vulnerable' END,
               CASE WHEN h % 13 = 0 THEN NULL ELSE 1 + h % ${orgs}::int END, fs, now() - interval '1 day', now() - interval '1 day'
        FROM generate_series(${lo}::int, ${hi}::int) g,
             LATERAL (SELECT g / 4 AS h, g % 4 AS k) hk,
             LATERAL (SELECT (hk.k = 3 AND hk.h % 25 = 0) AS c, now() - ((g % 90) + 31) * interval '1 day' AS fs) x`.execute(db);
    }
    // The history the patch curve reads: opened for all, closed for closed ones, notified for every fifth.
    await sql`
      INSERT INTO finding_events (finding_id, kind, at, who, detail)
      SELECT id, 'opened', first_seen, 'bench', NULL FROM findings
      UNION ALL
      SELECT id, 'closed', closed_at, 'bench', jsonb_build_object('reason', close_reason) FROM findings WHERE state = 'closed'
      UNION ALL
      SELECT id, 'notified', first_seen + interval '1 day', 'bench', '{"campaign":"1"}'::jsonb FROM findings WHERE id % 5 = 0`.execute(db);
    await sql`
      INSERT INTO campaigns (name, selection, template, language_default, state, created_at, created_by, approved_at, approved_by)
      VALUES ('bench', '{}', 'default', 'en', 'approved', now() - interval '100 days', 'bench', now() - interval '100 days', 'bench')`.execute(db);
    await sql`
      INSERT INTO campaign_messages (campaign_id, org_id, org_name, ticket, message_id, language, exposures, chain, state, sent_at)
      SELECT 1, g, 'org ' || g, '20260101-' || lpad(g::text, 8, '0'), 'bench-' || g || '@tocsin.invalid', 'en', '[]', '[]',
             (ARRAY['sent', 'acknowledged', 'bounced', 'queued'])[1 + g % 4], CASE WHEN g % 4 < 2 THEN now() - interval '90 days' END
      FROM generate_series(1, ${orgs}::int) g`.execute(db);
    await sql`VACUUM ANALYZE`.execute(db);
    console.log(`generated ${findings.toLocaleString('en')} findings over ${orgs.toLocaleString('en')} organisations in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the load generator

interface PhaseResult {
  readonly label: string;
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly rate: number;
  readonly cpuPerReq: number | null;
}

function request(agent: http.Agent, base: URL, path: string, token: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: base.hostname, port: base.port, path, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

/** Open loop: request i leaves at t0 + i / rate, answered or not (latency counts from the planned time). */
async function phase(label: string, base: URL, token: string, paths: readonly string[], rate: number, seconds: number, serverPid: number): Promise<PhaseResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rate * seconds);
  const lat: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const cpu0 = procCpuMs(serverPid);
  const t0 = performance.now() + 50;
  for (let i = 0; i < total; i++) {
    const planned = t0 + (i * 1000) / rate;
    const wait = planned - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const path = paths[i % paths.length] ?? '/api/me';
    inflight.push(request(agent, base, path, token).then((r) => {
      if (r.status !== 200) errors++;
      else lat.push(performance.now() - planned);
    }, () => {
      errors++;
    }));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = procCpuMs(serverPid);
  agent.destroy();
  lat.sort((a, b) => a - b);
  return {
    label, sent: total, ok: lat.length, errors, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: lat[lat.length - 1] ?? NaN,
    rate: total / elapsed, cpuPerReq: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / total,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// main

async function drive(): Promise<void> {
  const FINDINGS = Number(opt('findings') ?? 1_000_000);
  const ORGS = Number(opt('orgs') ?? 10_000);
  const RATE = Number(opt('rate') ?? 200);
  const SECONDS = Number(opt('seconds') ?? 15);
  const REUSE = benchArgs.includes('--reuse');
  const admin = opt('database') ?? process.env.TOCSIN_DATABASE_URL ?? process.env.TOCSIN_TEST_PG_URL;
  if (admin === undefined) throw new Error('give --database URL (or TOCSIN_TEST_PG_URL)');
  const name = REUSE ? `tocsin_bench_web_${FINDINGS}_${ORGS}` : `tocsin_bench_web_${randomBytes(4).toString('hex')}`;
  const exists = await withClient(admin, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const url = u.toString();
  console.log(`web summary bench: ${FINDINGS.toLocaleString('en')} findings, ${ORGS.toLocaleString('en')} organisations, ${RATE} requests/s, ${SECONDS} s per phase; ` +
    `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  if (!exists) {
    await withClient(admin, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
    try {
      await generate(url, FINDINGS, ORGS);
    } catch (e) {
      await withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
      throw e;
    }
  } else {
    console.log(`reusing database ${name}`);
  }
  let child: ChildProcess | null = null;
  try {
    const { addUser, createToken } = await import('../src/services/accounts.js');
    const database = await openDatabase({ home: '/nonexistent', databaseUrl: url });
    let token: string;
    let size: string;
    try {
      const email = `bench-${randomBytes(4).toString('hex')}@bench.invalid`;
      await addUser(database.db, { email, role: 'analyst' });
      token = (await createToken(database.db, email, { expires: '1d' })).token;
      size = (await sql<{ s: string }>`SELECT pg_size_pretty(pg_database_size(current_database())) AS s`.execute(database.db)).rows[0]?.s ?? '?';
    } finally {
      await database.close();
    }
    console.log(`database size: ${size}`);

    const c = fork(new URL(import.meta.url).pathname, ['--role', 'serve', '--url', url], { execArgv: process.execArgv, stdio: 'inherit' });
    child = c;
    const messages: Array<Record<string, unknown>> = [];
    const waiters: Array<() => void> = [];
    c.on('message', (m) => {
      messages.push(m as Record<string, unknown>);
      for (const w of waiters.splice(0)) w();
    });
    const next = async (key: string): Promise<unknown> => {
      for (;;) {
        const m = messages.find((x) => key in x);
        if (m !== undefined) return m[key];
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    const base = new URL(String(await next('address')));
    const agent = new http.Agent({ keepAlive: true });
    // The cold first read: right after listen, the warm-up is in flight; the reader waits for it (never a second compute).
    const c0 = performance.now();
    const first = await request(agent, base, '/api/summary', token);
    const coldMs = performance.now() - c0;
    if (first.status !== 200) throw new Error(`GET /api/summary: ${first.status} ${first.body.toString('utf8').slice(0, 300)}`);
    const warmMs = Number(await next('warmMs'));
    console.log(`cold start: first GET /api/summary answered ${coldMs.toFixed(0)} ms after listen; warm-up (summary + default patch curve + chart) took ${warmMs.toFixed(0)} ms`);

    // Page weight of the first load: the page, its stylesheet and script, the chart it embeds.
    const parts = ['/', '/assets/app.css', '/assets/app.js', '/api/charts/patch-curve.svg'];
    let raw = 0;
    let gz = 0;
    const weights: string[] = [];
    for (const p of parts) {
      const r = await request(agent, base, p, token);
      if (r.status !== 200) throw new Error(`GET ${p}: ${r.status}`);
      const z = gzipSync(r.body, { level: 6 }).length;
      raw += r.body.length;
      gz += z;
      weights.push(`${p} ${r.body.length} B (gzip ${z} B)`);
    }
    agent.destroy();
    console.log(`page weight of the dashboard's first load: ${raw} B uncompressed, ${gz} B gzip: ${weights.join('; ')}`);

    const pid = c.pid ?? 0;
    // Untimed: the server's JIT, its pool's connections and the sockets warm up here, not in the first timed phase.
    await phase('warm-up', base, token, ['/api/me', '/api/summary', '/api/stats/patch-curve', '/api/campaigns'], RATE, Math.min(5, SECONDS), pid);
    // The baseline runs first and last (the machine's load drifts); the ratios are against the mean of the two.
    const phases: Array<readonly [string, readonly string[]]> = [
      ['baseline GET /api/me', ['/api/me']],
      ['GET /api/summary', ['/api/summary']],
      ['GET /api/stats/patch-curve', ['/api/stats/patch-curve']],
      ['GET /api/campaigns', ['/api/campaigns']],
      ['mix summary+curve+campaigns', ['/api/summary', '/api/stats/patch-curve', '/api/campaigns']],
      ['baseline GET /api/me (again)', ['/api/me']],
    ];
    const results: PhaseResult[] = [];
    for (const [label, paths] of phases) results.push(await phase(label, base, token, paths, RATE, SECONDS, pid));
    const baseP99 = ((results[0]?.p99 ?? NaN) + (results[results.length - 1]?.p99 ?? NaN)) / 2;
    const f = (x: number): string => x.toFixed(1).padStart(7);
    console.log(`\n${'phase'.padEnd(30)}      p50      p99      max  req/s  errors  server CPU ms/req  p99 x baseline`);
    for (const r of results) {
      console.log(`${r.label.padEnd(30)} ${f(r.p50)}  ${f(r.p99)}  ${f(r.max)}  ${r.rate.toFixed(0).padStart(5)}  ${String(r.errors).padStart(6)}  ${(r.cpuPerReq === null ? 'n/a' : r.cpuPerReq.toFixed(2)).padStart(17)}  ${(r.p99 / baseP99).toFixed(2).padStart(14)}`);
    }
    const worst = Math.max(...results.slice(1, -1).map((r) => r.p99));
    console.log(`(server CPU: the app's process only; PostgreSQL's is not counted)`);
    console.log(`\nworst summary p99 ${worst.toFixed(1)} ms at ${RATE} requests/s: ${worst < 50 ? 'within' : 'OVER'} the 50 ms target (latencies in ms, from the planned send time)`);
  } finally {
    if (child !== null) {
      const ch = child;
      await new Promise<void>((r) => {
        ch.once('exit', () => r());
        ch.send('stop');
        setTimeout(() => ch.kill(), 10_000).unref();
      });
    }
    if (!REUSE) await withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
  }
}

if (ROLE === 'serve') await serve(opt('url') ?? '');
else await drive();

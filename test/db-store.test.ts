/**
 * Storage on both backends (embedded PostgreSQL and a real server): migrations, the scan store, the report.
 */
import assert from 'node:assert/strict';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import type { ProbeResponse } from '../src/core/contracts/probe.js';
import { appliedMigrations, runMigrations } from '../src/platform/db/migrate.js';
import { MIGRATIONS } from '../src/platform/db/migrations/index.js';
import { buildReport, listScans } from '../src/services/report.js';
import { exchange } from '../src/products/exchange/index.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult, ScanStore } from '../src/scan/ports.js';
import { attemptKey } from '../src/scan/ports.js';
import { testEachBackend } from './helpers/db.js';

/** Exchange's headline CVEs (data/exchange/cve-groups.csv). */
const HEADLINE_CVES = exchange.cveGroups().headline;

const T0 = Date.parse('2026-03-02T10:00:00.000Z');

function at(i: number): string {
  return new Date(T0 + i * 1000).toISOString();
}

interface ExchangeOpts {
  readonly edition?: string | null;
  readonly cu?: string | null;
  readonly build?: string | null;
  readonly precision?: 'exact' | 'cu' | null;
  readonly vulnerable?: readonly string[];
  readonly indeterminate?: readonly string[];
  readonly product?: string | null;
}

function answered(ip: string, port: number, o: ExchangeOpts = {}, i = 0): AttemptResult {
  const product = o.product === undefined ? 'ms-exchange' : o.product;
  const record: ScanRecord = {
    ip,
    port,
    hostname: null,
    tls: port === 443,
    product,
    edition: o.edition === undefined ? 'Exchange Server 2016' : o.edition,
    build: o.build === undefined ? '15.1.2176.2' : o.build,
    buildPrecision: o.precision === undefined ? 'exact' : o.precision,
    cu: o.cu === undefined ? 'CU19' : o.cu,
    su: null,
    vulnerable: o.vulnerable ?? [],
    indeterminate: o.indeterminate ?? [],
    evidence: [{ detector: 'exchange-x-owa-version', probe: 'owa-logon', url: `https://${ip}/owa/`, where: 'header', name: 'x-owa-version', excerpt: '15.1.2176.2' }],
    scannedAt: at(i),
    status: 200,
    notes: ['build maps to 2016 CU19'],
  };
  return {
    ip,
    port,
    hostname: null,
    outcome: 'answered',
    detail: null,
    record,
    facts: [{ kind: 'build', build: '15.1.2176.2', precision: 'exact', evidence: record.evidence[0]! }],
    detectorRevisions: { 'exchange-x-owa-version': 1 },
    tlsCert: port === 443 ? { subjectCn: 'mail.example.org', sans: ['mail.example.org'], issuerCn: 'Example CA', validFrom: null, validTo: null, sha256: 'ab'.repeat(32) } : null,
    attemptedAt: at(i),
  };
}

function failed(ip: string, port: number, outcome: AttemptResult['outcome'] = 'timeout', i = 0): AttemptResult {
  return { ip, port, hostname: null, outcome, detail: `${outcome} after 3000 ms`, record: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at(i) };
}

async function collect(store: ScanStore, scanId: string): Promise<ScanRecord[]> {
  const out: ScanRecord[] = [];
  for await (const r of store.records(scanId)) out.push(r);
  return out;
}

async function count(db: Kysely<unknown>, table: string): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table(table)}`.execute(db);
  return r.rows[0]!.n;
}

testEachBackend('migrations apply once, then are idempotent, also from two connections at once', async ({ database, url }) => {
  // openDatabase already migrated: a second run applies nothing.
  const again = await runMigrations(database.db as unknown as Kysely<unknown>);
  assert.deepEqual(again.applied, []);
  assert.deepEqual(again.current, MIGRATIONS.map((m) => m.id));

  // Two independent pools racing on a fresh schema: the advisory lock serialises them.
  // Every table of ours (later migrations add more): the race below starts from an empty schema.
  // Functions and triggers too (migration 0008 creates a function): drop the whole schema, not only its tables.
  const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(database.db)).rows[0]?.s ?? 'public';
  await sql`DROP SCHEMA ${sql.id(schema)} CASCADE`.execute(database.db);
  await sql`CREATE SCHEMA ${sql.id(schema)}`.execute(database.db);
  const pools = [new pg.Pool({ connectionString: url, max: 2 }), new pg.Pool({ connectionString: url, max: 2 })];
  const dbs = pools.map((pool) => new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }));
  try {
    const runs = await Promise.all(dbs.map((d) => runMigrations(d)));
    assert.deepEqual(runs.map((r) => r.applied.length).sort(), [0, MIGRATIONS.length], 'exactly one of the two applied them');
    assert.deepEqual(await appliedMigrations(dbs[0]!), MIGRATIONS.map((m) => m.id));
    const twice = await Promise.all(dbs.map((d) => runMigrations(d)));
    assert.deepEqual(twice.map((r) => r.applied.length), [0, 0]);
  } finally {
    await Promise.all(dbs.map((d) => d.destroy()));
  }
});

testEachBackend('scan store: create, get, record, read back', async ({ database }) => {
  const store = createScanStore(database.db, { kbRevision: 'kb0123456789' });
  const scan = await store.createScan({ targets: ['127.0.0.0/30', 'mail.example.org'], ports: [443, 80], options: { rate: 100, probes: ['owa'] } });
  assert.match(scan.id, /^[1-9]\d*$/);
  assert.equal(scan.status, 'running');
  assert.equal(scan.finishedAt, null);
  assert.deepEqual(await store.getScan(scan.id), scan);
  assert.equal(await store.getScan('999999'), null);
  assert.equal(await store.getScan('not-a-number'), null);

  const a = answered('127.0.0.1', 443, { vulnerable: ['CVE-2021-26855', 'CVE-2021-34473'], indeterminate: ['CVE-2024-21410'] }, 1);
  const v6 = answered('::1', 443, { product: 'iis', edition: null, build: null, precision: null, cu: null }, 2);
  // Odd text survives the array encoding unchanged (ids come from the knowledge base, but be exact anyway).
  const odd = answered('127.0.0.3', 443, { vulnerable: ['a"b', 'c\\d', '{e,f}', 'NULL', ''], indeterminate: [] }, 4);
  await store.recordBatch(scan.id, [a, failed('127.0.0.2', 443, 'refused', 3), v6]);

  assert.deepEqual(await store.doneKeys(scan.id), new Set([attemptKey('127.0.0.1', 443), attemptKey('127.0.0.2', 443), attemptKey('::1', 443)]));
  const records = await collect(store, scan.id);
  assert.deepEqual(records, [a.record, v6.record]);

  const obs = await database.db.selectFrom('observations').selectAll().orderBy('id').execute();
  assert.equal(obs.length, 2);

  assert.deepEqual(obs[0]!.facts, a.facts);
  assert.deepEqual(obs[0]!.detector_revisions, { 'exchange-x-owa-version': 1 });
  assert.deepEqual(obs[0]!.tls_cert, a.tlsCert);
  const ass = await database.db.selectFrom('assessments').select(['observation_id', 'vulnerable', 'indeterminate', 'notes', 'kb_revision']).orderBy('id').execute();
  // Each assessment names the knowledge-base revision that judged it.
  assert.deepEqual(ass, [
    { observation_id: obs[0]!.id, vulnerable: ['CVE-2021-26855', 'CVE-2021-34473'], indeterminate: ['CVE-2024-21410'], notes: ['build maps to 2016 CU19'], kb_revision: 'kb0123456789' },
    { observation_id: obs[1]!.id, vulnerable: [], indeterminate: [], notes: ['build maps to 2016 CU19'], kb_revision: 'kb0123456789' },
  ]);
  await store.recordBatch(scan.id, [odd]);
  assert.deepEqual((await collect(store, scan.id)).find((r) => r.ip === '127.0.0.3')?.vulnerable, odd.record?.vulnerable);
  // A NUL from a hostile host does not fail the batch (PostgreSQL text cannot hold it): it becomes U+FFFD.
  const nul = failed('127.0.0.4', 443, 'protocol-error', 5);
  const hostile = answered('127.0.0.5', 443, {}, 6);
  await store.recordBatch(scan.id, [{ ...nul, detail: 'bad\u0000byte \\u0000 kept' }, { ...hostile, record: { ...hostile.record!, notes: ['x\u0000y'] } }]);
  const details = await database.db.selectFrom('scan_attempts').select('detail').where('outcome', '=', 'protocol-error').execute();
  assert.deepEqual(details.map((d) => d.detail), ['bad\ufffdbyte \\u0000 kept']);
  assert.deepEqual((await collect(store, scan.id)).find((r) => r.ip === '127.0.0.5')?.notes, ['x\ufffdy']);

  await store.finishScan(scan.id, 'finished');
  const done = await store.getScan(scan.id);
  assert.equal(done?.status, 'finished');
  assert.ok(done?.finishedAt !== null && done?.finishedAt !== undefined && !Number.isNaN(Date.parse(done.finishedAt)));
});

testEachBackend('recordBatch is idempotent: the same batch twice, overlapping batches, duplicates inside a batch', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan({ targets: ['127.0.0.0/24'], ports: [443], options: {} });
  const batch = [answered('127.0.0.1', 443, { vulnerable: ['CVE-2021-26855'] }), failed('127.0.0.2', 443), answered('127.0.0.3', 443)];
  await store.recordBatch(scan.id, batch);
  await store.recordBatch(scan.id, batch);
  // Overlap: one old answered row (with different content, which must not replace the stored one) and one new.
  const changed = answered('127.0.0.1', 443, { vulnerable: ['CVE-2099-0001'] });
  await store.recordBatch(scan.id, [changed, answered('127.0.0.4', 443), answered('127.0.0.4', 443)]);
  const db = database.db as unknown as Kysely<unknown>;
  assert.equal(await count(db, 'scan_attempts'), 4);
  assert.equal(await count(db, 'observations'), 3);
  assert.equal(await count(db, 'assessments'), 3);
  // A store given no knowledge-base revision records none (rather than guessing one).
  assert.deepEqual((await database.db.selectFrom('assessments').select('kb_revision').execute()).map((r) => r.kb_revision), [null, null, null]);
  const records = await collect(store, scan.id);
  assert.deepEqual(records.map((r) => r.ip), ['127.0.0.1', '127.0.0.3', '127.0.0.4']);
  assert.deepEqual(records[0]!.vulnerable, ['CVE-2021-26855']);
  // The same (ip, port) in another scan is a new attempt.
  const other = await store.createScan({ targets: ['127.0.0.1'], ports: [443], options: {} });
  await store.recordBatch(other.id, [batch[0]!]);
  assert.equal(await count(db, 'scan_attempts'), 5);
  assert.equal((await collect(store, other.id)).length, 1);
});

testEachBackend('records() streams in (ip, port) order across pages, IPv4 before IPv6', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan({ targets: ['127.0.0.0/16'], ports: [80, 443], options: {} });
  const all: AttemptResult[] = [];
  for (let i = 0; i < 1100; i++) {
    const ip = `127.0.${(i * 37) % 256}.${(i * 11) % 250 + 1}`;
    all.push(answered(ip, i % 2 === 0 ? 443 : 80));
  }
  all.push(answered('::1', 8443), answered('127.0.0.10', 443), answered('127.0.0.9', 443), answered('127.0.0.9', 80));
  // Shuffle deterministically and store in several batches.
  const shuffled = all.map((r, i) => ({ r, k: (i * 7919) % all.length })).sort((x, y) => x.k - y.k).map((x) => x.r);
  for (let i = 0; i < shuffled.length; i += 300) await store.recordBatch(scan.id, shuffled.slice(i, i + 300));

  const got = await collect(store, scan.id);
  const ipNum = (ip: string): bigint =>
    ip.includes(':') ? (1n << 40n) + 1n : ip.split('.').reduce((acc, part) => acc * 256n + BigInt(part), 0n);
  const unique = [...new Map(all.map((r) => [attemptKey(r.ip, r.port), r])).values()];
  const expected = unique.sort((x, y) => (ipNum(x.ip) < ipNum(y.ip) ? -1 : ipNum(x.ip) > ipNum(y.ip) ? 1 : x.port - y.port));
  assert.equal(got.length, expected.length);
  assert.deepEqual(got.map((r) => attemptKey(r.ip, r.port)), expected.map((r) => attemptKey(r.ip, r.port)));
  assert.equal(got[got.length - 1]!.ip, '::1');
});

testEachBackend('int8 columns and count(*) come back as numbers', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan({ targets: ['127.0.0.1'], ports: [443], options: {} });
  await store.recordBatch(scan.id, [answered('127.0.0.1', 443)]);
  const row = await database.db
    .selectFrom('observations')
    .select((eb) => ['id', 'scan_id', 'attempt_id', eb.fn.countAll().over().as('n')])
    .executeTakeFirstOrThrow();
  assert.equal(typeof row.id, 'number');
  assert.equal(typeof row.scan_id, 'number');
  assert.equal(typeof row.attempt_id, 'number');
  assert.equal(row.n, 1);
  const big = await sql<{ c: number; b: number }>`SELECT count(*) AS c, 9007199254740991::int8 AS b`.execute(database.db);
  assert.deepEqual(big.rows[0], { c: 1, b: Number.MAX_SAFE_INTEGER });
});

testEachBackend('report: numbers on a small known data set', async ({ database }) => {
  const store = createScanStore(database.db);
  const [pl, ps, pns] = ['CVE-2021-26855', 'CVE-2021-34473', 'CVE-2022-41082'];
  const old = await store.createScan({ targets: ['127.0.1.0/24'], ports: [443], options: {} });
  // Older scan: 127.0.1.50 was a vulnerable 2013 server; in the newer scan it times out.
  await store.recordBatch(old.id, [answered('127.0.1.50', 443, { edition: 'Exchange Server 2013', cu: 'CU23', vulnerable: [pl] }, 0)]);
  await store.finishScan(old.id, 'finished');

  const scan = await store.createScan({ targets: ['127.0.1.0/24'], ports: [443, 80], options: {} });
  await store.recordBatch(scan.id, [
    // 127.0.1.1: 2016 CU19, ProxyLogon + ProxyShell vulnerable, seen on 443 and 80 (one server).
    answered('127.0.1.1', 443, { cu: 'CU19', vulnerable: [pl, ps] }, 10),
    answered('127.0.1.1', 80, { cu: 'CU19', vulnerable: [pl] }, 11),
    // 127.0.1.2: 2019 CU12, patched (a non-headline CVE vulnerable does not matter).
    answered('127.0.1.2', 443, { edition: 'Exchange Server 2019', cu: 'CU12', vulnerable: ['CVE-2099-0001'] }, 12),
    // 127.0.1.3: 2019 CU9 at CU precision: ProxyNotShell indeterminate -> undetermined.
    answered('127.0.1.3', 443, { edition: 'Exchange Server 2019', cu: 'CU9', precision: 'cu', build: '15.2.858', indeterminate: [pns] }, 13),
    // 127.0.1.4: Exchange without a build -> undetermined, edition unknown.
    answered('127.0.1.4', 443, { edition: null, cu: null, build: null, precision: null }, 14),
    // 127.0.1.5: Exchange Online front end; 127.0.1.6: IIS.
    answered('127.0.1.5', 443, { product: 'ms-exchange-online', edition: null, cu: null }, 15),
    answered('127.0.1.6', 443, { product: 'iis', edition: null, cu: null, build: null, precision: null }, 16),
    failed('127.0.1.7', 443, 'refused', 17),
    failed('127.0.1.50', 443, 'timeout', 18),
  ]);

  const r = await buildReport(database.db);
  assert.equal(r.scope.kind, 'latest');
  assert.deepEqual(r.scope.scanIds, [scan.id]);
  assert.equal(r.scope.scan?.attempts, 9);
  assert.deepEqual(r.hosts, { attempted: 9, distinctIps: 8, answered: 7, byOutcome: { answered: 7, refused: 1, timeout: 1 } });
  assert.deepEqual(
    { ...r.exchange, byEdition: undefined, byEditionCu: undefined },
    { servers: 4, services: 5, exactBuild: 2, exchangeOnline: 1, byEdition: undefined, byEditionCu: undefined },
  );
  assert.deepEqual(r.exchange.byEdition, [
    { edition: 'Exchange Server 2016', servers: 1 },
    { edition: 'Exchange Server 2019', servers: 2 },
    { edition: 'unknown', servers: 1 },
  ]);
  assert.deepEqual(r.exchange.byEditionCu, [
    { edition: 'Exchange Server 2016', cu: 'CU19', servers: 1 },
    { edition: 'Exchange Server 2019', cu: 'CU9', servers: 1 },
    { edition: 'Exchange Server 2019', cu: 'CU12', servers: 1 },
    { edition: 'unknown', cu: 'unknown', servers: 1 },
  ]);
  assert.deepEqual(r.cves.slice(0, HEADLINE_CVES.length).map((c) => c.cve), HEADLINE_CVES.map((h) => h.cve));
  const c = (id: string): [number, number] => {
    const x = r.cves.find((y) => y.cve === id);
    return [x?.vulnerable ?? -1, x?.indeterminate ?? -1];
  };
  assert.deepEqual(c(pl), [1, 0]);
  assert.deepEqual(c(ps), [1, 0]);
  assert.deepEqual(c(pns), [0, 1]);
  assert.deepEqual(c('CVE-2099-0001'), [1, 0]);
  assert.equal(r.cves.at(-1)?.headline, false);
  assert.deepEqual(r.indeterminate, { anyCve: 1, headline: 1 });
  assert.deepEqual({ ...r.patched, definition: '', byGroup: [] }, {
    definition: '', servers: 4, patched: 1, vulnerable: 1, undetermined: 2, patchedShare: 0.25, vulnerableShare: 0.25, byGroup: [],
  });
  const group = (g: string): [number, number, number] => {
    const x = r.patched.byGroup.find((y) => y.group === g);
    return [x?.patched ?? -1, x?.vulnerable ?? -1, x?.undetermined ?? -1];
  };
  // ProxyLogon: .1 vulnerable; .2 and .3 patched (builds seen, nothing vulnerable or indeterminate); .4 no build.
  assert.deepEqual(group('ProxyLogon'), [2, 1, 1]);
  assert.deepEqual(group('ProxyNotShell'), [2, 0, 2]);
  assert.deepEqual(group('CVE-2024-21410'), [3, 0, 1]);
  assert.deepEqual(r.patched.byGroup.map((g) => g.group), ['ProxyLogon', 'ProxyShell', 'ProxyNotShell', 'CVE-2023-21529', 'CVE-2024-21410']);

  // All scans: 127.0.1.50 keeps its last answer (vulnerable 2013), its latest attempt (timeout) counts for hosts.
  const all = await buildReport(database.db, { kind: 'all' });
  assert.deepEqual(all.scope.scanIds, [old.id, scan.id]);
  assert.equal(all.hosts.attempted, 9);
  assert.equal(all.exchange.servers, 5);
  assert.deepEqual(all.patched.vulnerable, 2);
  assert.deepEqual(all.cves.find((x) => x.cve === pl)?.vulnerable, 2);

  // A given scan id; an unknown one is a user error with its code.
  const first = await buildReport(database.db, { kind: 'scan', id: old.id });
  assert.equal(first.exchange.servers, 1);
  assert.equal(first.patched.vulnerableShare, 1);
  await assert.rejects(buildReport(database.db, { kind: 'scan', id: '424242' }), { code: 'TOCSIN_SCAN_NOT_FOUND' });
  await assert.rejects(buildReport(database.db, { kind: 'scan', id: 'x' }), { code: 'TOCSIN_SCAN_NOT_FOUND' });

  const scans = await listScans(database.db);
  assert.deepEqual(scans.map((s) => [s.id, s.status, s.attempts, s.answered, s.exchangeServers]), [
    [scan.id, 'running', 9, 7, 4],
    [old.id, 'finished', 1, 1, 1],
  ]);
});

testEachBackend('report on an empty database is all zeros', async ({ database }) => {
  const r = await buildReport(database.db);
  assert.deepEqual(r.scope.scanIds, []);
  assert.equal(r.hosts.attempted, 0);
  assert.equal(r.exchange.servers, 0);
  assert.equal(r.patched.patchedShare, null);
  assert.equal(r.cves.length, HEADLINE_CVES.length);
});

testEachBackend('raw responses: stored once per content, rebuilt exactly, capped, idempotent on replay', async ({ database }) => {
  const { storedObservations } = await import('../src/platform/db/observation-store.js');
  const caps = { maxBodyBytes: 1000, maxHeadBytes: 400 };
  const store = createScanStore(database.db, { kbRevision: 'kb-a', rawCaps: caps });
  const scan = await store.createScan({ targets: ['127.0.0.0/24'], ports: [443], options: {} });
  const page = Buffer.from('<html>the same logon page on every host</html>'.repeat(10));
  const resp = (ip: string, extra: Array<[string, string]> = [], body: Buffer = page): ProbeResponse => ({
    probeId: 'owa-logon', url: `https://${ip}:443/owa/auth/logon.aspx`, status: 200, statusLine: 'HTTP/1.1 200 OK',
    headers: [['server', 'Microsoft-IIS/10.0'], ['x-owa-version', '15.1.2176.2'], ['date', `Mon, 02 Mar 2026 10:00:0${ip.slice(-1)} GMT`], ...extra],
    body, truncated: false, redirects: [`https://${ip}:443/owa/auth/logon.aspx?x=1`],
  });
  // Hostile but representable text (CR inside a value, latin1 bytes, an empty value, ':' in a value), a head
  // only JSON can hold (a non-latin1 character), a body over the cap, and an empty body on a second probe.
  const hostile = resp('127.0.0.2', [['x-odd', 'a\rb:\u00ff'], ['x-empty', '']]);
  const jsonHead = { ...resp('127.0.0.3'), statusLine: 'not-http \u2028' };
  const big = resp('127.0.0.4', [], Buffer.alloc(5000, 0x61));
  const second: ProbeResponse = { ...resp('127.0.0.1'), probeId: 'exporttool', status: 404, statusLine: 'HTTP/1.1 404 Not Found', body: Buffer.alloc(0), truncated: true, redirects: [] };
  const withResponses = (ip: string, responses: ProbeResponse[], i: number): AttemptResult => ({ ...answered(ip, 443, {}, i), responses });
  const batch = [
    withResponses('127.0.0.1', [resp('127.0.0.1'), second], 1),
    withResponses('127.0.0.2', [hostile], 2),
    withResponses('127.0.0.3', [jsonHead], 3),
    withResponses('127.0.0.4', [big], 4),
    withResponses('127.0.0.5', [resp('127.0.0.5')], 5),
    failed('127.0.0.6', 443),
  ];
  await store.recordBatch(scan.id, batch);
  await store.recordBatch(scan.id, batch); // a replay after kill -9 stores nothing twice
  const db = database.db as unknown as Kysely<unknown>;
  assert.equal(await count(db, 'observation_responses'), 6);
  // Bodies: the shared page once, the empty body, the capped big one; heads: one per response (dates differ), the 404's.
  const bodies = await sql<{ n: number }>`SELECT count(DISTINCT body_sha256)::int AS n FROM observation_responses`.execute(db);
  assert.equal(bodies.rows[0]!.n, 3);
  assert.equal(await count(db, 'raw_responses'), 3 + 6);
  const maxSize = await sql<{ n: number }>`SELECT max(size)::int AS n FROM raw_responses`.execute(db);
  assert.equal(maxSize.rows[0]!.n, 1000);

  const seen = new Map<string, readonly ProbeResponse[] | null>();
  for await (const o of storedObservations(database.db, { scanId: Number(scan.id), pageSize: 2 })) {
    seen.set(o.ip, o.responses);
    assert.equal(o.latest?.kbRevision, 'kb-a');
    assert.equal(o.storedTruncated, o.ip === '127.0.0.4');
  }
  assert.equal(seen.size, 5);
  const plain = (r: ProbeResponse): unknown => ({ ...r, body: Buffer.from(r.body).toString('hex'), headers: r.headers.map((h) => [...h]) });
  assert.deepEqual(seen.get('127.0.0.1')?.map(plain), [resp('127.0.0.1'), second].map(plain));
  assert.deepEqual(seen.get('127.0.0.2')?.map(plain), [hostile].map(plain));
  assert.deepEqual(seen.get('127.0.0.3')?.map(plain), [jsonHead].map(plain));
  // Cut by storage: the first 1,000 bytes, read as a truncated body.
  assert.deepEqual(seen.get('127.0.0.4')?.map(plain), [{ ...big, body: big.body.subarray(0, 1000), truncated: true }].map(plain));

  // Gzip only where it pays; the shared page compresses.
  const enc = await sql<{ encoding: string; size: number; stored: number }>`
    SELECT encoding, size, octet_length(data)::int AS stored FROM raw_responses WHERE size = ${page.length}`.execute(db);
  assert.deepEqual(enc.rows.map((r) => r.encoding), ['gzip']);
  assert.ok(enc.rows[0]!.stored < page.length / 4);
});

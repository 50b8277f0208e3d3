/**
 * Findings lifecycle on both backends (issue 9 §1): scans stored through the real scan store at chosen times,
 * feed rows in the real feed tables, the real attribution refresh over a real constituency, then the fold.
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import type { Database } from '../src/platform/db/connect.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult } from '../src/scan/ports.js';
import {
  closeFinding, findingEvents, foldFindings, getFinding, listFindings, recordFindingEvent, reopenFinding, type Finding,
} from '../src/services/findings.js';
import { isTocsinError } from '../src/core/errors.js';
import { testEachBackend } from './helpers/db.js';

const DAY = 24 * 3600 * 1000;
const T0 = Date.parse('2026-01-05T10:00:00.000Z');
const day = (n: number): Date => new Date(T0 + n * DAY);
const IP = '192.0.2.10';

interface Seen {
  readonly vulnerable?: readonly string[];
  readonly indeterminate?: readonly string[];
  readonly product?: string | null;
  readonly build?: string | null;
}

function answered(ip: string, port: number, at: Date, s: Seen = {}): AttemptResult {
  const product = s.product === undefined ? 'ms-exchange' : s.product;
  const build = s.build === undefined ? '15.1.2176.2' : s.build;
  const record: ScanRecord = {
    ip, port, hostname: null, tls: true, product, edition: product === null ? null : 'Exchange Server 2016', build,
    buildPrecision: build === null ? null : 'exact', cu: 'CU19', su: null, vulnerable: s.vulnerable ?? [], indeterminate: s.indeterminate ?? [],
    evidence: [], scannedAt: at.toISOString(), status: 200, notes: [],
  };
  return { ip, port, hostname: null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at.toISOString() };
}

function failed(ip: string, port: number, at: Date, outcome: AttemptResult['outcome']): AttemptResult {
  return { ip, port, hostname: null, outcome, detail: outcome, record: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at.toISOString() };
}

async function scan(database: Database, results: readonly AttemptResult[]): Promise<void> {
  const store = createScanStore(database.db, { kbRevision: 'kb-test' });
  const s = await store.createScan({ targets: results.map((r) => r.ip), ports: [443], options: {} });
  await store.recordBatch(s.id, results);
}

async function all(database: Database, state: 'open' | 'closed' | 'all' = 'all'): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of listFindings(database.db, { state })) out.push(f);
  return out;
}

async function byCve(database: Database): Promise<Map<string, Finding>> {
  return new Map((await all(database)).map((f) => [`${f.port ?? '-'}:${f.cve}`, f]));
}

async function eventCount(database: Database): Promise<number> {
  return (await sql<{ n: number }>`SELECT count(*)::int AS n FROM finding_events`.execute(database.db)).rows[0]!.n;
}

async function kinds(database: Database, id: number): Promise<string[]> {
  return (await findingEvents(database.db, id)).map((e) => e.kind + (e.detail !== null && typeof e.detail === 'object' && 'reason' in e.detail ? `:${String(e.detail.reason)}` : ''));
}

async function withOrg(database: Database): Promise<void> {
  const c = createConstituencyStore(database.db);
  await c.addOrg('Alpha Water', { sector: 'water' }, 'test');
  await c.addEntry('Alpha Water', { kind: 'network', text: '192.0.2.0/24', cidrs: ['192.0.2.0/24'] }, 'test');
}

testEachBackend('findings: opened per CVE, patched, timeout keeps open, service-gone, reopened at day 30, new at day 120; fold twice writes nothing', async ({ database }) => {
  await withOrg(database);
  const fold = (n: number) => foldFindings(database.db, { now: day(n) });

  await scan(database, [answered(IP, 443, day(0), { vulnerable: ['CVE-2021-26855', 'CVE-2021-27065'], indeterminate: ['CVE-2024-21410'] })]);
  const first = await fold(0);
  assert.equal(first.opened, 3);
  let f = await byCve(database);
  assert.deepEqual([...f.keys()].sort(), ['443:CVE-2021-26855', '443:CVE-2021-27065', '443:CVE-2024-21410']);
  assert.equal(f.get('443:CVE-2021-26855')!.verdict, 'vulnerable');
  assert.equal(f.get('443:CVE-2024-21410')!.verdict, 'indeterminate');
  for (const x of f.values()) {
    assert.equal(x.state, 'open');
    assert.equal(x.org, 'Alpha Water');
    assert.equal(x.firstSeen, day(0).toISOString());
    assert.deepEqual(await kinds(database, x.id), ['opened']);
    assert.ok(x.firstObservationId !== null);
  }
  const proxy = f.get('443:CVE-2021-26855')!;

  // Idempotent: nothing new, nothing written.
  const events = await eventCount(database);
  const again = await fold(0);
  assert.deepEqual({ ...again, ms: 0 }, { evidence: 0, opened: 0, closed: 0, reopened: 0, events: 0, ownerChanged: 0, batches: 0, deferred: false, ms: 0 });
  assert.equal(await eventCount(database), events);

  // A timeout is no evidence: everything stays open.
  await scan(database, [failed(IP, 443, day(5), 'timeout')]);
  await fold(5);
  assert.equal((await all(database, 'open')).length, 3);
  assert.equal(await eventCount(database), events);

  // A fixed build: the two vulnerable CVEs close `patched`; the indeterminate one stays open (never closes).
  await scan(database, [answered(IP, 443, day(10), { indeterminate: ['CVE-2024-21410'] })]);
  await fold(10);
  f = await byCve(database);
  assert.equal(f.get('443:CVE-2021-26855')!.state, 'closed');
  assert.equal(f.get('443:CVE-2021-26855')!.closeReason, 'patched');
  assert.equal(f.get('443:CVE-2021-26855')!.closedAt, day(10).toISOString());
  assert.equal(f.get('443:CVE-2021-27065')!.closeReason, 'patched');
  assert.equal(f.get('443:CVE-2024-21410')!.state, 'open');
  assert.deepEqual(await kinds(database, proxy.id), ['opened', 'closed:patched']);

  // Seen again at day 40 (30 days after closing): reopened, first seen kept, same finding.
  await scan(database, [answered(IP, 443, day(40), { vulnerable: ['CVE-2021-26855'], indeterminate: ['CVE-2024-21410'] })]);
  await fold(40);
  f = await byCve(database);
  const reopened = f.get('443:CVE-2021-26855')!;
  assert.equal(reopened.id, proxy.id);
  assert.equal(reopened.state, 'open');
  assert.equal(reopened.firstSeen, day(0).toISOString());
  assert.equal(reopened.lastSeen, day(40).toISOString());
  assert.deepEqual(await kinds(database, proxy.id), ['opened', 'closed:patched', 'reopened:seen again']);
  assert.equal(f.get('443:CVE-2021-27065')!.state, 'closed');

  // Refused by a scan that covered the port: service gone.
  await scan(database, [failed(IP, 443, day(45), 'refused')]);
  await fold(45);
  f = await byCve(database);
  assert.equal(f.get('443:CVE-2021-26855')!.closeReason, 'service-gone');
  assert.equal(f.get('443:CVE-2024-21410')!.closeReason, 'service-gone');

  // Seen 120 days after closing: a new finding; the old one is kept as history, not current.
  await scan(database, [answered(IP, 443, day(165), { vulnerable: ['CVE-2021-26855'] })]);
  await fold(165);
  f = await byCve(database);
  const fresh = f.get('443:CVE-2021-26855')!;
  assert.notEqual(fresh.id, proxy.id);
  assert.equal(fresh.state, 'open');
  assert.equal(fresh.firstSeen, day(165).toISOString());
  const old = await getFinding(database.db, proxy.id);
  assert.equal(old?.current, false);
  assert.equal(old?.state, 'closed');
  assert.deepEqual(await kinds(database, fresh.id), ['opened']);
  // Analyst reopening of replaced history is refused.
  await assert.rejects(reopenFinding(database.db, { id: proxy.id, reason: 'x', who: 't', now: day(166) }), (e) => isTocsinError(e) && e.code === 'TOCSIN_FINDING_STATE');

  const before = await eventCount(database);
  await fold(170);
  assert.equal(await eventCount(database), before, 'a second fold writes nothing');
});

testEachBackend('findings: several scans folded at once keep every transition; a non-Exchange answer on a covering scan is service-gone', async ({ database }) => {
  await scan(database, [answered(IP, 443, day(0), { vulnerable: ['CVE-2021-26855'] }), answered('192.0.2.11', 443, day(0), { vulnerable: ['CVE-2021-26855'] })]);
  await scan(database, [answered(IP, 443, day(10), {}), answered('192.0.2.11', 443, day(10), { product: 'iis', build: null })]);
  await scan(database, [answered(IP, 443, day(30), { vulnerable: ['CVE-2021-26855'] })]);
  const r = await foldFindings(database.db, { now: day(31) });
  assert.equal(r.opened, 2);
  const list = await all(database);
  const a = list.find((x) => x.ip === IP)!;
  const b = list.find((x) => x.ip === '192.0.2.11')!;
  assert.equal(a.state, 'open');
  assert.deepEqual(await kinds(database, a.id), ['opened', 'closed:patched', 'reopened:seen again']);
  assert.equal(b.closeReason, 'service-gone');
  // Unattributed (no constituency): no owner, nothing closed for scope.
  assert.equal(a.orgId, null);
});

testEachBackend('findings: a CU-precision feed row judged indeterminate does not close; a feed webshell row opens a host finding', async ({ database }) => {
  await scan(database, [answered(IP, 443, day(0), { vulnerable: ['CVE-2021-26855'] })]);
  await foldFindings(database.db, { now: day(0) });
  // A Shadowserver row a week later: build at CU precision, our knowledge base says indeterminate; and a webshell tag.
  const imp = (await sql<{ id: number }>`
    INSERT INTO feed_imports (feed, format, file) VALUES ('shadowserver', 'shadowserver', 'x.csv') RETURNING id`.execute(database.db)).rows[0]!.id;
  const obs = (await sql<{ id: number }>`
    INSERT INTO observations (source, ip, port, tls, product, build, build_precision, scanned_at)
    VALUES ('feed:shadowserver', ${IP}, 443, true, 'ms-exchange', '15.1.2176', 'cu', ${day(7).toISOString()}) RETURNING id`.execute(database.db)).rows[0]!.id;
  await sql`INSERT INTO assessment_rows (observation_id, verdict_set_id) VALUES (${obs}, tocsin_verdict_set('{}', ARRAY['CVE-2021-26855']))`.execute(database.db);
  await sql`
    INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, seen_at, tags, compromised, line, raw)
    VALUES (${imp}, ${obs}, 'shadowserver', 'exchange', 'scan_exchange', '2026-01-12', ${IP}, 443, ${day(7).toISOString()},
            ARRAY['exchange', 'webshell'], true, 2, 'raw line')`.execute(database.db);
  await foldFindings(database.db, { now: day(8) });
  const f = await byCve(database);
  const proxy = f.get('443:CVE-2021-26855')!;
  assert.equal(proxy.state, 'open', 'indeterminate never closes');
  assert.equal(proxy.verdict, 'indeterminate');
  assert.deepEqual(await kinds(database, proxy.id), ['opened', 'changed']);
  const host = f.get('-:compromised')!;
  assert.equal(host.port, null);
  assert.equal(host.verdict, 'compromised');
  assert.equal(host.state, 'open');
  assert.equal(host.lastObservationId, obs);
  // A later patched scan closes the CVE finding, not the compromise one.
  await scan(database, [answered(IP, 443, day(9), {})]);
  await foldFindings(database.db, { now: day(9) });
  const g = await byCve(database);
  assert.equal(g.get('443:CVE-2021-26855')!.closeReason, 'patched');
  assert.equal(g.get('-:compromised')!.state, 'open');
});

testEachBackend('findings: false-positive with expiry comes back after it when still seen; analyst reopen; events for campaigns', async ({ database }) => {
  await scan(database, [answered(IP, 443, day(0), { vulnerable: ['CVE-2021-26855'] })]);
  await foldFindings(database.db, { now: day(0) });
  const [f] = await all(database);
  assert.ok(f);
  await assert.rejects(closeFinding(database.db, { id: f.id, reason: 'patched', until: null, note: null, who: 'ana', now: day(1) }),
    (e) => isTocsinError(e) && e.code === 'TOCSIN_ARG_INVALID');
  const closed = await closeFinding(database.db, { id: f.id, reason: 'false-positive', until: day(10), note: 'honeypot', who: 'ana', now: day(1) });
  assert.equal(closed.state, 'closed');
  assert.equal(closed.closeReason, 'false-positive');
  await assert.rejects(closeFinding(database.db, { id: f.id, reason: 'accepted-risk', until: null, note: null, who: 'ana', now: day(1) }),
    (e) => isTocsinError(e) && e.code === 'TOCSIN_FINDING_STATE');

  await foldFindings(database.db, { now: day(5) });
  assert.equal((await getFinding(database.db, f.id))?.state, 'closed');
  await scan(database, [answered(IP, 443, day(7), { vulnerable: ['CVE-2021-26855'] })]);
  await foldFindings(database.db, { now: day(8) });
  assert.equal((await getFinding(database.db, f.id))?.state, 'closed', 'not before the expiry');
  await foldFindings(database.db, { now: day(11) });
  const back = await getFinding(database.db, f.id);
  assert.equal(back?.state, 'open');
  const evs = await findingEvents(database.db, f.id);
  assert.deepEqual(evs.map((e) => e.kind), ['opened', 'closed', 'reopened']);
  assert.equal(evs[1]!.who, 'ana');
  assert.equal(evs[2]!.at, day(10).toISOString());

  // An expired closure whose CVE is no longer seen stays closed.
  await closeFinding(database.db, { id: f.id, reason: 'accepted-risk', until: day(20), note: null, who: 'ana', now: day(12) });
  await scan(database, [answered(IP, 443, day(14), {})]);
  await foldFindings(database.db, { now: day(25) });
  assert.equal((await getFinding(database.db, f.id))?.state, 'closed');

  const opened = await reopenFinding(database.db, { id: f.id, reason: 'customer says not patched', who: 'ana', now: day(26) });
  assert.equal(opened.state, 'open');
  await assert.rejects(reopenFinding(database.db, { id: f.id, reason: 'again', who: 'ana', now: day(26) }), (e) => isTocsinError(e) && e.code === 'TOCSIN_FINDING_STATE');
  const id = await recordFindingEvent(database.db, { findingId: f.id, kind: 'notified', who: 'campaign 1', detail: { campaign: 1 } });
  assert.ok(id > 0);
  await assert.rejects(recordFindingEvent(database.db, { findingId: 999_999, kind: 'notified', who: 'c' }), (e) => isTocsinError(e) && e.code === 'TOCSIN_FINDING_NOT_FOUND');
  await assert.rejects(sql`UPDATE finding_events SET who = 'x'`.execute(database.db), /append-only/);
});

testEachBackend('findings: an owner change is an event; leaving every network closes left-scope', async ({ database }) => {
  await withOrg(database);
  await scan(database, [answered(IP, 443, day(0), { vulnerable: ['CVE-2021-26855'] })]);
  await foldFindings(database.db, { now: day(0) });
  const [f] = await all(database);
  assert.equal(f?.org, 'Alpha Water');
  const c = createConstituencyStore(database.db);
  await c.addOrg('Beta Hospital', { sector: 'health' }, 'test');
  await c.addEntry('Beta Hospital', { kind: 'network', text: '192.0.2.0/28', cidrs: ['192.0.2.0/28'] }, 'test');
  const r = await foldFindings(database.db, { now: day(1) });
  assert.equal(r.ownerChanged, 1);
  const moved = await getFinding(database.db, f!.id);
  assert.equal(moved?.org, 'Beta Hospital');
  assert.equal(moved?.state, 'open');
  const evs = await findingEvents(database.db, f!.id);
  const change = evs.find((e) => e.kind === 'owner-changed');
  assert.ok(change);
  const alpha = (await c.getOrg('Alpha Water'))!.id;
  const beta = (await c.getOrg('Beta Hospital'))!.id;
  assert.deepEqual(change.detail, { from: alpha, to: beta });
  // Nothing changed: no second event.
  await foldFindings(database.db, { now: day(2) });
  assert.equal((await findingEvents(database.db, f!.id)).length, evs.length);

  await c.removeOrg('Beta Hospital', 'test');
  await c.removeOrg('Alpha Water', 'test');
  await foldFindings(database.db, { now: day(3) });
  const gone = await getFinding(database.db, f!.id);
  assert.equal(gone?.state, 'closed');
  assert.equal(gone?.closeReason, 'left-scope');
  assert.equal(gone?.orgId, null);
  assert.deepEqual((await kinds(database, f!.id)).slice(-2), ['owner-changed', 'closed:left-scope']);
});

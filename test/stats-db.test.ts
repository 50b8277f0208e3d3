/**
 * The patch curve from a real finding history on both backends (issue 9 §4): scans stored through the real scan
 * store at chosen times and folded with a clock (as the findings tests do), warnings as `notified` events and as
 * a campaign's outbox rows, a compromised feed row; then the daily counts on known days, time to patch from
 * detection and from warning, survival per sector with censoring, and the campaign's burn-down, all hand-computed.
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import type { Database } from '../src/platform/db/connect.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { foldFindings, listFindings, recordFindingEvent, type Finding } from '../src/services/findings.js';
import { computeStats, renderStatsChart } from '../src/services/stats.js';
import { renderStats } from '../src/cli/stats.js';
import { isTocsinError } from '../src/core/errors.js';
import { testEachBackend } from './helpers/db.js';

const DAY = 24 * 3600 * 1000;
const T0 = Date.parse('2026-01-05T10:00:00.000Z');
const day = (n: number): Date => new Date(T0 + n * DAY);
const CVE = 'CVE-2021-26855';
const HOSTILE_SECTOR = '=HYPERLINK("x") <script>alert(1)</script> & energy';
const H = { h1: '192.0.2.1', h2: '192.0.2.2', h3: '192.0.2.3', h4: '198.51.100.4', h5: '198.51.100.5' } as const;

function answered(ip: string, at: Date, vulnerable: readonly string[]): AttemptResult {
  const record: ScanRecord = {
    ip, port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2',
    buildPrecision: 'exact', cu: 'CU19', su: null, vulnerable, indeterminate: [], evidence: [], scannedAt: at.toISOString(), status: 200, notes: [],
  };
  return { ip, port: 443, hostname: null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at.toISOString() };
}

function refused(ip: string, at: Date): AttemptResult {
  return { ip, port: 443, hostname: null, outcome: 'refused', detail: 'refused', record: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at.toISOString() };
}

async function scanAt(database: Database, n: number, results: readonly AttemptResult[]): Promise<void> {
  const store = createScanStore(database.db, { kbRevision: 'kb-test' });
  const s = await store.createScan({ targets: results.map((r) => r.ip), ports: [443], options: {} });
  await store.recordBatch(s.id, results);
  await foldFindings(database.db, { now: day(n) });
}

/**
 * h1 patched at day 4; h2 patched at day 10; h3 open throughout (compromised from day 7); h4 refused at day 6
 * (service gone: censored); h5 opened at day 2, patched at day 10. Water: h1-h3; the hostile sector: h4, h5.
 * Warnings: campaign (h4, h5) sent at day 2.5 + 1 h; `notified` events for h2, h3, h5 at day 3; h2 acknowledged at day 5.
 */
async function history(database: Database): Promise<{ campaignId: number; byIp: Map<string, Finding> }> {
  const c = createConstituencyStore(database.db);
  await c.addOrg('Alpha Water', { sector: 'water' }, 'test');
  await c.addEntry('Alpha Water', { kind: 'network', text: '192.0.2.0/24', cidrs: ['192.0.2.0/24'] }, 'test');
  await c.addOrg('Beta <b>Power</b>', { sector: HOSTILE_SECTOR }, 'test');
  await c.addEntry('Beta <b>Power</b>', { kind: 'network', text: '198.51.100.0/24', cidrs: ['198.51.100.0/24'] }, 'test');

  await scanAt(database, 0, [answered(H.h1, day(0), [CVE]), answered(H.h2, day(0), [CVE]), answered(H.h3, day(0), [CVE]), answered(H.h4, day(0), [CVE])]);
  await scanAt(database, 2, [answered(H.h5, day(2), [CVE])]);
  const byIp = new Map<string, Finding>();
  for await (const f of listFindings(database.db, { state: 'all' })) byIp.set(f.ip, f);
  assert.equal(byIp.size, 5);

  const created = new Date(day(2).getTime() + 12 * 3600 * 1000);
  const campaignId = (await sql<{ id: number }>`
    INSERT INTO campaigns (name, selection, template, language_default, created_at, created_by, state)
    VALUES ('ProxyLogon <script>x</script>', '{}'::jsonb, 'default', 'en', ${created.toISOString()}, 'test', 'approved') RETURNING id`.execute(database.db)).rows[0]!.id;
  const beta = (await sql<{ id: number }>`SELECT id FROM organisations WHERE name = 'Beta <b>Power</b>'`.execute(database.db)).rows[0]!.id;
  const exposures = [H.h4, H.h5].map((ip) => ({ ip, port: 443, hostname: null, build: '15.1.2176.2', source: 'scan', cves: [{ cve: CVE }], compromised: false, seenAt: day(0).toISOString(), banner: null }));
  await sql`
    INSERT INTO campaign_messages (campaign_id, org_id, org_name, ticket, message_id, language, exposures, chain, state, sent_at)
    VALUES (${campaignId}, ${beta}, 'Beta', '20260107-00000001', '<t1@tocsin>', 'en', ${JSON.stringify(exposures)}::jsonb, '[]'::jsonb, 'sent',
            ${new Date(created.getTime() + 3600 * 1000).toISOString()})`.execute(database.db);
  // A suppressed message (opt-out) of the same campaign for h1 is not a warning and not in the campaign's scope.
  const alpha = (await sql<{ id: number }>`SELECT id FROM organisations WHERE name = 'Alpha Water'`.execute(database.db)).rows[0]!.id;
  await sql`
    INSERT INTO campaign_messages (campaign_id, org_id, org_name, ticket, message_id, language, exposures, chain, state)
    VALUES (${campaignId}, ${alpha}, 'Alpha', '20260107-00000002', '<t2@tocsin>', 'en',
            ${JSON.stringify([{ ip: H.h1, port: 443, cves: [{ cve: CVE }], compromised: false }])}::jsonb, '[]'::jsonb, 'suppressed')`.execute(database.db);

  for (const ip of [H.h2, H.h3, H.h5]) await recordFindingEvent(database.db, { findingId: byIp.get(ip)!.id, kind: 'notified', at: day(3), who: 'test' });
  await recordFindingEvent(database.db, { findingId: byIp.get(H.h2)!.id, kind: 'acknowledged', at: day(5), who: 'test' });

  await scanAt(database, 4, [answered(H.h1, day(4), []), answered(H.h3, day(4), [CVE])]);
  await scanAt(database, 6, [refused(H.h4, day(6))]);
  // A feed row: h3 compromised (web shell) at day 7.
  const imp = (await sql<{ id: number }>`INSERT INTO feed_imports (feed, format, file) VALUES ('shadowserver', 'shadowserver', 'x.csv') RETURNING id`.execute(database.db)).rows[0]!.id;
  const obs = (await sql<{ id: number }>`
    INSERT INTO observations (source, ip, port, tls, product, build, build_precision, scanned_at)
    VALUES ('feed:shadowserver', ${H.h3}, 443, true, 'ms-exchange', '15.1.2176.2', 'exact', ${day(7).toISOString()}) RETURNING id`.execute(database.db)).rows[0]!.id;
  await sql`
    INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, seen_at, tags, compromised, line, raw)
    VALUES (${imp}, ${obs}, 'shadowserver', 'exchange', 'scan_exchange', '2026-01-12', ${H.h3}, 443, ${day(7).toISOString()},
            ARRAY['exchange', 'webshell'], true, 2, 'raw line')`.execute(database.db);
  await foldFindings(database.db, { now: day(7) });
  await scanAt(database, 10, [answered(H.h2, day(10), []), answered(H.h5, day(10), []), answered(H.h3, day(10), [CVE])]);
  return { campaignId, byIp };
}

testEachBackend('stats: daily counts on known days, time to patch from detection and warning, survival per sector, campaign burn-down', async ({ database }) => {
  const { campaignId, byIp } = await history(database);
  const now = day(12);
  const r = await computeStats(database.db, { to: '2026-01-15', now });
  assert.equal(r.from, '2026-01-05', 'from defaults to the first event');
  assert.equal(r.end, '2026-01-16T00:00:00.000Z');
  const at = (d: string) => r.series.find((p) => p.day === d)!;
  assert.equal(r.series.length, 11);
  const row = (d: string) => { const p = at(d); return [p.exposed, p.notified, p.acknowledged, p.patched, p.compromised]; };
  assert.deepEqual(row('2026-01-05'), [4, 0, 0, 0, 0]);
  assert.deepEqual(row('2026-01-07'), [5, 2, 0, 0, 0], 'h5 opened; the campaign warned h4 and h5 (23:00 UTC)');
  assert.deepEqual(row('2026-01-08'), [5, 4, 0, 0, 0], 'h2, h3 notified; h5 not counted twice');
  assert.deepEqual(row('2026-01-09'), [4, 4, 0, 1, 0], 'h1 patched');
  assert.deepEqual(row('2026-01-10'), [4, 4, 1, 1, 0]);
  assert.deepEqual(row('2026-01-11'), [3, 4, 1, 1, 0], 'h4 gone: not exposed, not patched');
  assert.deepEqual(row('2026-01-12'), [3, 4, 1, 1, 1], 'h3 compromised');
  assert.deepEqual(row('2026-01-15'), [1, 4, 1, 3, 1]);

  const ttp = (basis: string) => r.timeToPatch.find((t) => t.basis === basis && t.group === 'all')!;
  // From detection: patched 4, 8, 10 days; censored h4 (6 d) and h3 (open, 10 d 14 h).
  assert.deepEqual({ ...ttp('detection') }, { group: 'all', basis: 'detection', patched: 3, censored: 2, medianDays: 8, p90Days: 10, survivalMedianDays: 10 });
  // From warning: h2 3 -> 10 (7 d), h5 2.5 d + 1 h -> 10 (7 d 11 h = 7.46); censored h3 (7 d 14 h), h4 (3 d 11 h); h1 never warned.
  assert.deepEqual({ ...ttp('warning') }, { group: 'all', basis: 'warning', patched: 2, censored: 2, medianDays: 7, p90Days: 7.46, survivalMedianDays: 7.46 });

  // Survival per sector (default grouping), with censoring.
  const water = r.survival.find((c) => c.group === 'water')!;
  assert.equal(water.findings, 3);
  assert.deepEqual(water.points.map((p) => [p.days, p.survival]), [[0, 1], [4, 0.666667], [10, 0.333333], [10.58, 0.333333]]);
  const hostile = r.survival.find((c) => c.group === HOSTILE_SECTOR)!;
  assert.deepEqual(hostile.points.map((p) => [p.days, p.survival, p.censored]), [[0, 1, 0], [6, 1, 1], [8, 0, 0]]);

  // --by sector: series per sector add up to the totals.
  const bySector = await computeStats(database.db, { by: 'sector', to: '2026-01-15', now });
  const sectorDay = (g: string, d: string) => bySector.series.find((p) => p.group === g && p.day === d)!;
  assert.equal(sectorDay('water', '2026-01-15').exposed, 1);
  assert.equal(sectorDay(HOSTILE_SECTOR, '2026-01-15').patched, 1);
  assert.equal(sectorDay(HOSTILE_SECTOR, '2026-01-11').exposed, 1);
  const csv = renderStats(bySector, 'csv');
  assert.ok(csv.includes(`"'=HYPERLINK(""x"") <script>alert(1)</script> & energy",2026-01-15,0,2,0,1,0`), csv.slice(0, 400));

  // --by org and --by cve: the groups are the organisations' names and the CVE ids (the host-level compromise finding apart).
  const byOrg = await computeStats(database.db, { by: 'org', to: '2026-01-15', now });
  assert.deepEqual([...new Set(byOrg.series.map((p) => p.group))], ['Alpha Water', 'Beta <b>Power</b>']);
  assert.deepEqual(byOrg.timeToPatch.filter((t) => t.basis === 'detection').map((t) => [t.group, t.patched, t.censored]), [['Alpha Water', 2, 1], ['Beta <b>Power</b>', 1, 1]]);
  const byCve = await computeStats(database.db, { by: 'cve', to: '2026-01-15', now });
  assert.deepEqual([...new Set(byCve.series.map((p) => p.group))], [CVE, 'compromised']);
  assert.equal(byCve.series.find((p) => p.group === 'compromised' && p.day === '2026-01-15')!.compromised, 1);

  // --from: the series starts with the level carried in (h1-h4 from before, h5 that day); the timed cohort is the
  // findings detected from then on (h5 only).
  const late = await computeStats(database.db, { from: '2026-01-07', to: '2026-01-15', now });
  assert.deepEqual([late.series[0]!.day, late.series[0]!.exposed, late.series[0]!.notified], ['2026-01-07', 5, 2]);
  assert.equal(late.series.length, 9);
  assert.equal(late.timeToPatch.find((t) => t.basis === 'detection')!.patched, 1);

  // The campaign: h4 and h5 only (the suppressed message is not in it), from its creation day.
  const camp = await computeStats(database.db, { campaignId, to: '2026-01-15', now });
  assert.equal(camp.campaign!.findings, 2);
  assert.equal(camp.campaign!.messagesSent, 1);
  assert.equal(camp.from, '2026-01-07');
  assert.deepEqual(camp.campaign!.points.map((p) => [p.day, p.open, p.patched]), [
    ['2026-01-07', 2, 0], ['2026-01-08', 2, 0], ['2026-01-09', 2, 0], ['2026-01-10', 2, 0], ['2026-01-11', 1, 0],
    ['2026-01-12', 1, 0], ['2026-01-13', 1, 0], ['2026-01-14', 1, 0], ['2026-01-15', 0, 1],
  ]);
  // A `notified` event naming the campaign (as the outbox writes them) brings its finding into the campaign too.
  await recordFindingEvent(database.db, { findingId: byIp.get(H.h1)!.id, kind: 'notified', at: day(3), who: 'campaign', detail: { campaign: campaignId } });
  assert.equal((await computeStats(database.db, { campaignId, to: '2026-01-15', now })).campaign!.findings, 3);
  await assert.rejects(computeStats(database.db, { campaignId: 999 }), (e) => isTocsinError(e) && e.code === 'TOCSIN_CAMPAIGN_NOT_FOUND');

  const svg = await renderStatsChart(camp, 'svg');
  assert.equal(typeof svg, 'string');
  assert.ok(String(svg).includes('Burn-down of campaign') && String(svg).includes('ProxyLogon &lt;script&gt;x&lt;/script&gt;'));
  assert.ok(!/<script/i.test(String(svg)));
});

testEachBackend('stats: no findings gives empty series and no medians, not an error', async ({ database }) => {
  const r = await computeStats(database.db, { to: '2026-01-05', now: day(0) });
  assert.deepEqual(r.series, []);
  assert.deepEqual(r.timeToPatch, []);
  assert.deepEqual(r.survival, []);
  assert.match(renderStats(r, 'table'), /\(no findings\)/);
});

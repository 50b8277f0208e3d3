/**
 * The organisation portal (issue 10 §4) over real HTTP on both database backends, with a real lab on 127.9.x so the
 * verification rescan runs the real scanner: a lab scan stored by the scan service, a constituency of two
 * organisations (one with a hostile name), a hostile observation (formula-like host name, markup in the edition), a
 * campaign sent through the local SMTP sink. Checks: an organisation user sees only its own exposures (the other
 * organisation's addresses appear in no answer: JSON, CSV, pages); staff must name the organisation; acknowledge
 * marks the own warning only, idempotently; a rescan of another organisation's address is refused naming none; a
 * second request while one is pending is 429 with Retry-After; after the lab host is patched (a patch wave) the
 * runner's real rescan closes its findings; CSV cells starting with = + - @ are neutralised; pages escape.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { test } from 'node:test';
import { startLab, type Lab } from '../lab/server.js';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { auditRows } from '../src/platform/db/account-store.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import type { Database } from '../src/platform/db/connect.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import { createSmtpSender } from '../src/platform/mail/index.js';
import { startLocalSink } from '../src/platform/mail/local-sink.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { addUser, createToken } from '../src/services/accounts.js';
import { approveCampaign, campaignStatus, createCampaign, sendCampaign, type RenderContext } from '../src/services/campaigns.js';
import { importConstituency } from '../src/services/constituency.js';
import { exposureFilter, listExposures, type ExposureRecord } from '../src/services/exposures.js';
import { foldFindings, listFindings } from '../src/services/findings.js';
import { portalCsv, type PortalExposure } from '../src/services/portal.js';
import { RescanThrottledError, requestRescan, runNextRescan, startRescanRunner, type RescanRunnerOptions } from '../src/services/rescan-requests.js';
import { planScan, startScan } from '../src/services/scan-service.js';
import { scanStorageOn } from '../src/services/scan-storage.js';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';

const BASE = '127.9.0.0';
const ALPHA = 'Alpha <b>Hospital</b> & "Sons"';
const BETA = '=Beta+Org';
const HOSTILE_HOST = '=HYPERLINK("http://evil.test","x")';
const HOSTILE_EDITION = '<script>window.__xss=1</script>';
const SECRET = Buffer.from('portal-test-secret-0123456789abcdef');
const CTX: RenderContext = { fromAddress: 'cert@cert.test', contactUrl: 'https://cert.test/scanning', ackSecret: SECRET, ackUrlBase: 'https://cert.test/ack/' };

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: unknown;
  readonly text: string;
}
type Call = (method: string, path: string, o?: { body?: unknown; bearer?: string }) => Promise<Answer>;

async function serve(app: FastifyInstance): Promise<Call> {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return async (method, path, o = {}) => {
    const headers: Record<string, string> = {};
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.bearer !== undefined) headers['authorization'] = `Bearer ${o.bearer}`;
    const res = await fetch(`${base}${path}`, { method, headers, redirect: 'manual', ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
    const text = await res.text();
    let json: unknown = null;
    if ((res.headers.get('content-type') ?? '').startsWith('application/json')) json = JSON.parse(text);
    return { status: res.status, headers: res.headers, json, text };
  };
}

function code(a: Answer): string | undefined {
  return (a.json as { error?: { code?: string } } | null)?.error?.code;
}

function hostile(ip: string, port: number): AttemptResult {
  const at = new Date().toISOString();
  const record: ScanRecord = {
    ip, port, hostname: HOSTILE_HOST, tls: true, product: 'ms-exchange', edition: HOSTILE_EDITION, build: '15.1.2176.9', buildPrecision: 'exact',
    cu: 'CU19', su: null, vulnerable: ['CVE-2021-26855'], indeterminate: [], evidence: [], scannedAt: at, status: 200, notes: [],
  };
  return { ip, port, hostname: HOSTILE_HOST, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at };
}

async function exposures(database: Database): Promise<ExposureRecord[]> {
  const { records } = await listExposures(database.db, exposureFilter({}));
  const out: ExposureRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

function inAlpha(ip: string): boolean {
  return Number(ip.split('.')[3]) < 32;
}

test('portal CSV: cells a spreadsheet would run (= + - @) are neutralised, quotes kept', () => {
  const row: PortalExposure = {
    ip: '192.0.2.1', port: 443, hostname: '=cmd|"/c calc"!A1', sources: ['scan'], product: 'ms-exchange', edition: '+SUM(1,2)', build: '-1+1',
    buildPrecision: 'exact', vulnerable: ['CVE-2021-26855'], indeterminate: [], reportedCves: [], compromised: false, firstSeen: null, lastSeen: '@now',
    findings: [], evidence: [], remediation: [],
  };
  const [header, line] = portalCsv([row]).split('\r\n');
  assert.match(header ?? '', /^ip,port,hostname,/);
  const cells = line ?? '';
  assert.ok(cells.includes(`"'=cmd|""/c calc""!A1"`), cells);
  assert.ok(cells.includes(`"'+SUM(1,2)"`), cells);
  assert.ok(cells.includes(`'-1+1`), cells);
  assert.ok(cells.includes(`'@now`), cells);
  assert.doesNotMatch(cells, /(^|,)[=+\-@]/, 'no cell starts with a formula character');
});

testEachBackend('portal: own exposures only, acknowledge, rescans (refused, throttled, real rescan closes patched findings), CSV, pages', async ({ database }) => {
  const db = database.db;
  let lab: Lab = await startLab({ hosts: 64, base: BASE, seed: 11 });
  const home = mkdtempSync(join(tmpdir(), 'tocsin-portal-'));
  let app: FastifyInstance | null = null;
  try {
    // The lab scanned as `tocsin scan 127.9.0.0/26 --ports PORT/tls` would, stored through the scan service.
    const plan = await planScan({
      targets: [`${BASE}/26`], ports: `${lab.httpsPort}/tls`, excludeFiles: [], exclude: [], concurrency: 64, rate: 0, ratePerNetwork: 0,
      timeoutMs: 2000, userAgent: 'tocsin-test',
    }, { stdin: Readable.from([]) });
    const scan = await startScan(plan, {
      storage: { open: async () => scanStorageOn(database, { ownsDatabase: false }), explainFailure: (e) => e },
      output: { open: async () => ({ write: async () => undefined, close: async () => undefined, release: async () => undefined }), replayStored: false },
      signal: new AbortController().signal, clock: { now: () => Date.now() },
    }, { workers: 1 });
    assert.equal(scan.status, 'finished');

    const csv = `organisation,sector,networks,contact\n"${ALPHA.replace(/"/g, '""')}",health,${BASE}/27,sec@alpha.test\n${BETA},energy,127.9.0.32/27,sec@beta.test\n`;
    await importConstituency(createConstituencyStore(db), { files: [{ name: 'orgs.csv', bytes: Buffer.from(csv) }], format: 'auto', who: 'tester' });
    // A hostile record of Alpha's (another port than the lab's): formula-like host name, markup as the edition.
    const scans = createScanStore(db, { kbRevision: 'test' });
    const extra = await scans.createScan({ targets: ['127.9.0.30'], ports: [443], options: {} });
    await scans.recordBatch(extra.id, [hostile('127.9.0.30', 443)]);
    await scans.finishScan(extra.id, 'finished');
    await foldFindings(db);

    const all = await exposures(database);
    const vulnerableLab = all.filter((r) => r.port === lab.httpsPort && r.vulnerable.length > 0);
    const alphaVuln = vulnerableLab.filter((r) => inAlpha(r.ip));
    const betaVuln = vulnerableLab.filter((r) => !inAlpha(r.ip));
    assert.ok(alphaVuln.length >= 1 && betaVuln.length >= 1, `vulnerable lab hosts: ${vulnerableLab.map((r) => r.ip).join(' ')}`);
    const betaIps = [...new Set(all.filter((r) => !inAlpha(r.ip)).map((r) => r.ip))];
    assert.ok(betaIps.length > 0);

    // Warnings: one campaign for every CVE seen, sent through the local SMTP sink.
    const cves = [...new Set(all.flatMap((r) => r.vulnerable))].filter((c) => /^CVE-\d{4}-\d+$/.test(c));
    const { id: campaignId } = await createCampaign(db, { name: '<i>Wave</i> 1', cves, createdBy: 'tester', fromAddress: 'cert@cert.test' });
    await approveCampaign(db, campaignId, 'lead');
    const sink = await startLocalSink({ home });
    const sender = createSmtpSender({ url: sink.url, from: 'cert@cert.test', maxConnections: 2 });
    try {
      const s = await sendCampaign(db, campaignId, sender, CTX);
      assert.equal(s.sent, 2, JSON.stringify(s));
    } finally {
      await sender.close();
      await sink.close();
    }

    await addUser(db, { email: 'a@alpha.test', role: 'org', org: ALPHA, password: 'alpha-password-123' });
    await addUser(db, { email: 'b@beta.test', role: 'org', org: BETA, password: 'beta-password-1234' });
    await addUser(db, { email: 'analyst@cert.test', role: 'analyst', password: 'analyst-password-1' });
    const alpha = (await createToken(db, 'a@alpha.test')).token;
    const beta = (await createToken(db, 'b@beta.test')).token;
    const analyst = (await createToken(db, 'analyst@cert.test')).token;

    app = await buildApp({ db });
    const call = await serve(app);
    const leaks = (text: string): string[] => betaIps.filter((ip) => new RegExp(`(^|[^0-9.])${ip.replace(/\./g, '\\.')}(?![0-9])`).test(text));

    // --- Own exposures: JSON and CSV hold Alpha's addresses only.
    const mine = await call('GET', '/api/my/exposures', { bearer: alpha });
    assert.equal(mine.status, 200, mine.text);
    const items = (mine.json as { items: PortalExposure[] }).items;
    assert.ok(items.length > 0);
    assert.deepEqual(items.filter((r) => !inAlpha(r.ip)), []);
    assert.deepEqual(leaks(mine.text), []);
    const lv = items.find((r) => r.ip === alphaVuln[0]?.ip && r.port === lab.httpsPort);
    assert.ok(lv !== undefined);
    assert.ok(lv.evidence.length > 0, 'a scanned host carries its evidence');
    assert.deepEqual(lv.remediation.map((m) => m.cve).sort(), [...new Set([...lv.vulnerable, ...lv.indeterminate, ...lv.reportedCves])].sort());
    assert.ok(lv.findings.some((f) => f.state === 'open'));
    const h = items.find((r) => r.ip === '127.9.0.30' && r.port === 443);
    assert.equal(h?.edition, HOSTILE_EDITION, 'hostile text survives JSON exactly');

    const csvAnswer = await call('GET', '/api/my/exposures.csv', { bearer: alpha });
    assert.equal(csvAnswer.status, 200);
    assert.match(csvAnswer.headers.get('content-type') ?? '', /^text\/csv/);
    assert.deepEqual(leaks(csvAnswer.text), []);
    assert.ok(csvAnswer.text.includes(`"'=HYPERLINK(""http://evil.test"",""x"")"`), 'the formula-like host name is neutralised');
    assert.doesNotMatch(csvAnswer.text, /(^|,|\r\n)=/);

    // Another organisation by name: refused; staff must name one; staff read the named one.
    const other = await call('GET', `/api/my/exposures?org=${encodeURIComponent(BETA)}`, { bearer: alpha });
    assert.equal(other.status, 403);
    assert.equal(code(other), 'TOCSIN_FORBIDDEN');
    assert.deepEqual(leaks(other.text), []);
    assert.equal((await call('GET', '/api/my/exposures', { bearer: analyst })).status, 400);
    const staff = await call('GET', `/api/my/exposures?org=${encodeURIComponent(BETA)}`, { bearer: analyst });
    assert.equal(staff.status, 200);
    assert.ok((staff.json as { items: PortalExposure[] }).items.every((r) => !inAlpha(r.ip)));
    assert.equal((await call('GET', '/api/my/exposures')).status, 401);

    // --- Warnings and acknowledgement: own only, idempotent, as the e-mailed link does.
    const wa = (await call('GET', '/api/my/warnings', { bearer: alpha })).json as { items: { id: number; campaignId: number; acknowledged: boolean; delivered: boolean; campaign: string }[] };
    const wb = (await call('GET', '/api/my/warnings', { bearer: beta })).json as { items: { id: number; acknowledged: boolean }[] };
    assert.equal(wa.items.length, 1);
    assert.equal(wb.items.length, 1);
    assert.deepEqual([wa.items[0]?.campaignId, wa.items[0]?.acknowledged, wa.items[0]?.delivered, wa.items[0]?.campaign], [campaignId, false, true, '<i>Wave</i> 1']);
    const warningsPage = await call('GET', '/portal/warnings', { bearer: alpha });
    assert.equal(warningsPage.status, 200);
    assert.match(warningsPage.text, /<form data-form="ack" data-api="\/api\/my\/acknowledge"/);
    assert.ok(warningsPage.text.includes('&lt;i&gt;Wave&lt;/i&gt; 1') && !warningsPage.text.includes('<i>Wave</i>'));
    assert.equal((await call('POST', '/api/my/acknowledge', { bearer: analyst, body: { campaignId } })).status, 403, 'staff do not acknowledge for an organisation');
    const stolen = await call('POST', '/api/my/acknowledge', { bearer: alpha, body: { messageId: wb.items[0]?.id } });
    assert.equal(stolen.status, 404);
    assert.equal(code(stolen), 'TOCSIN_CAMPAIGN_NOT_FOUND');
    const ack = await call('POST', '/api/my/acknowledge', { bearer: alpha, body: { campaignId } });
    assert.equal(ack.status, 200, ack.text);
    assert.equal((ack.json as { newlyAcknowledged: number }).newlyAcknowledged, 1);
    const again = await call('POST', '/api/my/acknowledge', { bearer: alpha, body: { messageId: wa.items[0]?.id } });
    assert.equal(again.status, 200);
    assert.equal((again.json as { newlyAcknowledged: number }).newlyAcknowledged, 0, 'idempotent');
    const status = new Map((await campaignStatus(db, campaignId)).records.map((r) => [r.org, r.state]));
    assert.deepEqual([status.get(ALPHA), status.get(BETA)], ['acknowledged', 'sent'], 'only the own warning is acknowledged');
    assert.equal((await call('GET', '/portal/warnings', { bearer: alpha })).text.includes('data-form="ack"'), false, 'acknowledged: no button');

    // --- Pages: own hosts only, escaped; another organisation's host is 404; staff are sent away.
    const portal = await call('GET', '/portal', { bearer: alpha });
    assert.equal(portal.status, 200, portal.text);
    assert.match(portal.text, new RegExp(`<tr data-host="${alphaVuln[0]?.ip.replace(/\./g, '\\.') ?? 'x'}"`));
    assert.match(portal.text, /<form data-form="rescan" data-api="\/api\/my\/rescans"/);
    assert.deepEqual(leaks(portal.text), []);
    assert.ok(!portal.text.includes(HOSTILE_EDITION) && portal.text.includes('&lt;script&gt;window.__xss=1&lt;/script&gt;'));
    assert.ok(!portal.text.includes('<b>Hospital</b>') && portal.text.includes('Alpha &lt;b&gt;Hospital&lt;/b&gt; &amp; &quot;Sons&quot;'));
    assert.ok(portal.text.includes('href="/api/forensics-kit"') && portal.text.includes('href="/api/my/exposures.csv"'));
    const hostPage = await call('GET', `/portal/hosts/${alphaVuln[0]?.ip ?? ''}`, { bearer: alpha });
    assert.equal(hostPage.status, 200);
    assert.match(hostPage.text, /data-finding="CVE-/);
    const foreignHost = await call('GET', `/portal/hosts/${betaVuln[0]?.ip ?? ''}`, { bearer: alpha });
    assert.equal(foreignHost.status, 404);
    assert.deepEqual(leaks(foreignHost.text), []);
    assert.equal((await call('GET', '/portal/hosts/not-an-ip', { bearer: alpha })).status, 404);
    assert.equal((await call('GET', '/portal', { bearer: analyst })).status, 303);

    // --- Rescans: another organisation's address refused naming none, nothing queued.
    const target = alphaVuln[0]?.ip ?? '';
    const refused = await call('POST', '/api/my/rescans', { bearer: alpha, body: { ips: [target, betaVuln[0]?.ip] } });
    assert.equal(refused.status, 403);
    assert.equal(code(refused), 'TOCSIN_FORBIDDEN');
    assert.ok(!refused.text.includes(betaVuln[0]?.ip ?? 'x') && !refused.text.includes(target));
    assert.deepEqual((await call('GET', '/api/my/rescans', { bearer: alpha })).json, { items: [] });

    // The host is patched (the lab restarts on the same ports with a patch wave), then the own rescan closes it.
    await lab.close();
    lab = await startLab({ hosts: 64, base: BASE, seed: 11, httpsPort: lab.httpsPort, httpPort: lab.httpPort, wave: { upgraded: [target] } });
    const queued = await call('POST', '/api/my/rescans', { bearer: alpha, body: { ips: [target] } });
    assert.equal(queued.status, 200, queued.text);
    const q = queued.json as { id: number; status: string; targets: { ip: string; port: number }[] };
    assert.equal(q.status, 'queued');
    assert.deepEqual(q.targets, [{ ip: target, port: lab.httpsPort }]);
    const second = await call('POST', '/api/my/rescans', { bearer: alpha, body: { ips: [target] } });
    assert.equal(second.status, 429);
    assert.equal(code(second), 'TOCSIN_RESCAN_THROTTLED');
    assert.match(second.headers.get('retry-after') ?? '', /^\d+$/);
    // Beta is not throttled by Alpha's pending request.
    const betaRescan = await call('POST', '/api/my/rescans', { bearer: beta, body: {} });
    assert.equal(betaRescan.status, 200, betaRescan.text);

    const runner: RescanRunnerOptions = {
      database, config: { excludeFiles: [], concurrency: 16, rateLimit: 0, ratePerNetwork: 0, userAgent: 'tocsin-test', workers: 1 }, timeoutMs: 2000,
    };
    const done = await runNextRescan(runner);
    assert.equal(done?.id, q.id, 'the oldest request first');
    assert.equal(done?.status, 'done', done?.error ?? '');
    assert.equal(done?.scanIds.length, 1);
    const findings = [];
    for await (const f of listFindings(db, { state: 'all' })) if (f.ip === target && f.port === lab.httpsPort) findings.push(f);
    // What the new build still has (an edition past its support keeps later CVEs): the rest is closed, patched.
    const now = (await exposures(database)).find((r) => r.ip === target && r.port === lab.httpsPort);
    assert.ok(now !== undefined);
    const still = new Set([...now.vulnerable, ...now.indeterminate]);
    const fixed = findings.filter((f) => !still.has(f.cve));
    assert.ok(fixed.length >= 1, `the upgrade fixed something: ${JSON.stringify(now.vulnerable)}`);
    assert.deepEqual(fixed.filter((f) => !(f.state === 'closed' && f.closeReason === 'patched')), [], 'the patched CVEs\' findings are closed');
    assert.deepEqual(findings.filter((f) => still.has(f.cve) && f.state !== 'open'), [], 'what is still vulnerable stays open');
    assert.deepEqual([done?.closed, done?.stillOpen], [fixed.length, findings.length - fixed.length], JSON.stringify(done));
    const listed = (await call('GET', '/api/my/rescans', { bearer: alpha })).json as { items: { id: number; status: string; closed: number }[] };
    assert.deepEqual(listed.items.map((r) => [r.id, r.status]), [[q.id, 'done']]);
    // Beta's default request (all its exposed services) runs next, under the configured exclusions: the excluded
    // host is never contacted, and unpatched or excluded hosts keep their findings.
    const excludedIp = betaVuln[0]?.ip ?? '';
    const exclusions = join(home, 'exclude.txt');
    writeFileSync(exclusions, `# do not touch\n${excludedIp}\n`);
    const betaDone = await runNextRescan({ ...runner, config: { ...runner.config, excludeFiles: [exclusions] } });
    assert.equal(betaDone?.status, 'done', betaDone?.error ?? '');
    assert.ok((betaDone?.stillOpen ?? 0) >= 1, JSON.stringify(betaDone));
    assert.ok(betaDone?.targets.some((t) => t.ip === excludedIp));
    const attempts = await db.selectFrom('scan_attempts').select(['ip', 'outcome']).where('scan_id', '=', betaDone?.scanIds[0] ?? 0).execute();
    assert.equal(attempts.length, betaDone?.targets.length, 'exactly the requested services were attempted');
    assert.deepEqual(attempts.filter((a) => a.ip === excludedIp).map((a) => a.outcome), ['excluded']);
    assert.equal(await runNextRescan(runner), null, 'nothing left in the queue');
    // Done: Alpha may ask again; the in-process runner (what `tocsin serve` starts) takes it and stops cleanly.
    assert.equal((await call('POST', '/api/my/rescans', { bearer: alpha, body: { ips: [target] } })).status, 200);
    const loop = startRescanRunner({ ...runner, pollMs: 50 });
    try {
      let last = '';
      for (let i = 0; i < 600 && last !== 'done' && last !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 200));
        last = ((await call('GET', '/api/my/rescans', { bearer: alpha })).json as { items: { status: string }[] }).items[0]?.status ?? '';
      }
      assert.equal(last, 'done');
    } finally {
      await loop.stop();
    }
    // Two requests in 24 hours: with a limit of two a day, the third is refused until the first is a day old.
    const alphaId = alphaVuln[0]?.orgId ?? 0;
    await assert.rejects(
      requestRescan(db, { orgId: alphaId, org: ALPHA, userId: 1, email: 'a@alpha.test' }, [target], { maxPerDay: 2, maxTargets: 10 }),
      (e: unknown) => e instanceof RescanThrottledError && e.code === 'TOCSIN_RESCAN_THROTTLED' && e.retryAfterSeconds > 86_000 && e.retryAfterSeconds <= 86_400,
    );

    // Every portal read and change left an audit row scoped to the organisation, denials included.
    const audit = await auditRows(db, 500);
    const of = (method: string, route: string, st: number): boolean => audit.some((a) => a.method === method && a.route === route && a.status === st && a.orgScope === alphaId && a.email === 'a@alpha.test');
    assert.ok(of('GET', '/api/my/exposures.csv', 200) && of('POST', '/api/my/rescans', 403) && of('POST', '/api/my/rescans', 429) && of('POST', '/api/my/acknowledge', 404) && of('GET', '/portal', 200), JSON.stringify(audit.slice(0, 5)));

    // --- The forensics kit: anyone logged in; served from the build (404 with its code when not built).
    assert.equal((await call('GET', '/api/forensics-kit')).status, 401);
    const kit = await call('GET', '/api/forensics-kit', { bearer: alpha });
    if (kit.status === 200) assert.ok(kit.text.startsWith('#!/usr/bin/env node'), kit.text.slice(0, 80));
    else assert.equal(code(kit), 'TOCSIN_NOT_FOUND');
  } finally {
    await app?.close();
    await lab.close();
    rmSync(home, { recursive: true, force: true });
  }
});

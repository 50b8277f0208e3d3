/**
 * Issue 11 §4 "Done when": a schedule rescans, closes the patched findings and triggers a follow-up campaign without
 * anyone running a command. On both backends, against the lab on 127.83.0.0/25: scanned, a constituency of three
 * organisations imported, folded and warned (ProxyLogon, through the local SMTP sink); the lab restarts with the two
 * servers of one organisation upgraded; then `runScheduleTick` with a clock 8 days later:
 * - a first tick is stopped while it starts its scan (as a killed daemon would be): its run stays open;
 * - the next tick takes the run up (the same scan, resumed), closes the upgraded servers' findings `patched`, and
 *   creates and sends one follow-up campaign to exactly the organisations still exposed;
 * - a tick at the same time again does nothing (no run, no scan, no campaign, no mail);
 * - the CLI daemon (`tocsin schedule run --once --at`) two days later rescans only the critical hosts (daily cadence)
 *   and sends no follow-up (they were warned two days before), and once more at that time does nothing.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { startLab, type Lab } from '../lab/server.js';
import { csvDocument, DATA_FILE_CSV } from '../src/core/csv.js';
import type { Database } from '../src/platform/db/connect.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import { createSmtpSender, startLocalSink } from '../src/platform/mail/index.js';
import { PRODUCTS } from '../src/products/registry.js';
import { makePolicy } from '../src/schedules/index.js';
import { approveCampaign, campaignStatus, createCampaign, sendCampaign, type RenderContext } from '../src/services/campaigns.js';
import { importConstituency } from '../src/services/constituency.js';
import { foldFindings } from '../src/services/findings.js';
import { planScan, startScan, type ScanDeps } from '../src/services/scan-service.js';
import { scanStorageOn } from '../src/services/scan-storage.js';
import { addSchedule, runScheduleTick, type SchedulerDeps } from '../src/services/scheduler.js';
import { testEachBackend } from './helpers/db.js';
import { runCli } from './helpers/independent-estate/cli.js';

const BASE = '127.83.0.0';
const HOSTS = 128;
const DAY = 86_400_000;
const PROXYLOGON = ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'];

function render(): RenderContext {
  return { fromAddress: 'cert@cert.test', contactUrl: 'https://cert.test/scanning', ackSecret: Buffer.from('schedules-test-secret-0123456789'), ackUrlBase: 'https://cert.test/ack/' };
}

function scanDeps(database: Database): ScanDeps {
  return {
    storage: { open: async () => scanStorageOn(database, { ownsDatabase: false }), explainFailure: (e) => e },
    output: { replayStored: false, open: async () => ({ write: async () => undefined, close: async () => undefined, release: async () => undefined }) },
    signal: new AbortController().signal,
    clock: { now: () => Date.now() },
  };
}

async function count(database: Database, q: ReturnType<typeof sql<{ n: number }>>): Promise<number> {
  return Number((await q.execute(database.db)).rows[0]?.n ?? -1);
}

interface FindingRow { ip: string; cve: string; state: string; close_reason: string | null; org: string | null }

async function proxyLogonFindings(database: Database): Promise<FindingRow[]> {
  const r = await sql<FindingRow>`SELECT host(f.ip) AS ip, f.cve, f.state, f.close_reason, o.name AS org FROM findings f LEFT JOIN organisations o ON o.id = f.org_id
    WHERE f.current AND f.cve = ANY (${PROXYLOGON}::text[]) ORDER BY f.ip, f.cve`.execute(database.db);
  return r.rows;
}

testEachBackend('a schedule rescans, closes patched findings and sends one follow-up to the still-exposed organisations, resumably', async ({ database, url }) => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-schedules-'));
  chmodSync(home, 0o755);
  let lab: Lab | null = await startLab({ hosts: HOSTS, base: BASE, seed: 5 });
  const sink = await startLocalSink({ home });
  const sender = createSmtpSender({ url: sink.url, from: 'CERT <cert@cert.test>' });
  try {
    const { httpsPort, httpPort } = lab;
    const ports = `${httpsPort}/tls`;
    // The first scan, the constituency, the fold and the first warning: what a CERT has done by hand. Alpha owns two
    // servers whose exact build the scan read (so an upgrade shows as patched), nested inside Beta's and Gamma's
    // networks (the most specific network wins).
    const plan = await planScan({
      targets: [`${BASE}/25`], ports, excludeFiles: [], exclude: [], concurrency: 64, rate: 0, ratePerNetwork: 0,
      timeoutMs: 4000, hostBudgetMs: 12_000, userAgent: 'tocsin-test',
    }, { stdin: process.stdin });
    const firstScan = await startScan(plan, scanDeps(database), { workers: 1 });
    assert.equal(firstScan.status, 'finished');
    const exact: string[] = [];
    for await (const r of createScanStore(database.db).records(firstScan.scanId!)) {
      if (r.buildPrecision === 'exact' && PROXYLOGON.every((c) => r.vulnerable.includes(c))) exact.push(r.ip);
    }
    assert.ok(exact.length >= 6, `exact ProxyLogon servers: ${exact.length}`);
    const upgraded = [exact[0]!, exact[exact.length - 1]!];
    const orgs = [
      { name: 'Alpha Clinic', networks: upgraded.map((ip) => `${ip}/32`).join(' '), contact: 'security@alpha.test' },
      { name: 'Beta Council', networks: '127.83.0.0/26', contact: 'security@beta.test' },
      { name: 'Gamma School', networks: '127.83.0.64/26', contact: 'security@gamma.test' },
    ];
    const csv = csvDocument(['organisation', 'sector', 'networks', 'contact'], orgs.map((o) => [o.name, 'health', o.networks, o.contact]), DATA_FILE_CSV);
    const imported = await importConstituency(createConstituencyStore(database.db), { files: [{ name: 'orgs.csv', bytes: Buffer.from(csv) }], format: 'auto', who: 'tester' });
    assert.equal(imported.files[0]?.imported, orgs.length, JSON.stringify(imported.files));
    await foldFindings(database.db, { who: 'tester' });
    const before = await proxyLogonFindings(database);
    const exposedOrgs = [...new Set(before.filter((f) => f.state === 'open' && f.org !== null).map((f) => f.org!))].sort();
    assert.deepEqual(exposedOrgs, orgs.map((o) => o.name));
    const patchedOrg = 'Alpha Clinic';
    const first = await createCampaign(database.db, { name: 'ProxyLogon', group: 'proxylogon', createdBy: 'tester', fromAddress: 'cert@cert.test' });
    await approveCampaign(database.db, first.id, 'lead');
    assert.equal((await sendCampaign(database.db, first.id, sender, render())).sent, exposedOrgs.length);
    const warned = sink.saved.length;

    await lab.close();
    lab = null;
    lab = await startLab({ hosts: HOSTS, base: BASE, seed: 5, httpsPort, httpPort, wave: { upgraded } });

    await addSchedule(database, { name: 'nightly', policy: makePolicy('cyhy', { ports }), scope: { kind: 'constituency' }, createdBy: 'tester' });
    const stop = new AbortController();
    const deps = (signal?: AbortSignal): SchedulerDeps => ({
      scan: { excludeFiles: [], rate: 0, ratePerNetwork: 0, concurrency: 64, userAgent: 'tocsin-test', workers: 1, timeoutMs: 4000, hostBudgetMs: 12_000 },
      mailer: sender, render: render(), ...(signal === undefined ? {} : { signal }),
      // Stopped as its scan starts: the tick is killed after its run and scan are recorded.
      log: (line) => {
        if (/target\(s\) due/.test(line)) stop.abort('test stop');
      },
    });
    const later = new Date(Date.now() + 8 * DAY);

    const killed = await runScheduleTick(database, deps(stop.signal), later);
    assert.equal(killed.length, 1);
    assert.equal(killed[0]!.status, 'interrupted', JSON.stringify(killed[0]));
    const killedRun = await database.db.selectFrom('schedule_runs').selectAll().executeTakeFirstOrThrow();
    assert.equal(killedRun.stage, 'planned');
    assert.ok(killedRun.scan_id !== null, 'the scan is recorded on the run before it runs');
    assert.equal(sink.saved.length, warned, 'nothing sent by the killed tick');

    const [ran] = await runScheduleTick(database, deps(), later);
    assert.equal(ran!.status, 'ran', JSON.stringify(ran));
    assert.equal(ran!.resumed, true);
    assert.equal(ran!.runId, Number(killedRun.id));
    assert.equal(ran!.scanId, Number(killedRun.scan_id), 'the killed tick\'s scan was resumed, not started again');
    assert.equal(await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM scans`), 2, 'the first scan and the schedule\'s');
    // Never swept: every network of the constituency is due, and the critical hosts inside them are scanned with them.
    assert.deepEqual([...ran!.targets].sort(), ['127.83.0.0/26', '127.83.0.64/26', ...upgraded.map((ip) => `${ip}/32`)].sort());

    const after = await proxyLogonFindings(database);
    const ofPatched = after.filter((f) => upgraded.includes(f.ip));
    assert.ok(ofPatched.length >= upgraded.length);
    assert.deepEqual(ofPatched.filter((f) => !(f.state === 'closed' && f.close_reason === 'patched')), [], 'upgraded servers: closed, patched');
    const stillExposed = [...new Set(after.filter((f) => f.state === 'open' && f.org !== null).map((f) => f.org!))].sort();
    assert.deepEqual(stillExposed, exposedOrgs.filter((o) => o !== patchedOrg));
    assert.ok(ran!.closed >= ofPatched.length, `fold closed ${ran!.closed}`);

    // One follow-up, to the still-exposed organisations only, sent without anyone approving it.
    assert.equal(ran!.followUps.length, 1);
    const fu = ran!.followUps[0]!;
    assert.equal(fu.followUpOf, first.id);
    assert.deepEqual([...fu.queued].sort(), stillExposed);
    const status = await campaignStatus(database.db, fu.campaign);
    assert.equal(status.campaign.state, 'approved');
    assert.deepEqual(status.records.filter((r) => r.state !== 'sent'), []);
    const mailed = sink.saved.slice(warned).map((m) => m.recipients.join(','));
    assert.deepEqual(mailed.sort(), stillExposed.map((o) => orgs.find((x) => x.name === o)!.contact).sort());
    const run = await database.db.selectFrom('schedule_runs').selectAll().where('id', '=', ran!.runId!).executeTakeFirstOrThrow();
    assert.equal(run.stage, 'done');
    assert.deepEqual(run.follow_up_campaigns.map(Number), [fu.campaign]);

    // The same time again: nothing is due, nothing new happens.
    const counts = async (): Promise<number[]> => [
      await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM schedule_runs`),
      await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM scans`),
      await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM campaigns`),
    ];
    const c1 = await counts();
    const [again] = await runScheduleTick(database, deps(), later);
    assert.equal(again!.status, 'nothing-due', JSON.stringify(again));
    assert.ok(again!.nextDue !== null && again!.nextDue.getTime() === later.getTime() + DAY, `next due ${String(again!.nextDue?.toISOString())}`);
    assert.deepEqual(await counts(), c1);
    assert.equal(sink.saved.length, warned + stillExposed.length);

    // The daemon, as an operator runs it, two days later: only the critical hosts are due (daily); no follow-up yet.
    const env = { TOCSIN_DATABASE_URL: url, TOCSIN_HOME: home, TOCSIN_SMTP_URL: sink.url, TOCSIN_MAIL_FROM: 'cert@cert.test', TOCSIN_USER_AGENT: 'tocsin-test' };
    const at = new Date(later.getTime() + 2 * DAY).toISOString();
    const cli = await runCli(['schedule', 'run', '--once', '--at', at, '--workers', '1'], env, 300_000);
    const stderr = cli.stderr.toString('utf8');
    assert.equal(cli.code, 0, stderr);
    const rec = JSON.parse(cli.stdout.toString('utf8').trim()) as { status: string; targets: number; followUps: unknown[]; sent: number };
    assert.equal(rec.status, 'ran', stderr);
    // Critical: an open finding on a headline CVE of the product's knowledge base (ProxyLogon, ProxyShell, ...).
    const headline = PRODUCTS.flatMap((p) => p.cveGroups().headline.map((h) => h.cve));
    const critical = await count(database, sql<{ n: number }>`SELECT count(DISTINCT ip)::int AS n FROM findings
      WHERE current AND state = 'open' AND (cve = ANY (${headline}::text[]) OR verdict = 'compromised')`);
    assert.ok(critical > 0);
    assert.equal(rec.targets, critical, `${rec.targets} targets, ${critical} critical hosts`);
    assert.deepEqual([rec.followUps, rec.sent], [[], 0]);
    const cli2 = await runCli(['schedule', 'run', '--once', '--at', at], env, 300_000);
    assert.equal(cli2.code, 0, cli2.stderr.toString('utf8'));
    assert.equal((JSON.parse(cli2.stdout.toString('utf8').trim()) as { status: string }).status, 'nothing-due');
    assert.equal(sink.saved.length, warned + stillExposed.length, 'no mail from the daemon');
    const added = await runCli(['schedule', 'add', 'dmz', '--every', '12h', '--scope', 'cidr:127.83.0.0/28', '--no-follow-up'], env, 120_000);
    assert.equal(added.code, 0, added.stderr.toString('utf8'));
    const bad = await runCli(['schedule', 'add', 'x', '--scope', 'cidr:127.83.0.1/33'], env, 120_000);
    assert.equal(bad.code, 64, bad.stderr.toString('utf8'));
    const list = await runCli(['schedule', 'list'], env, 120_000);
    assert.match(list.stdout.toString('utf8'), /^nightly +constituency +yes /m);
    assert.match(list.stdout.toString('utf8'), /^dmz +cidr:127\.83\.0\.0\/28 +yes +- +- +every \(every 12h; no follow-up; 4096\/tick; ports 443\)$/m);
    const removed = await runCli(['schedule', 'remove', 'dmz'], env, 120_000);
    assert.equal(removed.code, 0, removed.stderr.toString('utf8'));
    assert.deepEqual((await database.db.selectFrom('schedules').select('name').execute()).map((r) => r.name), ['nightly']);
  } finally {
    await sender.close();
    await sink.close();
    await lab?.close();
    rmSync(home, { recursive: true, force: true });
  }
});

testEachBackend('tocsin scan --from-discovery FILE fingerprints only the ports a masscan run saw open', async ({ database, url }) => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-discovery-'));
  chmodSync(home, 0o755);
  const lab = await startLab({ hosts: 16, base: '127.85.0.0', seed: 3 });
  try {
    const tls = lab.httpsPort;
    const plain = lab.httpPort;
    // Three addresses open on the TLS port, one only on the plain port, one on both; a closed-port line and a
    // banner line are not targets; a hostile line is skipped, never scanned.
    const file = join(home, 'masscan.txt');
    writeFileSync(file, [
      '#masscan',
      `open tcp ${tls} 127.85.0.1 1772445600`, `open tcp ${tls} 127.85.0.2 1772445600`, `open tcp ${tls} 127.85.0.3 1772445600`,
      `open tcp ${plain} 127.85.0.4 1772445600`,
      `open tcp ${tls} 127.85.0.5 1772445600`, `open tcp ${plain} 127.85.0.5 1772445600`,
      `closed tcp ${tls} 127.85.0.6 1772445600`,
      `banner tcp ${tls} 127.85.0.7 1772445600 http "x"`,
      'open tcp 443 =cmd|calc 1772445600',
      '# end',
    ].join('\n') + '\n');
    const env = { TOCSIN_DATABASE_URL: url, TOCSIN_HOME: home, TOCSIN_USER_AGENT: 'tocsin-test' };
    const r = await runCli(['scan', '--from-discovery', file, '--no-progress', '--workers', '1', '--timeout-ms', '4000'], env, 300_000);
    const stderr = r.stderr.toString('utf8');
    assert.equal(r.code, 0, stderr);
    assert.match(stderr, /masscan discovery .*: 6 open port\(s\) on 5 address\(es\), 3 port set\(s\); 1 unreadable line/);
    const attempts = await sql<{ ip: string; port: number }>`SELECT host(ip) AS ip, port FROM scan_attempts ORDER BY ip, port`.execute(database.db);
    assert.deepEqual(attempts.rows.map((a) => `${a.ip}:${a.port}`).sort(), [
      `127.85.0.1:${tls}`, `127.85.0.2:${tls}`, `127.85.0.3:${tls}`, `127.85.0.4:${plain}`, `127.85.0.5:${plain}`, `127.85.0.5:${tls}`,
    ].sort());
    // Several port sets run as several scans: an --output file would be overwritten by the next, so it is refused.
    const refused = await runCli(['scan', '--from-discovery', file, '--output', join(home, 'out.jsonl')], env, 120_000);
    assert.equal(refused.code, 64, refused.stderr.toString('utf8'));
    assert.match(refused.stderr.toString('utf8'), /3 different sets of open ports/);
  } finally {
    await lab.close();
    rmSync(home, { recursive: true, force: true });
  }
});

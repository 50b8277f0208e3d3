/**
 * The Shadowserver reports API collector (`tocsin feeds fetch`, src/services/feed-collect.ts) against a local
 * fake of the API on 127.0.0.1 that verifies every request's HMAC2 signature, on both database backends:
 * list + download + import of two reports, a second run downloads nothing, a report answering 500 is retried
 * then reported while the other is imported (CLI: non-zero exit, a clear message; a later run fetches only it),
 * a wrong secret is a coded error, cut / hung / oversized / garbled answers are failures, not imports.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTocsinError } from '../src/core/errors.js';
import { inspectShadowserverSettings, ShadowserverClient, signBody, type ApiLimits } from '../src/platform/feeds/shadowserver-api.js';
import { collectShadowserver, type CollectOptions } from '../src/services/feed-collect.js';
import { dateRange } from '../src/cli/feeds-fetch.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';
import { testEachBackend, type TestDb } from './helpers/db.js';
import { startFakeShadowserver, type FakeReport, type FakeShadowserver } from './helpers/fake-shadowserver.js';

const KEY = 'test-key-123';
const SECRET = 'a secret with spaces and ünïcode';
const HEADER = '"timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","hostname_source","sector","version","servername","url"';

const REPORTS: readonly FakeReport[] = [
  {
    id: 'r-0603-exch', type: 'scan_exchange', date: '2024-06-03', file: '2024-06-03-scan_exchange-example-asn.csv',
    body: `${HEADER}\n"2024-06-03 01:02:03","critical","192.0.2.10","tcp",443,"mail.example.org","exchange;cve-2021-26855",64500,"ZZ",,,,,,"15.1.2176","EXCH01",\n` +
      `"2024-06-03 01:02:04","critical","192.0.2.11","tcp",443,"owa.example.net","exchange;webshell",64501,"ZZ",,,,,,"15.0.1497","EXCH02",\n`,
  },
  {
    id: 'r-0604-exch6', type: 'scan6_exchange', date: '2024-06-04', file: '2024-06-04-scan6_exchange-example-asn.csv',
    body: `${HEADER}\r\n"2024-06-04 03:00:00","critical","2001:db8::25","tcp",443,"mail6.example.org","exchange;cve-2021-26855",64500,"ZZ",,,,,,"15.2.721","EXCH6",\r\n`,
  },
];

function client(fake: FakeShadowserver, secret = SECRET, limits: Partial<ApiLimits> = {}): ShadowserverClient {
  return new ShadowserverClient({ baseUrl: fake.url, apiKey: KEY, secret }, limits);
}

async function withFake(fn: (fake: FakeShadowserver, home: string) => Promise<void>): Promise<void> {
  const fake = await startFakeShadowserver({ apiKey: KEY, secret: SECRET, reports: REPORTS });
  const home = mkdtempSync(join(tmpdir(), 'tocsin-fetch-'));
  try {
    await fn(fake, home);
  } finally {
    await fake.close();
    rmSync(home, { recursive: true, force: true });
  }
}

function options(t: TestDb, fake: FakeShadowserver, home: string, extra: Partial<CollectOptions> = {}): CollectOptions {
  return { db: t.database.db, api: client(fake), home, from: '2024-06-01', to: '2024-06-05', backoffMs: 1, today: () => '2024-06-05', ...extra };
}

async function importedIps(t: TestDb): Promise<string[]> {
  const rows = await t.database.db.selectFrom('feed_observations').select('ip').orderBy('ip').execute();
  return rows.map((r) => r.ip);
}

testEachBackend('feeds fetch: lists, downloads and imports two reports; a second run downloads nothing', async (t) => {
  await withFake(async (fake, home) => {
    const first = await collectShadowserver(options(t, fake, home));
    assert.equal(first.listed, 2);
    assert.deepEqual(first.outcomes.map((o) => [o.id, o.status, o.attempts]), [['r-0603-exch', 'imported', 1], ['r-0604-exch6', 'imported', 1]]);
    assert.deepEqual(first.outcomes.map((o) => o.import?.imported), [2, 1]);
    for (const r of REPORTS) {
      const path = join(home, 'feeds', 'shadowserver', r.date, r.file);
      assert.equal(readFileSync(path, 'utf8'), r.body, path);
    }
    assert.deepEqual(readdirSync(join(home, 'feeds', 'shadowserver', '2024-06-03')), ['2024-06-03-scan_exchange-example-asn.csv']);
    assert.deepEqual(await importedIps(t), ['192.0.2.10', '192.0.2.11', '2001:db8::25']);
    const types = await t.database.db.selectFrom('feed_fetches').select(['report_id', 'report_type', 'status', 'bytes']).orderBy('report_id').execute();
    assert.deepEqual(types, [
      { report_id: 'r-0603-exch', report_type: 'scan_exchange', status: 'imported', bytes: Buffer.byteLength(REPORTS[0]?.body ?? '') },
      { report_id: 'r-0604-exch6', report_type: 'scan6_exchange', status: 'imported', bytes: Buffer.byteLength(REPORTS[1]?.body ?? '') },
    ]);
    assert.equal(fake.refused, 0, 'every request was signed correctly');

    const second = await collectShadowserver(options(t, fake, home));
    assert.equal(second.known, 2);
    assert.deepEqual(second.outcomes, []);
    assert.deepEqual([...fake.downloads.values()], [1, 1], 'no report downloaded twice');

    // --type and --date narrow the list; a dry run stores nothing.
    fake.reports.push({ ...REPORTS[0]!, id: 'r-0605-http', type: 'scan_http', date: '2024-06-05', file: '2024-06-05-scan_http-example-asn.csv' });
    const dry = await collectShadowserver(options(t, fake, home, { dryRun: true }));
    assert.deepEqual(dry.outcomes.map((o) => [o.id, o.status]), [['r-0605-http', 'would-fetch']]);
    const filtered = await collectShadowserver(options(t, fake, home, { types: ['scan_exchange'] }));
    assert.equal(filtered.listed, 1);
    assert.deepEqual(filtered.outcomes, []);
    assert.equal(fake.downloads.get('r-0605-http'), undefined);
  });
});

testEachBackend('feeds fetch: a 500 on one report is retried, then reported; the other is imported; a later run fetches only it', async (t) => {
  await withFake(async (fake, home) => {
    fake.misbehave.set('r-0603-exch', { kind: 'status', status: 500 });
    const sleeps: number[] = [];
    const r = await collectShadowserver(options(t, fake, home, { attempts: 3, backoffMs: 10, sleep: async (ms) => void sleeps.push(ms) }));
    assert.deepEqual(r.outcomes.map((o) => [o.id, o.status, o.attempts]), [['r-0603-exch', 'failed', 3], ['r-0604-exch6', 'imported', 1]]);
    assert.deepEqual(sleeps, [10, 20], 'backoff doubles between attempts');
    assert.equal(r.outcomes[0]?.error?.code, 'TOCSIN_FEED_FETCH');
    assert.match(r.outcomes[0]?.error?.message ?? '', /reports\/download r-0603-exch: HTTP 500.*\(3 attempts\)/);
    assert.equal(existsSync(join(home, 'feeds', 'shadowserver', '2024-06-03', '2024-06-03-scan_exchange-example-asn.csv')), false);
    assert.deepEqual(readdirSync(join(home, 'feeds', 'shadowserver', '2024-06-03')), [], 'no partial file left');
    assert.deepEqual(await importedIps(t), ['2001:db8::25']);

    fake.misbehave.delete('r-0603-exch');
    const again = await collectShadowserver(options(t, fake, home));
    assert.deepEqual(again.outcomes.map((o) => [o.id, o.status]), [['r-0603-exch', 'imported']]);
    assert.equal(fake.downloads.get('r-0604-exch6'), 1);
  });
});

testEachBackend('feeds fetch: a wrong secret is refused by the API and is TOCSIN_FEED_AUTH; nothing stored', async (t) => {
  await withFake(async (fake, home) => {
    await assert.rejects(collectShadowserver(options(t, fake, home, { api: client(fake, 'wrong secret') })), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_FEED_AUTH' && /HTTP 401/.test(e.message));
    assert.equal(fake.refused, 1, 'refused once: an auth failure is not retried');
    assert.equal(existsSync(join(home, 'feeds')), false);
    assert.deepEqual(await importedIps(t), []);
  });
});

testEachBackend('feeds fetch: cut, hung, oversized and garbled answers are failures; retries recover from passing ones', async (t) => {
  await withFake(async (fake, home) => {
    fake.misbehave.set('r-0603-exch', { kind: 'cut', times: 1 });
    fake.misbehave.set('r-0604-exch6', { kind: 'hang', times: 1 });
    fake.listOverride = { text: '[{"id": "r-0603-exch", "ty', times: 1 };
    const api = client(fake, SECRET, { idleMs: 300 });
    const r = await collectShadowserver(options(t, fake, home, { api }));
    assert.deepEqual(r.outcomes.map((o) => [o.id, o.status, o.attempts]), [['r-0603-exch', 'imported', 2], ['r-0604-exch6', 'imported', 2]]);
    assert.equal(fake.calls.filter((c) => c === 'reports/list').length, 2, 'the garbled list was asked again');
    assert.deepEqual(await importedIps(t), ['192.0.2.10', '192.0.2.11', '2001:db8::25']);

    // Oversized: capped while streaming (no Content-Length) and refused up front (declared); not retried.
    fake.reports.push({ ...REPORTS[0]!, id: 'big-1', date: '2024-06-05', file: '2024-06-05-scan_exchange-big1.csv' });
    fake.reports.push({ ...REPORTS[0]!, id: 'big-2', date: '2024-06-05', file: '2024-06-05-scan_exchange-big2.csv' });
    fake.misbehave.set('big-1', { kind: 'oversize', bytes: 5 * 1024 * 1024, declare: false });
    fake.misbehave.set('big-2', { kind: 'oversize', bytes: 5 * 1024 * 1024, declare: true });
    const capped = await collectShadowserver(options(t, fake, home, { api: client(fake, SECRET, { downloadMaxBytes: 256 * 1024 }) }));
    assert.deepEqual(capped.outcomes.map((o) => [o.id, o.status, o.attempts]), [['big-1', 'failed', 1], ['big-2', 'failed', 1]]);
    assert.match(capped.outcomes[0]?.error?.message ?? '', /more than the cap of 262144 bytes/);
    assert.match(capped.outcomes[1]?.error?.message ?? '', /declares 5242880 bytes, more than the cap/);
    assert.deepEqual(readdirSync(join(home, 'feeds', 'shadowserver', '2024-06-05')), [], 'nothing of the oversized reports kept');
  });
});

testEachBackend('feeds fetch: the peer\'s file names and dates are not trusted as paths', async (t) => {
  const body = REPORTS[0]?.body ?? '';
  const fake = await startFakeShadowserver({ apiKey: KEY, secret: SECRET, reports: [
    { id: 'evil-1', type: 'scan_exchange', date: '2024-06-03', file: '../../../evil.csv', body },
    { id: 'same-2', type: 'scan_exchange', date: '2024-06-03', file: '2024-06-03-scan_exchange-x.csv', body: body.replace('192.0.2.10', '192.0.2.20') },
    { id: 'same-3', type: 'scan_exchange', date: '2024-06-03', file: '2024-06-03-scan_exchange-x.csv', body: body.replace('192.0.2.10', '192.0.2.30') },
    { id: 'bad-date', type: 'scan_exchange', date: '2024-02-30', file: 'x.csv', body },
  ] });
  const home = mkdtempSync(join(tmpdir(), 'tocsin-fetch-'));
  try {
    const r = await collectShadowserver(options(t, fake, home, { from: '2024-01-01' }));
    assert.equal(r.malformed, 1, 'an entry with an impossible date is left out');
    assert.deepEqual(r.outcomes.map((o) => o.status), ['imported', 'imported', 'imported']);
    assert.deepEqual(readdirSync(join(home, 'feeds', 'shadowserver', '2024-06-03')).sort(), [
      '2024-06-03-scan_exchange-evil-1.csv', '2024-06-03-scan_exchange-x-same-3.csv', '2024-06-03-scan_exchange-x.csv',
    ]);
    assert.deepEqual(readdirSync(home), ['feeds']);
    assert.deepEqual(await importedIps(t), ['192.0.2.10', '192.0.2.11', '192.0.2.20', '192.0.2.30']);
  } finally {
    await fake.close();
    rmSync(home, { recursive: true, force: true });
  }
});

test('the HMAC2 signature is the hex HMAC-SHA256 of the body; settings list every problem', () => {
  // RFC 4231 test case 2.
  assert.equal(signBody('what do ya want for nothing?', 'Jefe'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  const none = inspectShadowserverSettings({});
  assert.equal(none.settings, null);
  assert.deepEqual(none.problems.map((p) => p.split(' ')[0]), ['TOCSIN_SHADOWSERVER_KEY', 'TOCSIN_SHADOWSERVER_SECRET']);
  const plain = inspectShadowserverSettings({ TOCSIN_SHADOWSERVER_KEY: 'k', TOCSIN_SHADOWSERVER_SECRET: 's', TOCSIN_SHADOWSERVER_URL: 'http://api.example.org/api2' });
  assert.match(plain.problems[0] ?? '', /must be https/);
  const ok = inspectShadowserverSettings({ TOCSIN_SHADOWSERVER_KEY: 'k', TOCSIN_SHADOWSERVER_SECRET: 's' });
  assert.equal(ok.settings?.baseUrl, 'https://transform.shadowserver.org/api2/');
  assert.deepEqual(dateRange({}, '2024-06-05'), { from: '2024-06-03', to: '2024-06-05' });
  assert.deepEqual(dateRange({ since: '2024-05-30' }, '2024-06-05'), { from: '2024-05-30', to: '2024-06-05' });
  assert.throws(() => dateRange({ date: '2024-02-30' }, '2024-06-05'), /--date must be a date/);
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const entry = cliEntry();
  const child = spawn(process.execPath, [...entry.nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
}

testEachBackend('tocsin feeds fetch through the CLI: a failed report exits non-zero naming it; missing settings and a wrong secret are coded', async ({ url }) => {
  await withFake(async (fake, home) => {
    const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url, TOCSIN_SHADOWSERVER_URL: fake.url, TOCSIN_SHADOWSERVER_KEY: KEY, TOCSIN_SHADOWSERVER_SECRET: SECRET };
    const missing = await tocsin(['feeds', 'fetch', '--since', '2024-06-01'], { ...env, TOCSIN_SHADOWSERVER_SECRET: '' });
    assert.equal(missing.code, 78, missing.stderr);
    assert.match(missing.stderr, /TOCSIN_CONFIG_INVALID: .*not configured[\s\S]*TOCSIN_SHADOWSERVER_SECRET is not set/);

    const wrong = await tocsin(['feeds', 'fetch', '--since', '2024-06-01'], { ...env, TOCSIN_SHADOWSERVER_SECRET: 'nope' });
    assert.equal(wrong.code, 77, wrong.stderr);
    assert.match(wrong.stderr, /TOCSIN_FEED_AUTH: reports\/list: HTTP 401/);

    fake.misbehave.set('r-0604-exch6', { kind: 'status', status: 503 });
    const a = await tocsin(['feeds', 'fetch', '--since', '2024-06-01'], env);
    assert.equal(a.code, 69, a.stderr);
    assert.match(a.stderr, /TOCSIN_FEED_FETCH: reports\/download r-0604-exch6: HTTP 503.*\(3 attempts\)/);
    assert.match(a.stderr, /2 report\(s\) listed for 2024-06-01\.\.\d{4}-\d{2}-\d{2}, 0 fetched before, 1 downloaded and imported \(2 row\(s\) read, 2 imported, 0 quarantined\)/);
    assert.match(a.stderr, /1 report\(s\) could not be downloaded \(r-0604-exch6\); the others were imported/);
    const lines = a.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(lines.map((c) => [c[0], c[1], c[2]]), [['imported', '2024-06-03', 'scan_exchange'], ['failed', '2024-06-04', 'scan6_exchange']]);

    fake.misbehave.delete('r-0604-exch6');
    const b = await tocsin(['feeds', 'fetch', '--since', '2024-06-01'], env);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /2 report\(s\) listed .*, 1 fetched before, 1 downloaded and imported/);
    assert.deepEqual([...fake.downloads.entries()].sort(), [['r-0603-exch', 1], ['r-0604-exch6', 4]]);
  });
});

/**
 * `tocsin stats` through the CLI on both backends: it folds first, prints the daily series as formula-safe CSV and
 * the whole report as JSON, writes a PNG chart, and refuses bad flags with coded errors.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult } from '../src/scan/ports.js';
import type { StatsReport } from '../src/services/stats.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';
import { testEachBackend } from './helpers/db.js';

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const entry = cliEntry();
  const child = spawn(process.execPath, [...entry.nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
}

function answered(ip: string, at: string, vulnerable: readonly string[]): AttemptResult {
  const record: ScanRecord = {
    ip, port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2', buildPrecision: 'exact',
    cu: 'CU19', su: null, vulnerable, indeterminate: [], evidence: [], scannedAt: at, status: 200, notes: [],
  };
  return { ip, port: 443, hostname: null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at };
}

const SECTOR = '@SUM(1+1) <script>&';

testEachBackend('tocsin stats through the CLI: csv, json, png chart, coded refusals', async ({ database, url }) => {
  const c = createConstituencyStore(database.db);
  await c.addOrg('Gamma', { sector: SECTOR }, 'test');
  await c.addEntry('Gamma', { kind: 'network', text: '203.0.113.0/24', cidrs: ['203.0.113.0/24'] }, 'test');
  const store = createScanStore(database.db, { kbRevision: 'kb-test' });
  const s1 = await store.createScan({ targets: ['203.0.113.1', '203.0.113.2'], ports: [443], options: {} });
  await store.recordBatch(s1.id, [answered('203.0.113.1', '2026-03-01T12:00:00.000Z', ['CVE-2021-26855']), answered('203.0.113.2', '2026-03-01T12:00:00.000Z', ['CVE-2021-26855'])]);
  const s2 = await store.createScan({ targets: ['203.0.113.1'], ports: [443], options: {} });
  await store.recordBatch(s2.id, [answered('203.0.113.1', '2026-03-03T12:00:00.000Z', [])]);

  const home = mkdtempSync(join(tmpdir(), 'tocsin-stats-cli-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  try {
    const png = join(home, 'curve.png');
    const csv = await tocsin(['stats', '--by', 'sector', '--from', '2026-03-01', '--to', '2026-03-04', '--format', 'csv', '--chart', png], env);
    assert.equal(csv.code, 0, csv.stderr);
    assert.match(csv.stderr, /findings folded/);
    assert.deepEqual(csv.stdout.split('\r\n'), [
      'group,day,exposed,notified,acknowledged,patched,compromised',
      `'${SECTOR},2026-03-01,2,0,0,0,0`,
      `'${SECTOR},2026-03-02,2,0,0,0,0`,
      `'${SECTOR},2026-03-03,1,0,0,1,0`,
      `'${SECTOR},2026-03-04,1,0,0,1,0`,
      '',
    ]);
    assert.deepEqual([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

    const json = await tocsin(['stats', '--from', '2026-03-01', '--to', '2026-03-04', '--format', 'json'], env);
    assert.equal(json.code, 0, json.stderr);
    const r = JSON.parse(json.stdout) as StatsReport;
    const det = r.timeToPatch.find((t) => t.basis === 'detection')!;
    assert.deepEqual([det.patched, det.censored, det.medianDays], [1, 1, 2]);
    assert.equal(r.survival[0]!.group, SECTOR);

    const table = await tocsin(['stats', '--to', '2026-03-04'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /Time to patch/);

    const badChart = await tocsin(['stats', '--chart', join(home, 'x.pdf')], env);
    assert.equal(badChart.code, 64);
    assert.match(badChart.stderr, /TOCSIN_ARG_INVALID/);
    const noCampaign = await tocsin(['stats', '--campaign', '42'], env);
    assert.equal(noCampaign.code, 64);
    assert.match(noCampaign.stderr, /TOCSIN_CAMPAIGN_NOT_FOUND/);
    const badDay = await tocsin(['stats', '--from', '2026-03-05', '--to', '2026-03-01'], env);
    assert.equal(badDay.code, 64);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

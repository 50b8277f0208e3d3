/**
 * `tocsin findings` and `tocsin finding show|close|reopen` through the CLI on both backends: the fold at the start,
 * jsonl / csv (formula-safe) / table (hostile organisation name sanitised), the analyst's close and reopen with
 * their coded errors, and a reader that goes away (exit 141, no crash).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';
import { testEachBackend } from './helpers/db.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI; with `closeAfterFirstChunk` the reader goes away after the first output (as `| head -1`). */
function tocsin(args: readonly string[], env: Readonly<Record<string, string>>, closeAfterFirstChunk = false): Promise<Run> {
  const entry = cliEntry();
  const child = spawn(process.execPath, [...entry.nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString('utf8');
    if (closeAfterFirstChunk) child.stdout.destroy();
  });
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
}

function answered(ip: string, vulnerable: readonly string[]): AttemptResult {
  const at = '2026-03-01T12:00:00.000Z';
  const record: ScanRecord = {
    ip, port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2', buildPrecision: 'exact',
    cu: 'CU19', su: null, vulnerable, indeterminate: [], evidence: [], scannedAt: at, status: 200, notes: [],
  };
  return { ip, port: 443, hostname: null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at };
}

const HOSTILE_ORG = 'Evil\u001b[31m <script>alert(1)</script>';

testEachBackend('tocsin findings / finding show|close|reopen through the CLI', async ({ database, url }) => {
  const c = createConstituencyStore(database.db);
  await c.addOrg(HOSTILE_ORG, {}, 'test');
  await c.addEntry(HOSTILE_ORG, { kind: 'network', text: '203.0.113.0/24', cidrs: ['203.0.113.0/24'] }, 'test');
  const store = createScanStore(database.db, { kbRevision: 'kb-test' });
  const scan = await store.createScan({ targets: ['203.0.113.0/29'], ports: [443], options: {} });
  const hosts = Array.from({ length: 6 }, (_, i) => answered(`203.0.113.${i + 1}`, ['CVE-2021-26855', 'CVE-2021-27065']));
  await store.recordBatch(scan.id, hosts);

  const home = mkdtempSync(join(tmpdir(), 'tocsin-findings-cli-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  try {
    const j = await tocsin(['findings', '--format', 'jsonl'], env);
    assert.equal(j.code, 0, j.stderr);
    assert.match(j.stderr, /findings folded \(6 new piece\(s\) of evidence: 12 opened/);
    const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; cve: string; org: string; state: string });
    assert.equal(rows.length, 12);
    assert.ok(rows.every((r) => r.org === HOSTILE_ORG && r.state === 'open'), 'JSON keeps the name exactly (escaped by JSON)');
    assert.ok(!j.stdout.includes('\u001b'), 'no raw escape character reaches the terminal');

    const t = await tocsin(['findings', '--cve', 'cve-2021-27065'], env);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stderr, /0 new piece\(s\) of evidence/, 'the second run folds nothing');
    const lines = t.stdout.trim().split('\n');
    assert.equal(lines.length, 7);
    assert.ok(!t.stdout.includes('\u001b'));
    assert.match(lines[1]!, /203\.0\.113\.\d:443 +CVE-2021-27065 +vulnerable +open/);

    const id = rows[0]!.id;
    const closed = await tocsin(['finding', 'close', String(id), '--reason', 'accepted-risk', '--until', '2099-01-01', '--note', '=cmd|"/c calc"!A1', '--by', 'analyst'], env);
    assert.equal(closed.code, 0, closed.stderr);
    const again = await tocsin(['finding', 'close', String(id), '--reason', 'false-positive'], env);
    assert.equal(again.code, 65);
    assert.match(again.stderr, /TOCSIN_FINDING_STATE/);
    const csv = await tocsin(['findings', '--state', 'closed', '--format', 'csv'], env);
    assert.equal(csv.code, 0, csv.stderr);
    const csvLines = csv.stdout.trim().split('\r\n');
    assert.equal(csvLines.length, 2);
    assert.match(csvLines[1]!, /,accepted-risk,/);
    assert.match(csvLines[1]!, /,"'=cmd\|""\/c calc""!A1"$/, 'the note cannot run as a formula');

    const show = await tocsin(['finding', 'show', String(id)], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /state +closed \(accepted-risk until 2099-01-01/);
    assert.match(show.stdout, /opened +by tocsin \(observation \d+\)/);
    assert.match(show.stdout, /closed +by analyst/);
    const reopened = await tocsin(['finding', 'reopen', String(id), '--reason', 'owner says unpatched'], env);
    assert.equal(reopened.code, 0, reopened.stderr);
    const json = await tocsin(['finding', 'show', String(id), '--format', 'json'], env);
    const parsed = JSON.parse(json.stdout) as { state: string; events: Array<{ kind: string }> };
    assert.equal(parsed.state, 'open');
    assert.deepEqual(parsed.events.map((e) => e.kind), ['opened', 'closed', 'reopened']);

    const missing = await tocsin(['finding', 'show', '999999'], env);
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /TOCSIN_FINDING_NOT_FOUND/);

    const cut = await tocsin(['findings', '--format', 'jsonl'], env, true);
    assert.ok(cut.code === 141 || cut.code === 0, `exit ${cut.code}: ${cut.stderr}`);
    assert.doesNotMatch(cut.stderr, /Error|at .*\.ts/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

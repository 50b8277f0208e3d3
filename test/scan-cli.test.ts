/**
 * `tocsin scan` as a user runs it (a child process), against the lab in this process (loopback only):
 * - a malformed target is refused before anything is sent, naming the target and its line;
 * - `kill -9` mid-scan, then `--resume ID`: every (ip, port) exactly once in the database and in the
 *   output file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startLab, type Lab } from '../lab/server.js';
import { loadExchangeKb } from '../src/knowledge/exchange/index.js';
import { freshDatabase, type FreshDatabase } from './helpers/db.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'src', 'bin', 'tocsin.ts');
const HOSTS = 128;

let lab: Lab;
let dir: string;
before(async () => {
  // Latency makes the scan slow enough to be killed in the middle.
  lab = await startLab({ hosts: HOSTS, base: '127.4.0.0', seed: 11, latencyMs: 60 });
  dir = mkdtempSync(join(tmpdir(), 'tocsin-scan-cli-'));
});
after(async () => {
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Child {
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly stderr: () => string;
  readonly stdout: () => string;
  kill(sig: NodeJS.Signals): void;
}

function tocsin(args: readonly string[], env: Readonly<Record<string, string>> = {}): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], {
    cwd: root,
    env: { ...process.env, TOCSIN_HOME: join(dir, 'home'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('close', (code, signal) => res({ code, signal })));
  return { done, stderr: () => err, stdout: () => out, kill: (s) => child.kill(s) };
}

test('a malformed target is refused before anything is sent, naming it and its line', { timeout: 60_000 }, async () => {
  const file = join(dir, 'targets.txt');
  writeFileSync(file, '# our constituency\n127.4.0.1\n127.4.0.300\n127.4.0.2\n');
  const before = lab.stats().connections;
  const c = tocsin(['scan', '127.4.0.0/30', `@${file}`, '--ports', `${lab.httpsPort}/tls`, '--no-store']);
  const { code } = await c.done;
  assert.notEqual(code, 0);
  assert.match(c.stderr(), /TOCSIN_TARGET_INVALID/);
  assert.match(c.stderr(), /targets\.txt:3/);
  assert.match(c.stderr(), /127\.4\.0\.300/);
  assert.equal(c.stdout(), '');
  assert.equal(lab.stats().connections, before, 'no connection was made');
});

test('stdout carries only records (jsonl); the summary goes to stderr', { timeout: 60_000 }, async () => {
  const c = tocsin(['scan', '127.4.0.0/28', '--ports', `${lab.httpsPort}/tls`, '--no-store', '--timeout-ms', '3000']);
  const { code } = await c.done;
  assert.equal(code, 0, c.stderr());
  const lines = c.stdout().split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0);
  const answered = lab.hosts.slice(0, 16).filter((h) => h.ports.https && h.kind !== 'tarpit').length;
  assert.ok(lines.length <= 16 && lines.length >= answered - 4, `${lines.length} records`);
  for (const l of lines) {
    const r = JSON.parse(l) as { ip: string; port: number; scannedAt: string };
    assert.match(r.ip, /^127\.4\.0\.\d+$/);
    assert.equal(r.port, lab.httpsPort);
  }
  assert.match(c.stderr(), /^scan: 16 attempts/m);
});

test('kill -9 mid-scan, then --resume: every host exactly once in the database and the output file', { timeout: 180_000 }, async () => {
  const fresh: FreshDatabase = await freshDatabase('embedded');
  const db = new pg.Client({ connectionString: fresh.url });
  await db.connect();
  try {
    const env = { TOCSIN_DATABASE_URL: fresh.url };
    const output = join(dir, 'out.jsonl');
    const common = ['--output', output, '--format', 'jsonl'];
    const first = tocsin(['scan', '127.4.0.0/25', '--ports', `${lab.httpsPort}/tls`, '--concurrency', '6', '--workers', '1', '--timeout-ms', '3000', ...common], env);

    // Wait until some (not all) attempts are stored, then kill -9.
    let stored = 0;
    let scanId: string | null = null;
    for (let i = 0; i < 600 && stored < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      scanId ??= /scan (\d+)/.exec(first.stderr())?.[1] ?? null;
      if (scanId === null) continue;
      const r = await db.query<{ n: string }>('SELECT count(*) AS n FROM scan_attempts WHERE scan_id = $1', [scanId]);
      stored = Number(r.rows[0]?.n ?? 0);
    }
    first.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(scanId !== null, first.stderr());
    const afterKill = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM scan_attempts WHERE scan_id = $1', [scanId])).rows[0]?.n);
    assert.ok(afterKill >= 20 && afterKill < HOSTS, `stored before the kill: ${afterKill}`);

    const second = tocsin(['scan', '--resume', scanId, '--workers', '1', ...common], env);
    const { code } = await second.done;
    assert.equal(code, 0, second.stderr());
    assert.match(second.stderr(), new RegExp(`resuming scan ${scanId}`));

    const attempts = await db.query<{ ip: string; port: number; outcome: string }>('SELECT host(ip) AS ip, port, outcome FROM scan_attempts WHERE scan_id = $1', [scanId]);
    assert.equal(attempts.rows.length, HOSTS);
    assert.equal(new Set(attempts.rows.map((r) => `${r.ip}|${r.port}`)).size, HOSTS);
    const obs = await db.query<{ ip: string }>('SELECT host(ip) AS ip FROM observations WHERE scan_id = $1', [scanId]);
    const answered = attempts.rows.filter((r) => r.outcome === 'answered').map((r) => r.ip).sort();
    assert.deepEqual(obs.rows.map((r) => r.ip).sort(), answered);
    // Every assessment names the knowledge-base revision that judged it (both runs use the in-repo KB).
    const kbRevs = await db.query<{ kb_revision: string | null }>(
      'SELECT DISTINCT a.kb_revision FROM assessments a JOIN observations o ON o.id = a.observation_id WHERE o.scan_id = $1', [scanId]);
    assert.deepEqual(kbRevs.rows.map((r) => r.kb_revision), [loadExchangeKb().version]);

    const lines = readFileSync(output, 'utf8').trimEnd().split('\n').filter((l) => l !== '');
    const ips = lines.map((l) => (JSON.parse(l) as { ip: string }).ip).sort();
    assert.deepEqual(ips, answered, 'the output file holds every answered host exactly once');
    const status = await db.query<{ status: string }>('SELECT status FROM scans WHERE id = $1', [scanId]);
    assert.equal(status.rows[0]?.status, 'finished');
  } finally {
    await db.end();
    await fresh.drop();
  }
});

test('an unwritable --output is refused before the scan is stored: no empty scan is left behind', { timeout: 60_000 }, async () => {
  const fresh: FreshDatabase = await freshDatabase('embedded');
  const db = new pg.Client({ connectionString: fresh.url });
  try {
    const env = { TOCSIN_DATABASE_URL: fresh.url };
    const r = tocsin(['scan', '127.4.0.1', '--ports', `${lab.httpsPort}/tls`, '--output', join(dir, 'missing', 'x.jsonl')], env);
    const { code } = await r.done;
    assert.equal(code, 66, r.stderr());
    assert.match(r.stderr(), /TOCSIN_INPUT_UNREADABLE: cannot write --output/);
    await db.connect();
    // Migrations may or may not have run (the database is opened lazily); either way no scan row exists.
    const t = await db.query<{ n: string | null }>("SELECT to_regclass('scans')::text AS n");
    if (t.rows[0]?.n === 'scans') assert.equal((await db.query('SELECT 1 FROM scans')).rowCount, 0);
  } finally {
    await db.end().catch(() => undefined);
    await fresh.drop();
  }
});

/**
 * `tocsin feeds` end to end through the CLI (the compiled one when the build is fresh, as the acceptance
 * test does; in CI a stale build fails), on both backends: per-file counts, a rejected file's coded error
 * and exit status with the other files imported, stdin, the quarantine as JSON Lines with raw lines, a
 * repeated delivery stored once, and `feeds targets` for `tocsin scan @file`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';
import { testEachBackend } from './helpers/db.js';

const FIX = fileURLToPath(new URL('./fixtures/feeds/', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>, stdin = ''): Promise<Run> {
  const entry = cliEntry();
  const child = spawn(process.execPath, [...entry.nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
}

function table(stdout: string): string[][] {
  return stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
}

testEachBackend('tocsin feeds import / quarantine / targets through the CLI', async ({ url }) => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-feeds-cli-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  try {
    const files = ['2024-06-03-scan_exchange-example-asn.csv', '2024-06-05-scan_exchange-no-port.csv', '2024-06-06-special-example.csv'].map((n) => join(FIX, n));
    const a = await tocsin(['feeds', 'import', ...files], env);
    assert.equal(a.code, 65, a.stderr);
    assert.match(a.stderr, /TOCSIN_FEED_REJECTED: .*no-port\.csv: required column\(s\) missing: port/);
    assert.match(a.stderr, /3 file\(s\): 8 row\(s\) read, 6 imported, 0 duplicate, 2 quarantined; 1 file\(s\) rejected/);
    assert.deepEqual(table(a.stdout).map((c) => c.slice(0, 6)), [
      ['imported', 'shadowserver', '6', '4', '0', '2'],
      ['rejected', 'shadowserver', '0', '0', '0', '0'],
      ['imported', 'shadowserver', '2', '2', '0', '0'],
    ]);

    const again = await tocsin(['feeds', 'import', files[0] ?? ''], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /same .* \(same content as import \d+: nothing stored\)/);

    const s = await tocsin(['feeds', 'import', '-', '--format', 'masscan', '--source', 'sweep-1'], env, 'open tcp 443 192.0.2.30 1717376400\nopen tcp 443 192.0.2.31 1717376400\nopen tcp 443 192.0.2.999 1717376400\n');
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(table(s.stdout)[0]?.slice(0, 7), ['imported', 'masscan', '3', '2', '0', '1', '-']);

    const q = await tocsin(['feeds', 'quarantine', '--format', 'jsonl'], env);
    assert.equal(q.code, 0, q.stderr);
    const recs = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; line: number; raw: string; error: string; feed: string });
    assert.deepEqual(recs.map((r) => [r.file.replace(/^.*\//, ''), r.line, r.error, r.feed]), [
      ['2024-06-03-scan_exchange-example-asn.csv', 5, 'bad IP address "192.0.2.300"', 'shadowserver'],
      ['2024-06-03-scan_exchange-example-asn.csv', 6, 'bad port "99999"', 'shadowserver'],
      ['-', 3, 'bad IP address "192.0.2.999"', 'sweep-1'],
    ]);
    assert.equal(recs[2]?.raw, 'open tcp 443 192.0.2.999 1717376400');
    const qt = await tocsin(['feeds', 'quarantine'], env);
    assert.match(qt.stdout, /example-asn\.csv:6: bad port "99999"\n {4}"2024-06-03 01:02:07"/);

    const t = await tocsin(['feeds', 'targets', '--port', '443'], env);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, '192.0.2.30\n192.0.2.31\n');

    const bad = await tocsin(['feeds', 'import', join(FIX, 'does-not-exist.csv'), files[0] ?? ''], env);
    assert.equal(bad.code, 66);
    assert.match(bad.stderr, /TOCSIN_INPUT_UNREADABLE/);
    assert.equal(bad.stdout, '', 'no table header before the error');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

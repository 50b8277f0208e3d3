/**
 * User mistakes at the CLI, as a new user meets them (child process, compiled CLI when built):
 * - a malformed target in an @file is refused before any connection, naming the file and line;
 * - `tocsin check` with bad settings lists every problem and exits non-zero;
 * - `tocsin kb BUILD` prints the edition, CU and per-CVE verdicts (and refuses a malformed build).
 * Only loopback is touched (127.30.1.0/24).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/independent-estate/cli.js';

let dir: string;
let server: net.Server;
let port = 0;
let connections = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-cli-errors-'));
  // Something to connect to, so a scan that wrongly starts would be seen.
  server = net.createServer((sock) => {
    connections++;
    sock.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

function env(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return {
    TOCSIN_HOME: join(dir, 'home'),
    TOCSIN_DATABASE_URL: '',
    DATABASE_URL: '',
    TOCSIN_USER_AGENT: '',
    TOCSIN_CONTACT_URL: '',
    TOCSIN_CONCURRENCY: '',
    TOCSIN_EXCLUDE_FILES: '',
    ...extra,
  };
}

test('a malformed target on line 3 of an @file is refused before any connection, naming the file and line', { timeout: 60_000 }, async () => {
  const file = join(dir, 'constituency.txt');
  writeFileSync(file, '# our constituency\n127.30.1.1\n10.0.0.300\n127.30.1.2\n');
  const r = await runCli(['scan', '127.30.1.3', `@${file}`, '--ports', `${port}/tls`, '--no-store'], env(), 50_000);
  const err = r.stderr.toString('utf8');
  assert.notEqual(r.code, 0, 'non-zero exit');
  assert.equal(r.signal, null);
  assert.match(err, /constituency\.txt/, err);
  assert.match(err, /constituency\.txt:3\b|line 3\b/, err);
  assert.match(err, /10\.0\.0\.300/, err);
  assert.equal(r.stdout.length, 0, 'no records');
  assert.equal(connections, 0, 'nothing was contacted');
});

test('a malformed --ports value is refused before any connection', { timeout: 60_000 }, async () => {
  const r = await runCli(['scan', '127.30.1.4', '--ports', '70000', '--no-store'], env(), 50_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr.toString('utf8'), /70000/);
  assert.equal(r.stdout.length, 0);
  assert.equal(connections, 0);
});

test('tocsin check with bad settings lists every problem and exits non-zero', { timeout: 60_000 }, async () => {
  const r = await runCli(['check'], env({
    TOCSIN_DATABASE_URL: 'mysql://user@db.invalid/tocsin',
    TOCSIN_CONTACT_URL: 'ftp://example.org/scanning',
    TOCSIN_CONCURRENCY: 'lots',
  }), 50_000);
  const err = r.stderr.toString('utf8') + r.stdout.toString('utf8');
  assert.notEqual(r.code, 0, err);
  assert.equal(r.signal, null);
  for (const name of ['TOCSIN_DATABASE_URL', 'TOCSIN_CONTACT_URL', 'TOCSIN_CONCURRENCY']) {
    assert.match(err, new RegExp(name), `${name} is listed:\n${err}`);
  }
});

test('tocsin kb 15.1.2176.9 prints edition, CU, SU and the per-CVE verdicts', { timeout: 60_000 }, async () => {
  const r = await runCli(['kb', '15.1.2176.9'], env(), 50_000);
  const out = r.stdout.toString('utf8');
  assert.equal(r.code, 0, r.stderr.toString('utf8'));
  assert.match(out, /Exchange Server 2016/);
  assert.match(out, /\bCU19\b/);
  assert.match(out, /\bMar21SU\b/);
  // Which section (the last unindented heading above it) lists a CVE.
  const lines = out.split('\n');
  const sectionOf = (cve: string): string => {
    const i = lines.findIndex((l) => l.includes(cve));
    assert.ok(i >= 0, `${cve} is listed`);
    for (let j = i; j >= 0; j--) if (/^\S/.test(lines[j] ?? '')) return (lines[j] ?? '').toLowerCase();
    return '';
  };
  // By hand: 15.1.2176.9 is the March 2021 SU of 2016 CU19 (fixes ProxyLogon); ProxyShell was fixed
  // in the April 2021 SU 15.1.2176.12; CU19 never received the Nov 2022 ProxyNotShell fix.
  assert.match(sectionOf('CVE-2021-26855'), /^not[- ]vulnerable/);
  assert.match(sectionOf('CVE-2021-34473'), /^vulnerable/);
  assert.match(sectionOf('CVE-2022-41082'), /^vulnerable/);
});

test('tocsin kb refuses a malformed build with a non-zero exit and a hint', { timeout: 60_000 }, async () => {
  const r = await runCli(['kb', '15.1.abc'], env(), 50_000);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout.toString('utf8').includes('VULNERABLE'), false);
  assert.match(r.stderr.toString('utf8'), /15\.1\.abc/);
});

test('scan --output into a missing folder is a user error naming the file, before any connection', { timeout: 60_000 }, async () => {
  const target = join(dir, 'no-such-folder', 'out.jsonl');
  const r = await runCli(['scan', '127.30.1.5', '--ports', `${port}/tls`, '--no-store', '--output', target], env(), 50_000);
  const err = r.stderr.toString('utf8');
  assert.equal(r.code, 66, err);
  assert.match(err, /TOCSIN_INPUT_UNREADABLE/, err);
  assert.match(err, /no-such-folder/, err);
  assert.doesNotMatch(err, /TOCSIN_INTERNAL/, err);
  assert.equal(connections, 0, 'nothing was contacted');
});

test('the generic --help hint names the command that was run', { timeout: 60_000 }, async () => {
  const r = await runCli(['kb', '15.1.2176.9', '--precision', 'nearly'], env(), 50_000);
  const err = r.stderr.toString('utf8');
  assert.equal(r.code, 64, err);
  assert.match(err, /See `tocsin kb --help`/, err);
});

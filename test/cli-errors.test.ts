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
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEntry, ROOT, runCli, type CliResult } from './helpers/independent-estate/cli.js';

let dir: string;
let server: net.Server;
let port = 0;
let connections = 0;
/** A plain web server (404 to everything) on 127.93.x.y, for scans that must produce records. */
let web: net.Server;
let webPort = 0;
let webConnections = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-cli-errors-'));
  // Something to connect to, so a scan that wrongly starts would be seen.
  server = net.createServer((sock) => {
    connections++;
    sock.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  port = (server.address() as net.AddressInfo).port;
  web = net.createServer((sock) => {
    webConnections++;
    sock.on('error', () => undefined);
    sock.once('data', () => sock.end('HTTP/1.1 404 Not Found\r\nServer: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  });
  await new Promise<void>((resolve) => web.listen(0, '0.0.0.0', resolve));
  webPort = (web.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => web.close(() => resolve()));
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

test('tocsin check also validates the settings that only serve, worker, campaign and prune read', { timeout: 60_000 }, async () => {
  const r = await runCli(['check'], env({
    TOCSIN_CONTACT_URL: 'https://cert.gov.test/scanning',
    TOCSIN_WEB_URL: 'ftp://tocsin.test/',
    TOCSIN_ACK_SECRET: 'short',
    TOCSIN_WEB_SECURE_COOKIES: 'yes',
    TOCSIN_CERT_NAME: 'CERT\r\nBcc: evil@attacker.example',
    TOCSIN_FALLBACK_CONTACT: 'not an address',
    TOCSIN_WORKER_LEASE_SECONDS: '1',
    TOCSIN_SCHEDULE_TICK_SECONDS: 'often',
    TOCSIN_RETENTION_RAW_DAYS: '0',
  }), 50_000);
  const err = r.stderr.toString('utf8') + r.stdout.toString('utf8');
  assert.equal(r.code, 78, err);
  for (const name of ['TOCSIN_WEB_URL', 'TOCSIN_ACK_SECRET', 'TOCSIN_WEB_SECURE_COOKIES', 'TOCSIN_CERT_NAME', 'TOCSIN_FALLBACK_CONTACT',
    'TOCSIN_WORKER_LEASE_SECONDS', 'TOCSIN_SCHEDULE_TICK_SECONDS', 'TOCSIN_RETENTION_RAW_DAYS']) {
    assert.match(err, new RegExp(name), `${name} is listed:\n${err}`);
  }
  assert.match(err, /configuration has 8 problem\(s\)/);
  const ok = await runCli(['check'], env({ TOCSIN_CONTACT_URL: 'https://cert.gov.test/scanning', TOCSIN_WEB_URL: 'https://tocsin.cert.test/', TOCSIN_RETENTION_RAW_DAYS: '90' }), 50_000);
  assert.equal(ok.code, 0, ok.stderr.toString('utf8'));
  assert.match(ok.stdout.toString('utf8'), /web address +https:\/\/tocsin\.cert\.test\n/);
  assert.match(ok.stdout.toString('utf8'), /retention +observations forever, raw responses 90 days/);
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
  assert.equal(r.code, 73, err);
  assert.match(err, /TOCSIN_OUTPUT_UNWRITABLE/, err);
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

/** Clean coded error: a TOCSIN_ code, no stack trace, not the internal code, not exit 70. */
function assertClean(r: CliResult, code: number, what: RegExp): string {
  const err = r.stderr.toString('utf8');
  assert.equal(r.signal, null, `not killed:\n${err}`);
  assert.equal(r.code, code, err);
  assert.match(err, what, err);
  assert.doesNotMatch(err, /^\s+at .+:\d+:\d+/m, `no stack trace:\n${err}`);
  assert.doesNotMatch(err, /TOCSIN_INTERNAL/, err);
  return err;
}

test('scan | head -1: a closed stdout stops the scan cleanly (exit 141, no stack trace, says so on stderr)', { timeout: 120_000 }, async () => {
  const entry = cliEntry();
  // 16,384 addresses: the scan must still be running when the pipe closes (256 were all written in one batch,
  // before the reader closed, once output went out one write per stored batch).
  const child = spawn(process.execPath, [...entry.nodeArgs, 'scan', '127.93.64.0/18', '--ports', `${webPort}/http`, '--no-store', '--no-progress'], {
    cwd: ROOT,
    env: { ...process.env, ...env() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const err: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => err.push(b));
  let first = '';
  // Like `head -1`: read one line, then close the pipe.
  child.stdout.on('data', (b: Buffer) => {
    if (first === '') {
      first = b.toString('utf8').split('\n')[0] ?? '';
      child.stdout.destroy();
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  const r: CliResult = { code, signal, stdout: Buffer.from(first), stderr: Buffer.concat(err) };
  assert.match(first, /^\{"ip":"127\.93\.\d+\.\d+"/, 'a record came first');
  assertClean(r, 141, /standard output was closed; stopping/);
});

/**
 * The web server's connection count once it has stopped moving: connections a previous test's scan left in
 * the listen queue are accepted after that scan exits, and must not be charged to the next test.
 */
async function quietConnections(): Promise<number> {
  let last = webConnections;
  for (let quiet = 0; quiet < 3; ) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    quiet = webConnections === last ? quiet + 1 : 0;
    last = webConnections;
  }
  return last;
}

test('--exclude 300.0.0.0/8 is an invalid CIDR, not a missing file; nothing is sent', { timeout: 60_000 }, async () => {
  const before = await quietConnections();
  const r = await runCli(['scan', '127.93.4.1', '--ports', `${webPort}/http`, '--no-store', '--exclude', '300.0.0.0/8'], env(), 50_000);
  const err = assertClean(r, 64, /TOCSIN_TARGET_INVALID: exclusion list: --exclude 1: '300\.0\.0\.0\/8' is not a CIDR/);
  assert.doesNotMatch(err, /cannot read|ENOENT/, err);
  assert.equal(webConnections, before, 'nothing was contacted');
});

test('a CIDR with host bits set (127.1.0.1/8) is refused with a hint naming the network; nothing is sent', { timeout: 60_000 }, async () => {
  const before = await quietConnections();
  const r = await runCli(['scan', '127.93.4.1/16', '--ports', `${webPort}/http`, '--no-store'], env(), 50_000);
  assertClean(r, 64, /'127\.93\.4\.1\/16' has host bits set: it lies in the network 127\.93\.0\.0\/16 \(65,536 addresses\); give 127\.93\.0\.0\/16 .*or 127\.93\.4\.1 for the one address/);
  assert.equal(webConnections, before, 'nothing was contacted');
  const wide = await runCli(['scan', '127.1.0.1/8', '--ports', `${webPort}/http`, '--no-store'], env(), 50_000);
  assertClean(wide, 64, /network 127\.0\.0\.0\/8 \(16,777,216 addresses\)/);
  assert.equal(webConnections, before, 'nothing was contacted');
});

test('--ports 443,,80 is refused before anything is sent', { timeout: 60_000 }, async () => {
  const before = await quietConnections();
  const r = await runCli(['scan', '127.93.4.1', '--ports', `${webPort}/http,,80`, '--no-store'], env(), 50_000);
  assertClean(r, 64, /--ports: entry 2 of .* is empty/);
  assert.equal(webConnections, before);
});

test('kb with an unknown build (15.99.1.1) exits non-zero and says it is not in the knowledge base', { timeout: 60_000 }, async () => {
  const r = await runCli(['kb', '15.99.1.1'], env(), 50_000);
  assertClean(r, 65, /TOCSIN_KB_UNKNOWN_BUILD: "15\.99\.1\.1" is not a build of any Exchange Server version/);
  assert.equal(r.stdout.length, 0, 'no verdicts printed');
  const cu = await runCli(['kb', '15.1.9999.1'], env(), 50_000);
  assertClean(cu, 65, /"15\.1\.9999\.1" is not in the knowledge base: an Exchange Server 2016 build in no listed CU/);
});

test('check fails, listing both, with the example contact URL and a missing exclusion file', { timeout: 60_000 }, async () => {
  const missing = join(dir, 'no-such-exclusions.txt');
  const r = await runCli(['check'], env({ TOCSIN_EXCLUDE_FILES: missing }), 50_000);
  const err = assertClean(r, 78, /TOCSIN_CONFIG_INVALID: configuration has 2 problem/);
  assert.match(err, /TOCSIN_CONTACT_URL is not set: the shipped example https:\/\/tocsin\.example\.org\/scanning/, err);
  assert.match(err, /TOCSIN_EXCLUDE_FILES: cannot read exclusion list .*no-such-exclusions\.txt: ENOENT/, err);
  // and passes once both are fixed
  const list = join(dir, 'exclusions.txt');
  writeFileSync(list, '# opted out\n192.0.2.0/24\n');
  const ok = await runCli(['check'], env({ TOCSIN_EXCLUDE_FILES: list, TOCSIN_CONTACT_URL: 'https://cert.gov.test/scanning' }), 50_000);
  assert.equal(ok.code, 0, ok.stderr.toString('utf8'));
  assert.match(ok.stdout.toString('utf8'), /^configuration OK/);
});

test('--output x.csv without --format writes CSV; a contradicting --format is refused', { timeout: 60_000 }, async () => {
  const file = join(dir, 'hosts.csv');
  const r = await runCli(['scan', '127.93.4.7', '--ports', `${webPort}/http`, '--no-store', '--no-progress', '--output', file], env(), 50_000);
  assert.equal(r.code, 0, r.stderr.toString('utf8'));
  const text = readFileSync(file, 'utf8');
  assert.match(text, /^ip,port,hostname,tls,product,/);
  assert.match(text, /\r\n127\.93\.4\.7,\d+,/);
  const bad = join(dir, 'other.csv');
  const c = await runCli(['scan', '127.93.4.8', '--ports', `${webPort}/http`, '--no-store', '--format', 'jsonl', '--output', bad], env(), 50_000);
  assertClean(c, 64, /--format "jsonl" contradicts --output ".*other\.csv" \(a \.csv file gets csv\)/);
  assert.equal(existsSync(bad), false, 'nothing written');
});

test('lab --truth to an unwritable path is a coded error before listening, and the lab exits', { timeout: 60_000 }, async () => {
  const r = await runCli(['lab', '--truth', join(dir, 'no-such-folder', 'truth.jsonl'), '--base', '127.93.6.0', '--hosts', '2', '--https-port', '0', '--http-port', '0'], env(), 30_000);
  assertClean(r, 73, /TOCSIN_OUTPUT_UNWRITABLE: cannot write --truth .*truth\.jsonl: ENOENT/);
  assert.doesNotMatch(r.stdout.toString('utf8'), /listening/);
});

test('reassess --kb-dir that is missing, a file, or not a knowledge base: a user error (65) naming it, before the database', { timeout: 90_000 }, async () => {
  const missing = await runCli(['reassess', '--kb-dir', '/nonexistent/kb'], env(), 50_000);
  assertClean(missing, 65, /TOCSIN_KB_DIR_INVALID: --kb-dir \/nonexistent\/kb cannot be read \(ENOENT\)/);
  const file = await runCli(['reassess', '--kb-dir', '/etc/passwd'], env(), 50_000);
  assertClean(file, 65, /TOCSIN_KB_DIR_INVALID: --kb-dir \/etc\/passwd is not a directory/);
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-kbdir-'));
  try {
    writeFileSync(join(dir, 'builds.csv'), 'not,a,kb\n');
    const bad = await runCli(['reassess', '--kb-dir', dir], env(), 50_000);
    const err = assertClean(bad, 65, /TOCSIN_KB_DIR_INVALID: the Exchange knowledge base in .* has \d+ problem/);
    assert.match(err, /builds\.csv: missing column "edition"/);
    assert.doesNotMatch(err, /in-repo knowledge base/, 'the hint must not blame the shipped tables');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

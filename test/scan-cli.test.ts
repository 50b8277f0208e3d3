/**
 * `tocsin scan` as a user runs it (a child process), against the lab in this process (loopback only):
 * - a malformed target is refused before anything is sent, naming the target and its line;
 * - `kill -9` mid-scan, then `--resume ID`: every (ip, port) exactly once in the database and in the
 *   output file.
 * - `tocsin results` lists a stored scan with the very records the scan printed; the table is sorted
 *   and never mixed with the progress bar (a second lab on 127.97.0.0/16 for these).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createServer, type AddressInfo } from 'node:net';
import { startLab, type Lab } from '../lab/server.js';
import { loadExchangeKb } from '../src/products/exchange/kb/index.js';
import { freshDatabase, type FreshDatabase } from './helpers/db.js';
import { Writable } from 'node:stream';
import { readConfig } from '../src/core/config.js';
import type { CliContext } from '../src/cli/context.js';
import { EXIT_UNANSWERED, scanCommand, type ScanFlags } from '../src/cli/scan.js';
import { TABLE_WIDTH } from '../src/scan/output.js';

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
    assert.equal(code, 73, r.stderr());
    assert.match(r.stderr(), /TOCSIN_OUTPUT_UNWRITABLE: cannot write --output/);
    await db.connect();
    // Migrations may or may not have run (the database is opened lazily); either way no scan row exists.
    const t = await db.query<{ n: string | null }>("SELECT to_regclass('scans')::text AS n");
    if (t.rows[0]?.n === 'scans') assert.equal((await db.query('SELECT 1 FROM scans')).rowCount, 0);
  } finally {
    await db.end().catch(() => undefined);
    await fresh.drop();
  }
});

test('a scan of closed ports says why nothing answered (not a bare "answered 0")', { timeout: 60_000 }, async () => {
  // A port nobody listens on: bound, then closed again, so every connect to it is refused at once.
  const probe = createServer();
  await new Promise<void>((res) => probe.listen(0, '127.0.0.1', res));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((res) => probe.close(() => res()));
  const r = tocsin(['scan', '127.4.201.0/30', '--ports', String(port), '--no-store', '--no-progress']);
  const { code } = await r.done;
  assert.equal(code, 0, r.stderr());
  assert.equal(r.stdout(), '');
  assert.match(r.stderr(), /answered 0,/);
  assert.match(r.stderr(), /tocsin: 4 attempt\(s\) got no HTTP answer \(connection refused or reset, TLS or protocol error\)/);
});

// ---------------------------------------------------------------------------------------------------
// `tocsin results` and the table on a terminal (own lab on 127.97.0.0/16)

const SMALL = 32;
let lab2: Lab | null = null;
async function smallLab(): Promise<Lab> {
  // Some latency, so a scan has several batches and the progress bar draws between them.
  lab2 ??= await startLab({ hosts: SMALL, base: '127.97.0.0', seed: 23, latencyMs: 40 });
  return lab2;
}
after(async () => {
  await lab2?.close();
});

/**
 * The lab hosts that answer at once (every kind but the tarpit and the slow-drip host, which only time
 * out): the scans below then finish fast and whole, and their exit status does not depend on timeouts.
 */
function quickTargets(l: Lab): string[] {
  return l.hosts.filter((h) => h.kind !== 'tarpit' && h.kind !== 'slow-drip').map((h) => h.ip);
}

/** Sorted non-empty lines: the same content apart from order. */
function lineSet(text: string, eol: string): string[] {
  return text.split(eol).filter((l) => l !== '').sort();
}

test('tocsin results lists a stored scan: the same jsonl and csv records the scan printed, the latest by default', { timeout: 180_000 }, async () => {
  const l = await smallLab();
  const fresh: FreshDatabase = await freshDatabase('embedded');
  try {
    const env = { TOCSIN_DATABASE_URL: fresh.url };
    // One target by (pinned) name: no DNS lookup; its hostname is in the records and the table.
    const named = l.hosts.find((h) => h.kind === 'exchange')?.ip ?? '';
    const targets = [...quickTargets(l).filter((ip) => ip !== named), `mail.lab.test=${named}`];
    const common = [...targets, '--ports', `${l.httpsPort}/tls,${l.httpPort}/http`, '--timeout-ms', '3000', '--no-progress'];
    // Complete, or complete but for connects that went unanswered on a loaded machine (exit 3): either
    // way what was printed is what was stored, which is what this test compares.
    const finished = (code: number | null): boolean => code === 0 || code === EXIT_UNANSWERED;
    const a = tocsin(['scan', ...common, '--format', 'jsonl'], env);
    assert.ok(finished((await a.done).code), a.stderr());
    const idA = /scan (\d+)/.exec(a.stderr())?.[1];
    const b = tocsin(['scan', ...common, '--format', 'csv'], env);
    assert.ok(finished((await b.done).code), b.stderr());
    const idB = /scan (\d+)/.exec(b.stderr())?.[1];
    assert.ok(idA !== undefined && idB !== undefined && idA !== idB, a.stderr() + b.stderr());
    const scanned = lineSet(a.stdout(), '\n');
    assert.ok(scanned.length >= 20, `${scanned.length} records`);
    assert.ok(scanned.some((x) => x.includes('"hostname":"mail.lab.test"')));

    const rj = tocsin(['results', '--scan', idA, '--format', 'jsonl'], env);
    assert.equal((await rj.done).code, 0, rj.stderr());
    assert.deepEqual(lineSet(rj.stdout(), '\n'), scanned, 'jsonl: byte for byte what the scan printed');
    assert.match(rj.stderr(), new RegExp(`scan ${idA} \\(finished\\): ${scanned.length} host`));
    // Address order, then port.
    const order = rj.stdout().trimEnd().split('\n').map((x) => JSON.parse(x) as { ip: string; port: number })
      .map((r) => [Number(r.ip.split('.')[3]), r.port] as const);
    assert.deepEqual(order, [...order].sort((x, y) => x[0] - y[0] || x[1] - y[1]));

    // Default: the latest scan (B); --output writes the file.
    const out = join(dir, 'results.csv');
    const rc = tocsin(['results', '--format', 'csv', '--output', out], env);
    assert.equal((await rc.done).code, 0, rc.stderr());
    assert.equal(rc.stdout(), '');
    assert.deepEqual(lineSet(readFileSync(out, 'utf8'), '\r\n'), lineSet(b.stdout(), '\r\n'), 'csv: what the scan printed');

    // The table: sorted, narrow, headline CVEs first, with the meaning of its counts.
    const rt = tocsin(['results', '--scan', idA], env);
    assert.equal((await rt.done).code, 0, rt.stderr());
    const lines = rt.stdout().trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^ADDRESS +HOSTNAME +EXCHANGE +BUILD +PREC +VULN +INDET +VULNERABLE CVES/);
    assert.match(rt.stdout(), / mail\.lab\.test /);
    assert.doesNotMatch(rt.stdout(), /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'nothing from a hostile host reaches the terminal raw');
    for (const x of lines) assert.ok(x.length <= TABLE_WIDTH, x);
    const rows = lines.slice(1, lines.indexOf(''));
    assert.equal(rows.length, scanned.length);
    const keys = rows.map((x) => (x.split(' ')[0] ?? '').split(/[.:]/).map(Number)).map((p) => [p[3] ?? 0, p[4] ?? 0] as const);
    assert.deepEqual(keys, [...keys].sort((x, y) => x[0] - y[0] || x[1] - y[1]));
    assert.match(rt.stdout(), /every CVE, not only headline ones/);
    assert.doesNotMatch(rows.join('\n'), / CVE-201[89]-\d+,CVE-2021-26855/, 'ProxyLogon never comes after older CVEs');

    // The report says what its "vulnerable" counts, and that scan/results count differently.
    const rep = tocsin(['report', '--scan', idA], env);
    assert.equal((await rep.done).code, 0, rep.stderr());
    assert.match(rep.stdout(), /vulnerable = at least one headline CVE vulnerable/);
    assert.match(rep.stdout(), /other CVEs do not count here/);

    // A scan that does not exist: a clean coded error, nothing on stdout.
    const missing = tocsin(['results', '--scan', '999999'], env);
    assert.equal((await missing.done).code, 64);
    assert.match(missing.stderr(), /TOCSIN_SCAN_NOT_FOUND/);
    assert.doesNotMatch(missing.stderr(), /\n\s+at /);
    assert.equal(missing.stdout(), '');

    // `tocsin results | head -1` as a reader that is gone before the first record: exit 141, and the note on
    // stderr still names the scan and says how many hosts were listed before the output closed.
    const gone = spawn(process.execPath, ['--import', 'tsx', bin, 'results', '--scan', idA, '--format', 'jsonl'], {
      cwd: root, env: { ...process.env, TOCSIN_HOME: join(dir, 'home'), ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    gone.stdout.destroy();
    let goneErr = '';
    gone.stderr.on('data', (c: Buffer) => (goneErr += c.toString('utf8')));
    const goneCode = await new Promise<number | null>((res) => gone.on('close', (code) => res(code)));
    assert.equal(goneCode, 141, goneErr);
    assert.match(goneErr, new RegExp(`tocsin: scan ${idA} \\(finished\\): \\d+ host\\(s\\) listed before the output was closed`), goneErr);
    assert.doesNotMatch(goneErr, /\n\s+at |TOCSIN_INTERNAL/);
  } finally {
    await fresh.drop();
  }
});

/** stdout and stderr on one (fake) terminal: every write lands in one log, in order. */
class FakeTerminal extends Writable {
  readonly isTTY = true;
  readonly columns = 100;
  constructor(private readonly name: 'stdout' | 'stderr', private readonly log: Array<{ stream: string; text: string }>) {
    super();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.log.push({ stream: this.name, text: chunk.toString() });
    cb();
  }
}

async function scanOnTerminal(format: string): Promise<{ log: Array<{ stream: string; text: string }>; code: number }> {
  const l = await smallLab();
  const log: Array<{ stream: string; text: string }> = [];
  const ctx: CliContext = {
    config: () => readConfig(),
    stdout: new FakeTerminal('stdout', log) as unknown as NodeJS.WriteStream,
    stderr: new FakeTerminal('stderr', log) as unknown as NodeJS.WriteStream,
  };
  const flags: ScanFlags = {
    format, store: false, progress: true, ports: `${l.httpsPort}/tls,${l.httpPort}/http`,
    concurrency: '3', workers: '1', timeoutMs: '3000',
  };
  const code = await scanCommand(ctx, quickTargets(l), flags);
  return { log, code };
}

const BAR = /\r\[[#.]+\] \d+\/\d+/;

test('a table on a terminal comes whole, sorted, after the progress bar is cleared; never mixed with it', { timeout: 120_000 }, async () => {
  const { log, code } = await scanOnTerminal('table');
  assert.ok(code === 0 || code === EXIT_UNANSWERED, String(code));
  const firstOut = log.findIndex((e) => e.stream === 'stdout');
  const bars = log.map((e, i) => (e.stream === 'stderr' && BAR.test(e.text) ? i : -1)).filter((i) => i >= 0);
  assert.ok(bars.length >= 1, 'the bar was drawn (else this test proves nothing)');
  assert.ok(firstOut > (bars.at(-1) ?? -1), `the bar was drawn at ${bars.join(',')} after the table started at ${firstOut}`);
  const lastBar = bars.at(-1) ?? 0;
  assert.ok(log.slice(lastBar + 1, firstOut).some((e) => e.text.includes('\r\u001b[K')), 'the bar is erased before the table');
  const stdout = log.filter((e) => e.stream === 'stdout').map((e) => e.text).join('');
  assert.doesNotMatch(stdout, /[\r\u001b]/, 'no progress control sequence on stdout');
  const rows = stdout.split('\n').slice(1, stdout.split('\n').indexOf(''));
  assert.ok(rows.length >= 10, stdout);
  const keys = rows.map((x) => (x.split(' ')[0] ?? '').split(/[.:]/).map(Number)).map((p) => [p[3] ?? 0, p[4] ?? 0] as const);
  assert.deepEqual(keys, [...keys].sort((x, y) => x[0] - y[0] || x[1] - y[1]));
});

test('jsonl on a terminal is streamed, but the bar steps aside before each batch of records', { timeout: 120_000 }, async () => {
  const { log, code } = await scanOnTerminal('jsonl');
  assert.ok(code === 0 || code === EXIT_UNANSWERED, String(code));
  assert.ok(log.some((e) => e.stream === 'stderr' && BAR.test(e.text)), 'the bar was drawn');
  let barShown = false;
  let records = 0;
  for (const e of log) {
    if (e.stream === 'stderr') {
      if (BAR.test(e.text)) barShown = true;
      else if (e.text.startsWith('\r\u001b[K')) barShown = false;
    } else {
      assert.equal(barShown, false, `a record was written over the bar: ${e.text.slice(0, 60)}`);
      records++;
    }
  }
  assert.ok(records >= 10);
});

test('report --output x.csv without --format writes CSV (and .json JSON); a contradicting --format is refused', { timeout: 120_000 }, async () => {
  const fresh: FreshDatabase = await freshDatabase('embedded');
  try {
    const env = { TOCSIN_DATABASE_URL: fresh.url };
    const s = tocsin(['scan', '127.4.0.1', '127.4.0.2', '--ports', `${lab.httpsPort}/tls`, '--no-progress'], env);
    assert.ok([0, EXIT_UNANSWERED].includes((await s.done).code ?? -1), s.stderr());
    const csvFile = join(dir, 'report.csv');
    const r = tocsin(['report', '--output', csvFile], env);
    assert.equal((await r.done).code, 0, r.stderr());
    const csv = readFileSync(csvFile, 'utf8');
    assert.doesNotMatch(csv, /^Exchange|\n {2}/, 'not the table');
    assert.match(csv.split('\r\n')[0] ?? '', /,/, 'a CSV header row');
    const jsonFile = join(dir, 'scans.json');
    const j = tocsin(['report', '--scans', '--output', jsonFile], env);
    assert.equal((await j.done).code, 0, j.stderr());
    assert.equal((JSON.parse(readFileSync(jsonFile, 'utf8')) as unknown[]).length, 1);
    const bad = tocsin(['report', '--format', 'table', '--output', join(dir, 'other.csv')], env);
    assert.equal((await bad.done).code, 64, bad.stderr());
    assert.match(bad.stderr(), /TOCSIN_ARG_INVALID: --format "table" contradicts --output/);
  } finally {
    await fresh.drop();
  }
});

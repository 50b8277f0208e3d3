/**
 * Storage failing under a running scan (issue 6, finding 10), end to end through the CLI with the embedded
 * database: `tocsin db stop`, the PostgreSQL server killed, TOCSIN_HOME deleted, SIGTERM and kill -9 of the
 * scan. Each must end in a coded error (no stack trace, no TOCSIN_INTERNAL, not exit 70) that names the
 * scan and `tocsin scan --resume ID`; `report --scans` must then show the scan `interrupted`, not
 * `running`; and the resume must take it over and finish it.
 *
 * The peer is a fake HTTP server at the network edge on 127.96.0.0/16 (this suite's range): it answers the
 * first FIRST connections at once and holds the others until the test releases them, so the scan is
 * mid-run, with stored results, when the storage is pulled away. No timing is asserted.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/bin/tocsin.ts', import.meta.url));
const TARGETS = '127.96.1.0/27'; // 32 addresses
const FIRST = 6;

let server: net.Server;
let port = 0;
let answered = 0;
let released = false;
const held: net.Socket[] = [];

function answer(sock: net.Socket): void {
  sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
}

before(async () => {
  server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => {
      if (released || answered < FIRST) {
        answered++;
        answer(sock);
      } else held.push(sock);
    });
  });
  // Every 127.x.y.z reaches a socket bound to the wildcard address; the scan only targets 127.96.1.0/27.
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function reset(): void {
  answered = 0;
  released = false;
}

function release(): void {
  released = true;
  for (const s of held.splice(0)) answer(s);
}

function env(home: string): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    TOCSIN_HOME: home,
    TOCSIN_DATABASE_URL: '',
    DATABASE_URL: '',
    TOCSIN_EXCLUDE_FILES: '',
    TOCSIN_CONCURRENCY: '',
    NO_COLOR: '1',
  };
}

interface Running {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCli(args: readonly string[], home: string): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env(home) });
  const r: Running = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout?.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}

async function cli(args: readonly string[], home: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = startCli(args, home);
  const { code } = await r.exit;
  return { code, stdout: r.stdout, stderr: r.stderr };
}

async function until(fn: () => boolean, what: string, ms = 300_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Start a scan and wait until it is mid-run: its first FIRST records stored and printed, the rest held. */
async function midScan(home: string): Promise<{ run: Running; id: string }> {
  reset();
  const run = startCli(
    ['scan', TARGETS, '--ports', `${port}/http`, '--timeout-ms', '600000', '--host-budget-ms', '3600000', '--no-progress', '--workers', '1'],
    home,
  );
  await until(() => /tocsin: scan (\d+) /.test(run.stderr), `the scan id\n${run.stderr}`);
  // Records are printed only after their batch is stored.
  await until(() => run.stdout.split('\n').filter((l) => l.startsWith('{')).length >= FIRST, `${FIRST} stored records\n${run.stderr}`);
  const id = /tocsin: scan (\d+) /.exec(run.stderr)?.[1];
  assert.ok(id !== undefined);
  return { run, id };
}

async function scanStatus(home: string, id: string): Promise<string | undefined> {
  const r = await cli(['report', '--scans', '--format', 'json'], home);
  assert.equal(r.code, 0, r.stderr);
  const scans = JSON.parse(r.stdout) as Array<{ id: string; status: string }>;
  return scans.find((s) => s.id === id)?.status;
}

function assertCoded(stderr: string, code: number | null, expected: RegExp, id: string): void {
  assert.match(stderr, expected, stderr);
  assert.doesNotMatch(stderr, /TOCSIN_INTERNAL/, stderr);
  assert.doesNotMatch(stderr, /^\s+at .+(\(|:\d+:\d+)/m, `no stack trace\n${stderr}`);
  assert.notEqual(code, 70, stderr);
  assert.notEqual(code, 0, stderr);
  assert.ok(stderr.includes(`tocsin scan --resume ${id}`), `names the resume command\n${stderr}`);
}

async function resumeToEnd(home: string, id: string): Promise<void> {
  released = true;
  const r = await cli(['scan', '--resume', id, '--no-progress'], home);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await scanStatus(home, id), 'finished');
}

async function tempHome(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'tocsin-storage-fail-'));
  await chmod(home, 0o755);
  return home;
}

test('`tocsin db stop` under a running scan: TOCSIN_DB_LOST naming the resume command, shown interrupted, resume finishes it', { timeout: 600_000 }, async () => {
  const home = await tempHome();
  try {
    const { run, id } = await midScan(home);
    const stop = await cli(['db', 'stop'], home);
    assert.equal(stop.code, 0, stop.stderr);
    release();
    const { code } = await run.exit;
    assertCoded(run.stderr, code, /TOCSIN_DB_LOST/, id);
    assert.equal(code, 69);
    assert.equal(await scanStatus(home, id), 'interrupted');
    await resumeToEnd(home, id);
  } finally {
    await cli(['db', 'stop'], home);
    await rm(home, { recursive: true, force: true });
  }
});

test('the PostgreSQL server killed (kill -9) under a running scan: a coded error with the resume command, then interrupted', { timeout: 600_000 }, async () => {
  const home = await tempHome();
  try {
    const { run, id } = await midScan(home);
    const pid = Number((await readFile(join(home, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    assert.ok(pid > 0);
    process.kill(pid, 'SIGKILL');
    release();
    const { code } = await run.exit;
    assertCoded(run.stderr, code, /TOCSIN_DB_LOST/, id);
    assert.equal(await scanStatus(home, id), 'interrupted');
    await resumeToEnd(home, id);
  } finally {
    await cli(['db', 'stop'], home);
    await rm(home, { recursive: true, force: true });
  }
});

test('SIGTERM, then kill -9 of a scan: interrupted in `report --scans` (never running forever); resume takes it over', { timeout: 600_000 }, async () => {
  const home = await tempHome();
  try {
    const first = await midScan(home);
    first.run.child.kill('SIGTERM');
    release();
    const t = await first.run.exit;
    assert.equal(t.code, 130, first.run.stderr);
    assert.equal(await scanStatus(home, first.id), 'interrupted');

    const second = await midScan(home);
    second.run.child.kill('SIGKILL');
    await second.run.exit;
    for (const s of held.splice(0)) s.destroy();
    assert.equal(await scanStatus(home, second.id), 'interrupted', 'a killed scan is not shown running');
    await resumeToEnd(home, second.id);
    await resumeToEnd(home, first.id);
  } finally {
    await cli(['db', 'stop'], home);
    await rm(home, { recursive: true, force: true });
  }
});

test('TOCSIN_HOME deleted under a running scan: TOCSIN_DB_LOST saying so, with the resume command (was: exit 0 or a stack trace)', { timeout: 600_000 }, async () => {
  const home = await tempHome();
  try {
    const { run, id } = await midScan(home);
    await rm(home, { recursive: true, force: true });
    release();
    const { code } = await run.exit;
    assertCoded(run.stderr, code, /TOCSIN_DB_LOST/, id);
    assert.match(run.stderr, /TOCSIN_HOME/);
  } finally {
    await cli(['db', 'stop'], home);
    await rm(home, { recursive: true, force: true });
  }
});

/**
 * The embedded PostgreSQL's lifecycle: two processes starting it at once, a leftover server after
 * `kill -9` of its Node process, stop when the last user leaves, and a clear error when it cannot start.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { openDatabase } from '../src/platform/db/connect.js';
import { embeddedStatus, stopEmbedded } from '../src/platform/db/embedded.js';
import { isAlive } from '../src/platform/db/os.js';

const CHILD = fileURLToPath(new URL('./helpers/embedded-child.ts', import.meta.url));

async function tempHome(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'tocsin-embedded-test-'));
  // mkdtemp makes it mode 700; the server runs as the postgres user when we are root.
  await chmod(home, 0o755);
  return home;
}

interface ChildLine {
  readonly pid: number;
  readonly port: string;
  readonly ok: number;
}

function startChild(home: string): { child: ChildProcess; line: Promise<ChildLine> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, home], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = new Promise<ChildLine>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as ChildLine);
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`child exited with ${code}: ${err}`)));
  });
  return { child, line };
}

/** pg_ctl stop returns when postmaster.pid is removed, a moment before the process is reaped. */
async function exited(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !isAlive(pid);
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.on('exit', () => resolve());
  });
}

test('embedded: two processes start it at once, kill -9 leaves it running, the next open adopts it, the last close stops it', async () => {
  const home = await tempHome();
  const children: ChildProcess[] = [];
  try {
    const a = startChild(home);
    const b = startChild(home);
    children.push(a.child, b.child);
    const [la, lb] = await Promise.all([a.line, b.line]);
    assert.equal(la.ok, 1);
    assert.equal(lb.ok, 1);
    assert.equal(la.port, lb.port, 'both use the one server');

    const during = await embeddedStatus(home);
    assert.equal(during.running, true);
    assert.deepEqual(during.clients, [la.pid, lb.pid].sort((x, y) => x - y));
    const serverPid = during.pid;
    assert.ok(serverPid !== null);

    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(killed));
    const left = await embeddedStatus(home);
    assert.equal(left.running, true, 'the postgres server outlives its killed Node processes');
    assert.equal(left.pid, serverPid);
    assert.deepEqual(left.clients, []);

    const database = await openDatabase({ home, databaseUrl: null });
    assert.equal(database.embedded, true);
    assert.equal(new URL(database.url).port, la.port);
    assert.equal(new URL(database.url).hostname, '127.0.0.1');
    const r = await sql<{ n: number }>`SELECT count(*) AS n FROM tocsin_migrations`.execute(database.db);
    assert.ok(r.rows[0]!.n >= 1);
    assert.equal((await embeddedStatus(home)).pid, serverPid, 'adopted, not restarted');
    await database.close();
    const after = await embeddedStatus(home);
    assert.equal(after.running, false, 'stopped by the last user');
    assert.equal(await exited(serverPid), true, 'the postmaster process is gone');

    // Next open starts it again on the remembered port; `db stop` stops it under a live lease.
    const again = await openDatabase({ home, databaseUrl: null });
    assert.equal(new URL(again.url).port, la.port);
    assert.equal(await stopEmbedded(home), true);
    assert.equal((await embeddedStatus(home)).running, false);
    assert.equal(await stopEmbedded(home), false);
    await again.close();

    // In one process, a close racing with a new open must not stop the server under the new user.
    const first = await openDatabase({ home, databaseUrl: null });
    const closing = first.close();
    const second = await openDatabase({ home, databaseUrl: null });
    await closing;
    assert.deepEqual((await sql<{ ok: number }>`SELECT 1 AS ok`.execute(second.db)).rows, [{ ok: 1 }]);
    await second.close();
    assert.equal((await embeddedStatus(home)).running, false);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await stopEmbedded(home).catch(() => false);
    await rm(home, { recursive: true, force: true });
  }
});

test('embedded: a server that cannot start is a TOCSIN_DB_EMBEDDED_START error with the log', async () => {
  const home = await tempHome();
  try {
    // A complete-looking data directory (PG_VERSION and our settings) that is not a valid cluster.
    await mkdir(join(home, 'pg'), { mode: 0o700 });
    await writeFile(join(home, 'pg', 'PG_VERSION'), '18\n');
    await writeFile(join(home, 'pg', 'postgresql.conf'), '\n# tocsin: embedded server, loopback only\n');
    await writeFile(join(home, 'pg.json'), JSON.stringify({ port: null, password: 'x' }), { mode: 0o600 });
    await assert.rejects(openDatabase({ home, databaseUrl: null }), (e: unknown) => {
      assert.ok(e instanceof Error && 'code' in e && e.code === 'TOCSIN_DB_EMBEDDED_START', String(e));
      assert.ok('details' in e && Array.isArray(e.details) && e.details.length > 0);
      return true;
    });
    assert.equal((await embeddedStatus(home)).running, false);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

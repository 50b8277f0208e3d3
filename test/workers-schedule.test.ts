/**
 * Issue 11 §4: with workers running, schedules run without anyone running a command. Real `tocsin worker`
 * processes (the CLI) on one fresh database (the server backend when TOCSIN_TEST_PG_URL is set, else embedded) with
 * a schedule due on a small lab network (127.88.0.0/28):
 * - a `--once` worker does not wait for a tick (it exits once no block is left) and runs none;
 * - a `--no-schedules` worker runs no tick while it lives;
 * - a plain worker performs the due tick (a `schedule_runs` row, its scan stored) with no `schedule run` anywhere,
 *   and stops cleanly on SIGTERM.
 * The once-a-minute crontab is replaced by TOCSIN_SCHEDULE_TICK_SECONDS=1 (the same task through the same queue,
 * queued by the worker every second instead of by the engine's cron at each minute).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { startLab } from '../lab/server.js';
import { openDatabase, type Database } from '../src/platform/db/connect.js';
import { makePolicy } from '../src/schedules/index.js';
import { addSchedule } from '../src/services/scheduler.js';
import { backendSkip, freshDatabase, SHARED_TEST_HOME } from './helpers/db.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';

const BASE = '127.88.0.0';
const DAY = 86_400_000;

interface Child {
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly stderr: () => string;
  kill(sig: NodeJS.Signals): void;
}

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Child {
  const child = spawn(process.execPath, [...cliEntry().nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout.resume();
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('close', (code, signal) => res({ code, signal })));
  return { done, stderr: () => err, kill: (s) => void child.kill(s) };
}

async function until<T>(what: string, ms: number, fn: () => Promise<T | null> | T | null): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function runCount(database: Database): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM schedule_runs`.execute(database.db);
  return r.rows[0]?.n ?? -1;
}

const server = backendSkip('server') === false;

test(`a running worker performs the due schedule tick without \`schedule run\` [${server ? 'server' : 'embedded'}]`, { timeout: 240_000 }, async () => {
  const fresh = await freshDatabase(server ? 'server' : 'embedded');
  const home = mkdtempSync(join(tmpdir(), 'tocsin-workers-schedule-'));
  chmodSync(home, 0o755);
  const lab = await startLab({ hosts: 16, base: BASE, seed: 7 });
  let database: Database | undefined;
  const children: Child[] = [];
  try {
    database = await openDatabase({ home: SHARED_TEST_HOME, databaseUrl: fresh.url });
    await addSchedule(database, {
      name: 'lab', policy: makePolicy('every', { everyMs: DAY, followUp: false, ports: `${lab.httpsPort}/tls` }),
      scope: { kind: 'cidrs', cidrs: [`${BASE}/28`] }, createdBy: 'tester',
    });
    const env = {
      TOCSIN_DATABASE_URL: fresh.url, TOCSIN_HOME: home, TOCSIN_USER_AGENT: 'tocsin-test',
      TOCSIN_SCHEDULE_TICK_SECONDS: '1', TOCSIN_WORKER_LEASE_SECONDS: '6',
    };

    // --once: no block queued, so it ends at once (two quiet heartbeats) and takes no tick although one is due.
    const once = tocsin(['worker', '--once', '--poll-ms', '200'], env);
    children.push(once);
    const o = await once.done;
    assert.equal(o.code, 0, once.stderr());
    assert.match(once.stderr(), /no schedules\)/);
    assert.equal(await runCount(database), 0, 'a --once worker ran a schedule tick');

    // --no-schedules: alive for several of its heartbeats (each would queue a tick), still no run.
    const quiet = tocsin(['worker', '--no-schedules', '--poll-ms', '200'], env);
    children.push(quiet);
    await until('the --no-schedules worker to start', 60_000, () => (/started/.test(quiet.stderr()) ? true : null));
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(await runCount(database), 0, 'a --no-schedules worker ran a schedule tick');
    quiet.kill('SIGTERM');
    assert.equal((await quiet.done).code, 0, quiet.stderr());

    // A plain worker: the tick runs in it, scanning the due network and recording its run.
    const worker = tocsin(['worker', '--poll-ms', '200'], env);
    children.push(worker);
    const run = await until('a finished schedule run', 150_000, async () => {
      const r = await database!.db.selectFrom('schedule_runs').select(['stage', 'scan_id', 'targets']).where('stage', '=', 'done').executeTakeFirst();
      return r ?? null;
    });
    assert.ok(run.scan_id !== null, 'the run recorded its scan');
    assert.deepEqual(run.targets, [`${BASE}/28`]);
    const attempts = await sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_attempts WHERE scan_id = ${run.scan_id}::bigint`.execute(database.db);
    assert.equal(attempts.rows[0]?.n, 16, 'every address of the schedule\'s network was scanned once');
    await until('the worker to log the tick', 30_000, () => (/schedule lab: ran \(run \d+\), 1 target\(s\), scan \d+/.test(worker.stderr()) ? true : null));
    worker.kill('SIGTERM');
    const w = await worker.done;
    assert.equal(w.code, 0, worker.stderr());
    assert.match(worker.stderr(), /schedules every 1 s\)/);
    assert.match(worker.stderr(), /worker \S+ stopped/);
    // Later ticks found nothing due (the network is due again in a day): one run only.
    assert.equal(await runCount(database), 1);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => c.done));
    await database?.close();
    await lab.close();
    await fresh.drop();
    rmSync(home, { recursive: true, force: true });
  }
});

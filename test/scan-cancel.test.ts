/**
 * Cancelling a scan from another process (migration 0005), on both database backends:
 * - a scan started through the service in this process, cancelled through the service over a second,
 *   separately opened storage (what `tocsin cancel`, the API or a job worker does), stops at its runner's
 *   next heartbeat: `interrupted`, reason "cancelled by <who>", exit status 130, every attempt stored
 *   before the cancel left as it was; `report --scans` says who cancelled it; a resume finishes it with every
 *   (ip, port) stored exactly once and clears the request;
 * - the compiled `tocsin cancel`: a running scan (in this process) is stopped by it; a finished scan is
 *   TOCSIN_SCAN_NOT_RUNNING (exit 65), an unknown or malformed id TOCSIN_SCAN_NOT_FOUND (exit 64).
 * The lab serves 127.62.0.0/26 (loopback only); a low rate keeps the scan running long enough.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { startLab, type Lab } from '../lab/server.js';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { TocsinError } from '../src/core/errors.js';
import { openDatabase } from '../src/platform/db/connect.js';
import { renderScans } from '../src/cli/report.js';
import { listScans } from '../src/services/report.js';
import {
  cancelScan, planScan, resumeScan, scanExitStatus, startScan, type CancelResult, type ScanDeps, type ScanEvents,
} from '../src/services/scan-service.js';
import { configuredScanStorage, type ScanStorage, type ScanStorageProvider } from '../src/services/scan-storage.js';
import type { ScanPlan } from '../src/scan/plan.js';
import { BACKENDS, backendSkip, freshDatabase, SHARED_TEST_HOME, type BackendName } from './helpers/db.js';
import { runCli } from './helpers/independent-estate/cli.js';

const HOSTS = 64;
const BASE = '127.62.0.0';
/** A fast heartbeat: the cancel is seen within 50 ms instead of 5 s (no timing is asserted). */
const BEAT_MS = 50;

let lab: Lab;
let home: string;
before(async () => {
  lab = await startLab({ hosts: HOSTS, base: BASE, seed: 23, latencyMs: 20 });
  home = mkdtempSync(join(tmpdir(), 'tocsin-cancel-'));
});
after(async () => {
  await lab.close();
  rmSync(home, { recursive: true, force: true });
});

class Collector {
  readonly records: ScanRecord[] = [];
  output(replayStored: boolean): ScanDeps['output'] {
    return {
      replayStored,
      open: async () => ({
        write: async (r) => void this.records.push(r),
        close: async () => undefined,
        release: async () => undefined,
      }),
    };
  }
}

/** `rate` new connections per second: at 20/s the 64 hosts take over 3 s, ample time to cancel part-way. */
async function plan(rate: number, last = HOSTS - 1): Promise<ScanPlan> {
  return planScan({
    targets: [`127.62.0.0-127.62.0.${last}`],
    ports: `${lab.httpsPort}/tls`,
    excludeFiles: [],
    exclude: [],
    concurrency: 4,
    rate,
    ratePerNetwork: 0,
    timeoutMs: 2000,
    hostBudgetMs: 8000,
    userAgent: 'tocsin-test',
  }, { stdin: Readable.from([]) });
}

function deps(storage: ScanStorageProvider, output: ScanDeps['output'], events: ScanEvents = {}): ScanDeps {
  return { storage, output, signal: new AbortController().signal, clock: { now: () => performance.now() }, events };
}

interface Ctx {
  readonly url: string;
  /** The runner's storage (fast heartbeat). */
  readonly runner: ScanStorageProvider;
  readonly sql: pg.Client;
}

async function withDb(backend: BackendName, fn: (c: Ctx) => Promise<void>): Promise<void> {
  const fresh = await freshDatabase(backend);
  // Migrate once up front (the service would, but two providers opening at once would race for it).
  await (await openDatabase({ home: SHARED_TEST_HOME, databaseUrl: fresh.url })).close();
  const sql = new pg.Client({ connectionString: fresh.url });
  await sql.connect();
  try {
    await fn({ url: fresh.url, runner: configuredScanStorage({ home: SHARED_TEST_HOME, databaseUrl: fresh.url }, { heartbeatMs: BEAT_MS }), sql });
  } finally {
    await sql.end();
    await fresh.drop();
  }
}

interface AttemptRow {
  readonly ip: string;
  readonly port: number;
  readonly outcome: string;
  readonly attempted_at: string;
  readonly tries: number;
  readonly unanswered: boolean;
}

async function attempts(sql: pg.Client, id: string): Promise<AttemptRow[]> {
  return (await sql.query<AttemptRow>(
    'SELECT host(ip) AS ip, port, outcome, attempted_at::text AS attempted_at, tries, unanswered FROM scan_attempts WHERE scan_id = $1 ORDER BY ip, port', [id])).rows;
}

async function scanRow(sql: pg.Client, id: string): Promise<{ status: string; interrupted_reason: string | null; cancel_requested_by: string | null; cancel_requested: boolean }> {
  const r = await sql.query<{ status: string; interrupted_reason: string | null; cancel_requested_by: string | null; cancel_requested: boolean }>(
    'SELECT status, interrupted_reason, cancel_requested_by, cancel_requested_at IS NOT NULL AS cancel_requested FROM scans WHERE id = $1', [id]);
  const row = r.rows[0];
  assert.ok(row !== undefined, `scan ${id} is stored`);
  return row;
}

function code(e: unknown): string {
  return e instanceof TocsinError ? e.code : `not a TocsinError: ${String(e)}`;
}

for (const backend of BACKENDS) {
  const skip = backendSkip(backend);

  test(`cancelled from another storage connection: interrupted "cancelled by", attempts intact, resume finishes it once [${backend}]`, { timeout: 180_000, ...(skip === false ? {} : { skip }) }, async () => {
    await withDb(backend, async ({ url, runner, sql }) => {
      // The canceller opens its own database connection, as another process does.
      const other: ScanStorage = await configuredScanStorage({ home: SHARED_TEST_HOME, databaseUrl: url }).open();
      try {
        let id: string | null = null;
        let stored = 0;
        let request: Promise<CancelResult> | null = null;
        const first = new Collector();
        const r1 = await startScan(await plan(20), deps(runner, first.output(false), {
          stored: (x) => {
            id = x;
          },
          progress: (c) => {
            stored += c.done;
            if (stored >= 8 && request === null && id !== null) request = cancelScan(other, id, { by: 'operator-1' });
          },
        }), { workers: 1 });
        assert.ok(request !== null, 'the cancel was sent');
        const requested = await (request as Promise<CancelResult>);
        assert.equal(requested.state, 'stopping');
        assert.deepEqual(requested.runner, { host: hostname(), pid: process.pid });
        assert.equal(requested.alreadyRequested, false);

        assert.equal(r1.status, 'interrupted');
        assert.equal(r1.stoppedBy, 'cancelled');
        assert.equal(r1.cancelledBy, 'operator-1');
        assert.equal(scanExitStatus(r1), 130, 'exit status as for SIGINT');
        assert.ok(r1.scanId !== null && r1.scanId === id);
        const scanId: string = r1.scanId;
        const row = await scanRow(sql, scanId);
        assert.equal(row.status, 'interrupted');
        assert.equal(row.interrupted_reason, 'cancelled by operator-1');
        assert.equal(row.cancel_requested_by, 'operator-1');

        const before = await attempts(sql, scanId);
        assert.ok(before.length >= 8 && before.length < HOSTS, `stored before the cancel: ${before.length}`);
        // Every stored attempt is whole: each answered one has its observation, and what was written is what was stored.
        const answeredBefore = before.filter((x) => x.outcome === 'answered').map((x) => x.ip).sort();
        const observed = (await sql.query<{ ip: string }>('SELECT DISTINCT host(ip) AS ip FROM observations WHERE scan_id = $1', [scanId])).rows.map((x) => x.ip).sort();
        assert.deepEqual(observed, answeredBefore);
        assert.deepEqual(first.records.map((x) => x.ip).sort(), answeredBefore);

        // `report --scans` says who cancelled it and how to finish it.
        const db = await openDatabase({ home: SHARED_TEST_HOME, databaseUrl: url });
        try {
          const listed = (await listScans(db.db)).find((s) => s.id === scanId);
          assert.equal(listed?.status, 'interrupted');
          assert.equal(listed?.cancelledBy, 'operator-1');
          assert.match(renderScans(listed === undefined ? [] : [listed], 'table'), new RegExp(`scan ${scanId}: cancelled by operator-1 .*tocsin scan --resume ${scanId}`));
        } finally {
          await db.close();
        }

        // Cancelling it again: nothing runs it; the first request stays the recorded one; it stays resumable.
        const again = await cancelScan(other, scanId, { by: 'operator-2' });
        assert.deepEqual([again.state, again.by, again.alreadyRequested], ['not-running', 'operator-1', true]);

        // Resume (same runner storage): finishes, every (ip, port) exactly once, the old request cleared.
        const second = new Collector();
        const r2 = await resumeScan(scanId, deps(runner, second.output(true)), { workers: 1 });
        assert.equal(r2.status, 'finished', 'an old request does not cancel the resumed scan');
        assert.equal(r2.cancelledBy, null);
        const all = await attempts(sql, scanId);
        assert.equal(all.length, HOSTS, 'every host stored');
        assert.equal(new Set(all.map((x) => `${x.ip}|${x.port}`)).size, HOSTS, 'each host once');
        const keep = new Map(all.map((x) => [`${x.ip}|${x.port}`, x]));
        for (const b of before) {
          // Unanswered attempts are tried again by a resume (and replaced): the rest stay exactly as stored.
          if (b.unanswered) continue;
          assert.deepEqual(keep.get(`${b.ip}|${b.port}`), b, `attempt ${b.ip}:${b.port} left as it was`);
        }
        const after = await scanRow(sql, scanId);
        assert.deepEqual([after.status, after.cancel_requested, after.cancel_requested_by], ['finished', false, null]);
        const answered = all.filter((x) => x.outcome === 'answered').map((x) => x.ip).sort();
        assert.deepEqual(second.records.map((x) => x.ip).sort(), answered, 'the rewritten output holds every answered host once');

        // A finished scan cannot be cancelled; unknown and malformed ids are not found.
        assert.equal(code(await cancelScan(other, scanId, { by: 'late' }).catch((e: unknown) => e)), 'TOCSIN_SCAN_NOT_RUNNING');
        assert.equal(code(await cancelScan(other, '999999', { by: 'x' }).catch((e: unknown) => e)), 'TOCSIN_SCAN_NOT_FOUND');
        assert.equal(code(await cancelScan(other, '1; DROP TABLE scans', { by: 'x' }).catch((e: unknown) => e)), 'TOCSIN_SCAN_NOT_FOUND');
        assert.equal((await scanRow(sql, scanId)).cancel_requested, false, 'the refused cancel recorded nothing');
      } finally {
        await other.close();
      }
    });
  });

  test(`tocsin cancel (compiled CLI): stops a running scan; finished scan exit 65, unknown id exit 64 [${backend}]`, { timeout: 180_000, ...(skip === false ? {} : { skip }) }, async () => {
    await withDb(backend, async ({ url, runner, sql }) => {
      const env = { TOCSIN_HOME: join(home, backend), TOCSIN_DATABASE_URL: url };

      // A running scan in this process, cancelled by the CLI in a child process. At 2 connections/s the scan
      // would run for 32 s: a loaded machine's CLI start-up (seconds) still lands in the middle of it.
      let id: string | null = null;
      let cli: ReturnType<typeof runCli> | null = null;
      const r = await startScan(await plan(2), deps(runner, new Collector().output(false), {
        stored: (x) => {
          id = x;
          cli = runCli(['cancel', x, '--by', 'cli-operator'], env, 60_000);
        },
      }), { workers: 1 });
      assert.ok(cli !== null && id !== null);
      const c = await (cli as ReturnType<typeof runCli>);
      assert.equal(c.code, 0, c.stderr.toString('utf8'));
      assert.match(c.stderr.toString('utf8'), new RegExp(`cancel of scan ${id} requested by cli-operator; its process \\(pid ${process.pid} on `));
      assert.equal(r.status, 'interrupted');
      assert.equal(r.cancelledBy, 'cli-operator');
      assert.equal(scanExitStatus(r), 130);
      assert.equal((await scanRow(sql, id)).interrupted_reason, 'cancelled by cli-operator');
      assert.ok((await attempts(sql, id)).length < HOSTS, 'stopped before its end');

      // An interrupted scan: recorded, exit 0, still resumable.
      const interrupted = await runCli(['cancel', id], env, 60_000);
      assert.equal(interrupted.code, 0, interrupted.stderr.toString('utf8'));
      assert.match(interrupted.stderr.toString('utf8'), /is not running \(interrupted\).*tocsin scan --resume/);

      // A finished scan (two hosts) and ids that name no scan.
      const done = await startScan(await plan(0, 1), deps(runner, new Collector().output(false)), { workers: 1 });
      assert.equal(done.status, 'finished');
      assert.ok(done.scanId !== null);
      const finished = await runCli(['cancel', done.scanId], env, 60_000);
      assert.equal(finished.code, 65, finished.stderr.toString('utf8'));
      assert.match(finished.stderr.toString('utf8'), /TOCSIN_SCAN_NOT_RUNNING/);
      assert.match(finished.stderr.toString('utf8'), new RegExp(`scan ${done.scanId} is finished`));
      assert.equal((await scanRow(sql, done.scanId)).cancel_requested, false);
      for (const bad of ['424242', 'abc']) {
        const unknown = await runCli(['cancel', bad], env, 60_000);
        assert.equal(unknown.code, 64, unknown.stderr.toString('utf8'));
        assert.match(unknown.stderr.toString('utf8'), /TOCSIN_SCAN_NOT_FOUND/);
        assert.doesNotMatch(unknown.stderr.toString('utf8'), /^\s+at .+:\d+:\d+/m, 'no stack trace');
      }
    });
  });
}

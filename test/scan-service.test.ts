/**
 * The scan service in this process (no child process, no CLI): a scan of the lab (127.61.0.0/24, loopback
 * only) started through the service, cancelled part-way through its signal, is stored as `interrupted`;
 * resumed through the service it finishes with every (ip, port) stored exactly once and, with
 * `replayStored`, every answered host written exactly once. The exit status comes from the result alone.
 * Storage is the embedded PostgreSQL of the test helpers, opened by the service as the CLI opens it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import pg from 'pg';
import { startLab, type Lab } from '../lab/server.js';

import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { TocsinError } from '../src/core/errors.js';
import { emptyStats } from '../src/scan/engine.js';
import {
  EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED, EXIT_UNANSWERED, planScan, resumeScan, scanExitStatus, scanRecords, startScan,
  type ScanDeps, type ScanEvents,
} from '../src/services/scan-service.js';
import { configuredScanStorage, type ScanStorageProvider } from '../src/services/scan-storage.js';
import type { ScanPlan } from '../src/scan/plan.js';
import { freshDatabase, SHARED_TEST_HOME, type FreshDatabase } from './helpers/db.js';

const HOSTS = 96;
const BASE = '127.61.0.0';

let lab: Lab;
before(async () => {
  // Latency makes the scan slow enough to be cancelled in the middle.
  lab = await startLab({ hosts: HOSTS, base: BASE, seed: 17, latencyMs: 40 });
});
after(async () => {
  await lab.close();
});

/** Records written to the output, and how often the output was opened and given back. */
class Collector {
  readonly records: ScanRecord[] = [];
  opened = 0;
  released = 0;
  closed = 0;
  output(replayStored: boolean, gone?: AbortSignal): ScanDeps['output'] {
    return {
      replayStored,
      ...(gone === undefined ? {} : { gone }),
      open: async () => {
        this.opened++;
        return {
          write: async (r) => void this.records.push(r),
          close: async () => void this.closed++,
          release: async () => void this.released++,
        };
      },
    };
  }
}

async function plan(concurrency: number): Promise<ScanPlan> {
  return planScan({
    targets: ['127.61.0.0-127.61.0.95'],
    ports: `${lab.httpsPort}/tls`,
    excludeFiles: [],
    exclude: [],
    concurrency,
    rate: 0,
    ratePerNetwork: 0,
    timeoutMs: 2000,
    hostBudgetMs: 8000,
    userAgent: 'tocsin-test',
  }, { stdin: Readable.from([]) });
}

function deps(storage: ScanStorageProvider | null, output: ScanDeps['output'], signal: AbortSignal, events: ScanEvents = {}): ScanDeps {
  return { storage, output, signal, clock: { now: () => performance.now() }, events };
}

async function withDb<T>(fn: (storage: ScanStorageProvider, db: pg.Client) => Promise<T>): Promise<T> {
  const fresh: FreshDatabase = await freshDatabase('embedded');
  const db = new pg.Client({ connectionString: fresh.url });
  await db.connect();
  try {
    return await fn(configuredScanStorage({ home: SHARED_TEST_HOME, databaseUrl: fresh.url }), db);
  } finally {
    await db.end();
    await fresh.drop();
  }
}

test('the exit status is a function of the result: 0, 3 (unanswered), 130 (cancelled), 141 (output closed)', () => {
  const stats = emptyStats();
  assert.equal(scanExitStatus({ status: 'finished', stoppedBy: null, stats }), 0);
  assert.equal(scanExitStatus({ status: 'finished', stoppedBy: null, stats: { ...stats, unanswered: 2 } }), EXIT_UNANSWERED);
  assert.equal(EXIT_UNANSWERED, 3);
  assert.equal(scanExitStatus({ status: 'interrupted', stoppedBy: 'cancelled', stats: { ...stats, unanswered: 2 } }), EXIT_INTERRUPTED);
  assert.equal(EXIT_INTERRUPTED, 130);
  assert.equal(scanExitStatus({ status: 'interrupted', stoppedBy: 'output-closed', stats }), EXIT_OUTPUT_CLOSED);
  assert.equal(EXIT_OUTPUT_CLOSED, 141);
});

test('start, cancel part-way, resume (two worker threads): every host stored once, every answered host written once', { timeout: 240_000 }, async () => {
  await withDb(async (storage, db) => {
    const p = await plan(4);
    assert.equal(p.targets.length, 1);

    // Cancel once some (not all) attempts are stored.
    const ac = new AbortController();
    let stored = 0;
    let createdId: string | null = null;
    const first = new Collector();
    const r1 = await startScan(p, deps(storage, first.output(false), ac.signal, {
      stored: (id) => {
        createdId = id;
      },
      progress: (c) => {
        stored += c.done;
        if (stored >= 20) ac.abort('stopped by the test');
      },
    }), { workers: 1 });
    assert.equal(r1.status, 'interrupted');
    assert.equal(r1.stoppedBy, 'cancelled');
    assert.equal(scanExitStatus(r1), 130);
    assert.ok(r1.scanId !== null && r1.scanId === createdId);
    const id = r1.scanId;
    assert.deepEqual([first.opened, first.released], [1, 1], 'the output was opened and given back once');
    const row = (await db.query<{ status: string; interrupted_reason: string | null }>('SELECT status, interrupted_reason FROM scans WHERE id = $1', [id])).rows[0];
    assert.deepEqual(row, { status: 'interrupted', interrupted_reason: 'stopped by the test' });
    const count = async (): Promise<number> => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM scan_attempts WHERE scan_id = $1', [id])).rows[0]?.n);
    const afterCancel = await count();
    assert.ok(afterCancel >= 20 && afterCancel < HOSTS, `stored before the cancel: ${afterCancel}`);
    // What was written is what was stored: no record reached the output before its batch was stored.
    const answeredBefore = (await db.query<{ ip: string }>("SELECT host(ip) AS ip FROM scan_attempts WHERE scan_id = $1 AND outcome = 'answered'", [id])).rows.map((x) => x.ip).sort();
    assert.deepEqual(first.records.map((x) => x.ip).sort(), answeredBefore);

    // Resume through the service, across two worker threads, with the output rewritten from the stored records.
    const second = new Collector();
    let resumingFrom = -1;
    const r2 = await resumeScan(id, deps(storage, second.output(true), new AbortController().signal, {
      resuming: (_, n) => {
        resumingFrom = n;
      },
    }), { workers: 2 });
    assert.equal(r2.status, 'finished');
    assert.equal(r2.scanId, id);
    assert.equal(r2.resumed, true);
    assert.equal(resumingFrom, r2.alreadyStored);
    assert.ok(r2.alreadyStored >= 20 && r2.alreadyStored <= afterCancel);
    assert.equal(scanExitStatus(r2), r2.stats.unanswered > 0 ? 3 : 0);

    const attempts = await db.query<{ ip: string; port: number; outcome: string }>('SELECT host(ip) AS ip, port, outcome FROM scan_attempts WHERE scan_id = $1', [id]);
    assert.equal(attempts.rows.length, HOSTS, 'every host stored');
    assert.equal(new Set(attempts.rows.map((x) => `${x.ip}|${x.port}`)).size, HOSTS, 'each host once');
    const answered = attempts.rows.filter((x) => x.outcome === 'answered').map((x) => x.ip).sort();
    assert.ok(answered.length > HOSTS / 2, `${answered.length} answered`);
    const written = second.records.map((x) => x.ip).sort();
    assert.deepEqual(written, answered, 'the output holds every answered host exactly once');
    assert.equal(second.closed, 1);
    assert.equal((await db.query<{ status: string }>('SELECT status FROM scans WHERE id = $1', [id])).rows[0]?.status, 'finished');

    // `tocsin results` through the service: the same records, in address order.
    const s = await storage.open();
    try {
      const listed = await scanRecords(s, null);
      assert.equal(listed.scan.id, id);
      const ips: string[] = [];
      for await (const r of listed.records) ips.push(r.ip);
      assert.deepEqual([...ips].sort(), answered);
      assert.deepEqual(ips, [...ips].sort((a, b) => Number(a.split('.')[3]) - Number(b.split('.')[3])));
    } finally {
      await s.close();
    }
  });
});

test('a corrupt stored plan is TOCSIN_SCAN_PLAN_INVALID; the scan is left as it was', { timeout: 120_000 }, async () => {
  await withDb(async (storage, db) => {
    const live = lab.hosts.find((h) => h.kind === 'exchange');
    assert.ok(live !== undefined);
    const p: ScanPlan = { ...(await plan(2)), targets: [live.ip] };
    const out = new Collector();
    const r = await startScan(p, deps(storage, out.output(false), new AbortController().signal), { workers: 1 });
    assert.equal(r.status, 'finished');
    assert.ok(r.scanId !== null);
    await db.query(`UPDATE scans SET options = '{"ports": 443, "concurrency": -1}'::jsonb WHERE id = $1`, [r.scanId]);
    const err = await resumeScan(r.scanId, deps(storage, out.output(true), new AbortController().signal)).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof TocsinError, String(err));
    assert.equal(err.code, 'TOCSIN_SCAN_PLAN_INVALID');
    assert.match(err.message, new RegExp(`scan ${r.scanId}`));
    assert.ok(err.details.some((d) => d.startsWith('ports:')) && err.details.some((d) => d.startsWith('concurrency:')), err.details.join('\n'));
    assert.equal((await db.query<{ status: string }>('SELECT status FROM scans WHERE id = $1', [r.scanId])).rows[0]?.status, 'finished');
    assert.equal(out.opened, 1, 'the output of the refused resume was never opened');

    const missing = await resumeScan('999999', deps(storage, out.output(true), new AbortController().signal)).then(() => null, (e: unknown) => e);
    assert.ok(missing instanceof TocsinError && missing.code === 'TOCSIN_SCAN_NOT_FOUND', String(missing));
  });
});

test('output closed under a scan without storage: interrupted, exit 141, nothing written after the close', { timeout: 120_000 }, async () => {
  const gone = new AbortController();
  const stop = new AbortController();
  const out = new Collector();
  let batches = 0;
  const r = await startScan(await plan(4), deps(null, out.output(false, gone.signal), stop.signal, {
    progress: () => {
      batches++;
      if (batches === 1) {
        // What the CLI does on EPIPE: the output is gone, and the scan is cancelled for it.
        gone.abort();
        stop.abort();
      }
    },
  }), { workers: 1 });
  const writtenAtClose = out.records.length;
  assert.equal(r.status, 'interrupted');
  assert.equal(r.stoppedBy, 'output-closed');
  assert.equal(r.scanId, null);
  assert.equal(scanExitStatus(r), 141);
  assert.equal(out.records.length, writtenAtClose);
  assert.equal(out.closed, 0, 'a gone output is not closed (a table would only fail to be written)');
  assert.equal(out.released, 1);
  assert.ok(r.stats.attempted < HOSTS, `${r.stats.attempted} attempted`);
});

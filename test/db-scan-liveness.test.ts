/**
 * Running or interrupted (migration 0002, src/platform/db/scan-liveness.ts): a stored scan whose process
 * is gone must not look live in `report --scans`, and `--resume` takes an interrupted scan over but never
 * one that a live process runs. Real PostgreSQL on both backends.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { sql } from 'kysely';
import { createScanStore } from '../src/platform/db/scan-store.js';
import { listScans } from '../src/services/report.js';
import { claimScan, liveStatus, markScanInterrupted, STALE_MS } from '../src/platform/db/scan-liveness.js';
import { storageErrorCode } from '../src/platform/db/storage-errors.js';
import { testEachBackend } from './helpers/db.js';

/** A pid that surely belonged to a process that has exited (a child we ran to completion). */
function deadPid(): number {
  return Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString());
}

const SPEC = { targets: ['127.96.0.1'], ports: [443], options: {} };

testEachBackend('a running scan whose owner pid on this host is gone shows as interrupted; a live one as running', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan(SPEC);
  assert.equal((await listScans(database.db)).find((s) => s.id === scan.id)?.status, 'running', 'our own live scan');
  await sql`UPDATE scans SET owner_pid = ${deadPid()} WHERE id = ${Number(scan.id)}`.execute(database.db);
  assert.equal((await listScans(database.db)).find((s) => s.id === scan.id)?.status, 'interrupted', 'owner died (kill -9)');
});

testEachBackend('another host: a fresh heartbeat is running, a stale one interrupted', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan(SPEC);
  const id = Number(scan.id);
  await sql`UPDATE scans SET owner_host = 'elsewhere.invalid', owner_pid = 1, heartbeat_at = now() WHERE id = ${id}`.execute(database.db);
  assert.equal((await listScans(database.db)).find((s) => s.id === scan.id)?.status, 'running');
  await sql`UPDATE scans SET heartbeat_at = now() - interval '10 minutes' WHERE id = ${id}`.execute(database.db);
  assert.equal((await listScans(database.db)).find((s) => s.id === scan.id)?.status, 'interrupted');
});

testEachBackend('resume takes over an interrupted scan but is refused (TOCSIN_SCAN_BUSY) while its owner lives', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan(SPEC);
  const id = Number(scan.id);
  // A live owner elsewhere.
  await sql`UPDATE scans SET owner_host = 'elsewhere.invalid', owner_pid = 1, heartbeat_at = now() WHERE id = ${id}`.execute(database.db);
  await assert.rejects(claimScan(database.db, scan.id, { host: hostname(), pid: process.pid }), (e: unknown) => {
    assert.ok(e instanceof Error && 'code' in e && e.code === 'TOCSIN_SCAN_BUSY', String(e));
    assert.match(e.message, /elsewhere\.invalid/);
    return true;
  });
  // It died (stale heartbeat): the resume takes it over.
  await sql`UPDATE scans SET heartbeat_at = now() - interval '10 minutes' WHERE id = ${id}`.execute(database.db);
  await claimScan(database.db, scan.id, { host: hostname(), pid: process.pid });
  const row = await database.db.selectFrom('scans').select(['status', 'owner_host', 'owner_pid']).where('id', '=', id).executeTakeFirstOrThrow();
  assert.deepEqual(row, { status: 'running', owner_host: hostname(), owner_pid: process.pid });
  assert.equal((await listScans(database.db)).find((s) => s.id === scan.id)?.status, 'running');
  // A second taker with another pid now finds it live (ours) and is refused.
  await assert.rejects(claimScan(database.db, scan.id, { host: 'elsewhere.invalid', pid: 2 }), /TOCSIN_SCAN_BUSY|being run by/);
});

testEachBackend('markScanInterrupted stores interrupted with the reason, only for our own running scan', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan(SPEC);
  assert.equal(await markScanInterrupted(database.db, scan.id, 'stopped by a signal'), true);
  const row = await database.db.selectFrom('scans').select(['status', 'interrupted_reason']).where('id', '=', Number(scan.id)).executeTakeFirstOrThrow();
  assert.deepEqual(row, { status: 'interrupted', interrupted_reason: 'stopped by a signal' });
  assert.equal((await store.getScan(scan.id))?.status, 'interrupted');
  // A finished scan is never turned into an interrupted one.
  await store.finishScan(scan.id, 'finished');
  assert.equal(await markScanInterrupted(database.db, scan.id, 'late'), false);
  assert.equal((await store.getScan(scan.id))?.status, 'finished');
});

test('liveStatus: pure rules', () => {
  const base = { status: 'running' as const, ownerHost: 'h', ownerPid: 42, heartbeatAgeMs: 1000, startedAgeMs: 5000 };
  assert.equal(liveStatus(base, 'h', () => true), 'running');
  assert.equal(liveStatus(base, 'h', () => false), 'interrupted');
  assert.equal(liveStatus(base, 'other', () => false), 'running', 'a pid on another host cannot be checked here');
  assert.equal(liveStatus({ ...base, heartbeatAgeMs: STALE_MS + 1 }, 'other', () => true), 'interrupted');
  assert.equal(liveStatus({ ...base, ownerHost: null, ownerPid: null, heartbeatAgeMs: null, startedAgeMs: STALE_MS + 1 }, 'h'), 'interrupted', 'a scan stored before 0002');
  assert.equal(liveStatus({ ...base, status: 'finished' }, 'h', () => false), 'finished');
});

test('storage failures are recognised: lost connection, admin shutdown, disk full, read-only; a bug is not', () => {
  const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code, severity: 'FATAL' });
  assert.equal(storageErrorCode(new Error('Connection terminated unexpectedly')), 'TOCSIN_DB_LOST');
  assert.equal(storageErrorCode(pgError('57P01', 'terminating connection due to administrator command')), 'TOCSIN_DB_LOST');
  assert.equal(storageErrorCode(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5'), { code: 'ECONNREFUSED' })), 'TOCSIN_DB_LOST');
  assert.equal(storageErrorCode(pgError('53100', 'could not extend file: No space left on device')), 'TOCSIN_DISK_FULL');
  assert.equal(storageErrorCode(pgError('58030', 'could not write to file: Read-only file system')), 'TOCSIN_DB_WRITE');
  assert.equal(storageErrorCode(new TypeError("Cannot read properties of undefined (reading 'x')")), null);
  assert.equal(storageErrorCode(pgError('42601', 'syntax error at or near')), null, 'our own SQL bug stays internal');
});

test('report --scans (table) says how to finish an interrupted scan', async () => {
  const { renderScans } = await import('../src/cli/report.js');
  const scan = {
    id: '7', status: 'interrupted' as const, startedAt: '2026-03-02T10:00:00.000Z', finishedAt: null, targets: 1, ports: [443],
    attempts: 4, answered: 3, exchangeServers: 2, timedOut: 0, retried: 0, unanswered: 0,
  };
  const text = renderScans([scan], 'table');
  assert.match(text, /\binterrupted\b/);
  assert.match(text, /scan 7: interrupted .*tocsin scan --resume 7/);
  assert.doesNotMatch(renderScans([{ ...scan, status: 'finished' }], 'table'), /--resume 7/);
});

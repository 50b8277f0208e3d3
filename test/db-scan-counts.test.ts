/**
 * Unanswered attempts are stored but not "done" (issue 6, finding 3), on both backends: doneKeys leaves
 * them out so a resume tries them again, a later result replaces the row (tries add up, an answer gets
 * its observation), other stored attempts are never overwritten, and `report --scans` counts timed-out,
 * retried and unanswered attempts.
 */
import assert from 'node:assert/strict';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { listScans } from '../src/services/report.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import { attemptKey, type AttemptResult } from '../src/scan/ports.js';
import { testEachBackend } from './helpers/db.js';

const AT = '2026-03-02T10:00:00.000Z';

function timeout(ip: string, extra: Partial<AttemptResult> = {}): AttemptResult {
  return {
    ip, port: 443, hostname: null, outcome: 'timeout', detail: 'connect timeout after 3000 ms', record: null, facts: [],
    detectorRevisions: {}, tlsCert: null, attemptedAt: AT, ...extra,
  };
}

function answered(ip: string, extra: Partial<AttemptResult> = {}): AttemptResult {
  const record: ScanRecord = {
    ip, port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2',
    buildPrecision: 'exact', cu: 'CU19', su: null, vulnerable: ['CVE-2021-26855'], indeterminate: [], evidence: [],
    scannedAt: AT, status: 200, notes: [],
  };
  return { ...timeout(ip), outcome: 'answered', detail: null, record, ...extra };
}

testEachBackend('unanswered attempts: counted, not done, replaced by a later result', async ({ database }) => {
  const store = createScanStore(database.db);
  const scan = await store.createScan({ targets: ['127.94.30.0/29'], ports: [443], options: {} });
  await store.recordBatch(scan.id, [
    answered('127.94.30.1'),
    answered('127.94.30.2', { tries: 2 }), // answered on its retry
    timeout('127.94.30.3', { tries: 3, unanswered: true }),
    timeout('127.94.30.4', { detail: 'TLS handshake timeout after 3000 ms', tries: 2 }), // connected: a final timeout
  ]);
  let row = (await listScans(database.db)).find((s) => s.id === scan.id);
  assert.deepEqual(
    { attempts: row?.attempts, answered: row?.answered, timedOut: row?.timedOut, retried: row?.retried, unanswered: row?.unanswered },
    { attempts: 4, answered: 2, timedOut: 2, retried: 3, unanswered: 1 },
  );
  const done = await store.doneKeys(scan.id);
  assert.equal(done.has(attemptKey('127.94.30.3', 443)), false, 'a resume tries the unanswered attempt again');
  assert.equal(done.has(attemptKey('127.94.30.4', 443)), true);
  assert.equal(done.size, 3);

  // The resume: .3 answers now; a stray result for .1 (already stored) changes nothing.
  await store.recordBatch(scan.id, [answered('127.94.30.3'), timeout('127.94.30.1', { unanswered: true })]);
  row = (await listScans(database.db)).find((s) => s.id === scan.id);
  assert.deepEqual(
    { attempts: row?.attempts, answered: row?.answered, timedOut: row?.timedOut, retried: row?.retried, unanswered: row?.unanswered, exchange: row?.exchangeServers },
    { attempts: 4, answered: 3, timedOut: 1, retried: 3, unanswered: 0, exchange: 3 },
  );
  const ips: string[] = [];
  for await (const r of store.records(scan.id)) ips.push(r.ip);
  assert.deepEqual(ips, ['127.94.30.1', '127.94.30.2', '127.94.30.3'], 'the recovered host has its record, once');
  assert.equal((await store.doneKeys(scan.id)).size, 4);

  // Still unanswered on the resume: stays resumable, its tries add up.
  await store.recordBatch(scan.id, [timeout('127.94.30.5', { tries: 3, unanswered: true })]);
  await store.recordBatch(scan.id, [timeout('127.94.30.5', { tries: 3, unanswered: true })]);
  const tries = await database.db.selectFrom('scan_attempts').select(['tries', 'unanswered']).where('scan_id', '=', Number(scan.id)).where('ip', '=', '127.94.30.5').executeTakeFirst();
  assert.deepEqual(tries, { tries: 6, unanswered: true });
});

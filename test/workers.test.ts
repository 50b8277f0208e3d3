/**
 * Distributed scans (issue 11 §1-2), in this process: blocks hold whole /24s and /64s and every address once;
 * a block's lease is one compare-and-swap (a second live worker is refused, a dead one's block is taken over
 * and the old holder's finish is refused); the shared rate bucket hands out disjoint slots to all workers; a
 * cancel request stops a distributed scan; and two workers run a lab scan to the end, every host once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { networkKey } from '../src/core/ip.js';
import { expandTargets } from '../src/scan/targets.js';
import { DEFAULT_LIMITS } from '../src/core/contracts/probe.js';
import type { ScanPlan } from '../src/scan/plan.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import {
  claimBlock, createDistribution, deadWorkers, finishBlock, reapWorkers, registerWorker, reserveSlots,
} from '../src/platform/db/worker-store.js';
import { runWorker, splitIntoBlocks, submitDistributedScan, waitForScan, workersStatus } from '../src/services/distributed-scan.js';
import { cancelScan } from '../src/services/scan-service.js';
import { scanStorageOn } from '../src/services/scan-storage.js';
import { startLab, type Lab } from '../lab/server.js';
import { ALL_EXCHANGE_MIX } from '../lab/estate-model.js';
import { testEachBackend } from './helpers/db.js';

test('blocks: whole /24s and /64s, one family each, every address exactly once, pinned names with their network', () => {
  const targets = ['192.0.2.0/24', '198.51.100.10-198.51.100.200', '203.0.113.0/25', 'mail.example=198.51.100.5', '2001:db8::/120', '2001:db8:0:1::1-2001:db8:0:1::20'];
  const blocks = splitIntoBlocks(targets, 300);
  const want = [...expandTargets(targets)].map((t) => t.ip).sort();
  const got = blocks.flatMap((b) => [...expandTargets(b.targets)].map((t) => t.ip)).sort();
  assert.deepEqual(got, want, 'the blocks hold exactly the plan\'s addresses');
  const netToBlock = new Map<string, number>();
  blocks.forEach((b, i) => {
    const ips = [...expandTargets(b.targets)].map((t) => t.ip);
    assert.equal(ips.length, b.hosts);
    assert.equal(new Set(ips.map((ip) => ip.includes(':'))).size, 1, 'one address family per block');
    for (const ip of ips) {
      const k = String(networkKey(ip));
      assert.ok(netToBlock.get(k) === undefined || netToBlock.get(k) === i, `${k} is in two blocks`);
      netToBlock.set(k, i);
    }
  });
  // The pinned name travels with its /24.
  const pinnedBlock = blocks.find((b) => b.targets.includes('mail.example=198.51.100.5'));
  assert.ok(pinnedBlock !== undefined && pinnedBlock.targets.some((t) => t.startsWith('198.51.100.10')));
  // Small networks share a block up to the size; a network larger than the size is a block of its own.
  assert.deepEqual(splitIntoBlocks(['10.0.0.0/26', '10.0.1.0/26', '10.0.2.0/26'], 128).map((b) => b.hosts), [128, 64]);
  assert.deepEqual(splitIntoBlocks(['10.0.0.0/23'], 100).map((b) => b.hosts), [256, 256]);
});

function plan(targets: readonly string[], port: number, rate = 0): ScanPlan {
  return {
    targets, ports: [{ port, mode: 'tls' }], concurrency: 32, exclusions: ['127.81.1.7'], rate, ratePerNetwork: 0,
    limits: { ...DEFAULT_LIMITS, connectTimeoutMs: 8000, tlsTimeoutMs: 8000, requestTimeoutMs: 8000, hostBudgetMs: 30_000, userAgent: 'tocsin-test' },
  };
}

testEachBackend('a block lease: a live holder is exclusive, a dead one is taken over and its late finish refused', async ({ database }) => {
  const db = database.db;
  const store = createScanStore(db);
  const scan = await store.createScan({ targets: ['192.0.2.0/24', '192.0.3.0/24'], ports: [443], options: {} });
  const id = Number(scan.id);
  await createDistribution(db, id, splitIntoBlocks(['192.0.2.0/24', '192.0.3.0/24'], 256), { perSecond: 100, burst: 5 });
  await registerWorker(db, { id: 'a', host: 'h', pid: 1, concurrency: 1 });
  await registerWorker(db, { id: 'b', host: 'h', pid: 2, concurrency: 1 });
  const a = await claimBlock(db, id, 0, 'a', 30);
  assert.equal(a.kind, 'claimed');
  assert.equal(a.kind === 'claimed' ? a.attempt : 0, 1);
  assert.deepEqual(await claimBlock(db, id, 0, 'b', 30), { kind: 'busy', by: 'a' }, 'never two live workers on one block');
  // a stops beating: after the lease its block goes to b.
  await sql`UPDATE scan_workers SET heartbeat_at = now() - interval '1 hour' WHERE id = 'a'`.execute(db);
  const b = await claimBlock(db, id, 0, 'b', 30);
  assert.equal(b.kind === 'claimed' ? b.attempt : 0, 2);
  assert.deepEqual(await finishBlock(db, id, 0, 'a', 1), { lost: true, scanFinished: false }, 'the old holder cannot finish it');
  assert.deepEqual(await finishBlock(db, id, 0, 'b', 2), { lost: false, scanFinished: false });
  assert.deepEqual((await deadWorkers(db, 30)).map((w) => w.id), ['a']);
  await reapWorkers(db, ['a'], 30);
  assert.deepEqual(await deadWorkers(db, 30), []);
  assert.deepEqual(await claimBlock(db, id, 0, 'b', 30), { kind: 'settled', state: 'done' });
  const last = await claimBlock(db, id, 1, 'b', 30);
  assert.equal(last.kind, 'claimed');
  assert.deepEqual(await finishBlock(db, id, 1, 'b', 1), { lost: false, scanFinished: true }, 'the last block finishes the scan');
  assert.equal((await store.getScan(scan.id))?.status, 'finished');
});

testEachBackend('the shared rate bucket: consecutive reservations get disjoint slots 1/rate apart', async ({ database }) => {
  const db = database.db;
  const scan = await createScanStore(db).createScan({ targets: ['192.0.2.1'], ports: [443], options: {} });
  const id = Number(scan.id);
  await createDistribution(db, id, splitIntoBlocks(['192.0.2.1']), { perSecond: 100, burst: 1 });
  const first = await reserveSlots(db, id, 10);
  const second = await reserveSlots(db, id, 10);
  assert.ok(first !== null && second !== null);
  assert.equal(first.intervalMs, 10);
  // The second batch starts where the first ends (100 ms of slots later), less the time between the two calls.
  const gap = second.firstInMs - first.firstInMs;
  assert.ok(gap > 50 && gap <= 100.5, `second batch starts ${gap} ms after the first`);
  assert.equal(await reserveSlots(db, id + 1, 5), null, 'no bucket: no overall rate');
});

testEachBackend('tocsin cancel stops a distributed scan: its blocks are cancelled, the scan interrupted with who asked', async ({ database }) => {
  const id = (await submitDistributedScan(database, plan(['192.0.2.0/24', '192.0.3.0/24'], 443), { blockSize: 256 })).scanId;
  const storage = scanStorageOn(database, { ownsDatabase: false });
  const r = await cancelScan(storage, id, { by: 'alice@cert' });
  assert.equal(r.by, 'alice@cert');
  // The waiting `scan --distributed` applies the request itself (no worker is running here).
  const settled = await waitForScan(database, id, { signal: new AbortController().signal, pollMs: 50 });
  assert.equal(settled?.status, 'interrupted');
  assert.equal(settled?.cancelledBy, 'alice@cert');
  await registerWorker(database.db, { id: 'w', host: 'h', pid: 3, concurrency: 1 });
  assert.deepEqual(await claimBlock(database.db, Number(id), 0, 'w', 30), { kind: 'settled', state: 'cancelled' });
  const s = await sql<{ status: string; interrupted_reason: string }>`SELECT status, interrupted_reason FROM scans WHERE id = ${Number(id)}`.execute(database.db);
  assert.deepEqual(s.rows[0], { status: 'interrupted', interrupted_reason: 'cancelled by alice@cert' });
  const st = await workersStatus(database, 30);
  assert.deepEqual(st.scans.find((x) => String(x.scanId) === id)?.blocks, { queued: 0, running: 0, done: 0, cancelled: 2 });
});

let lab: Lab;
before(async () => {
  lab = await startLab({ hosts: 512, base: '127.81.0.0', seed: 5, mix: ALL_EXCHANGE_MIX });
});
after(async () => {
  await lab.close();
});

testEachBackend('two workers run a distributed lab scan to the end: every host once, exclusions kept, the scan finished', async ({ database }) => {
  const targets = ['127.81.0.0-127.81.0.15', '127.81.1.0-127.81.1.15'];
  const s = await submitDistributedScan(database, plan(targets, lab.httpsPort, 200), { blockSize: 16 });
  assert.equal(s.blocks, 2);
  const ac = new AbortController();
  const run = (): ReturnType<typeof runWorker> => runWorker({ database, concurrency: 1, leaseSeconds: 30, once: true, signal: ac.signal, pollMs: 100 });
  const [w1, w2] = await Promise.all([run(), run()]);
  assert.equal(w1.blocksDone + w2.blocksDone, 2);
  const c = await sql<{ n: number; d: number; excluded: number; answered: number }>`
    SELECT count(*)::int AS n, count(DISTINCT (ip, port))::int AS d, count(*) FILTER (WHERE outcome = 'excluded')::int AS excluded,
           count(*) FILTER (WHERE outcome = 'answered')::int AS answered
    FROM scan_attempts WHERE scan_id = ${Number(s.scanId)}`.execute(database.db);
  assert.deepEqual(c.rows[0], { n: 32, d: 32, excluded: 1, answered: 31 });
  assert.equal(lab.hosts.length, 512);
  const st = await workersStatus(database, 30);
  const mine = st.scans.find((x) => String(x.scanId) === s.scanId);
  assert.equal(mine?.status, 'finished');
  assert.equal(mine?.stored, 32);
  assert.deepEqual(st.workers, [], 'stopped workers unregister');
});

testEachBackend('a worker stopped mid-block (SIGTERM) gives the block back; the next worker skips what it stored', async ({ database }) => {
  const targets = ['127.81.2.0-127.81.2.19'];
  // 10 connections a second (a lab host costs several): the first worker is stopped well before the block ends.
  const s = await submitDistributedScan(database, plan(targets, lab.httpsPort, 10), { blockSize: 256 });
  const stop = new AbortController();
  const first = runWorker({ database, concurrency: 1, leaseSeconds: 30, once: false, signal: stop.signal, pollMs: 100 });
  const id = Number(s.scanId);
  for (let i = 0; i < 600; i++) {
    const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_attempts WHERE scan_id = ${id}`.execute(database.db);
    if ((r.rows[0]?.n ?? 0) >= 2) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  stop.abort('stopped by a signal');
  const w1 = await first;
  assert.equal(w1.blocksReleased, 1, 'the block was given back');
  const b = await sql<{ state: string; attempts: number; leased_by: string | null }>`SELECT state, attempts, leased_by FROM scan_blocks WHERE scan_id = ${id}`.execute(database.db);
  assert.deepEqual(b.rows[0], { state: 'queued', attempts: 1, leased_by: null });
  const storedBefore = (await sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_attempts WHERE scan_id = ${id}`.execute(database.db)).rows[0]?.n ?? 0;
  assert.ok(storedBefore >= 2 && storedBefore < 20, `${storedBefore} stored before the stop`);
  const w2 = await runWorker({ database, concurrency: 1, leaseSeconds: 30, once: true, signal: new AbortController().signal, pollMs: 100 });
  assert.equal(w2.blocksDone, 1);
  assert.equal(w2.attempts, 20 - storedBefore, 'the second run attempted only what was not stored');
  const c = await sql<{ n: number; d: number }>`SELECT count(*)::int AS n, count(DISTINCT (ip, port))::int AS d FROM scan_attempts WHERE scan_id = ${id}`.execute(database.db);
  assert.deepEqual(c.rows[0], { n: 20, d: 20 });
});

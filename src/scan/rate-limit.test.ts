import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRateLimiter, RateLimiter } from './rate-limit.js';
import { ManualClock } from '../../test/helpers/manual-clock.js';


test('unlimited when both rates are 0', async () => {
  assert.equal(createRateLimiter({ perSecond: 0, perNetworkPerSecond: 0 }), null);
  const r = new RateLimiter({ perSecond: 0, perNetworkPerSecond: 0, clock: new ManualClock() });
  for (let i = 0; i < 1000; i++) assert.equal(r.reserveNetwork(`10.0.${i % 256}.1`) + r.reserveGlobal(), 0);
  await r.acquire('10.0.0.1');
  assert.equal(r.bucketCount, 0);
});

test('global rate: slots spaced 1/rate apart after the burst', () => {
  const clock = new ManualClock();
  const r = new RateLimiter({ perSecond: 100, perNetworkPerSecond: 0, burst: 3, clock });
  const waits = Array.from({ length: 6 }, (_, i) => r.reserveNetwork(`10.0.${i}.1`) + r.reserveGlobal());
  assert.deepEqual(waits, [0, 0, 0, 10, 20, 30]);
  clock.t = 1000; // idle for a while: the burst is available again
  assert.deepEqual(Array.from({ length: 4 }, () => r.reserveGlobal()), [0, 0, 0, 10]);
});

test('per-network rate: one /24 is paced, another /24 is not held up by it', () => {
  const clock = new ManualClock();
  const r = new RateLimiter({ perSecond: 0, perNetworkPerSecond: 2, clock });
  assert.equal(r.reserveNetwork('192.0.2.1'), 0);
  assert.equal(r.reserveNetwork('192.0.2.2'), 500);
  assert.equal(r.reserveNetwork('192.0.2.3'), 1000);
  assert.equal(r.reserveNetwork('198.51.100.1'), 0);
  assert.equal(r.reserveNetwork('2001:db8:1:2::1'), 0);
  assert.equal(r.reserveNetwork('2001:db8:1:2::ffff'), 500, 'same /64');
  assert.equal(r.reserveNetwork('2001:db8:1:3::1'), 0, 'other /64');
});

test('both limits: a network waiting for its turn does not hold back other networks', async () => {
  const clock = new ManualClock();
  const r = new RateLimiter({ perSecond: 10, perNetworkPerSecond: 1, burst: 1, networkBurst: 1, clock });
  const opened: Array<[string, number]> = [];
  const go = (ip: string): Promise<void> => r.acquire(ip).then(() => {
    opened.push([ip, clock.now()]);
  });
  const all = [go('10.0.0.1'), go('10.0.0.2'), go('10.0.1.1'), go('10.0.2.1')];
  await clock.advance(0);
  for (let i = 0; i < 30; i++) await clock.advance(50);
  await Promise.all(all);
  assert.deepEqual(opened, [['10.0.0.1', 0], ['10.0.1.1', 100], ['10.0.2.1', 200], ['10.0.0.2', 1000]]);
  // both limits held: consecutive opens ≥ 100 ms apart, same /24 ≥ 1000 ms apart
  for (let i = 1; i < opened.length; i++) assert.ok((opened[i]?.[1] ?? 0) - (opened[i - 1]?.[1] ?? 0) >= 100);
});

test('acquire waits on the clock and rejects when aborted', async () => {
  const clock = new ManualClock();
  const r = new RateLimiter({ perSecond: 1, perNetworkPerSecond: 0, clock });
  await r.acquire('10.0.0.1');
  let done = false;
  const p = r.acquire('10.0.0.2').then(() => {
    done = true;
  });
  await clock.advance(999);
  assert.equal(done, false);
  await clock.advance(1);
  await p;
  assert.equal(done, true);
  const ac = new AbortController();
  const q = r.acquire('10.0.0.3', ac.signal);
  ac.abort(new Error('stop'));
  await assert.rejects(q, /stop/);
  await assert.rejects(r.acquire('10.0.0.4', ac.signal), /stop/);
});

test('bounded memory: idle network buckets are evicted', () => {
  const clock = new ManualClock();
  const r = new RateLimiter({ perSecond: 0, perNetworkPerSecond: 10, clock, maxBuckets: 1000 });
  for (let i = 0; i < 50_000; i++) {
    r.reserveNetwork(`10.${(i >> 8) & 255}.${i & 255}.1`);
    if (i % 100 === 99) clock.t += 1000; // time passes: earlier buckets become idle
  }
  assert.ok(r.bucketCount <= 2100, `held ${r.bucketCount} buckets`);
  assert.ok(r.bucketCount > 0);
});

test('thousands of waiters on one abort signal: no MaxListenersExceededWarning, and abort rejects them all', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    // The real clock, as a `--rate` scan uses it: every attempt waiting for a token sleeps on the scan's signal.
    const r = new RateLimiter({ perSecond: 1, perNetworkPerSecond: 0, burst: 1 });
    const ac = new AbortController();
    const waits = Array.from({ length: 2000 }, (_, i) => r.acquire(`127.94.${i >> 8}.${i & 255}`, ac.signal).then(() => 'ok', () => 'aborted'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    ac.abort(new Error('stop'));
    const outcomes = await Promise.all(waits);
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    assert.equal(outcomes.filter((o) => o === 'ok').length, 1, 'only the burst got through');
    assert.equal(outcomes.filter((o) => o === 'aborted').length, 1999);
    assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('a sleeper that woke leaves no listener behind on a long-lived signal', async () => {
  const ac = new AbortController();
  const { systemClock } = await import('./rate-limit.js');
  for (let i = 0; i < 50; i++) await systemClock.sleep(0, ac.signal);
  const events = await import('node:events');
  const count = (events as unknown as { getEventListeners(t: EventTarget, name: string): unknown[] }).getEventListeners(ac.signal, 'abort').length;
  assert.ok(count <= 1, `listeners: ${count}`);
});

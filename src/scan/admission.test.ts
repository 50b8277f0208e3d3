import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionGate, CongestionWindow } from './admission.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* keep the event loop blocked */ }
}

test('admits immediately while the event loop keeps up', async () => {
  const g = new AdmissionGate({ maxLagMs: 50 }).start();
  try {
    assert.equal(g.admit(), undefined);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(g.admit(), undefined);
  } finally {
    g.stop();
  }
});

test('holds new attempts while the loop lags, releases them when it recovers', async () => {
  const g = new AdmissionGate({ maxLagMs: 20 }).start();
  try {
    // Block the loop repeatedly so the smoothed lag climbs above the threshold.
    for (let i = 0; i < 6; i++) {
      busy(120);
      await new Promise((r) => setTimeout(r, 12));
    }
    assert.ok(g.lagMs > 20, `lag ${g.lagMs}`);
    const waiting = g.admit();
    assert.ok(waiting instanceof Promise, 'held back while lagging');
    let released = false;
    void waiting.then(() => (released = true));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(released, true);
  } finally {
    g.stop();
  }
});

test('stop releases every waiter', async () => {
  const g = new AdmissionGate({ maxLagMs: 1 }).start();
  for (let i = 0; i < 4; i++) {
    busy(60);
    await new Promise((r) => setTimeout(r, 11));
  }
  const w = g.admit();
  g.stop();
  await w;
  assert.equal(g.admit(), undefined);
});

test('congestion window: multiplicative decrease once per cooldown, floor, slow growth', async () => {
  let t = 0;
  const w = new CongestionWindow(100, 20, 1000, () => t);
  assert.equal(w.limit, 100);
  w.onCongestion();
  assert.equal(w.limit, 70);
  w.onCongestion(); // same cooldown window: one overload, one cut
  assert.equal(w.limit, 70);
  for (let i = 0; i < 10; i++) {
    t += 1000;
    w.onCongestion();
  }
  assert.equal(w.limit, 20);
  for (let i = 0; i < 10; i++) w.onCompleted();
  assert.ok(w.limit > 20 && w.limit < 30, `limit ${w.limit}`);
});

test('congestion window: attempts beyond the limit wait for a release', async () => {
  const w = new CongestionWindow(2, 1, 1000);
  assert.equal(w.acquire(), undefined);
  assert.equal(w.acquire(), undefined);
  const third = w.acquire();
  assert.ok(third instanceof Promise);
  let started = false;
  void third.then(() => (started = true));
  await Promise.resolve();
  assert.equal(started, false);
  w.release();
  await third;
  assert.equal(started, true);
});

test('congestion window: slow start doubles per window until the first decrease', () => {
  const w = new CongestionWindow(1000, 10, 1000, () => 0, 50);
  assert.equal(w.limit, 50);
  for (let i = 0; i < 50; i++) w.onCompleted();
  assert.equal(w.limit, 100);
  w.onCongestion();
  assert.equal(w.limit, 70);
  for (let i = 0; i < 70; i++) w.onCompleted();
  assert.ok(w.limit < 80, `additive after the cut: ${w.limit}`);
});

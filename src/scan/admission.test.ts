import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionGate, CongestionWindow, RetryQueue } from './admission.js';
import { ManualClock } from '../../test/helpers/manual-clock.js';

/** A gate on a manual clock: each tick() samples how late it came, as the real timer does. */
function manualGate(maxLagMs: number): { gate: AdmissionGate; tickAfter: (ms: number) => void } {
  let t = 0;
  const gate = new AdmissionGate({ maxLagMs, now: () => t }).start({ timer: false });
  return {
    gate,
    tickAfter: (ms) => {
      t += ms;
      gate.tick();
    },
  };
}

test('admits immediately while the event loop keeps up', () => {
  const { gate, tickAfter } = manualGate(50);
  assert.equal(gate.admit(), undefined);
  for (let i = 0; i < 20; i++) tickAfter(10); // every tick on time: no lag
  assert.equal(gate.lagMs, 0);
  assert.equal(gate.admit(), undefined);
  gate.stop();
});

test('holds new attempts while the loop lags, releases them when it recovers', async () => {
  const { gate, tickAfter } = manualGate(20);
  for (let i = 0; i < 6; i++) tickAfter(130); // each tick 120 ms late: a blocked loop
  assert.ok(gate.lagMs > 20, `lag ${gate.lagMs}`);
  const waiting = gate.admit();
  assert.ok(waiting instanceof Promise, 'held back while lagging');
  let released = false;
  void waiting.then(() => (released = true));
  tickAfter(10);
  await Promise.resolve();
  assert.equal(released, false, 'one good tick does not undo a sustained lag');
  for (let i = 0; i < 30 && !released; i++) {
    tickAfter(10);
    await Promise.resolve();
  }
  assert.equal(released, true);
  assert.ok(gate.lagMs <= 20);
  gate.stop();
});

test('stop releases every waiter', async () => {
  const { gate, tickAfter } = manualGate(1);
  for (let i = 0; i < 4; i++) tickAfter(70);
  const w = gate.admit();
  assert.ok(w instanceof Promise);
  gate.stop();
  await w;
  assert.equal(gate.admit(), undefined);
});

test('the real timer samples the loop (smoke test, no timing asserted)', async () => {
  const g = new AdmissionGate({ maxLagMs: 50 }).start();
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(Number.isFinite(g.lagMs) && g.lagMs >= 0);
  g.stop();
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


test('retry queue: exponential backoff with a spread, earliest due first, nothing before its time', async () => {
  const clock = new ManualClock();
  const q = new RetryQueue<string>(clock, 1000, 10);
  assert.equal(q.push('a', 1), true); // first retry: 1000 ms (spread 1.0)
  assert.equal(q.push('b', 2), true); // second retry: 2000 ms x 1.125
  assert.equal(q.push('c', 1), true); // 1000 x 1.25
  assert.equal(q.popDue(), undefined);
  await clock.advance(999);
  assert.equal(q.popDue(), undefined);
  await clock.advance(1);
  assert.equal(q.popDue(), 'a');
  assert.equal(q.popDue(), undefined);
  await clock.advance(250);
  assert.equal(q.popDue(), 'c');
  await clock.advance(999);
  assert.equal(q.popDue(), undefined, 'b waits 2250 ms: twice the first backoff');
  await clock.advance(1);
  assert.equal(q.popDue(), 'b');
  assert.equal(q.size, 0);
});

test('retry queue: take() waits for the next due item on the clock; finish() releases waiters with null', async () => {
  const clock = new ManualClock();
  const q = new RetryQueue<string>(clock, 100, 10);
  q.push('x', 1);
  const got: Array<string | null> = [];
  const a = Promise.resolve(q.take()).then((v) => void got.push(v));
  const b = Promise.resolve(q.take()).then((v) => void got.push(v));
  await clock.advance(50);
  assert.deepEqual(got, []);
  await clock.advance(50);
  await a;
  assert.deepEqual(got, ['x']);
  q.finish();
  await b;
  assert.deepEqual(got, ['x', null]);
  assert.equal(q.take(), null);
});

test('retry queue: bounded, and stop() drops what waits', async () => {
  const clock = new ManualClock();
  const q = new RetryQueue<number>(clock, 100, 2);
  assert.equal(q.push(1, 1), true);
  assert.equal(q.push(2, 1), true);
  assert.equal(q.push(3, 1), false, 'full: the caller reports the attempt as it ended');
  const w = q.take();
  q.stop();
  assert.equal(await w, null);
  assert.equal(q.size, 0);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionGate, CongestionWindow, gateTimersOn, HANDSHAKE_SAMPLES, RetryQueue, type GateTimers } from './admission.js';
import { ManualClock } from '../../test/helpers/manual-clock.js';

/**
 * A gate on a manual clock. Its timer is due every 10 ms; `tickAfter(ms)` moves the clock on by `ms` at
 * once, so the due tick runs `ms - 10` late, as it would behind an event loop blocked for that long.
 */
function manualGate(maxLagMs: number): { gate: AdmissionGate; clock: ManualClock; tickAfter: (ms: number) => Promise<void> } {
  const clock = new ManualClock();
  const gate = new AdmissionGate({ maxLagMs, timers: gateTimersOn(clock) }).start();
  return { gate, clock, tickAfter: (ms) => clock.advance(ms) };
}

test('admits immediately while the event loop keeps up', async () => {
  const { gate, tickAfter } = manualGate(50);
  assert.equal(gate.admit(), undefined);
  for (let i = 0; i < 20; i++) await tickAfter(10); // every tick on time: no lag
  assert.equal(gate.lagMs, 0);
  assert.equal(gate.admit(), undefined);
  gate.stop();
});

test('holds new attempts while the loop lags, releases them when it recovers', async () => {
  const { gate, tickAfter } = manualGate(20);
  for (let i = 0; i < 6; i++) await tickAfter(130); // each tick 120 ms late: a blocked loop
  // Smoothed: 120 x (1 - 0.7^6) = 105.9 ms.
  assert.ok(Math.abs(gate.lagMs - 120 * (1 - 0.7 ** 6)) < 1e-9, `lag ${gate.lagMs}`);
  const waiting = gate.admit();
  assert.ok(waiting instanceof Promise, 'held back while lagging');
  let released = false;
  void waiting.then(() => (released = true));
  await tickAfter(10);
  assert.equal(released, false, 'one good tick does not undo a sustained lag');
  // On-time ticks decay the lag by 0.7 each: 105.9 x 0.7^n <= 20 from n = 5 on (one tick done above).
  let ticks = 1;
  while (!released && ticks < 30) {
    await tickAfter(10);
    ticks++;
  }
  assert.equal(released, true);
  assert.equal(ticks, 5, 'released on the first tick whose smoothed lag is under the limit');
  assert.ok(gate.lagMs <= 20);
  gate.stop();
});

test('a tick releases at most burstPerTick waiters, scaled by the headroom left', async () => {
  const clock = new ManualClock();
  const gate = new AdmissionGate({ maxLagMs: 100, burstPerTick: 4, timers: gateTimersOn(clock) }).start();
  await clock.advance(1010); // one tick 1 s late: lag 300 ms
  const released: number[] = [];
  const waits = Array.from({ length: 6 }, (_, i) => gate.admit()?.then(() => void released.push(i)));
  assert.ok(waits.every((w) => w instanceof Promise));
  // 300 x 0.7^4 = 72 ms: under the limit; headroom 28 % of 4 = 1.1 -> one waiter released.
  for (let i = 0; i < 3; i++) await clock.advance(10);
  assert.deepEqual(released, []);
  await clock.advance(10);
  assert.deepEqual(released, [0]);
  await clock.advance(10); // 50.4 ms: headroom 49.6 % of 4 = 1.98 -> one more
  assert.deepEqual(released, [0, 1]);
  await clock.advance(10); // 35.3 ms: headroom 64.7 % of 4 = 2.6 -> two more, in arrival order
  assert.deepEqual(released, [0, 1, 2, 3]);
  gate.stop();
  await Promise.all(waits);
  assert.deepEqual(released, [0, 1, 2, 3, 4, 5], 'stop releases the rest');
});

test('stop releases every waiter and cancels the timer', async () => {
  const { gate, clock, tickAfter } = manualGate(1);
  for (let i = 0; i < 4; i++) await tickAfter(70);
  const w = gate.admit();
  assert.ok(w instanceof Promise);
  assert.equal(clock.waiting, 1, 'one timer');
  gate.stop();
  await w;
  assert.equal(gate.admit(), undefined);
  await clock.advance(0);
  assert.equal(clock.waiting, 0, 'no timer left after stop');
});

test('the timer keeps the process alive only while attempts wait at the gate', async () => {
  // The real timers (systemGateTimers) start unref'd; a gate whose every attempt waits must not let Node exit.
  const clock = new ManualClock();
  const calls: string[] = [];
  const inner = gateTimersOn(clock);
  const timers: GateTimers = {
    now: inner.now,
    every: (ms, fn) => {
      const t = inner.every(ms, fn);
      return { ref: () => void calls.push('ref'), unref: () => void calls.push('unref'), cancel: () => t.cancel() };
    },
  };
  const gate = new AdmissionGate({ maxLagMs: 20, timers }).start();
  await clock.advance(500); // lag 147 ms
  const w = gate.admit();
  assert.ok(w instanceof Promise);
  assert.deepEqual(calls, ['ref']);
  void gate.admit();
  assert.deepEqual(calls, ['ref'], 'one ref for the first waiter');
  for (let i = 0; i < 10 && calls.length < 2; i++) await clock.advance(10);
  await w;
  assert.deepEqual(calls, ['ref', 'unref'], 'unref once nobody waits');
  gate.stop();
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


test('congestion window: queued handshakes shrink it gently; round trips and a slow minority do not', () => {
  let t = 0;
  const w = new CongestionWindow(1000, 100, 3000, () => t, 1000, 500);
  const group = (connectMs: number, handshakeMs: number, slowOnes = HANDSHAKE_SAMPLES): void => {
    for (let i = 0; i < HANDSHAKE_SAMPLES; i++) w.onHandshake(connectMs, i < slowOnes ? handshakeMs : 5);
  };
  // Far hosts: a 400 ms round trip makes a 800 ms handshake, which is not a queue.
  group(400, 800);
  assert.equal(w.limit, 1000);
  // A slow minority (fewer than half of the group) is not a queue either.
  group(1, 2000, HANDSHAKE_SAMPLES / 2);
  assert.equal(w.limit, 1000);
  // Most handshakes waited 600 ms on loopback: a peer queueing them.
  group(0.1, 600);
  assert.equal(w.limit, 850);
  // Once per two queueMs: the attempts already in the queue do not cut again at once.
  group(0.1, 600);
  assert.equal(w.limit, 850);
  t += 1000;
  group(0.1, 600);
  assert.equal(w.limit, 722);
  // A connect that took a SYN retry (>= 1 s) is no round trip: the handshake counts in full.
  t += 1000;
  group(1500, 700);
  assert.equal(w.limit, 613);
  for (let i = 0; i < 40; i++) {
    t += 1000;
    group(0.1, 3000);
  }
  // Below the timeout floor (100), down to a quarter of it: tarpits never complete a handshake.
  assert.equal(w.limit, 25, 'never below a quarter of the floor');
  // A timeout does not raise it back to the timeout floor.
  t += 5000;
  w.onCongestion();
  assert.equal(w.limit, 25);
  // Slow start ended with the first cut: growth is additive.
  for (let i = 0; i < 25; i++) w.onCompleted();
  assert.ok(w.limit > 25 && w.limit < 40, `limit ${w.limit}`);
  // queueMs 0 turns the signal off.
  const off = new CongestionWindow(1000, 100, 3000, () => 0, 1000, 0);
  for (let i = 0; i < 10 * HANDSHAKE_SAMPLES; i++) off.onHandshake(0, 5000);
  assert.equal(off.limit, 1000);
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

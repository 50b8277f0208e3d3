import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionGate } from './admission.js';

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

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoWorkers } from './worker-pool.js';

test('automatic worker count: one core is left to the main thread, small scans stay in it, at most 4', () => {
  assert.equal(autoWorkers(100_000, 1), 1);
  // 2 cores: the scan runs in the main thread (measured cheaper and not slower than 2 worker threads).
  assert.equal(autoWorkers(100_000, 2), 1);
  assert.equal(autoWorkers(100_000, 3), 2);
  assert.equal(autoWorkers(100_000, 4), 3);
  assert.equal(autoWorkers(100_000, 16), 4);
  assert.equal(autoWorkers(null, 8), 4);
  assert.equal(autoWorkers(1000, 8), 1);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoWorkers } from './worker-pool.js';

test('automatic worker count: one thread on two cores or fewer, and for small scans; a thread per core (at most 4) above', () => {
  // Two cores: storage, output and the embedded database share them with the scan (bench/README.md).
  assert.equal(autoWorkers(4096, 2), 1);
  assert.equal(autoWorkers(null, 2), 1);
  assert.equal(autoWorkers(4096, 1), 1);
  assert.equal(autoWorkers(100, 8), 1);
  assert.equal(autoWorkers(4096, 3), 3);
  assert.equal(autoWorkers(4096, 16), 4);
});

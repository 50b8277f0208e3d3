import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createKb, exchangeKbTables, loadExchangeKb } from './index.js';

test('the tables a worker thread is primed with survive structured cloning and give the same verdicts', () => {
  const kb = loadExchangeKb();
  const tables = exchangeKbTables();
  assert.equal(tables.version, kb.version);
  // What postMessage/workerData does to them on the way to a worker thread.
  const copy = structuredClone(tables);
  const primed = createKb(copy);
  assert.equal(primed.version, kb.version);
  assert.equal(copy.builds.length, kb.builds.length);
  for (const [build, precision] of [['15.1.2176.2', 'exact'], ['15.1.2176.9', 'exact'], ['15.2.1118', 'cu'], ['14.3.513.0', 'exact'], ['15.1.1466.13', 'exact']] as const) {
    const want = kb.assess(build, precision);
    const got = primed.assess(build, precision);
    assert.deepEqual(got.vulnerable, want.vulnerable, build);
    assert.deepEqual(got.indeterminate, want.indeterminate, build);
    assert.equal(got.su, want.su, build);
    assert.equal(got.cu, want.cu, build);
  }
});

test('exchangeKbTables() is plain data (no functions): it can be handed to a Worker as workerData', async () => {
  const w = new Worker('require("node:worker_threads").parentPort.postMessage(require("node:worker_threads").workerData.kb.builds.length)', {
    eval: true,
    workerData: { kb: exchangeKbTables() },
  });
  const n = await new Promise<unknown>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(n, loadExchangeKb().builds.length);
});

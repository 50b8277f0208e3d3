import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher } from './batcher.js';
import type { AttemptResult } from './ports.js';

function result(i: number): AttemptResult {
  return { ip: `127.0.0.${i}`, port: 443, hostname: null, outcome: 'refused', detail: 'x', record: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: '2026-01-01T00:00:00.000Z' };
}

test('batches by size, flushes the rest on close, and applies back-pressure', async () => {
  const batches: number[] = [];
  let release: (() => void) | null = null;
  let inSink = 0;
  let maxInSink = 0;
  const b = new Batcher({
    maxBatch: 3, maxAgeMs: 1000, maxInFlight: 1,
    sink: async (batch) => {
      inSink++;
      maxInSink = Math.max(maxInSink, inSink);
      batches.push(batch.length);
      await new Promise<void>((r) => {
        release = r;
        setTimeout(r, 5);
      });
      inSink--;
    },
  });
  for (let i = 0; i < 10; i++) await b.push(result(i));
  await b.close();
  assert.deepEqual(batches, [3, 3, 3, 1]);
  assert.equal(maxInSink, 1);
  assert.ok(release !== null);
});

test('flushes by age and rethrows a sink failure', async () => {
  const got: number[] = [];
  const b = new Batcher({ maxBatch: 100, maxAgeMs: 10, maxInFlight: 2, sink: async (batch) => void got.push(batch.length) });
  await b.push(result(1));
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(got, [1]);
  const bad = new Batcher({ maxBatch: 1, maxAgeMs: 10, maxInFlight: 1, sink: async () => {
    throw new Error('disk full');
  } });
  await assert.rejects(async () => {
    for (let i = 0; i < 5; i++) await bad.push(result(i));
    await bad.close();
  }, /disk full/);
});

test('many concurrent pushers never put more than maxInFlight batches in the sink at once, and nothing is lost', async () => {
  // The engine pushes from hundreds of loops at once; on the old code each of them could flush a full
  // batch into the sink while others waited, so the sink (storage, then output writes waiting for
  // 'drain') ran many batches concurrently.
  let inSink = 0;
  let maxInSink = 0;
  const seen: string[] = [];
  const b = new Batcher({
    maxBatch: 4, maxAgeMs: 1000, maxInFlight: 2,
    sink: async (batch) => {
      inSink++;
      maxInSink = Math.max(maxInSink, inSink);
      await new Promise((r) => setTimeout(r, 3));
      for (const x of batch) seen.push(x.ip);
      inSink--;
    },
  });
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < 600) {
      const i = next++;
      await new Promise((r) => setImmediate(r)); // results arrive while batches are in the sink
      await b.push(result(i));
    }
  }));
  await b.close();
  assert.equal(maxInSink, 2);
  assert.equal(seen.length, 600);
  assert.equal(new Set(seen).size, 600);
});

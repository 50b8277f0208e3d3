/**
 * Worker-thread entry (see src/scan/worker-pool.ts): rebuilds the engine from the plan, scans its shard, and
 * streams results to the main thread in acknowledged batches. A composition root of its own (a thread shares
 * no module state with the main one): it wires the real kit, as the main thread's scan service does.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runScan } from '../scan/engine.js';
import { Batcher } from '../scan/batcher.js';
import { engineOptionsFor } from '../scan/setup.js';
import type { AttemptResult } from '../scan/ports.js';
import { primeExchangeKb } from '../products/exchange/kb/index.js';
import { BATCH_AGE_MS, BATCH_SIZE, MAX_UNACKED, type FromWorker, type ToWorker, type WorkerInit } from '../scan/worker-pool.js';
import { defaultKit } from './default-kit.js';

const port = parentPort;
if (port === null) throw new Error('scan-worker must run in a worker thread');
const init = workerData as WorkerInit;
if (init.kb !== undefined) primeExchangeKb(init.kb);
const stop = new AbortController();
let seq = 0;
const acks = new Map<number, () => void>();

port.on('message', (m: ToWorker) => {
  if (m.type === 'stop') stop.abort();
  else {
    acks.get(m.seq)?.();
    acks.delete(m.seq);
  }
});

function send(m: FromWorker): void {
  port?.postMessage(m);
}

const batcher = new Batcher({
  maxBatch: BATCH_SIZE,
  maxAgeMs: BATCH_AGE_MS,
  maxInFlight: MAX_UNACKED,
  sink: (results: readonly AttemptResult[]) => new Promise<void>((resolve) => {
    const n = ++seq;
    acks.set(n, resolve);
    send({ type: 'batch', seq: n, results });
  }),
});

try {
  const stats = await runScan(engineOptionsFor(init.plan, {
    done: new Set(init.done),
    shard: init.shard,
    signal: stop.signal,
    onResult: (r) => batcher.push(r),
    onWarning: (message) => send({ type: 'warning', message }),
  }, defaultKit()));
  await batcher.close();
  send({ type: 'done', stats });
} catch (e) {
  send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
}
// The port keeps the thread alive; close it so the worker exits once everything is sent.
port.close();

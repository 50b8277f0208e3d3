/**
 * Rate limits count connections, not hosts (issue 6, finding 2): against hosts that answer
 * `Connection: close` and redirect, every socket the probe client opens (first connection, reconnect for
 * the next probe, redirect hop) must take a token. The limiter runs on a manual clock, so the test counts
 * instead of timing: while the clock stands still only the burst may connect, and at every step no more
 * connections were accepted by the peer than tokens had been issued.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runScan, type ScanTarget } from '../src/scan/engine.js';
import { RateLimiter } from '../src/scan/rate-limit.js';
import { defaultKit } from '../src/services/default-kit.js';
import { DEFAULT_LIMITS } from '../src/core/contracts/probe.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { startClosePeer, type ClosePeer } from './helpers/close-peer.js';
import { ManualClock } from './helpers/manual-clock.js';


/** Waits (real time) until the peer has accepted nothing new for `quietMs`: the scan is waiting for tokens. */
async function settle(peer: ClosePeer, quietMs: number): Promise<void> {
  for (let i = 0; i < 500 && peer.accepted() === 0; i++) await new Promise((r) => setTimeout(r, 20));
  let last = -1;
  for (let i = 0; i < 200 && peer.accepted() !== last; i++) {
    last = peer.accepted();
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

function hosts(prefix: string, n: number): ScanTarget[] {
  return Array.from({ length: n }, (_, i) => ({ ip: `${prefix}${i + 1}`, hostname: null }));
}

async function paced(opts: { perSecond: number; perNetwork: number; burst: number; targets: ScanTarget[] }): Promise<void> {
  const peer = await startClosePeer();
  const clock = new ManualClock();
  const limiter = new RateLimiter({
    perSecond: opts.perSecond, perNetworkPerSecond: opts.perNetwork, burst: opts.burst, networkBurst: opts.burst, clock,
  });
  const interval = 1000 / (opts.perSecond > 0 ? opts.perSecond : opts.perNetwork);
  const results: AttemptResult[] = [];
  let finished = false;
  try {
    const run = runScan({
      targets: opts.targets,
      ports: [{ port: peer.port, mode: 'http' }],
      concurrency: 32,
      limits: { ...DEFAULT_LIMITS, hostBudgetMs: 600_000, requestTimeoutMs: 60_000 },
      kit: defaultKit(),
      limiter,
      clock,
      maxLoopLagMs: 0,
      onResult: (r) => void results.push(r),
    }).finally(() => {
      finished = true;
    });
    await settle(peer, 200);
    assert.ok(peer.accepted() >= 1, 'the burst is usable');
    assert.ok(peer.accepted() <= opts.burst, `clock stopped: ${peer.accepted()} connections accepted with ${opts.burst} tokens`);
    let tokens = opts.burst;
    for (let step = 0; step < 2000 && !finished; step++) {
      void clock.advance(interval);
      tokens++;
      await settle(peer, 20);
      assert.ok(peer.accepted() <= tokens, `${peer.accepted()} connections accepted with ${tokens} tokens issued`);
    }
    await run;
    assert.ok(peer.accepted() <= tokens, `${peer.accepted()} connections accepted with ${tokens} tokens issued`);
    assert.equal(results.length, opts.targets.length);
    for (const r of results) assert.equal(r.outcome, 'answered', `${r.ip}: ${r.outcome} ${r.detail ?? ''}`);
    // The point of the test: each host cost several connections (redirect hop, reconnects after close).
    assert.ok(peer.accepted() >= 2 * opts.targets.length, `only ${peer.accepted()} connections for ${opts.targets.length} hosts`);
  } finally {
    await peer.close();
  }
}

test('--rate: every new connection takes a token (reconnects after Connection: close, redirect hops)', async () => {
  await paced({ perSecond: 20, perNetwork: 0, burst: 2, targets: [...hosts('127.94.10.', 4), ...hosts('127.94.11.', 2)] });
});

test('--rate-per-network: every new connection into the /24 takes a token of its bucket', async () => {
  await paced({ perSecond: 0, perNetwork: 10, burst: 1, targets: hosts('127.94.12.', 5) });
});

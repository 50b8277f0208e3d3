/**
 * The scan engine against the lab (in this process, loopback only): the results equal the lab's ground
 * truth for every host, verdicts equal the knowledge base's for the expected build, no decoy is ever
 * called Exchange, hostile hosts neither stall nor crash the scan, excluded hosts are never contacted,
 * and worker threads give the same answers as one thread.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLab, type Lab } from '../lab/server.js';
import { runPlan } from '../src/services/scan-engine.js';
import type { ScanPlan } from '../src/scan/plan.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { DEFAULT_LIMITS, type NetLimits } from '../src/core/contracts/probe.js';
import { loadExchangeKb } from '../src/products/exchange/kb/index.js';

// Generous per-phase deadlines: the machine may be busy with other tests; a tarpit costs one of them.
const LIMITS: NetLimits = { ...DEFAULT_LIMITS, connectTimeoutMs: 4000, tlsTimeoutMs: 4000, requestTimeoutMs: 4000, hostBudgetMs: 12_000, userAgent: 'tocsin-test' };
const HOSTS = 256;

let lab: Lab;
before(async () => {
  lab = await startLab({ hosts: HOSTS, base: '127.3.0.0', seed: 7 });
});
after(async () => {
  await lab.close();
});

function plan(targets: readonly string[], exclusions: readonly string[] = []): ScanPlan {
  return { targets, ports: [{ port: lab.httpsPort, mode: 'tls' }], concurrency: 96, limits: LIMITS, exclusions, rate: 0, ratePerNetwork: 0 };
}

async function scan(p: ScanPlan, workers: number): Promise<AttemptResult[]> {
  const results: AttemptResult[] = [];
  await runPlan({ plan: p, done: new Set(), workers, onBatch: async (b) => void results.push(...b) });
  return results;
}

function compareWithTruth(results: readonly AttemptResult[]): string[] {
  const kb = loadExchangeKb();
  const byIp = new Map<string, AttemptResult>();
  const problems: string[] = [];
  for (const r of results) {
    if (byIp.has(r.ip)) problems.push(`${r.ip}: reported twice`);
    byIp.set(r.ip, r);
  }
  for (const h of lab.hosts) {
    const r = byIp.get(h.ip);
    if (r === undefined) {
      problems.push(`${h.ip}: no result`);
      continue;
    }
    const rec = r.record;
    const product = rec?.product === 'ms-exchange' || rec?.product === 'ms-exchange-online' ? rec.product : null;
    const got = { product, build: rec?.build ?? null, buildPrecision: rec?.buildPrecision ?? null, cu: rec?.cu ?? null };
    const want = h.expected;
    if (got.product !== want.product || got.build !== want.build || got.buildPrecision !== want.buildPrecision || got.cu !== want.cu) {
      problems.push(`${h.ip} (${h.kind}/${h.variant}): expected ${JSON.stringify(want)}, got ${JSON.stringify(got)} [${r.outcome} ${r.detail ?? ''}]`);
      continue;
    }
    if (want.product === 'ms-exchange' && want.build !== null && want.buildPrecision !== null && rec !== null) {
      const a = kb.assess(want.build, want.buildPrecision);
      if (JSON.stringify(rec.vulnerable) !== JSON.stringify(a.vulnerable) || JSON.stringify(rec.indeterminate) !== JSON.stringify(a.indeterminate)) {
        problems.push(`${h.ip}: verdicts differ from the knowledge base for ${want.build}`);
      }
    }
    if (h.kind !== 'exchange' && rec?.product === 'ms-exchange') problems.push(`${h.ip}: decoy ${h.kind}/${h.variant} reported as ms-exchange`);
  }
  return problems;
}

test('a scan of the lab equals its ground truth (one thread)', { timeout: 120_000 }, async () => {
  const results = await scan(plan([`127.3.0.0/24`]), 1);
  assert.equal(results.length, HOSTS);
  assert.deepEqual(compareWithTruth(results), []);
  // The estate has decoys and hostile hosts; make sure this test actually exercised them.
  const kinds = new Set(lab.hosts.map((h) => h.kind));
  for (const k of ['owa-phish', 'exchange-online', 'tarpit', 'slow-drip', 'garbage', 'oversized', 'hostile-headers']) assert.ok(kinds.has(k as never), k);
});

test('two worker threads give the same answers', { timeout: 120_000 }, async () => {
  const results = await scan(plan([`127.3.0.0/24`]), 2);
  assert.equal(results.length, HOSTS);
  assert.deepEqual(compareWithTruth(results), []);
});

test('excluded hosts are recorded as excluded and never contacted', { timeout: 60_000 }, async () => {
  const live = lab.hosts.find((h) => h.kind === 'exchange' && h.ports.https);
  assert.ok(live !== undefined);
  const before = lab.stats().connections;
  const results = await scan(plan([live.ip, `${live.ip}/32`], [`${live.ip}/32`]), 1);
  assert.equal(lab.stats().connections, before, 'no connection reached the lab');
  assert.ok(results.length >= 1);
  assert.ok(results.every((r) => r.outcome === 'excluded' && r.record === null));
});

test('an estate of only hostile hosts neither stalls nor crashes the scan', { timeout: 90_000 }, async () => {
  const hostile = await startLab({
    hosts: 64, base: '127.3.1.0', seed: 3,
    mix: { tarpit: 1, 'slow-drip': 1, garbage: 1, oversized: 1, 'hostile-headers': 1, closed: 1 },
  });
  try {
    const p: ScanPlan = { targets: ['127.3.1.0/26'], ports: [{ port: hostile.httpsPort, mode: 'tls' }], concurrency: 64, limits: LIMITS, exclusions: [], rate: 0, ratePerNetwork: 0 };
    const results = await scan(p, 1);
    assert.equal(results.length, 64);
    assert.equal(new Set(results.map((r) => r.ip)).size, 64);
    for (const r of results) {
      assert.notEqual(r.record?.product, 'ms-exchange', `${r.ip} called Exchange`);
      for (const e of r.record?.evidence ?? []) assert.ok(e.excerpt.length <= 200 && !/[\u0000-\u001f]/.test(e.excerpt), `${r.ip} evidence`);
      assert.ok((r.detail ?? '').length <= 300);
    }
    const kinds = new Set(hostile.hosts.map((h) => h.kind));
    assert.ok(kinds.has('tarpit') && kinds.has('slow-drip') && kinds.has('oversized'));
  } finally {
    await hostile.close();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planFromStored, planToStored, type ScanPlan } from './plan.js';
import { DEFAULT_LIMITS } from '../core/contracts/probe.js';
import { TocsinError } from '../core/errors.js';

const PLAN: ScanPlan = {
  targets: ['192.0.2.0/24', 'mail.example.org=192.0.2.7', '2001:db8::10'],
  ports: [{ port: 443, mode: 'tls' }, { port: 80, mode: 'http' }, { port: 8000, mode: 'auto' }],
  concurrency: 500,
  limits: { ...DEFAULT_LIMITS, connectTimeoutMs: 1500, userAgent: 'Tocsin (test)' },
  exclusions: ['192.0.2.128/25'],
  rate: 100,
  ratePerNetwork: 10,
};

/** The plan as it comes back from the database: JSON, round-tripped. */
function stored(plan: ScanPlan): unknown {
  return JSON.parse(JSON.stringify(planToStored(plan))) as unknown;
}

function problemsOf(f: () => unknown): { code: string; details: readonly string[] } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof TocsinError, String(e));
    return { code: e.code, details: e.details };
  }
  assert.fail('no error');
}

test('a plan survives storage unchanged (what a resume scans is what was planned)', () => {
  assert.deepEqual(planFromStored('1', stored(PLAN), [...PLAN.targets]), PLAN);
});

test('a plan stored before versioning (no version, no User-Agent) still reads, with the default User-Agent', () => {
  const old = stored(PLAN) as { version?: number; limits: Record<string, unknown> };
  delete old.version;
  delete old.limits.userAgent;
  const plan = planFromStored('1', old, [...PLAN.targets]);
  assert.equal(plan.limits.userAgent, DEFAULT_LIMITS.userAgent);
  assert.equal(plan.concurrency, 500);
});

test('a damaged stored plan is TOCSIN_SCAN_PLAN_INVALID listing every problem, never a half-read plan', () => {
  const bad = stored(PLAN) as Record<string, unknown>;
  bad.ports = '443,,80';
  bad.concurrency = 0;
  bad.rate = 'fast';
  (bad.limits as Record<string, unknown>).hostBudgetMs = null;
  bad.exclusions = ['192.0.2.1', 7];
  const e = problemsOf(() => planFromStored('12', bad, ['192.0.2.0/24', '10.0.0.300']));
  assert.equal(e.code, 'TOCSIN_SCAN_PLAN_INVALID');
  const fields = e.details.map((d) => d.split(':')[0]);
  assert.deepEqual(fields, ['concurrency', 'rate', 'ports', 'limits.hostBudgetMs', 'exclusions', 'targets'], e.details.join('\n'));
  assert.match(e.details.join('\n'), /10\.0\.0\.300/);
});

test('not an object, a newer version, no targets: each is the coded error, not TOCSIN_SCAN_NOT_FOUND', () => {
  assert.equal(problemsOf(() => planFromStored('3', 'garbage', ['192.0.2.1'])).code, 'TOCSIN_SCAN_PLAN_INVALID');
  const newer = { ...(stored(PLAN) as object), version: 2 };
  assert.match(problemsOf(() => planFromStored('3', newer, ['192.0.2.1'])).details.join(), /version: 2 is not a plan version/);
  assert.match(problemsOf(() => planFromStored('3', stored(PLAN), [])).details.join(), /targets: the list is empty/);
  assert.match(problemsOf(() => planFromStored('3', stored(PLAN), { a: 1 })).details.join(), /targets: expected a list/);
});

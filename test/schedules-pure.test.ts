/**
 * The cadence policy (src/schedules, pure): CyHy's default cadence per class, verification requests first, the cap
 * per tick, hosts covered by a network swept in the same tick, the next due time; durations, stored policies read
 * back defensively, discovery grouping (only the open ports of each address) and retention settings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CYHY_POLICY, DAY, classify, cutoff, describePolicy, dueTargets, groupDiscovered, sweepBlocks, inspectRetention, makePolicy, parseDuration, policyFromJson,
  type HostFacts, type Knowledge,
} from '../src/schedules/index.js';

const K: Knowledge = { criticalCves: new Set(['CVE-A', 'CVE-B']), productIds: new Set(['prod-x']) };
const NOW = new Date('2026-03-10T00:00:00Z');
const ago = (days: number): Date => new Date(NOW.getTime() - days * DAY);

function host(ip: string, o: Partial<HostFacts> = {}): HostFacts {
  return { ip, openCves: [], compromised: false, product: 'prod-x', lastScannedAt: null, ...o };
}

test('classes come from the data passed in: headline CVEs and compromise are critical, product or any finding is product', () => {
  assert.equal(classify(host('192.0.2.1', { openCves: ['CVE-A'] }), K), 'critical');
  assert.equal(classify(host('192.0.2.1', { compromised: true, product: null }), K), 'critical');
  assert.equal(classify(host('192.0.2.1', { openCves: ['CVE-OLD'] }), K), 'product');
  assert.equal(classify(host('192.0.2.1', { openCves: [], product: 'prod-x' }), K), 'product');
  assert.equal(classify(host('192.0.2.1', { product: 'other' }), K), 'other');
  // Nothing is critical for a product the caller did not name: no product is known by name here.
  assert.equal(classify(host('192.0.2.1', { openCves: ['CVE-A'] }), { criticalCves: new Set(), productIds: new Set() }), 'product');
});

test('CyHy cadence: critical daily, product weekly, networks monthly; never scanned is due now', () => {
  const plan = dueTargets({
    hosts: [
      host('192.0.2.10', { openCves: ['CVE-A'], lastScannedAt: ago(1.5) }), // critical, due
      host('192.0.2.11', { openCves: ['CVE-A'], lastScannedAt: ago(0.5) }), // critical, not yet (due in 0.5 d)
      host('192.0.2.20', { lastScannedAt: ago(8) }), // product, due
      host('192.0.2.21', { lastScannedAt: ago(6) }), // product, not yet
      host('192.0.2.30', { product: null }), // never scanned: due now
    ],
    networks: [{ cidr: '198.51.100.0/24', lastScannedAt: ago(31) }, { cidr: '203.0.113.0/24', lastScannedAt: ago(29) }],
    verification: [], knowledge: K, policy: CYHY_POLICY, now: NOW,
  });
  assert.deepEqual(plan.due.map((d) => [d.target, d.cls]), [
    // Within a class, the longest overdue first: the network was due a day ago, the new host only now.
    ['192.0.2.10', 'critical'], ['192.0.2.20', 'product'], ['198.51.100.0/24', 'other'], ['192.0.2.30', 'other'],
  ]);
  assert.equal(plan.deferred, 0);
  assert.equal(plan.nextDueAt?.toISOString(), new Date(NOW.getTime() + 0.5 * DAY).toISOString());
});

test('verification requests are first in line until the host is scanned after the request', () => {
  const plan = dueTargets({
    hosts: [host('192.0.2.10', { openCves: ['CVE-A'], lastScannedAt: ago(3) }), host('192.0.2.40', { lastScannedAt: ago(0.1) })],
    networks: [],
    verification: [{ ip: '192.0.2.40', requestedAt: ago(1) }, { ip: '192.0.2.41', requestedAt: ago(0.01) }, { ip: 'not-an-ip', requestedAt: ago(1) }],
    knowledge: K, policy: CYHY_POLICY, now: NOW,
  });
  // .40 was scanned after its request: served. .41 was never scanned: first.
  assert.deepEqual(plan.due.map((d) => [d.target, d.cls]), [['192.0.2.41', 'verification'], ['192.0.2.10', 'critical']]);
});

test('the cap counts addresses; one big network still goes alone; hosts inside a swept network are covered', () => {
  const policy = makePolicy('cyhy', { maxTargetsPerTick: 300 });
  const plan = dueTargets({
    hosts: [host('198.51.100.7', { openCves: ['CVE-B'] }), host('192.0.2.10', { openCves: ['CVE-A'] })],
    networks: [{ cidr: '198.51.100.0/24', lastScannedAt: null }, { cidr: '203.0.113.0/24', lastScannedAt: null }, { cidr: '2001:db8::/32', lastScannedAt: null }],
    verification: [], knowledge: K, policy, now: NOW,
  });
  assert.deepEqual(plan.due.map((d) => d.target), ['192.0.2.10', '198.51.100.0/24']);
  assert.deepEqual(plan.covered, ['198.51.100.7']);
  assert.equal(plan.deferred, 1);
  assert.equal(plan.nextDueAt?.getTime(), NOW.getTime(), 'something was left: due again now');
  assert.equal(plan.skipped.length, 1);
  assert.match(plan.skipped[0]!.reason, /IPv6/);
  const big = dueTargets({ hosts: [], networks: [{ cidr: '10.0.0.0/16', lastScannedAt: null }], verification: [], knowledge: K, policy, now: NOW });
  assert.deepEqual(big.due.map((d) => [d.target, d.addresses]), [['10.0.0.0/16', 65_536]]);
});

test('nothing due: empty plan with the next due time; --every gives one cadence to every class', () => {
  const every = makePolicy('every', { everyMs: 2 * DAY });
  assert.deepEqual([every.criticalEveryMs, every.productEveryMs, every.otherEveryMs], [2 * DAY, 2 * DAY, 2 * DAY]);
  const plan = dueTargets({ hosts: [host('192.0.2.10', { openCves: ['CVE-A'], lastScannedAt: ago(1) })], networks: [], verification: [], knowledge: K, policy: every, now: NOW });
  assert.deepEqual(plan.due, []);
  assert.equal(plan.nextDueAt?.getTime(), NOW.getTime() + DAY);
  assert.match(describePolicy(every), /^every \(every 2d; follow-up after 1w; 4096\/tick; ports 443\)$/);
  assert.match(describePolicy(CYHY_POLICY), /critical 1d, product 1w, other 30d/);
});

test('durations, policy options and stored policies read back defensively', () => {
  assert.equal(parseDuration('60s'), 60_000);
  assert.equal(parseDuration('1d'), DAY);
  assert.equal(parseDuration('2w'), 14 * DAY);
  for (const bad of ['', '0d', '1.5d', '-1d', '1 day', '1y']) assert.throws(() => parseDuration(bad, '--every'), /--every takes/);
  assert.throws(() => makePolicy('weekly'), /--policy/);
  assert.throws(() => makePolicy('every'), /--every/);
  assert.throws(() => makePolicy('cyhy', { ports: '443; rm -rf /' }), /--ports/);
  assert.throws(() => makePolicy('cyhy', { maxTargetsPerTick: 0 }), /--max-targets/);
  assert.deepEqual(policyFromJson(JSON.parse(JSON.stringify(makePolicy('cyhy', { ports: '8443/tls' })))), { ...CYHY_POLICY, ports: '8443/tls' });
  // A hand-edited row: absurd values fall back (never a tick that scans every millisecond).
  const odd = policyFromJson({ name: 'x', criticalEveryMs: 1, productEveryMs: -5, otherEveryMs: 'a', ports: 'evil;', maxTargetsPerTick: null });
  assert.equal(odd.name, 'cyhy');
  assert.equal(odd.criticalEveryMs, 60_000);
  assert.equal(odd.productEveryMs, CYHY_POLICY.productEveryMs);
  assert.equal(odd.ports, '443');
  assert.equal(odd.maxTargetsPerTick, CYHY_POLICY.maxTargetsPerTick);
  assert.deepEqual(policyFromJson(null), CYHY_POLICY);
});

test('discovery: each address is scanned on exactly its open ports; junk dropped', () => {
  const groups = groupDiscovered([
    { ip: '192.0.2.1', port: 443 }, { ip: '192.0.2.2', port: 443 }, { ip: '192.0.2.2', port: 8443 }, { ip: '192.0.2.3', port: 443 },
    { ip: '192.0.2.1', port: 443 }, { ip: '::ffff:192.0.2.9', port: 80 }, { ip: 'bogus', port: 443 }, { ip: '192.0.2.4', port: 0 },
  ]);
  assert.deepEqual(groups, [
    { ips: ['192.0.2.1', '192.0.2.3'], ports: [443] },
    { ips: ['192.0.2.2'], ports: [443, 8443] },
    { ips: ['::ffff:192.0.2.9'], ports: [80] },
  ]);
});

test('retention settings: unset keeps forever, every problem listed, cut-offs in days', () => {
  assert.deepEqual(inspectRetention({}).settings, { observationsDays: null, rawDays: null, auditDays: null });
  const ok = inspectRetention({ TOCSIN_RETENTION_OBSERVATIONS_DAYS: '400', TOCSIN_RETENTION_RAW_DAYS: ' 90 ', TOCSIN_RETENTION_AUDIT_DAYS: '' });
  assert.deepEqual([ok.settings, ok.problems], [{ observationsDays: 400, rawDays: 90, auditDays: null }, []]);
  const bad = inspectRetention({ TOCSIN_RETENTION_OBSERVATIONS_DAYS: '0', TOCSIN_RETENTION_RAW_DAYS: '3d', TOCSIN_RETENTION_AUDIT_DAYS: '99999999' });
  assert.equal(bad.problems.length, 3);
  assert.match(bad.problems.join('\n'), /TOCSIN_RETENTION_RAW_DAYS="3d" is not a whole number/);
  assert.equal(cutoff(null, NOW), null);
  assert.equal(cutoff(10, NOW)?.toISOString(), '2026-02-28T00:00:00.000Z');
});

test('a network larger than a tick is swept in aligned blocks, each with its own cadence', () => {
  assert.deepEqual(sweepBlocks('192.0.2.0/24', 4096), ['192.0.2.0/24']);
  assert.deepEqual(sweepBlocks('10.0.0.0/16', 16_384), ['10.0.0.0/18', '10.0.64.0/18', '10.0.128.0/18', '10.0.192.0/18']);
  assert.deepEqual(sweepBlocks('10.0.0.0/22', 300), ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24']);
  assert.equal(sweepBlocks('10.0.0.0/8', 4096).length, 4096);
  // Never more than MAX_SWEEP_BLOCKS blocks, even for a tiny cap.
  assert.equal(sweepBlocks('10.0.0.0/8', 1).length, 65_536);
  assert.deepEqual(sweepBlocks('2001:db8::/32', 10), ['2001:db8::/32']);
  assert.deepEqual(sweepBlocks('not a cidr', 10), ['not a cidr']);
});

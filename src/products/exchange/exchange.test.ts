/**
 * Exchange-specific behaviour: the probe plan (how many requests each kind of host costs) and the
 * fingerprint rules (two signal kinds, Exchange Online, build preference, conflicts, hostile values),
 * replayed over the recorded fixtures and over hand-made facts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { factSummary, loadAllFixtures } from '../../../test/helpers/detector-fixtures.js';
import { runDetectors } from '../registry.js';
import type { Evidence, Fact, ProbeResponse } from '../sdk.js';
import { fingerprintExchange } from './fingerprint.js';
import { EXCHANGE_PROBES, EXPORTTOOL_PATH, nextProbes, PROBE_AUTODISCOVER, PROBE_EXPORTTOOL, PROBE_OWA_LOGON, PROBE_OWA_ROOT } from './probes.js';

const FIXTURES = loadAllFixtures(fileURLToPath(new URL('..', import.meta.url))).filter((f) => f.file.includes('/exchange/'));

/** Runs the plan as the engine would; a probe without a recorded response counts as sent but unanswered. */
function simulatePlan(responses: ReadonlyMap<string, ProbeResponse>): string[] {
  const sent = new Set<string>();
  const answered = new Map<string, ProbeResponse>();
  const order: string[] = [];
  for (let stage = 0; stage < 10; stage++) {
    const batch = nextProbes(answered, sent);
    if (batch.length === 0) return order;
    for (const p of batch) {
      assert.ok(!sent.has(p.id), `plan asked twice for ${p.id}`);
      sent.add(p.id);
      order.push(p.id);
      const r = responses.get(p.id);
      if (r !== undefined) answered.set(p.id, r);
    }
  }
  assert.fail('plan did not terminate');
}

test('plan data: fixed GET paths, stage 0 is the OWA logon page only', () => {
  assert.deepEqual(
    EXCHANGE_PROBES.map((p) => [p.id, p.method, p.path]),
    [
      [PROBE_OWA_LOGON, 'GET', '/owa/auth/logon.aspx'],
      [PROBE_EXPORTTOOL, 'GET', EXPORTTOOL_PATH],
      [PROBE_AUTODISCOVER, 'GET', '/autodiscover/autodiscover.xml'],
      [PROBE_OWA_ROOT, 'GET', '/owa/'],
    ],
  );
  assert.deepEqual(nextProbes(new Map(), new Set()).map((p) => p.id), [PROBE_OWA_LOGON]);
  // A host that never answered stage 0 (timeout, refused) costs nothing more.
  assert.deepEqual(nextProbes(new Map(), new Set([PROBE_OWA_LOGON])), []);
});

for (const fx of FIXTURES) {
  test(`fixture ${fx.name}: probe plan and fingerprint`, () => {
    if (fx.expectPlan !== null) assert.deepEqual(simulatePlan(fx.responses), fx.expectPlan, 'probe plan');
    const want = fx.expectFingerprint;
    if (want === null) return;
    // The fingerprint sees only what the plan would actually have fetched.
    const fetched = new Map([...fx.responses].filter(([id]) => fx.expectPlan === null || fx.expectPlan.includes(id)));
    const run = runDetectors(fetched);
    const fp = fingerprintExchange(run.facts);
    assert.equal(fp.product, want.product, `product; notes: ${fp.notes.join(' | ')}; facts: ${run.facts.map(factSummary).join(', ')}`);
    assert.equal(fp.build, want.build, 'build');
    assert.equal(fp.precision, want.precision, 'precision');
    for (const s of want.notesInclude ?? []) assert.ok(fp.notes.some((n) => n.includes(s)), `a note with "${s}" in ${JSON.stringify(fp.notes)}`);
    if (fp.product === 'ms-exchange' || fp.product === 'ms-exchange-online') assert.ok(fp.evidence.length > 0, 'evidence');
  });
}

test('plan cost: Exchange with X-OWA-Version needs 1 request, a non-Exchange host 1, a 2013+ clone 3', () => {
  const byName = new Map(FIXTURES.map((f) => [f.name, f]));
  const cost = (name: string): number => simulatePlan(byName.get(name)?.responses ?? new Map()).length;
  assert.equal(cost('exchange-2016-cu19'), 1);
  assert.equal(cost('exchange-se-rtm'), 1);
  assert.equal(cost('exchange-2010-sp3'), 1);
  assert.equal(cost('iis-404'), 1);
  assert.equal(cost('nginx-404'), 1);
  assert.equal(cost('exchange-online-front-end'), 1);
  assert.equal(cost('owa-phishing-clone'), 3);
  assert.equal(cost('exchange-2010-sp3-header-stripped'), 2);
  assert.equal(cost('exchange-2013-cu23-exporttool'), 2);
  // A 2013+ claim that the IIS version contradicts: the manifest is asked to confirm it (issue 6, finding 5).
  assert.equal(cost('honeypot-iis75-owa-version'), 2);
  assert.equal(cost('exchange-2016-behind-old-proxy'), 2);
  // Exchange 2010 has no export tool: nothing more to ask.
  assert.equal(cost('honeypot-iis10-exchange-2010'), 1);
});

// ---- fingerprint rules on hand-made facts ----

function ev(detector: string, probe = PROBE_OWA_LOGON): Evidence {
  return { detector, probe, url: 'https://192.0.2.1/x', where: 'header', excerpt: detector };
}
const sig = (signal: string, detector = 'd'): Fact => ({ kind: 'exchange-signal', signal, evidence: ev(detector) });
const build = (b: string, precision: 'exact' | 'cu', detector: string): Fact => ({ kind: 'build', build: b, precision, evidence: ev(detector) });

test('fingerprint: one signal kind is never Exchange, whatever the builds; two kinds are', () => {
  const one = fingerprintExchange([sig('owa-page'), sig('owa-page'), build('15.1.2176', 'cu', 'exchange-owa-asset-path')]);
  assert.equal(one.product, null);
  assert.equal(one.build, null);
  assert.ok(one.notes.some((n) => n.includes('only one Exchange signal kind')));
  const headersOnly = fingerprintExchange([sig('exchange-headers'), build('15.1.2176.9', 'exact', 'exchange-x-owa-version')]);
  assert.equal(headersOnly.product, null);
  const two = fingerprintExchange([sig('exchange-headers'), sig('owa-page'), build('15.1.2176.9', 'exact', 'exchange-x-owa-version')]);
  assert.deepEqual([two.product, two.build, two.precision], ['ms-exchange', '15.1.2176.9', 'exact']);
  const noBuild = fingerprintExchange([sig('exchange-headers'), sig('exporttool-manifest')]);
  assert.deepEqual([noBuild.product, noBuild.build, noBuild.precision], ['ms-exchange', null, null]);
});

test('fingerprint: unknown signal kinds do not count', () => {
  const fp = fingerprintExchange([sig('owa-page'), sig('made-up-kind')]);
  assert.equal(fp.product, null);
  assert.ok(fp.notes.some((n) => n.includes('unknown signal kind')));
});

test('fingerprint: non-Exchange product names the service', () => {
  const fp = fingerprintExchange([{ kind: 'product', product: 'nginx', evidence: ev('http-server-product') }]);
  assert.equal(fp.product, 'nginx');
  assert.equal(fingerprintExchange([]).product, null);
});

test('fingerprint: Exchange Online is never on-premises (fact, 15.20 build, or 15.20 asset path)', () => {
  const base = [sig('exchange-headers'), sig('owa-page')];
  const a = fingerprintExchange([...base, { kind: 'exchange-online', evidence: ev('exchange-online-front-end') }, build('15.1.2176.9', 'exact', 'exchange-x-owa-version')]);
  assert.deepEqual([a.product, a.build, a.precision], ['ms-exchange-online', null, null]);
  const b = fingerprintExchange([...base, build('15.20.4065.25', 'exact', 'exchange-x-owa-version')]);
  assert.equal(b.product, 'ms-exchange-online');
  assert.ok(b.notes.some((n) => n.includes('15.20.4065.25')));
  const c = fingerprintExchange([sig('owa-page'), build('15.20.4065', 'cu', 'exchange-owa-asset-path')]);
  assert.equal(c.product, 'ms-exchange-online');
});

test('fingerprint: exact beats cu; X-OWA-Version > export tool manifest > asset path', () => {
  const kinds = [sig('exchange-headers'), sig('owa-page'), sig('exporttool-manifest')];
  const fp = fingerprintExchange([
    ...kinds,
    build('15.1.2176', 'cu', 'exchange-owa-asset-path'),
    build('15.1.2176.9', 'exact', 'exchange-exporttool-manifest'),
    build('15.1.2176.2', 'exact', 'exchange-x-owa-version'),
  ]);
  assert.deepEqual([fp.build, fp.precision], ['15.1.2176.2', 'exact']);
  assert.ok(fp.notes.some((n) => n.includes('conflicting exact builds') && n.includes('15.1.2176.9')));
  const manifestOverPath = fingerprintExchange([...kinds, build('14.3.513.0', 'exact', 'exchange-owa-asset-path'), build('15.0.1497.12', 'exact', 'exchange-exporttool-manifest')]);
  assert.equal(manifestOverPath.build, '15.0.1497.12');
  const cuOnly = fingerprintExchange([...kinds, build('15.2.858', 'cu', 'exchange-owa-asset-path')]);
  assert.deepEqual([cuOnly.build, cuOnly.precision], ['15.2.858', 'cu']);
});

test('fingerprint: equally trusted conflicting builds keep the lower one and say so', () => {
  const fp = fingerprintExchange([
    sig('exchange-headers'),
    sig('owa-page'),
    build('15.1.2507.6', 'exact', 'exchange-x-owa-version'),
    build('15.1.2375.7', 'exact', 'exchange-x-owa-version'),
  ]);
  assert.equal(fp.build, '15.1.2375.7');
  assert.ok(fp.notes.some((n) => n.includes('kept 15.1.2375.7') && n.includes('15.1.2507.6')));
});

test('fingerprint: hostile or impossible builds are rejected with a clean note, never reported', () => {
  const hostile = ['15.1.2176.9<script>', '15.1.2176.9\u0000', '15.01.2176.9', '1.2.3.4', '15.1.2176', '', '15.1.2176.9.9', '-15.1.2176.9', '１５.1.2176.9'];
  for (const h of hostile) {
    const fp = fingerprintExchange([sig('exchange-headers'), sig('owa-page'), build(h, 'exact', 'exchange-x-owa-version')]);
    assert.equal(fp.product, 'ms-exchange');
    assert.equal(fp.build, null, h);
    assert.ok(fp.notes.some((n) => n.startsWith('rejected build value')), h);
     
    for (const n of fp.notes) assert.doesNotMatch(n, /[\u0000-\u001f]/);
  }
  // A 3-part value claiming "exact" or a 4-part value claiming "cu" is inconsistent: rejected.
  assert.equal(fingerprintExchange([sig('exchange-headers'), sig('owa-page'), build('15.1.2176.9', 'cu', 'x')]).build, null);
});

test('FBA logon URL: OWA redirect targets only (2010 plain, 2013+ encoded), with url= and reason=', async () => {
  const { isFbaLogonUrl } = await import('./common.js');
  assert.ok(isFbaLogonUrl('https://h/owa/auth/logon.aspx?url=https://h/owa/&reason=0'));
  assert.ok(isFbaLogonUrl('https://h:8443/OWA/auth/logon.aspx?url=https%3a%2f%2fh%2fowa%2f&reason=0'));
  assert.ok(isFbaLogonUrl('/owa/auth/logon.aspx?replaceCurrent=1&url=https%3a%2f%2fh%2fecp%2f&reason=2'));
  for (const bad of [
    'https://h/owa/auth/logon.aspx',
    'https://h/owa/auth/logon.aspx?url=&reason=0',
    'https://h/owa/auth/logon.aspx?url=x&reason=zero',
    'https://h/owa/auth/logon.aspx.php?url=x&reason=0',
    'https://h/login?next=/owa/auth/logon.aspx?url=x&reason=0',
    'owa/auth/logon.aspx?url=x&reason=0',
    `https://h/owa/auth/logon.aspx?url=${'x'.repeat(5000)}&reason=0`,
  ]) {
    assert.equal(isFbaLogonUrl(bad), false, bad);
  }
});

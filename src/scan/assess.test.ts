import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assess } from './assess.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';
import type { Evidence, Fact, ProbeResponse } from '../products/sdk.js';
import type { FingerprintLike } from './kit.js';
import { exchange } from '../products/exchange/index.js';

const kb = loadExchangeKb();
/** The Exchange product as the engine hands it to assess(). */
const product = { id: exchange.id, name: exchange.name, kb };
const target = { ip: '127.0.0.5', port: 443, hostname: 'mail.example', tls: true };
const at = '2021-03-10T00:00:00.000Z';
const ev: Evidence = { detector: 'exchange-x-owa-version', probe: 'owa-logon', url: 'https://mail.example/owa/auth/logon.aspx', where: 'header', name: 'x-owa-version', excerpt: '15.1.2176.2' };

function responses(status: number): Map<string, ProbeResponse> {
  return new Map([['owa-logon', { probeId: 'owa-logon', url: ev.url, status, statusLine: `HTTP/1.1 ${status} OK`, headers: [], body: Buffer.alloc(0), truncated: false, redirects: [] }]]);
}

function fp(p: Partial<FingerprintLike>): FingerprintLike {
  return { product: null, build: null, precision: null, evidence: [], notes: [], ...p };
}

test('exact build: verdicts are exactly what the knowledge base says for it', () => {
  const r = assess(target, responses(200), [], fp({ product: 'ms-exchange', build: '15.1.2176.2', precision: 'exact', evidence: [ev] }), product, at);
  const want = kb.assess('15.1.2176.2', 'exact');
  assert.equal(r.product, 'ms-exchange');
  assert.equal(r.build, '15.1.2176.2');
  assert.equal(r.buildPrecision, 'exact');
  assert.equal(r.edition, 'Exchange Server 2016');
  assert.equal(r.cu, 'CU19');
  assert.deepEqual(r.vulnerable, want.vulnerable);
  assert.deepEqual(r.indeterminate, want.indeterminate);
  assert.ok(r.vulnerable.includes('CVE-2021-26855'), 'ProxyLogon before Mar21SU');
  assert.equal(r.status, 200);
  assert.deepEqual(r.evidence, [ev]);
  assert.equal(r.hostname, 'mail.example');
  assert.equal(r.scannedAt, at);
});

test('patched build is not vulnerable to ProxyLogon; CU-only evidence leaves SU unknown', () => {
  const patched = assess(target, responses(200), [], fp({ product: 'ms-exchange', build: '15.1.2176.9', precision: 'exact' }), product, at);
  assert.equal(patched.su, 'Mar21SU');
  assert.ok(!patched.vulnerable.includes('CVE-2021-26855'));
  assert.ok(!patched.indeterminate.includes('CVE-2021-26855'));
  const cu = assess(target, responses(200), [], fp({ product: 'ms-exchange', build: '15.1.2176', precision: 'cu' }), product, at);
  assert.equal(cu.buildPrecision, 'cu');
  assert.equal(cu.su, null);
  assert.equal(cu.cu, 'CU19');
  assert.ok(cu.indeterminate.includes('CVE-2021-26855'), 'ProxyLogon is indeterminate when only CU19 is visible');
});

test('long-form builds are normalised to digits and dots', () => {
  const r = assess(target, responses(200), [], fp({ product: 'ms-exchange', build: '15.01.2176.009', precision: 'exact' }), product, at);
  assert.equal(r.build, '15.1.2176.9');
});

test('non-Exchange hosts: other product or null, no verdicts', () => {
  const iis: Fact = { kind: 'product', product: 'iis', evidence: { ...ev, detector: 'iis', name: 'server', excerpt: 'Microsoft-IIS/10.0' } };
  const r = assess(target, responses(404), [iis], fp({}), product, at);
  assert.equal(r.product, 'iis');
  assert.deepEqual([r.vulnerable, r.indeterminate], [[], []]);
  assert.equal(r.build, null);
  assert.equal(r.edition, null);
  assert.equal(r.status, 404);
  const none = assess(target, responses(404), [], fp({}), product, at);
  assert.equal(none.product, null);
  assert.deepEqual(none.evidence, []);
});

test('Exchange Online and build-less Exchange get no verdicts, with a note saying why', () => {
  const online = assess(target, responses(200), [], fp({ product: 'ms-exchange-online', build: '15.20.4.1' , precision: 'exact' }), product, at);
  assert.deepEqual([online.vulnerable, online.indeterminate, online.build], [[], [], null]);
  // The note comes from the Exchange product's fingerprint (assess() knows no product ids).
  const onlineFacts: Fact[] = [{ kind: 'exchange-online', evidence: ev }];
  const viaProduct = assess(target, responses(200), onlineFacts, exchange.fingerprint(onlineFacts), product, at);
  assert.equal(viaProduct.product, 'ms-exchange-online');
  assert.deepEqual(viaProduct.vulnerable, []);
  assert.ok(viaProduct.notes.includes('Exchange Online front end: not an on-premises server, no verdicts'), JSON.stringify(viaProduct.notes));
  const noBuild = assess(target, responses(200), [], fp({ product: 'ms-exchange' }), product, at);
  assert.equal(noBuild.build, null);
  assert.match(noBuild.notes.join(' '), /no build/);
});

test('a hostile build string never reaches the record', () => {
  const r = assess(target, responses(200), [], fp({ product: 'ms-exchange', build: '15.1.2176.9\u001b[31m', precision: 'exact' }), product, at);
  assert.equal(r.build, null);
  assert.deepEqual(r.vulnerable, []);
});

test('a drifted wire revision is reported as the listed build its verdicts are about', () => {
  const r = assess(target, responses(200), [], fp({ product: 'ms-exchange', build: '15.2.858.2', precision: 'exact' }), product, at);
  assert.equal(r.build, '15.2.858.5');
  assert.equal(r.cu, 'CU9');
  assert.deepEqual(r.vulnerable, kb.assess('15.2.858.2', 'exact').vulnerable);
  assert.ok(r.notes.some((n) => n.includes('15.2.858.2')));
});

test('honeypot pattern (IIS 7.5 + X-OWA-Version 15.1.1466.3): never an exact build; the record says "suspected honeypot"', async () => {
  // End to end over the recorded-style fixtures: real detectors, fingerprint and knowledge base.
  const { loadFixture } = await import('../../test/helpers/detector-fixtures.js');
  const { runDetectors } = await import('../products/registry.js');
  const dir = new URL('../products/exchange/fixtures/', import.meta.url).pathname;
  const record = (name: string): ReturnType<typeof assess> => {
    const fx = loadFixture(`${dir}${name}.json`);
    const run = runDetectors(fx.responses);
    return assess(target, fx.responses, run.facts, exchange.fingerprint(run.facts), product, at);
  };
  const exactClaim = kb.assess('15.1.1466.3', 'exact');
  // The manifest answered 404 as well: two tells against copyable claims: not Exchange, no verdicts.
  const honeypot = record('honeypot-iis75-owa-version');
  assert.notEqual(honeypot.product, 'ms-exchange');
  assert.equal(honeypot.buildPrecision, null);
  assert.deepEqual([honeypot.vulnerable, honeypot.indeterminate], [[], []]);
  assert.ok(honeypot.notes.some((n) => n.startsWith('suspected honeypot')), JSON.stringify(honeypot.notes));
  // ECP blocked: Exchange at CU precision, no SU, fewer certain verdicts than the copied exact build claims.
  const blocked = record('honeypot-iis75-owa-version-ecp-blocked');
  assert.equal(blocked.product, 'ms-exchange');
  assert.equal(blocked.buildPrecision, 'cu');
  assert.equal(blocked.build, '15.1.1466');
  assert.equal(blocked.su, null);
  assert.ok(blocked.notes.some((n) => n.startsWith('suspected honeypot')), JSON.stringify(blocked.notes));
  assert.ok(blocked.vulnerable.length < exactClaim.vulnerable.length, `${blocked.vulnerable.length} vs ${exactClaim.vulnerable.length}`);
  // A real server behind an IIS 7.5 proxy whose manifest confirms the build keeps its exact build.
  const proxied = record('exchange-2016-behind-old-proxy');
  assert.equal(proxied.buildPrecision, 'exact');
  assert.equal(proxied.build, '15.1.2176.9');
  assert.ok(!proxied.notes.some((n) => n.startsWith('suspected honeypot')));
});

test('per-host cost: the record carries the knowledge base\'s verdict lists, not a copy per host', () => {
  // A copy per host was allocated and then structured-cloned once per host from the worker threads;
  // shared lists are sent once per batch. Values are the same either way (the lists are frozen).
  const f = fp({ product: 'ms-exchange', build: '15.1.2176.2', precision: 'exact', evidence: [ev] });
  const a = assess(target, responses(200), [], f, product, at);
  const b = assess({ ...target, ip: '127.0.0.6' }, responses(200), [], f, product, at);
  const want = kb.assess('15.1.2176.2', 'exact');
  assert.ok(want.vulnerable.length > 0);
  assert.equal(a.vulnerable, want.vulnerable);
  assert.equal(a.indeterminate, want.indeterminate);
  assert.equal(a.vulnerable, b.vulnerable);
  assert.ok(Object.isFrozen(a.vulnerable));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadExchangeKb } from '../src/products/exchange/kb/index.js';
import { DEFAULT_MIX, generateEstate, kindCounts, LAB_KINDS, LAB_MIXES, VARIANTS, WIRE_DRIFT, type LabHost } from './estate.js';
import { formatIPv4 as intToIpv4, parseIPv4 as ipv4ToInt } from '../src/core/ip.js';
import { admitConnection, hostIndex, isLoopbackIpv4 } from './net-guard.js';

const builds = loadExchangeKb().builds;

test('generation is deterministic per seed and differs between seeds', () => {
  const a = generateEstate({ hosts: 512, base: '127.1.0.0', seed: 42 }, builds);
  const b = generateEstate({ hosts: 512, base: '127.1.0.0', seed: 42 }, builds);
  const c = generateEstate({ hosts: 512, base: '127.1.0.0', seed: 43 }, builds);
  assert.deepEqual(a, b);
  assert.notDeepEqual(
    a.map((h) => h.kind),
    c.map((h) => h.kind),
  );
});

test('hosts occupy consecutive addresses from base', () => {
  const hosts = generateEstate({ hosts: 300, base: '127.2.0.250', seed: 1 }, builds);
  assert.equal(hosts[0]?.ip, '127.2.0.250');
  assert.equal(hosts[6]?.ip, '127.2.1.0');
  hosts.forEach((h, i) => assert.equal(ipv4ToInt(h.ip), (ipv4ToInt('127.2.0.250') ?? 0) + i));
});

test('kind counts follow the mix and every kind appears in a small estate', () => {
  const counts = kindCounts(4096, DEFAULT_MIX);
  let total = 0;
  for (const n of counts.values()) total += n;
  assert.equal(total, 4096);
  assert.equal(counts.get('exchange'), Math.round(4096 * 0.72));
  const small = generateEstate({ hosts: 40, base: '127.1.0.0', seed: 9 }, builds);
  for (const k of LAB_KINDS) assert.ok(small.some((h) => h.kind === k), `kind ${k} missing`);
  const onlyEx = generateEstate({ hosts: 50, base: '127.1.0.0', seed: 9, mix: { exchange: 1 } }, builds);
  assert.ok(onlyEx.every((h) => h.kind === 'exchange'));
});

test('the all-exchange mix makes every host a reachable Exchange server with a build to read', () => {
  const hosts = generateEstate({ hosts: 4096, base: '127.98.0.0', seed: 1, mix: LAB_MIXES['all-exchange'] }, builds);
  assert.equal(hosts.length, 4096);
  for (const h of hosts) {
    assert.equal(h.kind, 'exchange', h.ip);
    assert.equal(h.ports.https, true, h.ip);
    assert.equal(h.outcome.https, 'http', h.ip);
    assert.equal(h.expected.product, 'ms-exchange', h.ip);
  }
  assert.equal(LAB_MIXES['default'], DEFAULT_MIX);
});

test('exchange hosts run builds the knowledge base lists, and the truth is consistent', () => {
  const kb = loadExchangeKb();
  const listed = new Set(kb.builds.filter((b) => !b.uncertain).map((b) => b.build));
  const hosts = generateEstate({ hosts: 2048, base: '127.1.0.0', seed: 5 }, builds);
  const ex = hosts.filter((h) => h.kind === 'exchange');
  assert.ok(ex.length > 1000);
  for (const h of ex) {
    assert.ok(h.build !== null && listed.has(h.build), `${h.ip} runs unlisted build ${String(h.build)}`);
    assert.equal(h.wireBuild, WIRE_DRIFT[h.build] ?? h.build);
    assert.equal(h.expected.product, 'ms-exchange');
    assert.equal(h.expected.cu, h.cu);
    const is2010 = h.build.startsWith('14.');
    assert.equal(h.exposes.assetPath, is2010 ? 'full' : 'cu');
    if (is2010) assert.equal(h.exposes.exporttool, false);
    const exactVisible = h.exposes.xOwaVersion || h.exposes.exporttool || is2010;
    assert.equal(h.expected.buildPrecision, exactVisible ? 'exact' : 'cu');
    assert.equal(h.expected.build, exactVisible ? h.build : h.build.split('.').slice(0, 3).join('.'));
    // The knowledge base maps what the wire shows back to the listed build (drift included).
    if (exactVisible) assert.equal(kb.assess(h.wireBuild ?? '', 'exact').listedBuild, h.build);
  }
  // March 2021 shape: every edition present, 2016 the largest, a share on the March 2021 updates,
  // CU-only hosts, and the drifting 2019 CU9 build.
  const by = (pred: (h: LabHost) => boolean): number => ex.filter(pred).length;
  const e2016 = by((h) => h.edition === 'Exchange Server 2016');
  for (const e of ['Exchange Server 2010', 'Exchange Server 2013', 'Exchange Server 2019', 'Exchange Server SE']) {
    const n = by((h) => h.edition === e);
    assert.ok(n > 0 && n < e2016, `${e}: ${n} vs 2016 ${e2016}`);
  }
  assert.ok(by((h) => h.su === 'Mar21SU' || h.cu === 'SP3 RU32') > ex.length * 0.15);
  assert.ok(by((h) => h.expected.buildPrecision === 'cu') > ex.length * 0.05);
  assert.ok(ex.some((h) => h.wireBuild === '15.2.858.2' && h.build === '15.2.858.5'));
});

test('non-Exchange hosts expect no product; Exchange Online expects ms-exchange-online without a build', () => {
  const hosts = generateEstate({ hosts: 1024, base: '127.1.0.0', seed: 3 }, builds);
  for (const h of hosts) {
    if (h.kind === 'exchange') continue;
    if (h.kind === 'exchange-online') {
      assert.equal(h.expected.product, 'ms-exchange-online');
      assert.match(h.build ?? '', /^15\.20\.\d+\.\d+$/);
    } else {
      assert.equal(h.expected.product, null);
      assert.equal(h.build, null);
    }
    assert.equal(h.expected.build, null);
    assert.ok(VARIANTS[h.kind].includes(h.variant));
    assert.equal(h.ports.https, h.kind !== 'closed');
  }
});

test('bad options are refused', () => {
  assert.throws(() => generateEstate({ hosts: 0, base: '127.1.0.0', seed: 1 }, builds), RangeError);
  assert.throws(() => generateEstate({ hosts: 70_000, base: '127.1.0.0', seed: 1 }, builds), RangeError);
  assert.throws(() => generateEstate({ hosts: 10, base: '10.0.0.1', seed: 1 }, builds), RangeError);
  assert.throws(() => generateEstate({ hosts: 10, base: '127.255.255.250', seed: 1 }, builds), RangeError);
});

test('loopback admission: only connections with both ends in 127.0.0.0/8', () => {
  assert.equal(admitConnection('127.1.0.5', '127.0.0.1'), true);
  assert.equal(admitConnection('::ffff:127.1.0.5', '::ffff:127.0.0.1'), true);
  assert.equal(admitConnection('127.1.0.5', '192.0.2.10'), false);
  assert.equal(admitConnection('10.0.0.5', '127.0.0.1'), false);
  assert.equal(admitConnection('::1', '::1'), false);
  assert.equal(admitConnection(undefined, '127.0.0.1'), false);
  assert.equal(admitConnection('127.0.0.1', '128.0.0.1'), false);
  assert.equal(isLoopbackIpv4('126.255.255.255'), false);
  assert.equal(isLoopbackIpv4('127.255.255.255'), true);
  assert.equal(isLoopbackIpv4('127.1.2'), false);
  assert.equal(isLoopbackIpv4('127.1.2.256'), false);
});

test('host index maps addresses inside the estate only', () => {
  const base = ipv4ToInt('127.1.0.0') ?? 0;
  assert.equal(hostIndex('127.1.0.0', base, 10), 0);
  assert.equal(hostIndex('::ffff:127.1.0.9', base, 10), 9);
  assert.equal(hostIndex('127.1.0.10', base, 10), -1);
  assert.equal(hostIndex('127.0.255.255', base, 10), -1);
  assert.equal(intToIpv4(base + 257), '127.1.1.1');
});

test('expected outcomes per port follow kind, variant and open ports', () => {
  const hosts = generateEstate({ hosts: 400, base: '127.1.0.0', seed: 8 }, builds);
  for (const h of hosts) {
    if (!h.ports.http) assert.equal(h.outcome.http, 'reset');
    if (h.kind === 'exchange') assert.equal(h.outcome.https, 'http');
  }
  const o = (kind: LabHost['kind'], variant: string): LabHost['outcome'] | undefined => hosts.find((h) => h.kind === kind && h.variant === variant)?.outcome;
  assert.deepEqual(o('closed', 'reset'), { https: 'reset', http: 'reset' });
  assert.deepEqual(o('tarpit', 'silent'), { https: 'timeout', http: 'timeout' });
  assert.deepEqual(o('garbage', 'random-bytes'), { https: 'tls-error', http: 'not-http' });
  assert.deepEqual(o('garbage', 'tls-then-random'), { https: 'not-http', http: 'not-http' });
  assert.deepEqual(o('oversized', 'many-headers'), { https: 'http-oversized', http: 'http-oversized' });
  assert.deepEqual(o('hostile-headers', 'crlf-ish'), { https: 'http-malformed', http: 'http-malformed' });
});

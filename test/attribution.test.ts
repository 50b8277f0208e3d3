/**
 * The attribution engine (src/attribution): precedence manual > network > asn > domain, nested networks,
 * IPv6 and IPv4-mapped addresses, domain suffixes on label boundaries, wildcard SANs, ASN-only and
 * domain-only organisations, ties, unattributed addresses, contacts and the snapshot problems set aside.
 * Each expectation is written by hand from the registry below, not read back from the engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attribute,
  buildAttributionIndex,
  parseRange,
  type Attribution,
  type ExposureFacts,
  type RegistrySnapshot,
} from '../src/attribution/index.js';

const ISP = 1;
const CUSTOMER = 2;
const ASN_ONLY = 3;
const DOMAIN_ONLY = 4;
const MANUAL_ORG = 5;
const TWIN_A = 6;
const TWIN_B = 7;
const V6_ORG = 8;
const SUB_ORG = 9;

const snapshot: RegistrySnapshot = {
  organisations: [
    { id: ISP, name: 'Example ISP', contacts: [] },
    { id: CUSTOMER, name: 'Customer Ltd', contacts: [{ role: 'technical', email: 'it@customer.example' }, { role: 'security', email: 'cert@customer.example', language: 'en' }] },
    { id: ASN_ONLY, name: 'ASN Only AG' },
    { id: DOMAIN_ONLY, name: 'Domain Only GmbH' },
    { id: MANUAL_ORG, name: 'Manual Org' },
    { id: TWIN_A, name: 'Twin A' },
    { id: TWIN_B, name: 'Twin B' },
    { id: V6_ORG, name: 'Six Networks' },
    { id: SUB_ORG, name: 'Mail Sub' },
  ],
  networks: [
    { id: 10, orgId: ISP, network: '192.0.2.0/24', abuseMailbox: 'abuse@isp.example', source: 'ripe' },
    { id: 11, orgId: CUSTOMER, network: '192.0.2.64/26' },
    // RPSL-style range, not CIDR-aligned, inside nothing else.
    { id: 12, orgId: V6_ORG, network: '198.51.100.10 - 198.51.100.20' },
    { id: 13, orgId: V6_ORG, network: '2001:db8::/32', abuseMailbox: 'abuse@six.example' },
    { id: 14, orgId: CUSTOMER, network: '2001:db8:1::/48' },
    // The same /28 held by two organisations in the same layer: a tie.
    { id: 15, orgId: TWIN_B, network: '203.0.113.0/28' },
    { id: 16, orgId: TWIN_A, network: '203.0.113.0/28' },
    // The same /28 imported for one and entered manually for another: manual wins.
    { id: 17, orgId: ISP, network: '203.0.113.16/28', layer: 'imported' },
    { id: 18, orgId: CUSTOMER, network: '203.0.113.16/28', layer: 'manual' },
    // Written as IPv4-mapped IPv6: denotes the IPv4 network.
    { id: 19, orgId: MANUAL_ORG, network: '::ffff:100.64.0.0/120' },
  ],
  asns: [
    { id: 30, orgId: ASN_ONLY, asn: 64500 },
    { id: 31, orgId: ISP, asn: 64501 },
  ],
  domains: [
    { id: 40, orgId: DOMAIN_ONLY, domain: 'example.org' },
    { id: 41, orgId: SUB_ORG, domain: 'Sub.Example.ORG.' },
    { id: 42, orgId: ISP, domain: 'isp.example' },
  ],
  overrides: [{ id: 50, orgId: MANUAL_ORG, target: '192.0.2.70', note: 'ticket 4711' }],
  prefixAsns: [
    { prefix: '10.0.0.0/8', asn: 64500 },
    { prefix: '10.1.0.0/16', asn: 64501 },
  ],
};

const index = buildAttributionIndex(snapshot);
const who = (facts: ExposureFacts): Attribution => attribute(index, facts);

test('the snapshot is indexed without problems', () => {
  assert.deepEqual(index.problems, []);
});

test('precedence: a manual override beats the customer network, which beats the ISP network', () => {
  const r = who({ ip: '192.0.2.70', asn: 64501, feedHostname: 'www.example.org' });
  assert.equal(r.orgId, MANUAL_ORG);
  assert.equal(r.rule, 'manual');
  assert.equal(r.confidence, 1);
  assert.deepEqual(r.evidence, { rule: 'manual', target: '192.0.2.70', overrideId: 50, note: 'ticket 4711' });
  const lost = r.candidates.map((c) => [c.orgId, c.rule, c.lost]);
  assert.deepEqual(lost, [
    [CUSTOMER, 'network', 'weaker-rule'],
    [ISP, 'network', 'weaker-rule'],
    [ISP, 'asn', 'weaker-rule'],
    [DOMAIN_ONLY, 'domain', 'weaker-rule'],
  ]);
  assert.match(r.candidates[0]!.why, /manual override 192\.0\.2\.70 matched: the manual rule comes before the network rule/);
});

test('precedence: network beats ASN, ASN beats domain', () => {
  const net = who({ ip: '192.0.2.5', asn: 64500, feedHostname: 'mail.example.org' });
  assert.equal(net.orgId, ISP);
  assert.equal(net.rule, 'network');
  assert.deepEqual(net.candidates.map((c) => [c.orgId, c.rule, c.lost]), [
    [ASN_ONLY, 'asn', 'weaker-rule'],
    [DOMAIN_ONLY, 'domain', 'weaker-rule'],
  ]);
  const asn = who({ ip: '172.16.0.1', asn: 64500, feedHostname: 'mail.example.org' });
  assert.equal(asn.orgId, ASN_ONLY);
  assert.equal(asn.rule, 'asn');
  assert.equal(asn.confidence, 0.7);
  assert.deepEqual(asn.evidence, { rule: 'asn', asn: 64500, via: 'feed', prefix: null, asnId: 30, layer: 'imported' });
  assert.deepEqual(asn.candidates.map((c) => [c.orgId, c.rule, c.lost]), [[DOMAIN_ONLY, 'domain', 'weaker-rule']]);
});

test('nested networks: a customer /26 inside an ISP /24 goes to the customer; the ISP loses as less specific', () => {
  const r = who({ ip: '192.0.2.100' });
  assert.equal(r.orgId, CUSTOMER);
  assert.equal(r.orgName, 'Customer Ltd');
  assert.equal(r.rule, 'network');
  // Another organisation's /24 around it: 0.9, not 0.95.
  assert.equal(r.confidence, 0.9);
  assert.deepEqual(r.evidence, { rule: 'network', network: '192.0.2.64/26', size: '64', networkId: 11, layer: 'imported', source: null });
  assert.equal(r.candidates.length, 1);
  const isp = r.candidates[0]!;
  assert.equal(isp.orgId, ISP);
  assert.equal(isp.lost, 'less-specific');
  assert.equal(isp.confidence, 0.95);
  assert.deepEqual(isp.evidence, { rule: 'network', network: '192.0.2.0/24', size: '256', networkId: 10, layer: 'imported', source: 'ripe' });
  assert.match(isp.why, /less specific than network 192\.0\.2\.64\/26/);
  // Just outside the /26: the ISP, at full network confidence.
  const outside = who({ ip: '192.0.2.128' });
  assert.equal(outside.orgId, ISP);
  assert.equal(outside.confidence, 0.95);
  assert.deepEqual(outside.candidates, []);
  // The /26's edges.
  assert.equal(who({ ip: '192.0.2.64' }).orgId, CUSTOMER);
  assert.equal(who({ ip: '192.0.2.127' }).orgId, CUSTOMER);
  assert.equal(who({ ip: '192.0.2.63' }).orgId, ISP);
});

test('RPSL ranges that are not CIDR-aligned: inclusive at both ends', () => {
  assert.equal(who({ ip: '198.51.100.10' }).orgId, V6_ORG);
  assert.equal(who({ ip: '198.51.100.20' }).orgId, V6_ORG);
  assert.equal(who({ ip: '198.51.100.9' }).orgId, null);
  assert.equal(who({ ip: '198.51.100.21' }).orgId, null);
  assert.equal((who({ ip: '198.51.100.15' }).evidence as { network: string }).network, '198.51.100.10 - 198.51.100.20');
});

test('IPv6: most specific network, canonical text, any spelling of the address', () => {
  const r = who({ ip: '2001:DB8:1:0:0:0:0:5' });
  assert.equal(r.ip, '2001:db8:1::5');
  assert.equal(r.orgId, CUSTOMER);
  assert.deepEqual(r.candidates.map((c) => [c.orgId, c.lost]), [[V6_ORG, 'less-specific']]);
  const outer = who({ ip: '[2001:db8:2::1]' });
  assert.equal(outer.orgId, V6_ORG);
  assert.equal((outer.evidence as { size: string }).size, String(2n ** 96n));
  assert.equal(who({ ip: '2001:db9::1' }).orgId, null);
});

test('IPv4-mapped IPv6 addresses attribute like their IPv4 address, and mapped networks are IPv4 networks', () => {
  const mapped = who({ ip: '::ffff:192.0.2.100' });
  const plain = who({ ip: '192.0.2.100' });
  assert.deepEqual(mapped, plain);
  assert.equal(mapped.ip, '192.0.2.100');
  assert.equal(who({ ip: '::ffff:c000:0246' }).orgId, MANUAL_ORG); // 192.0.2.70 in hex groups
  const m = who({ ip: '100.64.0.9' });
  assert.equal(m.orgId, MANUAL_ORG);
  assert.equal((m.evidence as { network: string }).network, '100.64.0.0/24');
});

test('domain suffixes match on label boundaries only: evil-example.org is not example.org', () => {
  assert.equal(who({ ip: '172.16.0.1', feedHostname: 'evil-example.org' }).orgId, null);
  assert.equal(who({ ip: '172.16.0.1', feedHostname: 'notexample.org' }).orgId, null);
  assert.equal(who({ ip: '172.16.0.1', feedHostname: 'example.org.evil.net' }).orgId, null);
  const exact = who({ ip: '172.16.0.1', feedHostname: 'EXAMPLE.org.' });
  assert.equal(exact.orgId, DOMAIN_ONLY);
  assert.deepEqual(exact.evidence, { rule: 'domain', domain: 'example.org', hostname: 'example.org', hostnameSource: 'feed', domainId: 40, layer: 'imported' });
  assert.equal(exact.confidence, 0.6);
});

test('domain: the most specific suffix wins (sub.example.org over example.org)', () => {
  const r = who({ ip: '172.16.0.1', requestHost: 'owa.mail.sub.example.org' });
  assert.equal(r.orgId, SUB_ORG);
  assert.equal(r.confidence, 0.65);
  assert.deepEqual(r.candidates.map((c) => [c.orgId, c.lost]), [[DOMAIN_ONLY, 'less-specific']]);
  assert.equal((r.evidence as { domain: string }).domain, 'sub.example.org');
});

test('wildcard SANs: *.mail.example.org is under example.org; *.org and partial wildcards are ignored', () => {
  const r = who({ ip: '172.16.0.1', certificate: { sans: ['*.mail.example.org'] } });
  assert.equal(r.orgId, DOMAIN_ONLY);
  assert.deepEqual(r.evidence, { rule: 'domain', domain: 'example.org', hostname: 'mail.example.org', hostnameSource: 'cert-san', domainId: 40, layer: 'imported' });
  assert.equal(r.confidence, 0.6);
  // *.sub.example.org covers names under sub.example.org: the more specific suffix wins.
  assert.equal(who({ ip: '172.16.0.1', certificate: { sans: ['*.sub.example.org'] } }).orgId, SUB_ORG);
  assert.equal(who({ ip: '172.16.0.1', certificate: { sans: ['*.org', 'f*.example.org', '*'] } }).orgId, null);
});

test('domain sources: a certificate SAN beats a PTR; PTR alone gives 0.5; the CN counts like a SAN, once', () => {
  const r = who({ ip: '172.16.0.1', ptr: ['host-1.isp.example'], certificate: { sans: ['owa.example.org'] } });
  assert.equal(r.orgId, DOMAIN_ONLY);
  assert.deepEqual(r.candidates.map((c) => [c.orgId, c.lost, c.confidence]), [[ISP, 'weaker-source', 0.5]]);
  const ptr = who({ ip: '172.16.0.1', ptr: ['host-1.isp.example'] });
  assert.equal(ptr.orgId, ISP);
  assert.equal(ptr.confidence, 0.5);
  assert.equal(ptr.rule, 'domain');
  // The CN alone matches; the CN repeating a SAN is not a second candidate; a CN with another name is.
  const cnOnly = who({ ip: '172.16.0.1', certificate: { cn: 'owa.example.org' } });
  assert.deepEqual([cnOnly.orgId, cnOnly.confidence, (cnOnly.evidence as { hostnameSource: string }).hostnameSource], [DOMAIN_ONLY, 0.6, 'cert-cn']);
  assert.deepEqual(who({ ip: '172.16.0.1', certificate: { cn: 'owa.example.org', sans: ['owa.example.org'] } }).candidates, []);
  const cn = who({ ip: '172.16.0.1', certificate: { cn: 'OWA.example.org', sans: ['mail.example.org'] } });
  assert.equal(cn.orgId, DOMAIN_ONLY);
  assert.deepEqual(cn.candidates.map((c) => [c.orgId, c.lost, (c.evidence as { hostnameSource: string }).hostnameSource]), [[DOMAIN_ONLY, 'same-organisation', 'cert-cn']]);
});

test('hostile or malformed hostnames are dropped, not matched', () => {
  for (const bad of ['example.org\u001b[31m', 'exa mple.org', '..example.org', '-x.example.org', '192.0.2.1', 'a'.repeat(64) + '.example.org']) {
    assert.equal(who({ ip: '172.16.0.1', feedHostname: bad }).orgId, null, bad);
  }
  // IDN: the U-label form matches a registry entry written in A-labels.
  const idn = buildAttributionIndex({ ...snapshot, domains: [{ orgId: DOMAIN_ONLY, domain: 'xn--bcher-kva.example' }] });
  assert.equal(attribute(idn, { ip: '172.16.0.1', feedHostname: 'www.Bücher.example' }).orgId, DOMAIN_ONLY);
});

test('an ASN-only organisation: by the feed ASN, or via the prefix table when the row has none', () => {
  const feed = who({ ip: '172.16.0.1', asn: 64500 });
  assert.equal(feed.orgId, ASN_ONLY);
  const table = who({ ip: '10.200.0.1' });
  assert.equal(table.orgId, ASN_ONLY);
  assert.equal(table.confidence, 0.65);
  assert.deepEqual(table.evidence, { rule: 'asn', asn: 64500, via: 'prefix-table', prefix: '10.0.0.0/8', asnId: 30, layer: 'imported' });
  // The longest prefix decides which ASN the table gives.
  const longer = who({ ip: '10.1.2.3' });
  assert.equal(longer.orgId, ISP);
  assert.equal((longer.evidence as { prefix: string }).prefix, '10.1.0.0/16');
  // The feed's own ASN comes before the table's.
  const both = who({ ip: '10.1.2.3', asn: 64500 });
  assert.equal(both.orgId, ASN_ONLY);
  assert.deepEqual(both.candidates.map((c) => [c.orgId, c.lost]), [[ISP, 'weaker-source']]);
});

test('a domain-only organisation is found by its domain and nothing else', () => {
  const r = who({ ip: '2001:db9::25', requestHost: 'autodiscover.example.org' });
  assert.equal(r.orgId, DOMAIN_ONLY);
  assert.equal(r.rule, 'domain');
  assert.deepEqual(r.candidates, []);
});

test('ties: the same network held by two organisations; the lower id wins, flagged, at half confidence', () => {
  const r = who({ ip: '203.0.113.5' });
  assert.equal(r.orgId, TWIN_A);
  assert.equal(r.tie, true);
  assert.equal(r.confidence, 0.95 * 0.5);
  assert.deepEqual(r.candidates.map((c) => [c.orgId, c.lost]), [[TWIN_B, 'tie']]);
  assert.match(r.candidates[0]!.why, /review it/);
  // The input order does not change the answer.
  const reversed = buildAttributionIndex({ ...snapshot, networks: [...snapshot.networks].reverse() });
  assert.equal(attribute(reversed, { ip: '203.0.113.5' }).orgId, TWIN_A);
});

test('the same network imported for one organisation and entered manually for another: manual wins, no tie', () => {
  const r = who({ ip: '203.0.113.20' });
  assert.equal(r.orgId, CUSTOMER);
  assert.equal(r.tie, false);
  assert.equal(r.confidence, 0.95);
  assert.deepEqual(r.candidates.map((c) => [c.orgId, c.lost]), [[ISP, 'imported-layer']]);
});

test('unattributed: nothing matches; an invalid address is a problem, not an exception', () => {
  const r = who({ ip: '8.8.8.8', asn: 15169, feedHostname: 'dns.google' });
  assert.deepEqual(r, {
    ip: '8.8.8.8', port: null, orgId: null, orgName: null, rule: null, confidence: 0, evidence: null, tie: false,
    candidates: [], omitted: 0, contacts: [], problem: null,
  });
  const bad = who({ ip: '999.1.1.1', port: 443 });
  assert.equal(bad.orgId, null);
  assert.equal(bad.port, 443);
  assert.match(bad.problem ?? '', /not an IP address/);
});

test('contacts: the organisation\'s own (security first), else the network\'s abuse-mailbox', () => {
  assert.deepEqual(who({ ip: '192.0.2.100' }).contacts.map((c) => [c.source, c.role, c.email]), [
    ['organisation', 'security', 'cert@customer.example'],
    ['organisation', 'technical', 'it@customer.example'],
  ]);
  assert.deepEqual(who({ ip: '192.0.2.5' }).contacts, [{
    source: 'network-abuse-mailbox', email: 'abuse@isp.example', role: 'abuse', language: null, openpgpFingerprint: null,
    network: '192.0.2.0/24', networkOrgId: ISP,
  }]);
  // Six Networks has no contacts: its /32's mailbox.
  assert.equal(who({ ip: '2001:db8:2::1' }).contacts[0]?.email, 'abuse@six.example');
  // Manual Org, attributed by override inside the ISP's /24, has no contacts: the ISP's abuse desk is the last resort.
  assert.deepEqual(who({ ip: '192.0.2.70' }).contacts.map((c) => [c.email, c.networkOrgId]), [['abuse@isp.example', ISP]]);
  // An ASN-only organisation without contacts, outside every network: nobody to warn (yet).
  assert.deepEqual(who({ ip: '172.16.0.1', asn: 64500 }).contacts, []);
});

test('candidates are capped; the rest are counted', () => {
  const sans = Array.from({ length: 50 }, (_, i) => `h${i}.example.org`);
  const many = buildAttributionIndex({
    ...snapshot,
    domains: sans.map((d, i) => ({ orgId: (i % 2) + 1, domain: d })),
  });
  const r = attribute(many, { ip: '172.16.0.1', certificate: { sans } });
  assert.equal(r.candidates.length, 32);
  assert.equal(r.omitted, 49 - 32);
});

test('bad snapshot entries are set aside with the reason; the rest is indexed', () => {
  const i = buildAttributionIndex({
    organisations: [{ id: 1, name: 'One' }, { id: 1, name: 'Dup' }],
    networks: [
      { orgId: 1, network: '192.0.2.0/33' },
      { orgId: 99, network: '192.0.2.0/24' },
      { orgId: 1, network: '192.0.2.9 - 192.0.2.1' },
      { orgId: 1, network: '198.51.100.0/24' },
    ],
    asns: [{ orgId: 1, asn: -5 }],
    domains: [{ orgId: 1, domain: 'org' }, { orgId: 1, domain: 'bad name.example' }],
    overrides: [{ orgId: 1, target: 'nonsense' }],
    prefixAsns: [{ prefix: '10.0.0.0/8', asn: 2 ** 40 }],
  });
  assert.deepEqual(i.problems.map((p) => [p.kind, p.index]), [
    ['organisation', 1],
    ['override', 0],
    ['network', 0],
    ['network', 1],
    ['network', 2],
    ['prefix-asn', 0],
    ['asn', 0],
    ['domain', 0],
    ['domain', 1],
  ]);
  assert.match(i.problems.find((p) => p.kind === 'network' && p.index === 1)?.error ?? '', /organisation 99 is not in the snapshot/);
  assert.equal(attribute(i, { ip: '198.51.100.1' }).orgId, 1);
  assert.equal(attribute(i, { ip: '192.0.2.5' }).orgId, null);
  assert.equal(attribute(i, { ip: '10.0.0.1' }).orgId, null);
});

test('parseRange: CIDRs (host bits masked), ranges, single addresses, IPv4-mapped as IPv4', () => {
  assert.deepEqual(parseRange('192.0.2.77/26'), { family: 4, first: 0xc0000240, last: 0xc000027f, text: '192.0.2.64/26' });
  assert.deepEqual(parseRange('192.0.2.1-192.0.2.3'), { family: 4, first: 0xc0000201, last: 0xc0000203, text: '192.0.2.1 - 192.0.2.3' });
  assert.deepEqual(parseRange('::ffff:192.0.2.7'), { family: 4, first: 0xc0000207, last: 0xc0000207, text: '192.0.2.7' });
  assert.deepEqual(parseRange('::ffff:192.0.2.0 - ::ffff:192.0.2.255'), { family: 4, first: 0xc0000200, last: 0xc00002ff, text: '192.0.2.0/24' });
  const v6 = parseRange('2001:DB8::/127');
  assert.ok(typeof v6 !== 'string' && v6.family === 6 && v6.text === '2001:db8::/127' && v6.last - v6.first === 1n);
  assert.equal(typeof parseRange('192.0.2.1 - 2001:db8::1'), 'string');
  assert.equal(typeof parseRange(''), 'string');
});

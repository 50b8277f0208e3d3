import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import {
  addressReadings, canonicalIp, closeUnderV4Embedding, formatIPv4, formatIPv6, ipv4Problem, ipv4Readings, networkKey,
  normalizeIp, parseCidr, parseIp, parseIPv4, parseIPv6, unmapIPv4, v4Set, v6Set,
} from './ip.js';

test('IPv4: strict parsing agrees with node:net and explains failures', () => {
  const good = ['0.0.0.0', '127.0.0.1', '255.255.255.255', '192.0.2.10', '10.0.0.0'];
  const bad = ['10.0.0.300', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1..2.3', '', '1.2.3.4 ', 'a.b.c.d', '1.2.3.-4', '256.0.0.0', '1.2.3.0000'];
  for (const s of good) {
    assert.equal(isIPv4(s), true, s);
    assert.notEqual(parseIPv4(s), null, s);
    assert.equal(formatIPv4(parseIPv4(s) ?? -1), s);
  }
  for (const s of bad) assert.equal(parseIPv4(s), null, s);
  assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4Problem('10.0.0.300'), 'part 4 is 300, must be 0-255');
  assert.match(ipv4Problem('1.2.3') ?? '', /has 3 parts/);
  assert.match(ipv4Problem('010.0.0.1') ?? '', /leading zero/);
});

test('IPv6: parsing agrees with node:net; RFC 5952 formatting', () => {
  const cases: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['fe80::1:2:3:4', 'fe80::1:2:3:4'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [inp, out] of cases) {
    assert.equal(isIPv6(inp), true, inp);
    const v = parseIPv6(inp);
    assert.notEqual(v, null, inp);
    assert.equal(formatIPv6(v ?? 0n), out, inp);
  }
  for (const s of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':::', '12345::', 'fe80::1%eth0', '1:2:3:4:5:6:7', 'g::1', '::1.2.3', '']) {
    assert.equal(parseIPv6(s), null, s);
  }
  assert.equal(normalizeIp('[2001:DB8::0:1]'), '2001:db8::1');
  assert.equal(normalizeIp('nope'), null);
});

test('CIDR: masks host bits, both families, refuses bad prefixes', () => {
  const c = parseCidr('10.1.2.3/24');
  assert.ok(typeof c !== 'string' && c.family === 4);
  assert.equal(formatIPv4(c.first), '10.1.2.0');
  assert.equal(formatIPv4(c.last), '10.1.2.255');
  const all = parseCidr('0.0.0.0/0');
  assert.ok(typeof all !== 'string' && all.family === 4 && all.last === 0xffffffff);
  const c6 = parseCidr('2001:db8::1234/120');
  assert.ok(typeof c6 !== 'string' && c6.family === 6);
  assert.equal(formatIPv6(c6.first), '2001:db8::1200');
  assert.equal(formatIPv6(c6.last), '2001:db8::12ff');
  assert.match(parseCidr('10.0.0.0/33') as string, /prefix '\/33' must be 0-32/);
  assert.match(parseCidr('10.0.0.300/24') as string, /not an IPv4 address \(part 4 is 300/);
  assert.match(parseCidr('::/129') as string, /0-128/);
});

test('network keys: /24 and /64', () => {
  assert.equal(networkKey('192.0.2.1'), networkKey('192.0.2.254'));
  assert.notEqual(networkKey('192.0.2.1'), networkKey('192.0.3.1'));
  assert.equal(networkKey('2001:db8:1:2::1'), networkKey('2001:db8:1:2:ffff::9'));
  assert.notEqual(networkKey('2001:db8:1:2::1'), networkKey('2001:db8:1:3::1'));
  assert.equal(networkKey('not-an-ip'), null);
});

test('range sets: merge, count, membership, i-th address, subtraction, intersection', () => {
  const s = v4Set([[10, 20], [15, 30], [31, 31], [40, 50], [5, 5]]);
  assert.deepEqual([...s.starts], [5, 10, 40]);
  assert.deepEqual([...s.ends], [5, 31, 50]);
  assert.equal(s.size, 1n + 22n + 11n);
  for (const x of [5, 10, 31, 40, 50]) assert.equal(s.has(x), true, String(x));
  for (const x of [4, 6, 9, 32, 39, 51]) assert.equal(s.has(x), false, String(x));
  assert.equal(s.at(0n), 5);
  assert.equal(s.at(1n), 10);
  assert.equal(s.at(22n), 31);
  assert.equal(s.at(23n), 40);
  const m = s.minus(v4Set([[0, 5], [12, 13], [31, 45]]));
  assert.deepEqual([...m.starts], [10, 14, 46]);
  assert.deepEqual([...m.ends], [11, 30, 50]);
  const i = s.intersect(v4Set([[0, 10], [45, 100]]));
  assert.equal(i.size, 2n + 6n);
  const full = v4Set([[0, 0xffffffff]]);
  assert.equal(full.size, 2n ** 32n);
  assert.equal(full.minus(v4Set([[0, 0xffffffff]])).size, 0n);
  const six = v6Set([[0n, (1n << 128n) - 1n]]);
  assert.equal(six.size, 1n << 128n);
  assert.equal(six.at((1n << 128n) - 1n), (1n << 128n) - 1n);
  assert.equal(six.minus(v6Set([[1n, (1n << 128n) - 1n]])).size, 1n);
});

test('IPv4 inside IPv6: mapped addresses are their IPv4 host; embeddings close both ways', () => {
  assert.deepEqual(canonicalIp(parseIp('::ffff:127.93.0.5') ?? { family: 4, value: 0 }), { family: 4, value: parseIPv4('127.93.0.5') });
  assert.deepEqual(canonicalIp(parseIp('::127.93.0.5') ?? { family: 4, value: 0 }).family, 6, 'IPv4-compatible is not routed to IPv4');
  assert.equal(unmapIPv4(parseIPv6('::ffff:0:1.2.3.4') ?? 0n), null);
  const { r4, r6 } = closeUnderV4Embedding([], [[parseIPv6('::ffff:10.0.0.0') ?? 0n, parseIPv6('::ffff:10.0.0.255') ?? 0n]]);
  assert.deepEqual(r4, [[parseIPv4('10.0.0.0'), parseIPv4('10.0.0.255')]]);
  assert.ok(r6.some(([a]) => a === parseIPv6('64:ff9b::10.0.0.0')));
  assert.ok(r6.some(([a]) => a === parseIPv6('::10.0.0.0')));
  assert.deepEqual(ipv4Readings('010.001.002.003').map(formatIPv4), ['10.1.2.3', '8.1.2.3']);
  assert.deepEqual(ipv4Readings('127.093.0.1').map(formatIPv4), ['127.93.0.1']);
  assert.deepEqual(ipv4Readings('1.2.3'), []);
  assert.deepEqual(addressReadings('::FFFF:010.0.0.1'), ['::ffff:10.0.0.1', '::ffff:8.0.0.1']);
  assert.deepEqual(addressReadings('nope'), []);
});

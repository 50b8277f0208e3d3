import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isTocsinError, type TocsinError } from '../core/errors.js';
import {
  countTargets, dnsResolver, expandTargets, hostnameProblem, loadTargets, parseTargetSpec, readTargetSpecs,
  resolveTargets, TargetSet, type Resolver,
} from './targets.js';
import { AddressSet, exclusionMatcher, parseExclusionText } from './scope.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-targets-'));
});
after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<TocsinError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isTocsinError(e), `expected TocsinError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return e;
  }
  return assert.fail('expected a rejection');
}

test('good target specs are canonicalised', () => {
  const cases: Array<[string, string, string]> = [
    ['192.0.2.10', 'ipv4', '192.0.2.10'],
    ['2001:DB8::0:10', 'ipv6', '2001:db8::10'],
    ['[::1]', 'ipv6', '::1'],
    ['192.0.2.0/24', 'cidr4', '192.0.2.0/24'],
    // IPv4-mapped IPv6 reaches the IPv4 host: it is that IPv4 target
    ['::ffff:192.0.2.10', 'ipv4', '192.0.2.10'],
    ['::FFFF:c000:20a', 'ipv4', '192.0.2.10'],
    ['::ffff:127.93.0.64/122', 'cidr4', '127.93.0.64/26'],
    ['::ffff:192.0.2.1-::ffff:192.0.2.9', 'range4', '192.0.2.1-192.0.2.9'],
    ['mail.example.org=::ffff:127.0.0.5', 'pinned', 'mail.example.org=127.0.0.5'],
    ['2001:db8::1:0/112', 'cidr6', '2001:db8::1:0/112'],
    ['10.0.0.1-10.0.0.9', 'range4', '10.0.0.1-10.0.0.9'],
    ['Mail.Example.ORG.', 'hostname', 'mail.example.org'],
    ['localhost', 'hostname', 'localhost'],
    ['mail.example.org=127.0.0.5', 'pinned', 'mail.example.org=127.0.0.5'],
  ];
  for (const [inp, kind, text] of cases) {
    const s = parseTargetSpec(inp, 'argument 1');
    assert.equal(s.kind, kind, inp);
    assert.equal(s.text, text, inp);
  }
});

test('bad target specs are refused with a reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['10.0.0.300', /argument 1: '10\.0\.0\.300' is not an IPv4 address \(part 4 is 300, must be 0-255\)/],
    ['10.0.0', /is not an IPv4 address \(has 3 parts/],
    ['10.0.0.0/33', /prefix '\/33' must be 0-32/],
    // host bits set: refused (never silently widened), naming the network
    ['127.1.0.1/8', /'127\.1\.0\.1\/8' has host bits set: it lies in the network 127\.0\.0\.0\/8 \(16,777,216 addresses\); give 127\.0\.0\.0\/8 .* or 127\.1\.0\.1 for the one address/],
    ['192.0.2.77/24', /network 192\.0\.2\.0\/24/],
    ['2001:db8::1:5/112', /host bits set: it lies in the network 2001:db8::1:0\/112/],
    ['::ffff:127.93.0.65/122', /host bits set: it lies in the network ::ffff:127\.93\.0\.64\/122/],
    ['2001:db8::/64', /IPv6 prefix \/64 is too large to scan \(2\^64 addresses\); use \/112 or longer/],
    ['2001:db8::zz', /is not an IPv6 address/],
    ['10.0.0.1:443', /looks like address:port; give ports with --ports/],
    ['https://mail.example.org/owa', /is a URL/],
    ['-bad-.example', /invalid label/],
    ['under_score.example', /invalid label/],
    ['a..b', /empty label/],
    ['10.0.0.9-10.0.0.1', /first address is after the last/],
    ['10.0.0.1-::1', /mixes IPv4 and IPv6/],
    ['x=10.0.0.400', /is not an IPv4 or IPv6 address/],
    [`${'a'.repeat(64)}.example`, /longer than 63/],
  ];
  for (const [inp, re] of cases) {
    assert.throws(() => parseTargetSpec(inp, 'argument 1'), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_TARGET_INVALID' && re.test(e.message), inp);
  }
  assert.equal(hostnameProblem('exchange01.corp.example'), null);
  assert.match(hostnameProblem('1.2.3.4') ?? '', /numeric label/);
});

test('@file: comments and blank lines ok, file and line named for each bad entry', async () => {
  const good = join(dir, 'good.txt');
  writeFileSync(good, '\ufeff# estate\n192.0.2.1\r\n\n  192.0.2.0/30   # a small net\nmail.example.org=127.0.0.9\n');
  const specs = await readTargetSpecs([`@${good}`, '198.51.100.7']);
  assert.deepEqual(specs.map((s) => [s.text, s.where]), [
    ['192.0.2.1', `${good}:2`],
    ['192.0.2.0/30', `${good}:4`],
    ['mail.example.org=127.0.0.9', `${good}:5`],
    ['198.51.100.7', 'argument 2'],
  ]);
  const bad = join(dir, 'targets.txt');
  writeFileSync(bad, `${Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}`).join('\n')}\n10.0.0.300\n10.0.0.1 10.0.0.2\n`);
  const err = await rejectsWith(readTargetSpecs([`@${bad}`]), 'TOCSIN_TARGET_INVALID', /targets\.txt:17: '10\.0\.0\.300' is not an IPv4 address/);
  assert.match(err.message, /and 1 more problem/);
  assert.match(err.details[1] ?? '', /targets\.txt:18: .*white space/);
  await rejectsWith(readTargetSpecs([`@${join(dir, 'missing.txt')}`]), 'TOCSIN_INPUT_UNREADABLE', /cannot read target file .*missing\.txt: ENOENT/);
  const nested = join(dir, 'nested.txt');
  writeFileSync(nested, `@${good}\n`);
  await rejectsWith(readTargetSpecs([`@${nested}`]), 'TOCSIN_TARGET_INVALID', /nested\.txt:1: .*cannot include other files/);
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '# nothing\n\n');
  await rejectsWith(readTargetSpecs([`@${empty}`]), 'TOCSIN_TARGET_INVALID', /no targets given/);
});

test('- reads stdin with stdin:N locations', async () => {
  const texts = await loadTargets(['-'], Readable.from(['127.0.0.1\n# c\n127.0.0', '.2\n']));
  assert.deepEqual(texts, ['127.0.0.1', '127.0.0.2']);
  await rejectsWith(readTargetSpecs(['-'], { stdin: Readable.from(['127.0.0.1\nnot_a_host\n']) }), 'TOCSIN_TARGET_INVALID', /^stdin:2: 'not_a_host'/);
});

test('absurd totals are refused before anything is sent', async () => {
  await rejectsWith(readTargetSpecs(['10.0.0.0/7']), 'TOCSIN_TARGET_INVALID', /expand to 33554432 addresses, more than the limit of 16777216/);
  await rejectsWith(readTargetSpecs(['10.0.0.0/24', '10.0.1.0/24'], { maxAddresses: 300 }), 'TOCSIN_TARGET_INVALID', /512 addresses/);
  // overlapping entries are counted once
  assert.equal((await readTargetSpecs(['10.0.0.0/24', '10.0.0.0/25', '10.0.0.7'], { maxAddresses: 256 })).length, 3);
});

test('expansion: exact counts, deduplication, both families, deterministic order', () => {
  const targets = ['192.0.2.0/30', '192.0.2.1', '192.0.2.2-192.0.2.5', '2001:db8::/126', '2001:db8::3', '::1'];
  const set = expandTargets(targets, { order: 'sequential' });
  const got = [...set].map((t) => t.ip);
  assert.deepEqual(got, ['192.0.2.0', '192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '::1', '2001:db8::', '2001:db8::1', '2001:db8::2', '2001:db8::3']);
  assert.equal(set.size, got.length);
  assert.equal(countTargets(targets), 11);
  const spread = [...expandTargets(targets)].map((t) => t.ip);
  assert.deepEqual([...spread].sort(), [...got].sort(), 'spread order is a permutation');
  assert.deepEqual([...expandTargets(targets)].map((t) => t.ip), spread, 'and deterministic');
  assert.notDeepEqual(spread, got);
});

test('spread order: consecutive targets of a /16 fall in different /24s', () => {
  const it = expandTargets(['10.1.0.0/16'])[Symbol.iterator]();
  const first: string[] = [];
  for (let i = 0; i < 64; i++) {
    const n = it.next();
    if (n.done === true) break;
    first.push(n.value.ip);
  }
  for (let i = 1; i < first.length; i++) {
    const a = (first[i - 1] ?? '').split('.').slice(0, 3).join('.');
    const b = (first[i] ?? '').split('.').slice(0, 3).join('.');
    assert.notEqual(a, b);
  }
});

test('a /8 is counted and iterated lazily (never materialised)', () => {
  const set = expandTargets(['10.0.0.0/8']);
  assert.equal(set.size, 16_777_216);
  const it = set[Symbol.iterator]();
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const n = it.next();
    if (n.done === true) break;
    seen.add(n.value.ip);
  }
  assert.equal(seen.size, 1000);
  for (const ip of seen) assert.match(ip, /^10\./);
});

test('pinned names: first name per address wins, address not repeated bare; bare names are not yielded', () => {
  const targets = ['127.0.0.0/29', 'mail.example.org=127.0.0.3', 'owa.example.org=127.0.0.3', 'web.example.org=127.0.0.4', 'mail.example.org=::1'];
  const set = TargetSet.from(targets, { order: 'sequential' });
  const all = [...set];
  assert.equal(set.size, 8 + 1);
  assert.equal(all.length, set.size);
  assert.deepEqual(all.slice(0, 3), [
    { ip: '127.0.0.3', hostname: 'mail.example.org' },
    { ip: '127.0.0.4', hostname: 'web.example.org' },
    { ip: '::1', hostname: 'mail.example.org' },
  ]);
  assert.equal(all.filter((t) => t.ip === '127.0.0.3').length, 1);
  // the engine leaves out excluded addresses one by one (exclusionMatcher), pinned ones included
  const isExcluded = exclusionMatcher(['127.0.0.0/30', '::1']);
  assert.deepEqual(all.filter((t) => !isExcluded(t.ip)).map((t) => t.ip), ['127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7']);
  const withNames = TargetSet.from(['localhost', '127.0.0.1']);
  assert.deepEqual([...withNames], [{ ip: '127.0.0.1', hostname: null }]);
});

test('resolveTargets: injectable resolver, order kept, failures listed, never real DNS', async () => {
  const calls: string[] = [];
  const fake: Resolver = async (name) => {
    calls.push(name);
    if (name === 'mail.example.org') return ['127.0.0.7', '::1', '127.0.0.7'];
    if (name === 'slow.example.org') throw Object.assign(new Error('timeout'), { code: 'ETIMEOUT' });
    return [];
  };
  const r = await resolveTargets(['10.0.0.1', 'mail.example.org', 'slow.example.org', 'gone.example.org', 'mail.example.org'], fake);
  assert.deepEqual(r.targets, ['10.0.0.1', 'mail.example.org=127.0.0.7', 'mail.example.org=::1', 'mail.example.org=127.0.0.7', 'mail.example.org=::1']);
  assert.deepEqual(r.unresolved, [
    { hostname: 'slow.example.org', reason: 'ETIMEOUT' },
    { hostname: 'gone.example.org', reason: 'no addresses' },
  ]);
  assert.deepEqual(calls.sort(), ['gone.example.org', 'mail.example.org', 'slow.example.org']);
  assert.equal(TargetSet.from(r.targets).size, 3);
});

test('dnsResolver resolves localhost through the system resolver', async () => {
  const addrs = await dnsResolver({ timeoutMs: 2000 })('localhost');
  assert.ok(addrs.some((a) => a === '127.0.0.1' || a === '::1'), addrs.join(','));
});

test('a host given as IPv4 and as IPv4-mapped IPv6 is scanned once, as IPv4', () => {
  const set = TargetSet.from(['127.93.1.5', '::ffff:127.93.1.5', '::ffff:127.93.1.4/127', '127.93.1.4-127.93.1.6'], { order: 'sequential' });
  assert.deepEqual([...set].map((t) => t.ip), ['127.93.1.4', '127.93.1.5', '127.93.1.6']);
  // an IPv6 range that crosses into the mapped block: the mapped part is the IPv4 hosts
  const cross = TargetSet.from(['::fffe:ffff:fffe-::fffe:ffff:ffff', '::ffff:0.0.0.0/126', '0.0.0.1'], { order: 'sequential' });
  assert.deepEqual([...cross].map((t) => t.ip), ['0.0.0.0', '0.0.0.1', '0.0.0.2', '0.0.0.3', '::fffe:ffff:fffe', '::fffe:ffff:ffff']);
});

test('exclusions in any address form take out the targets in any other form', () => {
  const cases: Array<[string[], string[], number]> = [
    [['::ffff:127.93.0.64/122'], ['127.93.0.64/26'], 64],
    [['127.93.0.0/24'], ['::ffff:127.93.0.0/120'], 256],
    [['127.93.0.0/24'], ['::127.93.0.0/120'], 256], // IPv4-compatible
    [['127.93.0.0/24'], ['64:ff9b::127.93.0.0/120'], 256], // NAT64 well-known prefix
    [['127.93.0.0/24'], ['127.093.000.000/24'], 256], // zero-padded, read as decimal (and as octal)
    [['::127.93.0.5'], ['127.93.0.5'], 1],
  ];
  for (const [targets, excl, n] of cases) {
    const entries = parseExclusionText(excl.join('\n'), 'excludes.txt').map((e) => e.text);
    const set = AddressSet.from(entries);
    const all = [...TargetSet.from(targets)];
    assert.equal(all.length, n);
    assert.deepEqual(all.filter((t) => !set.has(t.ip)), [], `${targets.join(' ')} minus ${excl.join(' ')}`);
  }
});

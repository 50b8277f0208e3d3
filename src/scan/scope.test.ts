import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTocsinError } from '../core/errors.js';
import { AddressSet, exclusionMatcher, loadExclusions, looksLikeAddress, parseExclusionText } from './scope.js';
import { loadExclusions as loadCliExclusions } from './setup.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-scope-'));
});
after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('exclusion text: comments, blank lines, canonical entries with their lines', () => {
  const entries = parseExclusionText('# opt-outs\n192.0.2.77/24  # whole net\n\n198.51.100.7\r\n2001:DB8::/32\n[::1]\n', 'excludes.txt');
  assert.deepEqual(entries, [
    { text: '192.0.2.0/24', where: 'excludes.txt:2' },
    { text: '198.51.100.7', where: 'excludes.txt:4' },
    { text: '2001:db8::/32', where: 'excludes.txt:5' },
    { text: '::1', where: 'excludes.txt:6' },
  ]);
  assert.throws(
    () => parseExclusionText('10.0.0.1\n10.0.0.300\nmail.example.org\n', 'excludes.txt'),
    (e: unknown) =>
      isTocsinError(e) && e.code === 'TOCSIN_TARGET_INVALID' && /excludes\.txt:2: '10\.0\.0\.300' is not an IPv4 address/.test(e.message) &&
      /excludes\.txt:3: .*not names/.test(e.details[1] ?? ''),
  );
});

test('membership: sorted ranges, both families, boundaries', () => {
  const set = AddressSet.from(['10.0.0.0/8', '192.0.2.5', '192.0.2.7', '172.16.0.0/12', '2001:db8::/32', '::1']);
  const inside = ['10.0.0.0', '10.255.255.255', '192.0.2.5', '192.0.2.7', '172.31.255.255', '2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '::1', '[::1]'];
  const outside = ['9.255.255.255', '11.0.0.0', '192.0.2.6', '172.32.0.0', '2001:db9::', '::2', 'not-an-ip', ''];
  for (const ip of inside) assert.equal(set.has(ip), true, ip);
  for (const ip of outside) assert.equal(set.has(ip), false, ip);
  const m = exclusionMatcher([]);
  assert.equal(m('10.0.0.1'), false);
});

test('large lists stay fast: 100k single addresses, binary search', () => {
  const entries: string[] = [];
  for (let i = 0; i < 100_000; i++) entries.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255)}`);
  const m = exclusionMatcher(entries);
  assert.equal(m('10.0.0.0'), true);
  assert.equal(m('10.1.134.159'), true);
  assert.equal(m('10.1.134.160'), false);
  assert.equal(m('11.0.0.0'), false);
});

test('loadExclusions: files and --exclude values (with @file), errors name file and line', async () => {
  const f = join(dir, 'optout.txt');
  writeFileSync(f, '127.0.0.5\n127.0.1.0/24\n');
  const g = join(dir, 'more.txt');
  writeFileSync(g, '::1\n');
  const entries = await loadExclusions([f], ['127.0.0.9', `@${g}`]);
  assert.deepEqual(entries, ['127.0.0.5', '127.0.1.0/24', '127.0.0.9', '::1']);
  const bad = join(dir, 'bad.txt');
  writeFileSync(bad, '127.0.0.1\n\n127.0.0.0/40\n');
  await assert.rejects(loadExclusions([bad]), (e: unknown) => isTocsinError(e) && /bad\.txt:3: '127\.0\.0\.0\/40' is not a CIDR/.test(e.message));
  await assert.rejects(loadExclusions([], ['nope']), (e: unknown) => isTocsinError(e) && /--exclude 1: 'nope'/.test(e.message));
  await assert.rejects(loadExclusions([join(dir, 'missing')]), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_INPUT_UNREADABLE');
});

test('an exclusion matches its host in every address form, in both directions', () => {
  const v4 = exclusionMatcher(['127.93.0.64/26']);
  for (const ip of ['127.93.0.64', '::ffff:127.93.0.64', '::ffff:7f5d:7f', '[::ffff:127.93.0.100]', '::127.93.0.70', '::ffff:0:127.93.0.70', '64:ff9b::127.93.0.127']) {
    assert.equal(v4(ip), true, ip);
  }
  assert.equal(v4('::ffff:127.93.0.128'), false);
  assert.equal(v4('127.93.0.63'), false);
  assert.equal(v4('2001:db8::127.93.0.64'), false, 'an unrelated IPv6 prefix embeds nothing');
  const v6 = exclusionMatcher(['::ffff:127.93.0.0/120']);
  for (const ip of ['127.93.0.0', '127.93.0.255', '::ffff:127.93.0.9', '64:ff9b::7f5d:9']) assert.equal(v6(ip), true, ip);
  assert.equal(v6('127.93.1.0'), false);
  // IPv4-compatible and NAT64 written in a list exclude the IPv4 host too
  assert.equal(exclusionMatcher(['::127.93.0.5'])('127.93.0.5'), true);
  assert.equal(exclusionMatcher(['64:ff9b::127.93.0.0/120'])('::ffff:127.93.0.5'), true);
});

test('zero-padded IPv4 in a list is read both ways (decimal and octal), never refused', () => {
  const e = parseExclusionText('010.001.002.003\n192.168.001.010/31\n127.093.000.000/24\n::FFFF:010.0.0.1\n', 'padded.txt');
  assert.deepEqual(e.map((x) => x.text), [
    '10.1.2.3', '8.1.2.3', '192.168.1.10/31', '192.168.1.8/31', '127.93.0.0/24', '::ffff:10.0.0.1', '::ffff:8.0.0.1',
  ]);
  assert.deepEqual(e.map((x) => x.where).slice(0, 2), ['padded.txt:1', 'padded.txt:1']);
  // 093 is not octal: decimal only
  assert.equal(exclusionMatcher(e.map((x) => x.text))('127.93.0.77'), true);
  assert.throws(() => parseExclusionText('010.0.0.300\n', 'p.txt'), /p\.txt:1: '010\.0\.0\.300' is not an IPv4 address/);
});

test('--exclude: an address-like value is parsed as an address, not looked up as a file', async () => {
  for (const v of ['300.0.0.0/8', '10.0.0.0/33', '1.2.3', '2001:db8::zz/64', '::ffff:300.1.1.1']) {
    assert.equal(looksLikeAddress(v), true, v);
    await assert.rejects(loadCliExclusions([], [v]), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_TARGET_INVALID' && e.message.includes(`--exclude 1: '${v}'`), v);
  }
  for (const v of ['excludes.txt', './2024/list', 'optout', '/etc/tocsin/excl']) assert.equal(looksLikeAddress(v), false, v);
  await assert.rejects(loadCliExclusions([], ['no-such-list.txt']), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_INPUT_UNREADABLE');
  assert.deepEqual(await loadCliExclusions([], ['::ffff:127.93.0.64/122', '127.093.0.1']), ['::ffff:127.93.0.64/122', '127.93.0.1']);
});

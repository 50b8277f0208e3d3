import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTocsinError } from '../core/errors.js';
import { AddressSet, exclusionMatcher, loadExclusions, parseExclusionText } from './scope.js';

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

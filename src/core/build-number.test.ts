import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareBuilds, cuKeyOf, formatBuild, formatBuildLong, normaliseBuild, parseBuildNumber, tryParseBuildNumber } from './build-number.js';
import { TocsinError } from './errors.js';

test('short and long forms parse to the same build', () => {
  assert.deepEqual(parseBuildNumber('15.1.2176.9'), { major: 15, minor: 1, build: 2176, revision: 9 });
  assert.deepEqual(parseBuildNumber('15.01.2176.009'), parseBuildNumber('15.1.2176.9'));
  assert.equal(formatBuild(parseBuildNumber('15.02.0858.002')), '15.2.858.2');
  assert.equal(formatBuildLong(parseBuildNumber('15.2.858.2')), '15.02.0858.002');
  assert.equal(normaliseBuild(' 14.03.0513.000 '), '14.3.513.0');
});

test('CU-level builds have no revision and sort below every revision of their CU', () => {
  const cu = parseBuildNumber('15.1.2176');
  assert.equal(cu.revision, null);
  assert.equal(formatBuild(cu), '15.1.2176');
  assert.ok(compareBuilds(cu, parseBuildNumber('15.1.2176.0')) < 0);
  assert.equal(cuKeyOf(parseBuildNumber('15.1.2176.14')), '15.1.2176');
});

test('comparison is numeric, not lexical', () => {
  const order = ['8.3.517.0', '14.3.513.0', '15.0.1497.48', '15.1.225.42', '15.1.2176.9', '15.1.2176.12', '15.2.858.5', '15.2.2562.17'];
  const shuffled = [...order].reverse();
  shuffled.sort((a, b) => compareBuilds(parseBuildNumber(a), parseBuildNumber(b)));
  assert.deepEqual(shuffled, order);
  assert.equal(compareBuilds(parseBuildNumber('15.2.858.10'), parseBuildNumber('15.02.0858.010')), 0);
});

test('garbage is refused with a clear error', () => {
  for (const bad of ['', '15', '15.1', '15.1.2176.9.1', 'v15.1.2176', '15.1.2176.x', '15..2176.9', '15.1.2176.9 ', '1'.repeat(40), '15.1.99999.1', '15.1.2176.-1', '15.1.2176.9<script>', '１５.1.2176.9']) {
    if (bad === '15.1.2176.9 ') {
      assert.notEqual(tryParseBuildNumber(bad), null, 'surrounding whitespace is tolerated');
      continue;
    }
    assert.equal(tryParseBuildNumber(bad), null, bad);
    assert.throws(
      () => parseBuildNumber(bad),
      (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_KB_UNKNOWN_BUILD' && e.message.includes('not an Exchange build number'),
    );
  }
});

test('the error message caps and quotes hostile input', () => {
  try {
    parseBuildNumber(`15.1\n${'A'.repeat(500)}`);
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof TocsinError);
    assert.ok(e.message.length < 100, e.message);
    assert.ok(!e.message.includes('\n'));
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIntFlag } from './args.js';
import { TocsinError } from '../core/errors.js';

test('parseIntFlag: whole numbers within the range', () => {
  assert.equal(parseIntFlag('--workers', '0', 0, 64), 0);
  assert.equal(parseIntFlag('--workers', ' 64 ', 0, 64), 64);
  assert.equal(parseIntFlag('--seed', '007', 0, 0xffffffff), 7);
  assert.equal(parseIntFlag('--rate', undefined, 0, 10), undefined);
});

test('parseIntFlag: anything else is TOCSIN_ARG_INVALID naming the flag and the range', () => {
  for (const bad of ['', ' ', '-1', '65', '1.5', '1e2', '0x10', 'abc', '+3', '99999999999999999999']) {
    assert.throws(
      () => parseIntFlag('--workers', bad, 0, 64),
      (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID' && e.message.includes('--workers') && e.message.includes('0 to 64'),
      JSON.stringify(bad),
    );
  }
});

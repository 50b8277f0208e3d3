/**
 * The verdict-set key text (verdict-sets.ts contentOf) is memoised by the identity of the knowledge base's frozen
 * lists: the same frozen pair gives the same text (made once), and a list that is not frozen is read afresh every
 * time, so a caller that changes an array after a lookup never gets the old set.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { contentOf } from '../src/platform/db/verdict-sets.js';

test('verdict set key: frozen lists by identity, mutable lists read afresh', () => {
  const v = Object.freeze(['CVE-2021-26855', 'CVE-2021-27065']);
  const i = Object.freeze(['CVE-2022-41040']);
  const first = contentOf({ vulnerable: v, indeterminate: i });
  assert.equal(first, JSON.stringify([v, i]));
  assert.equal(contentOf({ vulnerable: v, indeterminate: i }), first);
  // Another frozen pair with the same vulnerable list but other indeterminate ones has its own text.
  const i2 = Object.freeze(['CVE-2023-21529']);
  assert.equal(contentOf({ vulnerable: v, indeterminate: i2 }), JSON.stringify([v, i2]));
  // A mutable list changed after a lookup gives the new content.
  const m = ['CVE-2021-26855'];
  assert.equal(contentOf({ vulnerable: m, indeterminate: i }), JSON.stringify([m, i]));
  m.push('CVE-2021-27065');
  assert.equal(contentOf({ vulnerable: m, indeterminate: i }), JSON.stringify([['CVE-2021-26855', 'CVE-2021-27065'], i]));
});

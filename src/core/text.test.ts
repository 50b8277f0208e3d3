import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capText, sanitiseText } from './text.js';

/** Every character the sanitiser must neutralise, by class (the boundaries of each range included). */
const UNSAFE_CLASSES: Readonly<Record<string, readonly number[]>> = {
  'C0 controls': [0x00, 0x01, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0d, 0x1b, 0x1f],
  DEL: [0x7f],
  'C1 controls': [0x80, 0x85, 0x9b, 0x9f],
  'line and paragraph separators': [0x2028, 0x2029],
  'bidi embeddings and overrides': [0x202a, 0x202b, 0x202c, 0x202d, 0x202e],
  'bidi isolates': [0x2066, 0x2067, 0x2068, 0x2069],
  'bidi marks': [0x200e, 0x200f, 0x061c],
  'zero-width characters and BOM': [0x200b, 0x200c, 0x200d, 0xfeff],
};

/** Neighbours of the ranges above, and ordinary non-ASCII text: all kept. */
const SAFE = [0x20, 0x7e, 0xa0, 0xe9, 0x2027, 0x202f, 0x2065, 0x206a, 0x200a, 0x2010, 0x061b, 0xfefe, 0xff01];

test('every unsafe character class is replaced, one for one', () => {
  for (const [name, codes] of Object.entries(UNSAFE_CLASSES)) {
    for (const c of codes) {
      const ch = String.fromCharCode(c);
      assert.equal(sanitiseText(`a${ch}b`), 'a?b', `${name} U+${c.toString(16)}`);
      assert.equal(sanitiseText(`a${ch}b`, { replacement: ' ' }), 'a b', `${name} U+${c.toString(16)}`);
    }
  }
});

test('safe characters, astral characters and plain text are left alone', () => {
  for (const c of SAFE) assert.equal(sanitiseText(`a${String.fromCharCode(c)}b`), `a${String.fromCharCode(c)}b`, `U+${c.toString(16)}`);
  assert.equal(sanitiseText('Exchange 2019 CU14 — Überprüfung 😀'), 'Exchange 2019 CU14 — Überprüfung 😀');
});

test('escape style shows each unsafe character as a visible escape', () => {
  assert.equal(sanitiseText('a\u001b[2Jb\r\n\t\u202e\u200bc\u0085\u2028\u061c', { style: 'escape' }), 'a\\x1b[2Jb\\r\\n\\t\\u{202e}\\u{200b}c\\x85\\u{2028}\\u{61c}');
  assert.equal(sanitiseText('\u0000\u007f\ufeff', { style: 'escape' }), '\\x00\\x7f\\u{feff}');
});

test('json style writes \\uXXXX escapes (the JSON value is unchanged)', () => {
  const value = 'x\u009by\u202ez\u2028';
  const json = sanitiseText(JSON.stringify({ v: value }), { style: 'json' });
  assert.equal(json, '{"v":"x\\u009by\\u202ez\\u2028"}');
  assert.deepEqual(JSON.parse(json), { v: value });
});

test('keepNewlines keeps LF only: CR, tabs and the rest are still replaced', () => {
  assert.equal(sanitiseText('line 1\nline 2\r\n\u001b[31m', { keepNewlines: true }), 'line 1\nline 2?\n?[31m');
  assert.equal(sanitiseText('a\nb\u2028c', { keepNewlines: true, style: 'escape' }), 'a\nb\\u{2028}c');
});

test('the cap: at most max units, ending with an ellipsis, never half a surrogate pair', () => {
  assert.equal(sanitiseText('abcdef', { max: 6 }), 'abcdef');
  assert.equal(sanitiseText('abcdefg', { max: 6 }), 'abcde…');
  assert.equal(sanitiseText('ab\u001bdefg', { max: 6 }), 'ab?de…');
  assert.equal(capText('abcd😀xyz', 6), 'abcd…', 'the emoji would be cut in half: it goes whole');
  assert.equal(capText('abc😀xyz', 6), 'abc😀…');
  assert.equal(capText('abc', 0), '');
  assert.equal(capText('abc', 1), '…');
  // escapes are never cut: the cap counts input characters
  assert.equal(sanitiseText('\u001b\u001b\u001b\u001b', { max: 3, style: 'escape' }), '\\x1b\\x1b…');
  const long = 'x'.repeat(10_000);
  assert.equal(sanitiseText(long, { max: 80 }).length, 80);
});

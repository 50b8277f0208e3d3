import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCsvLine } from './csv-line.js';

test('plain fields, empty fields and a trailing empty field', () => {
  assert.deepEqual(parseCsvLine('a,b,,d'), ['a', 'b', '', 'd']);
  assert.deepEqual(parseCsvLine('a,b,'), ['a', 'b', '']);
  assert.deepEqual(parseCsvLine(''), ['']);
});

test('quoted fields keep commas and doubled quotes', () => {
  assert.deepEqual(parseCsvLine('x,"Mozilla/5.0 (compatible; ""bot"", v1)",y'), ['x', 'Mozilla/5.0 (compatible; "bot", v1)', 'y']);
  assert.deepEqual(parseCsvLine('"",""""'), ['', '"']);
  assert.deepEqual(parseCsvLine('"a,b"'), ['a,b']);
});

test('a torn line (unterminated quote) or junk after a closing quote is malformed', () => {
  assert.equal(parseCsvLine('2021-03-03,"python, req'), null);
  assert.equal(parseCsvLine('a,"b"c,d'), null);
});

test('a quote inside an unquoted field is kept literally', () => {
  assert.deepEqual(parseCsvLine("a,it's \"ok\",c"), ['a', 'it\'s "ok"', 'c']);
});

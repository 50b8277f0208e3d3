import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCondition, describeCondition, likeToRegExp, type Row } from './matcher.js';
import type { FieldName } from './rules.js';

function row(fields: Partial<Record<FieldName, string>>): Row {
  return { get: (f) => fields[f] };
}

test('like has PowerShell -like semantics: anchored, case-insensitive, * and ?', () => {
  const re = likeToRegExp('ServerInfo~*/*');
  assert.equal(re.test('ServerInfo~a]@srv:444/ecp/x.ecp?#'), true);
  assert.equal(re.test('serverinfo~A]@SRV/x'), true);
  assert.equal(re.test('ServerInfo~srv'), false);
  assert.equal(re.test('xServerInfo~a/b'), false);
  assert.equal(likeToRegExp('a?c').test('abc'), true);
  assert.equal(likeToRegExp('a?c').test('abbc'), false);
  // Regex metacharacters in the pattern are literal.
  assert.equal(likeToRegExp('a.b(c)').test('a.b(c)'), true);
  assert.equal(likeToRegExp('a.b(c)').test('axb(c)'), false);
});

test('all / any / not / equals / matches, and a missing field fails its test', () => {
  const p = compileCondition({
    all: [
      { field: 'AnchorMailbox', like: 'ServerInfo~*/*' },
      { not: { field: 'AnchorMailbox', like: 'ServerInfo~localhost*/*' } },
      { any: [{ field: 'HttpStatus', equals: '200' }, { field: 'Method', matches: '^post$' }] },
    ],
  });
  assert.equal(p(row({ AnchorMailbox: 'ServerInfo~a]@x/ecp', HttpStatus: '200' })), true);
  assert.equal(p(row({ AnchorMailbox: 'ServerInfo~a]@x/ecp', HttpStatus: '500', Method: 'POST' })), true);
  assert.equal(p(row({ AnchorMailbox: 'ServerInfo~a]@x/ecp', HttpStatus: '500', Method: 'GET' })), false);
  assert.equal(p(row({ AnchorMailbox: 'ServerInfo~localhost/ecp', HttpStatus: '200' })), false);
  assert.equal(p(row({ HttpStatus: '200' })), false);
  assert.equal(compileCondition({ field: 'HttpStatus', equals: '200' })(row({ HttpStatus: ' 200 ' })), true);
});

test('describeCondition renders a readable formula', () => {
  const s = describeCondition({ all: [{ field: 'UrlStem', matches: '^/x' }, { not: { field: 'Method', equals: 'GET' } }] });
  assert.equal(s, 'UrlStem =~ `/^/x/i` AND NOT Method = `GET`');
});

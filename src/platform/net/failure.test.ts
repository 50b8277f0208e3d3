/** Socket errors as failure values: the kinds and phases the scan engine judges by. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureOf, kindOf } from './failure.js';

function sockErr(code: string | undefined, message = 'boom'): Error {
  return code === undefined ? new Error(message) : Object.assign(new Error(message), { code });
}

test('address-level codes mean the same in every phase', () => {
  for (const phase of ['connect', 'tls', 'request'] as const) {
    assert.equal(kindOf('ECONNREFUSED', phase), 'refused');
    assert.equal(kindOf('ETIMEDOUT', phase), 'timeout');
    for (const c of ['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']) assert.equal(kindOf(c, phase), 'unreachable', c);
  }
});

test('other codes depend on the phase: TLS errors, connect resets, request resets', () => {
  assert.equal(kindOf('ECONNRESET', 'tls'), 'tls-error');
  assert.equal(kindOf('ERR_SSL_WRONG_VERSION_NUMBER', 'tls'), 'tls-error');
  assert.equal(kindOf('ECONNRESET', 'connect'), 'reset');
  assert.equal(kindOf('EPIPE', 'connect'), 'unreachable');
  assert.equal(kindOf('ECONNRESET', 'request'), 'reset');
  assert.equal(kindOf('', 'request'), 'reset');
});

test('failureOf keeps the code as a field and a short detail for people', () => {
  assert.deepEqual(failureOf(sockErr('ECONNRESET'), 'tls'), { kind: 'tls-error', phase: 'tls', detail: 'tls: ECONNRESET', code: 'ECONNRESET' });
  const noCode = failureOf(sockErr(undefined, 'x'.repeat(500)), 'request');
  assert.equal(noCode.code, undefined);
  assert.equal('code' in noCode, false);
  assert.equal(noCode.detail.length, 200);
  assert.ok(noCode.detail.startsWith('request: xxx'));
});

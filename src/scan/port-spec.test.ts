import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPorts, parsePorts } from './port-spec.js';
import { TocsinError } from '../core/errors.js';

test('bare ports: 443 is TLS, 80 plain HTTP, others TLS-then-HTTP; suffixes win', () => {
  assert.deepEqual(parsePorts('443,80, 8443,8000,80/tls,  444/https,8081/http'.replace('80/tls,', '')), [
    { port: 443, mode: 'tls' }, { port: 80, mode: 'http' }, { port: 8443, mode: 'tls' }, { port: 8000, mode: 'auto' },
    { port: 444, mode: 'tls' }, { port: 8081, mode: 'http' },
  ]);
  assert.deepEqual(parsePorts('80/TLS'), [{ port: 80, mode: 'tls' }]);
});

test('bad and duplicate ports are refused with the entry named', () => {
  for (const bad of ['0', '65536', 'x', '443/ftp', '443,443/tls', '', '-1']) {
    assert.throws(() => parsePorts(bad), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID', bad);
  }
  assert.throws(() => parsePorts('443,44x3'), /"44x3"/);
});

test('formatPorts round-trips', () => {
  const p = parsePorts('443,80,8000,81/tls');
  assert.deepEqual(parsePorts(formatPorts(p)), p);
});

test('an empty entry (443,,80 or a trailing comma) is refused, naming the entry', () => {
  for (const [bad, entry] of [['443,,80', 2], ['443,', 2], [',443', 1], ['443, ,80', 2]] as const) {
    assert.throws(() => parsePorts(bad), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID' && e.message.includes(`entry ${entry} of`) && e.message.includes('is empty'), bad);
  }
  assert.throws(() => parsePorts(' '), /no port given/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deploymentProblems, inspectConfig, readConfig } from './config.js';
import { TocsinError } from './errors.js';

test('defaults: root keeps state under /var/lib/tocsin, others under XDG data home', () => {
  assert.equal(readConfig({}, 0).home, '/var/lib/tocsin');
  assert.equal(readConfig({ XDG_DATA_HOME: '/x/data' }, 1000).home, '/x/data/tocsin');
  assert.equal(readConfig({}, 0).databaseUrl, null);
  assert.match(readConfig({}, 0).userAgent, /Tocsin\/.*\+https?:\/\//);
});

test('database URL switches to a real server', () => {
  assert.equal(readConfig({ TOCSIN_DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/t' }, 0).databaseUrl, 'postgres://u:p@127.0.0.1:5432/t');
  assert.equal(readConfig({ DATABASE_URL: 'postgresql://h/t' }, 0).databaseUrl, 'postgresql://h/t');
});

test('every problem is listed, not just the first', () => {
  try {
    readConfig({ TOCSIN_HOME: 'relative', TOCSIN_DATABASE_URL: 'mysql://x', TOCSIN_CONCURRENCY: 'lots', TOCSIN_USER_AGENT: 'a\r\nb' }, 0);
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof TocsinError);
    assert.equal(e.code, 'TOCSIN_CONFIG_INVALID');
    assert.equal(e.details.length, 4, e.details.join('\n'));
  }
});

test('deploymentProblems: the shipped or any example contact URL is a problem for `tocsin check`', () => {
  const at = (url: string): string[] => deploymentProblems(inspectConfig({ TOCSIN_HOME: '/tmp/x', TOCSIN_CONTACT_URL: url }).config);
  assert.match(at('')[0] ?? '', /TOCSIN_CONTACT_URL is not set: the shipped example/);
  assert.match(at('https://cert.example.org/scan')[0] ?? '', /an example URL/);
  assert.match(at('mailto:scans@example.com')[0] ?? '', /an example URL/);
  assert.deepEqual(at('https://cert.gov.test/scanning'), []);
  assert.deepEqual(at('https://example.org.cert.test/'), [], 'only the example domains themselves');
  // inspectConfig lists problems instead of throwing
  assert.equal(inspectConfig({ TOCSIN_HOME: 'relative', TOCSIN_CONCURRENCY: 'lots' }).problems.length, 2);
});

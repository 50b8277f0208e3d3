/** The request head: fixed framing, and nothing from configuration or detector data can break it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCtl, requestHead, safeUserAgent } from './http1-request.js';

test('the head: request line, Host, User-Agent, fixed headers, extra headers, empty line', () => {
  const h = requestHead('GET', '/owa/auth/logon.aspx?x=1', '192.0.2.1:8443', 'Tocsin', { 'X-Extra': 'yes' });
  assert.equal(
    h,
    'GET /owa/auth/logon.aspx?x=1 HTTP/1.1\r\nHost: 192.0.2.1:8443\r\nUser-Agent: Tocsin\r\nAccept: */*\r\n' +
      'Accept-Encoding: identity\r\nConnection: keep-alive\r\nX-Extra: yes\r\n\r\n',
  );
  assert.match(requestHead('HEAD', '/', '[::1]', 'T', undefined), /^HEAD \/ HTTP\/1\.1\r\nHost: \[::1\]\r\n[^]*\r\n\r\n$/);
});

test('extra headers that could smuggle a line are left out', () => {
  const h = requestHead('GET', '/', 'h', 'T', { 'Bad\r\nName': 'x', 'Bad Name': 'x', 'X-Ok': 'fine', 'X-Evil': 'a\r\nHost: other', 'X-Nul': 'a\u0000' });
  assert.equal(h.split('\r\n').filter((l) => l.startsWith('X-') || l.startsWith('Bad')).join('|'), 'X-Ok: fine');
  assert.equal((h.match(/\r\nHost: /g) ?? []).length, 1);
});

test('control characters in the User-Agent are blanked', () => {
  assert.equal(safeUserAgent('Tocsin\r\nX: y\u007f'), 'Tocsin  X: y ');
  assert.equal(safeUserAgent('Tocsin (+https://x.example)'), 'Tocsin (+https://x.example)');
  assert.equal(hasCtl('a\tb'), true);
  assert.equal(hasCtl('caf\u00e9 ~'), false);
});

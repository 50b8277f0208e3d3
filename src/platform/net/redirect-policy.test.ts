/** The redirect policy, directly (no sockets): same target only, at most maxRedirects hops. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProbeTarget } from '../../core/contracts/probe.js';
import { type Endpoint, hostPart, RedirectPolicy, sameTargetHosts } from './redirect-policy.js';

const HTTP: Endpoint = { tls: false, port: 8080 };
const HTTPS: Endpoint = { tls: true, port: 8443 };

function target(extra: Partial<ProbeTarget> = {}): ProbeTarget {
  return { ip: '192.0.2.10', port: 8080, tls: false, hostname: null, ...extra };
}

function loc(l: string): ReadonlyArray<readonly [string, string]> {
  return [['content-length', '0'], ['location', l]];
}

/** Where a 302 with Location `l`, answering `path` on `ep`, leads (null: not followed). */
function hop(p: RedirectPolicy, l: string, ep: Endpoint = HTTP, path = '/owa'): string | null {
  const n = p.next(302, loc(l), ep, path, 0);
  return n === null ? null : p.url(n.ep, n.path);
}

test('relative and absolute Locations on the same target are followed; the URL is resolved against the request', () => {
  const p = new RedirectPolicy(target(), 3);
  assert.equal(hop(p, '/owa/auth/logon.aspx?url=x'), 'http://192.0.2.10:8080/owa/auth/logon.aspx?url=x');
  assert.equal(hop(p, 'auth/logon.aspx', HTTP, '/owa/'), 'http://192.0.2.10:8080/owa/auth/logon.aspx');
  assert.equal(hop(p, 'http://192.0.2.10:8080/x'), 'http://192.0.2.10:8080/x');
  assert.equal(hop(p, '//192.0.2.10:8080/y'), 'http://192.0.2.10:8080/y');
  assert.equal(hop(p, '/a b'), 'http://192.0.2.10:8080/a%20b', 'URL percent-encodes; the request line stays intact');
  assert.equal(hop(p, '/x#frag'), 'http://192.0.2.10:8080/x', 'fragments are not sent');
});

test('other hosts, userinfo, other schemes and broken Locations are not followed', () => {
  const p = new RedirectPolicy(target({ hostname: 'mail.example.org' }), 3);
  for (const l of [
    'https://example.com/owa/',
    'http://192.0.2.11:8080/',
    'http://user:pw@mail.example.org:8080/',
    'http://user@192.0.2.10:8080/',
    'ftp://192.0.2.10/',
    'javascript:alert(1)',
    'http://[::1]:8080/',
    '',
    `/${'a'.repeat(2048)}`,
    '/x\r\nSet-Cookie: a=1',
    'http://exa mple.com/',
  ]) assert.equal(hop(p, l), null, JSON.stringify(l.slice(0, 60)));
  assert.equal(p.next(302, [['content-length', '0']], HTTP, '/', 0), null, 'no Location');
});

test('the target is its name (any case, trailing dot) or its IP, however the Location spells them', () => {
  const named = new RedirectPolicy(target({ hostname: 'Mail.Example.org.' }), 3);
  assert.equal(hop(named, 'http://MAIL.example.ORG:8080/a'), 'http://Mail.Example.org.:8080/a');
  assert.equal(hop(named, 'http://mail.example.org.:8080/a'), 'http://Mail.Example.org.:8080/a');
  assert.equal(hop(named, 'http://192.0.2.10:8080/a'), 'http://Mail.Example.org.:8080/a');
  const v6 = new RedirectPolicy({ ip: '2001:db8:0:0::1', port: 8080, tls: false, hostname: null }, 3);
  assert.equal(v6.host, '[2001:db8:0:0::1]');
  assert.equal(hop(v6, 'http://[2001:DB8::1]:8080/a'), 'http://[2001:db8:0:0::1]:8080/a');
  assert.equal(hop(v6, 'http://[2001:db8::2]:8080/a'), null);
  const shorthand = new RedirectPolicy(target({ ip: '127.0.0.1' }), 3);
  assert.equal(hop(shorthand, 'http://127.1:8080/a'), 'http://127.0.0.1:8080/a', 'IPv4 shorthand normalised like the target');
  assert.deepEqual([...sameTargetHosts(target({ hostname: 'A.example.' }))], ['a.example', '192.0.2.10']);
  assert.equal(hostPart({ ip: '::1', port: 1, tls: false, hostname: null }), '[::1]');
  assert.equal(hostPart(target({ hostname: 'mail.example.org' })), 'mail.example.org');
});

test('ports and schemes: same scheme needs the same port; http may go to https on the same port or 443; never back', () => {
  const p = new RedirectPolicy(target(), 3);
  assert.equal(hop(p, 'http://192.0.2.10:1/x'), null);
  assert.equal(hop(p, 'http://192.0.2.10/x'), null, 'default port 80 is another port');
  assert.equal(hop(p, 'https://192.0.2.10:8080/x'), 'https://192.0.2.10:8080/x');
  assert.equal(hop(p, 'https://192.0.2.10/x'), 'https://192.0.2.10:443/x');
  assert.equal(hop(p, 'https://192.0.2.10:8443/x'), null);
  assert.equal(hop(p, 'http://192.0.2.10:8443/x', HTTPS), null, 'no downgrade to http');
  assert.equal(hop(p, '/x', HTTPS), 'https://192.0.2.10:8443/x');
  const on80 = new RedirectPolicy(target({ port: 80 }), 3);
  assert.equal(hop(on80, 'http://192.0.2.10/x', { tls: false, port: 80 }), 'http://192.0.2.10:80/x');
  const n = p.next(301, loc('https://192.0.2.10/x'), HTTP, '/', 0);
  assert.deepEqual(n, { ep: { tls: true, port: 443 }, path: '/x' });
});

test('only 301, 302, 303, 307 and 308 are followed, at most maxRedirects times', () => {
  const p = new RedirectPolicy(target(), 3);
  for (const s of [301, 302, 303, 307, 308]) assert.notEqual(p.next(s, loc('/x'), HTTP, '/', 0), null, String(s));
  for (const s of [200, 300, 304, 305, 306, 309, 404]) assert.equal(p.next(s, loc('/x'), HTTP, '/', 0), null, String(s));
  assert.notEqual(p.next(302, loc('/x'), HTTP, '/', 2), null);
  assert.equal(p.next(302, loc('/x'), HTTP, '/', 3), null);
  assert.equal(new RedirectPolicy(target(), 0).next(302, loc('/x'), HTTP, '/', 0), null);
});

test('the first Location header counts', () => {
  const p = new RedirectPolicy(target(), 3);
  const n = p.next(302, [['location', '/first'], ['location', 'https://example.com/']], HTTP, '/', 0);
  assert.equal(n?.path, '/first');
});

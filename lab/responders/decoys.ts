/** Decoys that are not Exchange at all: IIS and nginx default and error pages. */
import type { LabHost } from '../estate.js';
import { nginxError, nginxWelcome } from '../pages.js';
import { renderRoute, type RouteTable } from '../routes.js';
import { iis404, iisStart, LAST_MODIFIED, PNG_1X1, type BodyCache, type Hdr } from './common.js';

export function iisTable(host: LabHost, cache: BodyCache): RouteTable {
  const iis = host.variant === 'iis-7.5' ? '7.5' : host.variant === 'iis-8.5' ? '8.5' : '10.0';
  const server: Hdr[] = [['Server', `Microsoft-IIS/${iis}`]];
  const start = iisStart(server, iis, cache);
  const png = renderRoute({
    status: 200,
    reason: 'OK',
    headers: [['Content-Type', 'image/png'], ['Last-Modified', LAST_MODIFIED], ['Accept-Ranges', 'bytes'], ['ETag', '"1c4a2b3d5e6f:0"'], ...server, ['X-Powered-By', 'ASP.NET']],
    body: PNG_1X1,
  });
  return {
    exact: new Map([
      ['/', start],
      ['/iisstart.htm', start],
      ['/iisstart.png', png],
      ['/welcome.png', png],
    ]),
    prefixes: [],
    fallback: iis404(server, cache),
  };
}

export function nginxTable(host: LabHost, cache: BodyCache): RouteTable {
  const server = host.index % 2 === 0 ? 'nginx/1.18.0 (Ubuntu)' : 'nginx';
  const hdr = (type: string): Hdr[] => [
    ['Server', server],
    ['Content-Type', type],
  ];
  const notFound = renderRoute({ status: 404, reason: 'Not Found', headers: hdr('text/html'), body: nginxError(404, 'Not Found', server) });
  if (host.variant === 'nginx-404') return { exact: new Map(), prefixes: [], fallback: notFound };
  const welcome = renderRoute({
    status: 200,
    reason: 'OK',
    headers: [...hdr('text/html'), ['Last-Modified', 'Tue, 21 Apr 2020 14:09:01 GMT'], ['ETag', '"5e9efe7d-264"'], ['Accept-Ranges', 'bytes']],
    body: cache.get('nginx-welcome', nginxWelcome),
  });
  return { exact: new Map([['/', welcome], ['/index.html', welcome]]), prefixes: [], fallback: notFound };
}

/**
 * What each simulated host answers over HTTP: route tables for Exchange 2010/2013/2016/2019/SE servers,
 * Exchange Online front ends and the decoys (IIS, nginx, OWA phishing clones), plus the header-level
 * hostile hosts: one responder per host kind under responders/, dispatched here. Pure (no sockets); the
 * server renders a host's tables on its first connection.
 */
import type { LabHost } from './estate.js';
import { iisVersionFor, type BodyCache } from './responders/common.js';
import { iisTable, nginxTable } from './responders/decoys.js';
import { exchangeTable } from './responders/exchange.js';
import { hostileTable, oversizedTable } from './responders/hostile-headers.js';
import { onlineTable } from './responders/online.js';
import { phishTable } from './responders/phish.js';
import type { RouteSpec, RouteTable } from './routes.js';

export { BodyCache, iisVersionFor } from './responders/common.js';
export { EXPORTTOOL_FILE } from './responders/exchange.js';
export { hostileHeaders } from './responders/hostile-headers.js';

/** The HTTPS route table of a host that answers HTTP (null for kinds handled at the socket level). */
export function httpsRoutes(host: LabHost, cache: BodyCache): RouteTable | null {
  switch (host.kind) {
    case 'exchange':
      return exchangeTable(host, cache);
    case 'exchange-online':
      return onlineTable(host);
    case 'iis':
      return iisTable(host, cache);
    case 'nginx':
      return nginxTable(host, cache);
    case 'owa-phish':
      return phishTable(host, cache);
    case 'hostile-headers':
      return hostileTable(host);
    case 'oversized':
      return host.variant === 'body-50mb' ? null : oversizedTable(host, cache);
    default:
      return null;
  }
}

/**
 * How the plain-HTTP port answers: Exchange and Exchange Online redirect every path to https on the same
 * host ('redirect'); decoys and hostile hosts answer as on HTTPS ('same').
 */
export function httpMode(host: LabHost): 'redirect' | 'same' {
  return host.kind === 'exchange' || host.kind === 'exchange-online' ? 'redirect' : 'same';
}

/** Pre-rendered pieces of the http→https redirect; the URL (https://host[:port]/path) is inserted per request. */
export function httpsRedirectParts(host: LabHost): { readonly head1: Buffer; readonly head2: Buffer; readonly body1: Buffer; readonly body2: Buffer } {
  const server = host.kind === 'exchange-online' ? '10.0' : iisVersionFor(host);
  return {
    head1: Buffer.from(`HTTP/1.1 302 Redirect\r\nContent-Type: text/html; charset=UTF-8\r\nLocation: `, 'latin1'),
    head2: Buffer.from(`\r\nServer: Microsoft-IIS/${server}\r\nX-Powered-By: ASP.NET\r\n`, 'latin1'),
    body1: Buffer.from('<head><title>Document Moved</title></head>\n<body><h1>Object Moved</h1>This document may be found <a HREF="', 'latin1'),
    body2: Buffer.from('">here</a></body>', 'latin1'),
  };
}

export type { RouteSpec };

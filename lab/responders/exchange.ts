/**
 * Exchange on-premises (2010 to SE), modelled on what real servers send to an anonymous client:
 *  - GET /owa/ → 302 to /owa/auth/logon.aspx?url=...&reason=0 (URL-encoded on 2013+, plain on 2010), with
 *    X-OWA-Version (unless an admin's rewrite rule strips it), X-FEServer (2013+), request-id.
 *  - GET /owa/auth/logon.aspx → 200, the forms logon page with the versioned asset paths.
 *  - /EWS/, /autodiscover/, /Microsoft-Server-ActiveSync, /mapi/, /rpc/, /oab/ → 401 Negotiate/NTLM (+Basic),
 *    with X-CalculatedBETarget on 2013+.
 *  - /ecp/ → 302 to the logon page; /ecp/Current/exporttool/...application and /ecp/<build>/exporttool/...
 *    → the ClickOnce manifest (2013+), unless ECP is blocked at the edge (then 403 for all of /ecp/).
 *  - IIS answers "/" with its start page (or an admin's redirect to /owa) and unknown paths with its 404 page.
 */
import type { LabHost } from '../estate.js';
import { exporttoolManifest, logonPage, logonPage2010 } from '../pages.js';
import { AUTH, AUTH_ENC, renderRoute, type PrefixRoute, type Route, type RouteTable } from '../routes.js';
import { assetPrefix, familyOf, guidSource, iis403, iis404, iisRedirect, iisStart, iisVersionFor, LAST_MODIFIED, type BodyCache, type Hdr } from './common.js';

export const EXPORTTOOL_FILE = 'microsoft.exchange.ediscovery.exporttool.application';

export function exchangeTable(host: LabHost, cache: BodyCache): RouteTable {
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

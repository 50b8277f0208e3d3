/** Exchange Online front ends: 15.20 X-OWA-Version, *.PROD.OUTLOOK.COM back ends, redirects to login.microsoftonline.com. */
import type { LabHost } from '../estate.js';
import { prng } from '../prng.js';
import { aspnetObjectMoved } from '../pages.js';
import { renderRoute, type Route, type RouteTable } from '../routes.js';
import { guidSource, iisRedirect, type Hdr } from './common.js';

export function onlineTable(host: LabHost): RouteTable {
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

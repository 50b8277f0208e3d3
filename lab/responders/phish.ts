import type { LabHost } from '../estate.js';
import { logonPage } from '../pages.js';
import { AUTH, AUTH_ENC, renderRoute, type RouteTable } from '../routes.js';
import { assetPrefix, iis404, type BodyCache, type Hdr } from './common.js';

/**
 * Phishing kits and honeypots clone the OWA logon page (markers, asset paths, form) but not the server:
 * no X-OWA-Version, no X-FEServer, no export tool manifest. One kind of signal only.
 */
export function phishTable(host: LabHost, cache: BodyCache): RouteTable {
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

/**
 * An independent Exchange estate on 127.30.0.0/24 (apart from the lab's 127.3/127.4 ranges) for
 * acceptance tests, written apart from the project's lab on purpose (a second opinion on what
 * "Exchange on the wire" looks like).
 *
 * Two listeners on 0.0.0.0 with ephemeral ports; each connection is mapped to a host by the local
 * address it arrived on (every 127.x.y.z reaches loopback on Linux):
 *   - `tlsPort`: a node:tls server (HTTPS);
 *   - `plainPort`: a raw node:net server speaking plain HTTP; a connection whose first byte is a TLS
 *     handshake record (0x16) is handed to TLS instead, so "http://host:plainPort → https://host:plainPort"
 *     redirects (nginx's error_page 497 pattern) can be followed on the same port.
 * Any connection whose local or remote address is not 127.x is destroyed at once.
 *
 * HTTP is written by hand over the sockets (not node:http) so hostile hosts can send what they like.
 * Every request head received is logged (method, target, headers) for the non-intrusiveness checks.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { TestCert } from './cert.js';
import {
  APACHE_404,
  IIS_403_SSL,
  IIS_404,
  IIS_START,
  NGINX_WELCOME,
  exporttoolManifest,
  nginxError,
  owaLogon2010,
  owaLogon2013,
} from './pages.js';

export interface EstateRequest {
  readonly hostId: string;
  readonly ip: string;
  readonly via: 'tls' | 'plain';
  readonly method: string;
  /** Request target as sent (path and query). */
  readonly target: string;
  readonly version: string;
  /** Lower-cased header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
}

type HeaderList = ReadonlyArray<readonly [string, string]>;

type Reply =
  | { readonly kind: 'http'; readonly status: number; readonly reason: string; readonly headers: HeaderList; readonly body: string | Buffer }
  /** Raw bytes exactly as given (for broken framing). */
  | { readonly kind: 'raw'; readonly bytes: Buffer }
  | { readonly kind: 'silent' }
  | { readonly kind: 'drip' }
  | { readonly kind: 'garbage' }
  | { readonly kind: 'huge' };

interface Req {
  readonly method: string;
  readonly target: string;
  /** Lower-cased path without query. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The Host header as the client sent it (what IIS builds its redirects from). */
  readonly host: string;
  readonly via: 'tls' | 'plain';
  readonly plainPort: number;
}

interface HostDef {
  readonly id: string;
  readonly ip: string;
  /** What happens on a plain connection before any request (hostile hosts only). */
  readonly onPlainConnect?: 'silent' | 'garbage';
  respond(req: Req): Reply;
}

// --- Exchange-like responses -------------------------------------------------------------------

let seq = 0;
function requestId(): string {
  seq++;
  return `${randomBytes(4).toString('hex')}-${randomBytes(2).toString('hex')}-4${randomBytes(2).toString('hex').slice(1)}-8${randomBytes(2).toString('hex').slice(1)}-${seq.toString(16).padStart(12, '0')}`;
}

interface ExchangeOpts {
  readonly id: string;
  readonly ip: string;
  /** Full build the server runs (what X-OWA-Version and the manifest would say). */
  readonly build: string;
  /** Build written in X-OWA-Version when it differs from `build` (web components drift, 2019 CU9). */
  readonly owaVersion?: string;
  /** Send X-OWA-Version (false: stripped by a reverse proxy / rewrite rule). */
  readonly showOwaVersion: boolean;
  /** X-FEServer value, or null when the proxy strips X-* headers. */
  readonly feServer: string | null;
  /** Serve the exporttool manifest (false: ECP blocked from outside, 404). */
  readonly manifest: boolean;
  /** Plain HTTP behaviour: redirect to https on the same port, or IIS "SSL required". */
  readonly plain: 'redirect' | 'ssl-required';
  readonly iis: string;
}

function iis404(iis: string, extra: HeaderList = []): Reply {
  return { kind: 'http', status: 404, reason: 'Not Found', headers: [['Content-Type', 'text/html'], ['Server', iis], ['X-Powered-By', 'ASP.NET'], ...extra], body: IIS_404 };
}

function httpsRedirect(req: Req, status = 301): Reply {
  const loc = `https://${req.host.replace(/:\d+$/, '')}:${req.plainPort}${req.target}`;
  return { kind: 'http', status, reason: status === 301 ? 'Moved Permanently' : 'Found', headers: [['Location', loc], ['Content-Type', 'text/html; charset=UTF-8']], body: `<head><title>Document Moved</title></head>\n<body><h1>Object Moved</h1>This document may be found <a HREF="${loc}">here</a></body>` };
}

function exchangeHost(o: ExchangeOpts): HostDef {
  const parts = o.build.split('.');
  const legacy = parts[0] === '14';
  const cu = parts.slice(0, 3).join('.');
  const owaVersion = o.owaVersion ?? o.build;
  const common = (): [string, string][] => {
    const h: [string, string][] = [['Server', o.iis], ['request-id', requestId()]];
    if (o.showOwaVersion) h.push(['X-OWA-Version', owaVersion]);
    if (o.feServer !== null && !legacy) h.push(['X-FEServer', o.feServer]);
    h.push(['X-Powered-By', 'ASP.NET']);
    return h;
  };
  return {
    id: o.id,
    ip: o.ip,
    respond(req) {
      if (req.via === 'plain') {
        if (o.plain === 'redirect') return httpsRedirect(req);
        return { kind: 'http', status: 403, reason: 'Forbidden', headers: [['Content-Type', 'text/html'], ['Server', o.iis], ['X-Powered-By', 'ASP.NET']], body: IIS_403_SSL };
      }
      const p = req.path;
      const host = req.host;
      if (p === '/owa/auth/logon.aspx') {
        const body = legacy ? owaLogon2010(o.build, host) : owaLogon2013(cu, host);
        return {
          kind: 'http', status: 200, reason: 'OK', body,
          headers: [
            ['Cache-Control', 'no-cache, no-store'], ['Pragma', 'no-cache'], ['Content-Type', 'text/html; charset=utf-8'], ['Expires', '-1'],
            ...common(), ['X-Frame-Options', 'SAMEORIGIN'], ['X-Content-Type-Options', 'nosniff'],
            ['X-UA-Compatible', legacy ? 'IE=EmulateIE7' : 'IE=10'],
            ...(legacy ? [['X-AspNet-Version', '2.0.50727'] as [string, string]] : []),
          ],
        };
      }
      if (p === '/owa' || p === '/owa/') {
        // OWA forms-based authentication: unauthenticated /owa/ goes to the logon page.
        const back = encodeURIComponent(`https://${host}/owa/`).toLowerCase();
        return { kind: 'http', status: 302, reason: 'Found', headers: [['Location', `https://${host}/owa/auth/logon.aspx?url=${back}&reason=0`], ['Content-Type', 'text/html; charset=utf-8'], ...common()], body: '' };
      }
      if (p === '/ecp/current/exporttool/microsoft.exchange.ediscovery.exporttool.application' && o.manifest && !legacy) {
        return { kind: 'http', status: 200, reason: 'OK', body: exporttoolManifest(o.build), headers: [['Content-Type', 'application/x-ms-application'], ['Accept-Ranges', 'bytes'], ['ETag', '"0d5e1c2b3a4d71:0"'], ...common()] };
      }
      if (p === '/autodiscover/autodiscover.xml' || p === '/ews/exchange.asmx' || p === '/microsoft-server-activesync') {
        return {
          kind: 'http', status: 401, reason: 'Unauthorized', body: '',
          headers: [['WWW-Authenticate', 'Negotiate'], ['WWW-Authenticate', 'NTLM'], ['WWW-Authenticate', `Basic realm="${host}"`], ...common()],
        };
      }
      return iis404(o.iis, common().filter(([k]) => k !== 'Server' && k !== 'X-Powered-By'));
    },
  };
}

// --- Decoys --------------------------------------------------------------------------------------

function iisDecoy(id: string, ip: string): HostDef {
  return {
    id, ip,
    respond(req) {
      if (req.path === '/' || req.path === '/iisstart.htm') {
        return { kind: 'http', status: 200, reason: 'OK', body: IIS_START, headers: [['Content-Type', 'text/html'], ['Last-Modified', 'Sat, 08 May 2021 09:10:11 GMT'], ['Accept-Ranges', 'bytes'], ['Server', 'Microsoft-IIS/10.0']] };
      }
      return iis404('Microsoft-IIS/10.0');
    },
  };
}

function nginxDecoy(id: string, ip: string): HostDef {
  return {
    id, ip,
    respond(req) {
      const h: HeaderList = [['Server', 'nginx/1.18.0 (Ubuntu)'], ['Content-Type', 'text/html']];
      if (req.path === '/') return { kind: 'http', status: 200, reason: 'OK', body: NGINX_WELCOME, headers: h };
      return { kind: 'http', status: 404, reason: 'Not Found', body: nginxError(404, 'Not Found'), headers: h };
    },
  };
}

/** A phishing kit: the 2016 CU19 logon page copied with its asset paths, on Apache; no Exchange routing or headers. */
function phishingClone(id: string, ip: string): HostDef {
  return {
    id, ip,
    respond(req) {
      const h: HeaderList = [['Server', 'Apache/2.4.41 (Ubuntu)'], ['Content-Type', 'text/html; charset=UTF-8']];
      if (req.via === 'plain') return httpsRedirect(req, 302);
      if (req.path.startsWith('/owa')) return { kind: 'http', status: 200, reason: 'OK', body: owaLogon2013('15.1.2176', 'mail.contoso-secure-login.test'), headers: h };
      return { kind: 'http', status: 404, reason: 'Not Found', body: APACHE_404, headers: h };
    },
  };
}

/** An Exchange Online front end: 15.20.x build, front/back-end names in Microsoft's domains. */
function exchangeOnline(id: string, ip: string): HostDef {
  return {
    id, ip,
    respond(req) {
      if (req.via === 'plain') return httpsRedirect(req);
      const h: [string, string][] = [
        ['Server', 'Microsoft-IIS/10.0'], ['request-id', requestId()],
        ['X-CalculatedBETarget', 'AM0PR01MB1234.eurprd01.prod.outlook.com'], ['X-BackEndHttpStatus', '200'],
        ['X-OWA-Version', '15.20.8769.23'], ['X-DiagInfo', 'AM0PR01MB1234'], ['X-BEServer', 'AM0PR01MB1234'],
        ['X-FEServer', 'AM0PR01CA0001'], ['X-Powered-By', 'ASP.NET'],
      ];
      if (req.path === '/owa/auth/logon.aspx' || req.path === '/owa' || req.path === '/owa/') {
        return { kind: 'http', status: 302, reason: 'Found', headers: [['Location', 'https://login.microsoftonline.com/common/oauth2/authorize?client_id=00000002-0000-0ff1-ce00-000000000000&response_mode=form_post'], ...h], body: '' };
      }
      if (req.path === '/autodiscover/autodiscover.xml') {
        return { kind: 'http', status: 401, reason: 'Unauthorized', headers: [['WWW-Authenticate', 'Basic Realm=""'], ...h], body: '' };
      }
      return iis404('Microsoft-IIS/10.0', h.slice(1));
    },
  };
}

// --- Hostile hosts ---------------------------------------------------------------------------------

const HOSTILE_VALUES = {
  formula: "=cmd|' /C calc'!A0",
  script: '<script>alert(1)</script>',
  escape: '\u001b[2J\u001b]0;pwned\u0007\u001b[31mRED',
  csvPlus: '+SUM(1+1)*cmd|',
  csvAt: '@SUM(1+1)',
  csvMinus: '-2+3+cmd|',
};
export { HOSTILE_VALUES };

function hostileHeaders(id: string, ip: string): HostDef {
  return {
    id, ip,
    respond() {
      // Values a reader might paste into a spreadsheet or a terminal. The Server value starts like a real
      // IIS banner so that tools which record the web server keep it (and must escape it).
      const headers: HeaderList = [
        ['Server', `Microsoft-IIS/10.0 ${HOSTILE_VALUES.formula} ${HOSTILE_VALUES.script} ${HOSTILE_VALUES.escape}`],
        ['X-FEServer', HOSTILE_VALUES.script],
        ['X-OWA-Version', HOSTILE_VALUES.formula],
        ['X-Powered-By', HOSTILE_VALUES.csvPlus],
        ['X-Note', `${HOSTILE_VALUES.csvAt} ${HOSTILE_VALUES.csvMinus} %0d%0aSet-Cookie: injected=1`],
        ['Content-Type', 'text/html'],
      ];
      const body = `<html><head><title>${HOSTILE_VALUES.formula}</title></head><body>${HOSTILE_VALUES.script}${HOSTILE_VALUES.escape}</body></html>`;
      return { kind: 'http', status: 200, reason: `OK ${HOSTILE_VALUES.escape}`, headers, body };
    },
  };
}

/** Broken framing: a bare CR inside a value, an obs-fold line, NUL and ESC bytes in header values. */
function hostileFraming(id: string, ip: string): HostDef {
  return {
    id, ip,
    respond() {
      const body = '<html><body>framing</body></html>';
      const head = 'HTTP/1.1 200 OK\r\n' +
        'Server: nginx\rX-Injected: 1\r\n' +
        'X-Folded: first\r\n  continued=cmd|\r\n' +
        `X-Ctl: a\u0000b\u001b[2Jc\r\n` +
        'X-FEServer: EX01\r\nX-Smuggle: 1\r\n' +
        `Content-Length: ${body.length}\r\n\r\n`;
      return { kind: 'raw', bytes: Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]) };
    },
  };
}

function simple(id: string, ip: string, reply: Reply, onPlainConnect?: 'silent' | 'garbage'): HostDef {
  return { id, ip, ...(onPlainConnect === undefined ? {} : { onPlainConnect }), respond: () => reply };
}

// --- The estate --------------------------------------------------------------------------------------

export const NET = '127.30.0';

/** Host id → address. Roles and expectations live in the test, not here. */
export const HOSTS: readonly HostDef[] = [
  exchangeHost({ id: 'ex2010-ru31', ip: `${NET}.10`, build: '14.3.509.0', showOwaVersion: false, feServer: null, manifest: false, plain: 'ssl-required', iis: 'Microsoft-IIS/7.5' }),
  exchangeHost({ id: 'ex2013-cu23-dec20', ip: `${NET}.11`, build: '15.0.1497.10', showOwaVersion: true, feServer: 'EX13A', manifest: true, plain: 'redirect', iis: 'Microsoft-IIS/8.5' }),
  exchangeHost({ id: 'ex2013-cu23-mar21', ip: `${NET}.12`, build: '15.0.1497.12', showOwaVersion: false, feServer: null, manifest: true, plain: 'ssl-required', iis: 'Microsoft-IIS/8.5' }),
  exchangeHost({ id: 'ex2016-cu19-mar21', ip: `${NET}.13`, build: '15.1.2176.9', showOwaVersion: true, feServer: 'EX16-01', manifest: false, plain: 'redirect', iis: 'Microsoft-IIS/10.0' }),
  exchangeHost({ id: 'ex2016-cu23-oct25', ip: `${NET}.14`, build: '15.1.2507.61', showOwaVersion: false, feServer: null, manifest: true, plain: 'ssl-required', iis: 'Microsoft-IIS/10.0' }),
  exchangeHost({ id: 'ex2019-cu9-drift', ip: `${NET}.15`, build: '15.2.858.5', owaVersion: '15.2.858.2', showOwaVersion: true, feServer: 'EX19-CU9', manifest: false, plain: 'ssl-required', iis: 'Microsoft-IIS/10.0' }),
  exchangeHost({ id: 'ex2019-cu12-cu-only', ip: `${NET}.16`, build: '15.2.1118.40', showOwaVersion: false, feServer: 'EX19-CU12', manifest: false, plain: 'ssl-required', iis: 'Microsoft-IIS/10.0' }),
  exchangeHost({ id: 'ex2019-cu14-oct25', ip: `${NET}.17`, build: '15.2.1544.36', showOwaVersion: true, feServer: 'EX19-CU14', manifest: true, plain: 'ssl-required', iis: 'Microsoft-IIS/10.0' }),
  exchangeHost({ id: 'ex2019-cu15-oct25', ip: `${NET}.18`, build: '15.2.1748.39', showOwaVersion: false, feServer: null, manifest: true, plain: 'ssl-required', iis: 'Microsoft-IIS/10.0' }),
  exchangeHost({ id: 'exse-rtm-oct25', ip: `${NET}.19`, build: '15.2.2562.29', showOwaVersion: true, feServer: 'EXSE-01', manifest: true, plain: 'redirect', iis: 'Microsoft-IIS/10.0' }),
  iisDecoy('decoy-iis', `${NET}.30`),
  nginxDecoy('decoy-nginx', `${NET}.31`),
  phishingClone('decoy-owa-clone', `${NET}.32`),
  exchangeOnline('decoy-exchange-online', `${NET}.33`),
  simple('hostile-tarpit', `${NET}.50`, { kind: 'silent' }, 'silent'),
  simple('hostile-drip', `${NET}.51`, { kind: 'drip' }),
  simple('hostile-garbage', `${NET}.52`, { kind: 'garbage' }, 'garbage'),
  simple('hostile-oversized', `${NET}.53`, { kind: 'huge' }),
  hostileHeaders('hostile-headers', `${NET}.54`),
  hostileFraming('hostile-framing', `${NET}.55`),
];

const HUGE_BYTES = 20 * 1024 * 1024;
const MAX_HEAD = 16 * 1024;

function isLoopback4(a: string | undefined): boolean {
  return a !== undefined && /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

function bare(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function garbageBytes(): Buffer {
  // Binary noise with terminal escapes and NULs, no status line.
  return Buffer.concat([Buffer.from('\u0000\u00ff\u001b[31m\u001b]0;x\u0007', 'latin1'), randomBytes(4096)]);
}

export interface Estate {
  readonly tlsPort: number;
  readonly plainPort: number;
  readonly hosts: readonly HostDef[];
  readonly requests: readonly EstateRequest[];
  /** Connections accepted per host id (including hostile ones). */
  connections(hostId: string): number;
  /** Connections refused because an address was not 127.x. */
  readonly foreignRefused: number;
  close(): Promise<void>;
}

export async function startEstate(cert: TestCert, hosts: readonly HostDef[] = HOSTS): Promise<Estate> {
  const byIp = new Map(hosts.map((h) => [h.ip, h]));
  const requests: EstateRequest[] = [];
  const conns = new Map<string, number>();
  const sockets = new Set<Duplex>();
  const timers = new Set<NodeJS.Timeout>();
  let foreignRefused = 0;
  let plainPort = 0;
  const secureContext = tls.createSecureContext({ key: cert.key, cert: cert.cert });

  function track(s: Duplex): void {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    // Nobody's connection lives forever here, not even a tarpit's (the client must give up long before).
    if (s instanceof net.Socket) s.setTimeout(60_000, () => s.destroy());
  }

  /** Admission: loopback only, known host only. Returns the host or null (socket destroyed). */
  function admit(sock: net.Socket): HostDef | null {
    if (!isLoopback4(sock.localAddress) || !isLoopback4(sock.remoteAddress)) {
      foreignRefused++;
      sock.destroy();
      return null;
    }
    const host = byIp.get(bare(sock.localAddress ?? ''));
    if (host === undefined) {
      sock.destroy();
      return null;
    }
    conns.set(host.id, (conns.get(host.id) ?? 0) + 1);
    return host;
  }

  function serve(stream: Duplex, host: HostDef, via: 'tls' | 'plain'): void {
    let buf = Buffer.alloc(0);
    let busy = false;
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      pump();
    };
    const pump = (): void => {
      while (!busy) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > MAX_HEAD) stream.destroy();
          return;
        }
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const lines = head.split('\r\n');
        const [method = '', target = '', version = ''] = (lines[0] ?? '').split(' ');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          if (i <= 0) continue;
          const k = line.slice(0, i).trim().toLowerCase();
          const v = line.slice(i + 1).trim();
          headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
        }
        requests.push({ hostId: host.id, ip: host.ip, via, method, target, version, headers });
        const q = target.indexOf('?');
        const req: Req = {
          method, target, via, plainPort, headers,
          path: (q < 0 ? target : target.slice(0, q)).toLowerCase(),
          host: headers.host ?? host.ip,
        };
        const hasBody = (headers['content-length'] !== undefined && headers['content-length'] !== '0') || headers['transfer-encoding'] !== undefined;
        const reply = hasBody ? { kind: 'http' as const, status: 400, reason: 'Bad Request', headers: [['Connection', 'close']] as HeaderList, body: '' } : host.respond(req);
        busy = answer(stream, reply, method === 'HEAD', headers.connection?.toLowerCase() === 'close' || hasBody);
      }
    };
    stream.on('data', onData);
  }

  /** Writes a reply. Returns true if the connection takes no further requests. */
  function answer(stream: Duplex, reply: Reply, head: boolean, close: boolean): boolean {
    switch (reply.kind) {
      case 'http': {
        const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
        const date = new Date().toUTCString();
        let text = `HTTP/1.1 ${reply.status} ${reply.reason}\r\n`;
        for (const [k, v] of reply.headers) text += `${k}: ${v}\r\n`;
        text += `Date: ${date}\r\nContent-Length: ${body.length}\r\n`;
        if (close) text += 'Connection: close\r\n';
        text += '\r\n';
        stream.write(Buffer.from(text, 'latin1'));
        if (!head && body.length > 0) stream.write(body);
        if (close) stream.end();
        return close;
      }
      case 'raw':
        stream.end(reply.bytes);
        return true;
      case 'silent':
        return true;
      case 'garbage':
        stream.end(garbageBytes());
        return true;
      case 'drip': {
        const text = Buffer.from('HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/10.0\r\nX-OWA-Version: 15.1.2176.9\r\nX-FEServer: DRIP01\r\nContent-Length: 100000\r\n\r\n' + '<!-- OwaPage = ASP.auth_logon_aspx -->'.repeat(2000), 'latin1');
        let i = 0;
        const t = setInterval(() => {
          if (stream.destroyed || i >= text.length) {
            clearInterval(t);
            timers.delete(t);
            return;
          }
          stream.write(text.subarray(i, i + 1));
          i++;
        }, 1000);
        timers.add(t);
        stream.on('close', () => {
          clearInterval(t);
          timers.delete(t);
        });
        return true;
      }
      case 'huge': {
        const start = Buffer.from(`HTTP/1.1 200 OK\r\nServer: Apache\r\nContent-Type: text/html\r\nContent-Length: ${HUGE_BYTES}\r\n\r\n`, 'latin1');
        const chunk = Buffer.alloc(64 * 1024, 0x41);
        const first = Buffer.from('<html><head><title>Outlook</title></head><body><form name="logonForm" action="/owa/auth.owa"><!-- OwaPage = ASP.auth_logon_aspx -->', 'latin1');
        stream.write(start);
        stream.write(first);
        let left = HUGE_BYTES - first.length;
        const pumpHuge = (): void => {
          while (left > 0 && !stream.destroyed) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!stream.write(chunk.subarray(0, n))) {
              stream.once('drain', pumpHuge);
              return;
            }
          }
          if (left === 0) stream.end();
        };
        pumpHuge();
        return true;
      }
    }
  }

  const tlsServer = tls.createServer({ key: cert.key, cert: cert.cert });
  tlsServer.on('connection', (sock: net.Socket) => {
    if (admit(sock) !== null) track(sock);
  });
  tlsServer.on('secureConnection', (sock: tls.TLSSocket) => {
    track(sock);
    const host = byIp.get(bare(sock.localAddress ?? ''));
    if (host === undefined) sock.destroy();
    else serve(sock, host, 'tls');
  });
  tlsServer.on('tlsClientError', () => undefined);

  const plainServer = net.createServer((sock) => {
    const host = admit(sock);
    if (host === null) return;
    track(sock);
    if (host.onPlainConnect === 'garbage') {
      sock.end(garbageBytes());
      return;
    }
    sock.once('data', (first: Buffer) => {
      if (first[0] === 0x16 && host.onPlainConnect !== 'silent') {
        // A TLS ClientHello on the plain port: serve HTTPS on it (the redirect target).
        sock.pause();
        const wrapped = prepend(first, sock);
        const t = new tls.TLSSocket(wrapped, { isServer: true, secureContext });
        track(t);
        t.on('secure', () => serve(t, host, 'tls'));
        return;
      }
      serve(sock, host, 'plain');
      sock.emit('data', first);
    });
  });

  await Promise.all([
    new Promise<void>((resolve) => tlsServer.listen(0, '0.0.0.0', resolve)),
    new Promise<void>((resolve) => plainServer.listen(0, '0.0.0.0', resolve)),
  ]);
  const tlsPort = (tlsServer.address() as net.AddressInfo).port;
  plainPort = (plainServer.address() as net.AddressInfo).port;

  return {
    tlsPort,
    plainPort,
    hosts,
    requests,
    connections: (id) => conns.get(id) ?? 0,
    get foreignRefused() {
      return foreignRefused;
    },
    async close() {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => tlsServer.close(() => resolve())),
        new Promise<void>((resolve) => plainServer.close(() => resolve())),
      ]);
    },
  };
}

/** A duplex that replays `first` and then relays `sock` (the TLS layer needs the bytes already read). */
function prepend(first: Buffer, sock: net.Socket): Duplex {
  const d = new Duplex({
    read() {
      sock.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      sock.write(chunk, (e) => cb(e ?? null));
    },
    final(cb) {
      sock.end();
      cb();
    },
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  d.push(first);
  sock.on('data', (c: Buffer) => {
    if (!d.push(c)) sock.pause();
  });
  sock.on('end', () => d.push(null));
  sock.on('close', () => d.destroy());
  return d;
}

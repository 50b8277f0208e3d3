/**
 * The probe client's session against tiny raw servers on loopback (network rule: 127.0.0.0/8 and ::1
 * only). Servers are written with node:net / node:tls so they can misbehave exactly as hostile hosts do.
 * The reader's framing and the redirect policy are also tested without sockets (http1-reader.test.ts,
 * redirect-policy.test.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHostSession } from './http-probe.js';
import { DEFAULT_LIMITS, type NetLimits, type ProbeOutcome, type ProbeTarget } from '../../core/contracts/probe.js';
import type { ProbeRequest, ProbeResponse } from '../../core/contracts/probe.js';

const LIMITS: NetLimits = {
  ...DEFAULT_LIMITS,
  connectTimeoutMs: 1000,
  tlsTimeoutMs: 1000,
  requestTimeoutMs: 600,
  hostBudgetMs: 5000,
  maxHeaderBytes: 4096,
  maxBodyBytes: 8192,
  userAgent: 'Tocsin-test (+https://tocsin.example.org/scanning)',
};

const GET: ProbeRequest = { id: 'root', method: 'GET', path: '/', purpose: 'test' };
const HEAD: ProbeRequest = { id: 'head', method: 'HEAD', path: '/', purpose: 'test' };

interface TestServer {
  readonly port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Raw request heads received, in order. */
  readonly requests: string[];
  /** SNI names seen by TLS servers (null when none was sent). */
  readonly sni: Array<string | null>;
  close(): Promise<void>;
}

type Handler = (sock: net.Socket, requestHead: string, index: number) => void;

/** Accepts connections; calls `onRequest` once per complete request head (keep-alive aware). */
function serve(onRequest: Handler, opts: { host?: string; tls?: { key: Buffer; cert: Buffer }; sniff?: boolean } = {}): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, requests: [] as string[], sni: [] as Array<string | null> };
  const wire = (sock: net.Socket): void => {
    let buf = '';
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        state.requests.push(head);
        onRequest(sock, head, state.requests.length - 1);
      }
    });
  };
  const onConn = (raw: net.Socket): void => {
    state.connections++;
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => undefined);
    if (opts.sniff && inner) {
      // One port, both protocols: a TLS ClientHello starts with 0x16; TLS goes on to the inner server.
      const innerPort = (inner.address() as net.AddressInfo).port;
      raw.once('data', (first: Buffer) => {
        if (first[0] === 0x16) {
          const c = net.connect(innerPort, '127.0.0.1');
          sockets.add(c);
          c.on('close', () => sockets.delete(c));
          c.on('error', () => raw.destroy());
          raw.on('close', () => c.destroy());
          c.write(first);
          raw.pipe(c).pipe(raw);
        } else {
          wire(raw);
          raw.emit('data', first);
        }
      });
      return;
    }
    wire(raw);
  };
  const tlsServer = opts.tls
    ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert }, (s) => {
      state.sni.push((s as tls.TLSSocket & { servername?: string | false }).servername || null);
      wire(s);
    })
    : null;
  const inner = opts.sniff ? tlsServer : null;
  const server = tlsServer && !opts.sniff ? tlsServer : net.createServer(onConn);
  if (tlsServer && !opts.sniff) {
    server.on('connection', (raw: net.Socket) => {
      state.connections++;
      sockets.add(raw);
      raw.on('close', () => sockets.delete(raw));
    });
    server.on('tlsClientError', () => undefined);
  }
  if (inner) {
    inner.on('tlsClientError', () => undefined);
    inner.on('connection', (raw: net.Socket) => {
      sockets.add(raw);
      raw.on('close', () => sockets.delete(raw));
    });
  }
  return new Promise((resolve) => {
    const listening = inner ? new Promise<void>((r) => inner.listen(0, '127.0.0.1', () => r())) : Promise.resolve();
    void listening.then(() => server.listen(0, opts.host ?? '127.0.0.1', () => {
      const addr = server.address() as net.AddressInfo;
      resolve({
        port: addr.port,
        get connections() {
          return state.connections;
        },
        set connections(v: number) {
          state.connections = v;
        },
        requests: state.requests,
        sni: state.sni,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            inner?.close();
            server.close(() => r());
          }),
      });
    }));
  });
}

function target(port: number, extra: Partial<ProbeTarget> = {}): ProbeTarget {
  return { ip: '127.0.0.1', port, tls: false, hostname: null, ...extra };
}

function ok(o: ProbeOutcome): ProbeResponse {
  if (o.kind !== 'ok') assert.fail(`expected ok, got ${o.kind}: ${o.detail}`);
  return o.response;
}

function detail(o: ProbeOutcome): string {
  return o.kind === 'ok' ? '' : o.detail;
}

function hdr(r: ProbeResponse, name: string): string[] {
  return r.headers.filter(([k]) => k === name).map(([, v]) => v);
}

const respond = (body: string, extra = ''): Handler => (sock) => {
  sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);
};

let certDir = '';
let key: Buffer;
let cert: Buffer;
let certSha256 = '';

before(() => {
  certDir = mkdtempSync(join(tmpdir(), 'tocsin-probe-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '2',
    '-subj', '/CN=mail.test.example', '-addext', 'subjectAltName=DNS:mail.test.example,DNS:autodiscover.test.example,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  key = readFileSync(join(certDir, 'key.pem'));
  cert = readFileSync(join(certDir, 'cert.pem'));
  const fp = execFileSync('openssl', ['x509', '-in', join(certDir, 'cert.pem'), '-noout', '-fingerprint', '-sha256']).toString();
  certSha256 = (fp.split('=')[1] ?? '').trim().replace(/:/g, '').toLowerCase();
});

after(() => {
  if (certDir !== '') rmSync(certDir, { recursive: true, force: true });
});

test('normal response: status line, lower-cased repeated headers, body, request headers', async () => {
  const srv = await serve((sock) => {
    sock.write('HTTP/1.1 200 OK\r\nX-OWA-Version: 15.1.2176.9\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Latin: caf\xe9\r\nContent-Length: 5\r\n\r\nhello', 'latin1');
  });
  const s = openHostSession(target(srv.port), LIMITS);
  const r = ok(await s.request({ ...GET, path: '/owa/auth/logon.aspx?x=1', headers: { 'X-Extra': 'yes', 'Bad\r\nName': 'x' } }));
  s.close();
  await srv.close();
  assert.equal(r.status, 200);
  assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(r.probeId, 'root');
  assert.equal(r.url, `http://127.0.0.1:${srv.port}/owa/auth/logon.aspx?x=1`);
  assert.deepEqual(hdr(r, 'set-cookie'), ['a=1', 'b=2']);
  assert.deepEqual(hdr(r, 'x-owa-version'), ['15.1.2176.9']);
  assert.deepEqual(hdr(r, 'x-latin'), ['caf\u00e9']);
  assert.equal(r.body.toString(), 'hello');
  assert.equal(r.truncated, false);
  assert.deepEqual(r.redirects, []);
  const req = srv.requests[0] ?? '';
  assert.match(req, /^GET \/owa\/auth\/logon\.aspx\?x=1 HTTP\/1\.1\r\n/);
  assert.match(req, new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${srv.port}\r\n`));
  assert.match(req, /\r\nUser-Agent: Tocsin-test \(\+https:\/\/tocsin\.example\.org\/scanning\)\r\n/);
  assert.match(req, /\r\nConnection: keep-alive\r\n/);
  assert.match(req, /\r\nAccept: /);
  assert.match(req, /\r\nX-Extra: yes(\r\n|$)/);
  assert.doesNotMatch(req, /Bad/);
});

test('keep-alive: three requests use one connection', async () => {
  const srv = await serve(respond('ok'));
  const s = openHostSession(target(srv.port), LIMITS);
  for (let i = 0; i < 3; i++) assert.equal(ok(await s.request(GET)).body.toString(), 'ok');
  s.close();
  await srv.close();
  assert.equal(srv.requests.length, 3);
  assert.equal(srv.connections, 1);
});

test('keep-alive: reconnects when the peer closes (Connection: close, or idle close)', async () => {
  const srv = await serve((sock, _h, i) => {
    if (i === 0) sock.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na');
    else if (i === 1) {
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb');
      setTimeout(() => sock.destroy(), 20); // idle keep-alive connection closed by the server
    } else sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc');
  });
  const s = openHostSession(target(srv.port), LIMITS);
  assert.equal(ok(await s.request(GET)).body.toString(), 'a');
  assert.equal(ok(await s.request(GET)).body.toString(), 'b');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(ok(await s.request(GET)).body.toString(), 'c');
  s.close();
  await srv.close();
  assert.equal(srv.connections, 3);
});

test('HTTP/1.0 without keep-alive and read-until-close body', async () => {
  const srv = await serve((sock) => sock.end('HTTP/1.0 200 OK\nServer: old\n\nbody until close'));
  const s = openHostSession(target(srv.port), LIMITS);
  const r = ok(await s.request(GET));
  const r2 = ok(await s.request(GET));
  s.close();
  await srv.close();
  assert.equal(r.body.toString(), 'body until close');
  assert.deepEqual(hdr(r, 'server'), ['old']);
  assert.equal(r2.status, 200);
  assert.equal(srv.connections, 2);
});

test('chunked body with extensions, trailers and bare LF; keep-alive continues', async () => {
  const srv = await serve((sock) => {
    sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n');
    setTimeout(() => sock.write('6\n world\n0\r\nX-Trailer: t\r\n\r\n'), 10);
  });
  const s = openHostSession(target(srv.port), LIMITS);
  const r1 = ok(await s.request(GET));
  const r2 = ok(await s.request(GET));
  s.close();
  await srv.close();
  assert.equal(r1.body.toString(), 'hello world');
  assert.equal(r1.truncated, false);
  assert.equal(r2.body.toString(), 'hello world');
  assert.equal(srv.connections, 1);
});

test('chunked body larger than the cap is truncated; broken chunk framing keeps what arrived', async () => {
  const big = 'x'.repeat(4000);
  const srv = await serve((sock, _h, i) => {
    if (i === 0) {
      sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let k = 0; k < 5; k++) sock.write(`${(4000).toString(16)}\r\n${big}\r\n`);
    } else sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz-not-hex\r\n');
  });
  const s = openHostSession(target(srv.port), LIMITS);
  const r1 = ok(await s.request(GET));
  const r2 = ok(await s.request(GET));
  s.close();
  await srv.close();
  assert.equal(r1.body.length, LIMITS.maxBodyBytes);
  assert.equal(r1.truncated, true);
  assert.equal(r2.body.toString(), 'abc');
  assert.equal(r2.truncated, true);
  assert.equal(srv.connections, 2, 'a truncated response closes its connection');
});

test('HEAD has no body even with Content-Length; 204/304 have none either', async () => {
  const srv = await serve((sock, head) => {
    if (head.startsWith('HEAD')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n');
    else sock.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n');
  });
  const s = openHostSession(target(srv.port), LIMITS);
  const r1 = ok(await s.request(HEAD));
  const r2 = ok(await s.request(GET));
  const r3 = ok(await s.request(HEAD));
  s.close();
  await srv.close();
  assert.equal(r1.status, 200);
  assert.equal(r1.body.length, 0);
  assert.equal(r2.status, 304);
  assert.equal(r3.status, 200);
  assert.equal(srv.connections, 1);
});

test('interim 100 response is skipped', async () => {
  const srv = await serve((sock) => sock.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi'));
  const s = openHostSession(target(srv.port), LIMITS);
  const r = ok(await s.request(GET));
  s.close();
  await srv.close();
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hi');
});

test('oversized header section is a protocol-error', async () => {
  const srv = await serve((sock) => {
    sock.write('HTTP/1.1 200 OK\r\n');
    for (let i = 0; i < 100; i++) sock.write(`X-Pad-${i}: ${'a'.repeat(100)}\r\n`);
  });
  const s = openHostSession(target(srv.port), LIMITS);
  const o = await s.request(GET);
  s.close();
  await srv.close();
  assert.equal(o.kind, 'protocol-error');
  assert.match(detail(o), /header section exceeds 4096/);
});

test('oversized body: cut at the cap, truncated, connection closed, memory bounded', async () => {
  let serverSawClose = false;
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const srv = await serve((sock) => {
    sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n');
    // an endless body: the client must stop at its cap and hang up
    const pump = (): void => {
      while (!sock.destroyed && sock.write(chunk));
      if (!sock.destroyed) sock.once('drain', pump);
    };
    sock.on('close', () => {
      serverSawClose = true;
    });
    pump();
  });
  const s = openHostSession(target(srv.port), { ...LIMITS, requestTimeoutMs: 5000 });
  const rssBefore = process.memoryUsage().rss;
  const r = ok(await s.request(GET));
  s.close();
  await new Promise((res) => setTimeout(res, 50));
  await srv.close();
  assert.equal(r.body.length, LIMITS.maxBodyBytes);
  assert.equal(r.truncated, true);
  assert.equal(serverSawClose, true);
  // generous bound: a client that buffered the endless body would grow without limit
  assert.ok(process.memoryUsage().rss - rssBefore < 200 * 1024 * 1024);
});

test('slow drip: the whole-request deadline hits although bytes keep coming', async () => {
  const timers: NodeJS.Timeout[] = [];
  const srv = await serve((sock) => {
    const line = 'HTTP/1.1 200 OK\r\nX-Slow: ';
    let i = 0;
    const t = setInterval(() => {
      if (sock.destroyed) return clearInterval(t);
      sock.write(i < line.length ? line[i] ?? 'a' : 'a');
      i++;
    }, 20);
    timers.push(t);
  });
  const s = openHostSession(target(srv.port), LIMITS);
  const o = await s.request(GET);
  s.close();
  for (const t of timers) clearInterval(t);
  await srv.close();
  assert.equal(o.kind, 'timeout');
  assert.match(detail(o), /request timeout after 600 ms/);
});

test('tarpit: accepts and never answers -> timeout; host budget ends later requests', async () => {
  const srv = await serve(() => undefined);
  const s = openHostSession(target(srv.port), { ...LIMITS, requestTimeoutMs: 300, hostBudgetMs: 500 });
  const o1 = await s.request(GET);
  const o2 = await s.request(GET);
  const o3 = await s.request(GET);
  s.close();
  await srv.close();
  assert.equal(o1.kind, 'timeout');
  assert.equal(o2.kind, 'timeout');
  assert.match(detail(o2), /host budget/);
  assert.equal(o3.kind, 'timeout');
});

test('garbage and non-HTTP banners are protocol-error', async () => {
  const banner = await new Promise<net.Server>((res) => {
    const sv = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.resume(); // read (and drop) the request, so the peer's close is seen
      sock.end('SSH-2.0-OpenSSH_9.0\r\n');
    });
    sv.listen(0, '127.0.0.1', () => res(sv));
  });
  const port = (banner.address() as net.AddressInfo).port;
  const s = openHostSession(target(port), LIMITS);
  const o = await s.request(GET);
  s.close();
  const bad = await serve((sock) => sock.write('HTTP/1.1 abc nonsense\r\n\r\n'));
  const s2 = openHostSession(target(bad.port), LIMITS);
  const o2 = await s2.request(GET);
  s2.close();
  await bad.close();
  await new Promise<void>((r) => banner.close(() => r()));
  assert.equal(o.kind, 'protocol-error');
  assert.match(detail(o), /not HTTP: "SSH-2.0/);
  assert.equal(o2.kind, 'protocol-error');
});

test('closed without a byte is reset; refused port is refused', async () => {
  const srv = await serve(() => undefined);
  const closer = await new Promise<net.Server>((res) => {
    const sv = net.createServer((sock) => sock.destroy());
    sv.listen(0, '127.0.0.1', () => res(sv));
  });
  const s = openHostSession(target((closer.address() as net.AddressInfo).port), LIMITS);
  const o = await s.request(GET);
  s.close();
  await new Promise<void>((r) => closer.close(() => r()));
  const freePort = srv.port;
  await srv.close();
  const s2 = openHostSession(target(freePort), LIMITS);
  const o2 = await s2.request(GET);
  s2.close();
  assert.equal(o.kind, 'reset');
  assert.equal(o2.kind, 'refused');
});

test('TLS with a self-signed certificate: answered, certificate summarised, SNI only for names', async () => {
  const srv = await serve(respond('secure'), { tls: { key, cert } });
  const s = openHostSession(target(srv.port, { tls: true, hostname: 'mail.test.example' }), LIMITS);
  const r = ok(await s.request(GET));
  const r2 = ok(await s.request(GET));
  const c = s.tlsCert;
  const timing = s.tlsTiming;
  s.close();
  // Connect and handshake times of the first TLS connection (the engine's congestion window reads them).
  assert.ok(timing !== null && timing !== undefined && timing.connectMs >= 0 && timing.handshakeMs >= 0 && timing.handshakeMs < LIMITS.tlsTimeoutMs, JSON.stringify(timing));
  const s2 = openHostSession(target(srv.port, { tls: true }), LIMITS);
  ok(await s2.request(GET));
  const c2 = s2.tlsCert;
  s2.close();
  await srv.close();
  assert.equal(r.body.toString(), 'secure');
  assert.equal(r2.body.toString(), 'secure');
  assert.equal(r.url, `https://mail.test.example:${srv.port}/`);
  assert.match(srv.requests[0] ?? '', new RegExp(`\r\nHost: mail\\.test\\.example:${srv.port}\r\n`));
  assert.equal(srv.connections, 2, 'one connection per session');
  assert.deepEqual(srv.sni, ['mail.test.example', null]);
  assert.ok(c);
  assert.equal(c.subjectCn, 'mail.test.example');
  assert.equal(c.issuerCn, 'mail.test.example');
  assert.deepEqual(c.sans, ['mail.test.example', 'autodiscover.test.example', '127.0.0.1']);
  assert.equal(c.sha256, certSha256);
  assert.match(c.validFrom ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.match(c.validTo ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(c2, c, 'no session resumption: the second host still yields its certificate');
});

test('legacy TLS 1.0 server (Exchange 2010 era) is still read', async () => {
  const srv = await new Promise<tls.Server>((res) => {
    const sv = tls.createServer({ key, cert, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nold'));
    });
    sv.on('tlsClientError', () => undefined);
    sv.listen(0, '127.0.0.1', () => res(sv));
  });
  const s = openHostSession(target((srv.address() as net.AddressInfo).port, { tls: true }), LIMITS);
  const o = await s.request(GET);
  s.close();
  await new Promise<void>((r) => srv.close(() => r()));
  assert.equal(ok(o).body.toString(), 'old');
});

test('TLS to a plaintext server is tls-error; plaintext to a TLS server is protocol-error', async () => {
  const plain = await serve(() => undefined);
  const plainHttp = await new Promise<net.Server>((res) => {
    // like a real HTTP server: answers 400 to the bytes of a ClientHello
    const sv = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    });
    sv.listen(0, '127.0.0.1', () => res(sv));
  });
  await plain.close();
  const s0 = openHostSession(target((plainHttp.address() as net.AddressInfo).port, { tls: true }), LIMITS);
  const o0 = await s0.request(GET);
  s0.close();
  await new Promise<void>((r) => plainHttp.close(() => r()));
  assert.equal(o0.kind, 'tls-error');
  const secure = await serve(respond('x'), { tls: { key, cert } });
  const s2 = openHostSession(target(secure.port), LIMITS);
  const o2 = await s2.request(GET);
  s2.close();
  await secure.close();
  assert.notEqual(o2.kind, 'ok');
});

test('redirects: same target followed (relative and absolute), other hosts not followed, cap respected', async () => {
  const srv = await serve((sock, head) => {
    const path = head.split(' ')[1] ?? '';
    const redirect = (loc: string, code = 302): void => {
      sock.write(`HTTP/1.1 ${code} Found\r\nLocation: ${loc}\r\nContent-Length: 0\r\n\r\n`);
    };
    if (path === '/') redirect('/owa', 301);
    else if (path === '/owa') redirect(`http://127.0.0.1:${(sock.localPort ?? 0)}/owa/auth/logon.aspx`);
    else if (path === '/elsewhere') redirect('https://example.com/owa/');
    else if (path === '/other-port') redirect('http://127.0.0.1:1/x');
    else if (path === '/loop') redirect('/loop');
    else if (path === '/to-closed-https') redirect(`https://127.0.0.1:${sock.localPort ?? 0}/secure`);
    else sock.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhome');
  });
  const s = openHostSession(target(srv.port), LIMITS);
  const r = ok(await s.request(GET));
  const r2 = ok(await s.request({ ...GET, path: '/elsewhere' }));
  const r3 = ok(await s.request({ ...GET, path: '/other-port' }));
  const r4 = ok(await s.request({ ...GET, path: '/loop' }));
  const r5 = ok(await s.request({ ...GET, path: '/to-closed-https' }));
  s.close();
  await srv.close();
  assert.equal(r.status, 200);
  assert.equal(r.url, `http://127.0.0.1:${srv.port}/owa/auth/logon.aspx`);
  assert.deepEqual(r.redirects, [`http://127.0.0.1:${srv.port}/owa`, `http://127.0.0.1:${srv.port}/owa/auth/logon.aspx`]);
  assert.equal(r2.status, 302);
  assert.deepEqual(hdr(r2, 'location'), ['https://example.com/owa/']);
  assert.deepEqual(r2.redirects, []);
  assert.equal(r3.status, 302);
  assert.equal(r4.status, 302);
  assert.equal(r4.redirects.length, LIMITS.maxRedirects);
  // the https hop fails (this server speaks no TLS): the 302 that was answered is returned
  assert.equal(r5.status, 302);
  assert.equal(r5.url, `http://127.0.0.1:${srv.port}/to-closed-https`);
  assert.deepEqual(r5.redirects, []);
  assert.equal(srv.connections, 2, 'one keep-alive connection for every plain request, plus the failed https attempt');
});

test('redirects: http -> https on the same host and port is followed, certificate recorded', async () => {
  const srv = await serve((sock, head) => {
    if (!(sock instanceof tls.TLSSocket)) {
      sock.write(`HTTP/1.1 301 Moved\r\nLocation: https://mail.test.example:${sock.localPort ?? 0}/owa/\r\nContent-Length: 0\r\n\r\n`);
    } else sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${head.length}\r\n\r\n${head}`);
  }, { tls: { key, cert }, sniff: true });
  const s = openHostSession(target(srv.port, { hostname: 'mail.test.example' }), LIMITS);
  const r = ok(await s.request(GET));
  const cert1 = s.tlsCert;
  s.close();
  await srv.close();
  assert.equal(r.status, 200);
  assert.equal(r.url, `https://mail.test.example:${srv.port}/owa/`);
  assert.deepEqual(r.redirects, [`https://mail.test.example:${srv.port}/owa/`]);
  assert.match(r.body.toString(), /^GET \/owa\/ HTTP\/1\.1/);
  assert.equal(cert1?.subjectCn, 'mail.test.example');
  assert.deepEqual(srv.sni, ['mail.test.example']);
});

test('IPv6 literal: Host header bracketed, URL bracketed', async () => {
  const srv = await serve(respond('v6'), { host: '::1' });
  const s = openHostSession({ ip: '::1', port: srv.port, tls: false, hostname: null }, LIMITS);
  const r = ok(await s.request(GET));
  s.close();
  await srv.close();
  assert.equal(r.url, `http://[::1]:${srv.port}/`);
  assert.match(srv.requests[0] ?? '', new RegExp(`\r\nHost: \\[::1\\]:${srv.port}\r\n`));
});

test('close() during a request resolves it; no sockets or timers leak after many failures', async () => {
  const tarpit = await serve(() => undefined);
  const garbage = await serve((sock) => sock.write('\x00\x01\x02garbage\r\n\r\n'));
  const big = await serve((sock) => sock.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'z'.repeat(100000)}`));
  const refusedPort = await serve(() => undefined).then(async (t) => {
    await t.close();
    return t.port;
  });
  // Long enough that the garbage answer arrives first on a loaded machine (100 ms made it a timeout in CI, at load 15).
  const fast: NetLimits = { ...LIMITS, requestTimeoutMs: 1500 };
  const outcomes = await Promise.all(
    Array.from({ length: 60 }, async (_, i) => {
      const port = [tarpit.port, garbage.port, big.port, refusedPort][i % 4] ?? 0;
      const s = openHostSession(target(port, { ip: `127.0.${i % 3}.${1 + (i % 7)}` }), fast);
      const p = s.request(GET);
      if (i % 8 === 0) setTimeout(() => s.close(), 10);
      const o = await p;
      s.close();
      return o.kind;
    }),
  );
  await Promise.all([tarpit.close(), garbage.close(), big.close()]);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(outcomes.includes('timeout') || outcomes.includes('reset'), outcomes.join(','));
  assert.ok(outcomes.includes('protocol-error'), outcomes.join(','));
  assert.ok(outcomes.includes('refused'), outcomes.join(','));
  const sockets = process.getActiveResourcesInfo().filter((n) => n === 'TCPSocketWrap' || n === 'TLSWrap');
  assert.deepEqual(sockets, []);
});

test('failures are values with a phase and the socket code: refused at connect, reset by the peer mid-request', async () => {
  const rst = await serve((sock) => sock.resetAndDestroy());
  const s = openHostSession(target(rst.port), LIMITS);
  const o = await s.request(GET);
  s.close();
  const freePort = rst.port;
  await rst.close();
  const s2 = openHostSession(target(freePort), LIMITS);
  const o2 = await s2.request(GET);
  s2.close();
  assert.deepEqual(o, { kind: 'reset', phase: 'request', detail: 'request: ECONNRESET', code: 'ECONNRESET' });
  assert.deepEqual(o2, { kind: 'refused', phase: 'connect', detail: 'connect: ECONNREFUSED', code: 'ECONNREFUSED' });
});

test('beforeConnect paces every new connection (first, reconnect, redirect hop); its wait is not charged; a rejection ends the request', async () => {
  const srv = await serve((sock, head, i) => {
    if (i === 0) sock.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na');
    else if (!(sock instanceof tls.TLSSocket) && head.startsWith('GET /go ')) {
      sock.write(`HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:${sock.localPort ?? 0}/there\r\nContent-Length: 0\r\n\r\n`);
    } else sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb');
  }, { tls: { key, cert }, sniff: true });
  let calls = 0;
  // each wait is longer than the whole host budget: if it were charged, the later requests would time out
  const s = openHostSession(target(srv.port), { ...LIMITS, hostBudgetMs: 150 }, {
    beforeConnect: async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 200));
    },
  });
  assert.equal(ok(await s.request(GET)).body.toString(), 'a');
  assert.equal(calls, 1);
  assert.equal(ok(await s.request(GET)).body.toString(), 'b', 'reconnect after Connection: close');
  assert.equal(calls, 2);
  assert.equal(ok(await s.request(GET)).body.toString(), 'b', 'kept-alive connection: no new token');
  assert.equal(calls, 2);
  const r = ok(await s.request({ ...GET, path: '/go' }));
  assert.equal(r.url, `https://127.0.0.1:${srv.port}/there`);
  assert.equal(calls, 3, 'the https hop opened a new connection');
  s.close();
  const s2 = openHostSession(target(srv.port), LIMITS, { beforeConnect: () => Promise.reject(new Error('scan cancelled')) });
  const o = await s2.request(GET);
  s2.close();
  await srv.close();
  assert.deepEqual(o, { kind: 'reset', phase: 'connect', detail: 'session closed' });
  assert.equal(srv.connections, 3);
});

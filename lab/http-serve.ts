/**
 * The lab's lean HTTP/1.1 responder on an established stream (TLS or plain) for one host: find the blank
 * line, read the request line, look the path up, write pre-rendered Buffers, keep-alive. Hosts that
 * misbehave after the request (slow drip, garbage, the 50 MB body) take over the stream here.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { LabHost } from './estate.js';
import { httpMode, httpsRedirectParts, httpsRoutes, type BodyCache } from './exchange-responses.js';
import { garbageBytes, streamOversized, type DripPool } from './hostile.js';
import { authorityFrom, findRoute, indexOfHeader, materialize, type DateLine, type RouteTable } from './routes.js';

/** A request head larger than this gets 400 and the connection closed. */
const MAX_REQUEST_HEAD = 32 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const BAD_REQUEST = Buffer.from(
  'HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=us-ascii\r\nServer: Microsoft-HTTPAPI/2.0\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  'latin1',
);

/** Per-host state built on the host's first connection (or before listening, see LabOptions.prerender). */
export interface HostRuntime {
  readonly host: LabHost;
  readonly table: RouteTable | null;
  readonly mode: 'redirect' | 'same';
  readonly redirect: ReturnType<typeof httpsRedirectParts> | null;
}

export function hostRuntime(host: LabHost, cache: BodyCache): HostRuntime {
  const mode = httpMode(host);
  return { host, table: httpsRoutes(host, cache), mode, redirect: mode === 'redirect' ? httpsRedirectParts(host) : null };
}

/** What the responder needs from the running lab. */
export interface ServeEnv {
  /** The TLS port actually bound: redirect URLs carry it when it is not 443. */
  httpsPort(): number;
  readonly latencyMs: number;
  readonly date: DateLine;
  readonly drip: DripPool;
  onRequest(): void;
}

export interface RequestHead {
  readonly method: string;
  readonly target: string;
  readonly keepAlive: boolean;
  /** Body bytes to skip before the next request (capped at 1 MiB). */
  readonly bodyLength: number;
}

/** The request line and the two headers the responder reads; null when the request line is malformed. */
export function parseRequestHead(head: string): RequestHead | null {
  const lineEnd = head.indexOf('\r\n');
  const line = lineEnd < 0 ? head : head.slice(0, lineEnd);
  const sp1 = line.indexOf(' ');
  const sp2 = line.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 <= sp1) return null;
  const version = line.slice(sp2 + 1);
  const conn = indexOfHeader(head, 'connection');
  const connValue = conn < 0 ? '' : head.slice(conn, head.indexOf('\r\n', conn) >>> 0).trim().toLowerCase();
  const cl = indexOfHeader(head, 'content-length');
  let bodyLength = 0;
  if (cl >= 0) {
    const v = Number.parseInt(head.slice(cl, head.indexOf('\r\n', cl) >>> 0).trim(), 10);
    if (Number.isFinite(v) && v > 0) bodyLength = Math.min(v, 1 << 20);
  }
  return {
    method: line.slice(0, sp1),
    target: line.slice(sp1 + 1, sp2),
    keepAlive: version === 'HTTP/1.1' ? connValue !== 'close' : connValue === 'keep-alive',
    bodyLength,
  };
}

/** The path of a request target: query and fragment dropped, absolute-form reduced to its path. */
export function pathOf(target: string): string {
  let q = target.indexOf('?');
  const h = target.indexOf('#');
  if (h >= 0 && (q < 0 || h < q)) q = h;
  let path = q >= 0 ? target.slice(0, q) : target;
  if (path.startsWith('http://') || path.startsWith('https://')) {
    const slash = path.indexOf('/', path.indexOf('//') + 2);
    path = slash < 0 ? '/' : path.slice(slash);
  }
  return path;
}

/** http → https on the same host name (the Host header without its port, else the IP). */
function writeHttpsRedirect(s: Duplex, rt: HostRuntime, head: string, target: string, isHead: boolean, env: ServeEnv): void {
  const host = rt.host;
  const r = rt.redirect;
  if (r === null) return;
  const httpsPort = env.httpsPort();
  const a = authorityFrom(head, host.ip);
  const hostOnly = a.startsWith('[') ? a.slice(0, a.indexOf(']') + 1) : (a.split(':')[0] ?? host.ip);
  const url = Buffer.from(`https://${hostOnly}${httpsPort === 443 ? '' : `:${httpsPort}`}${target.startsWith('/') ? target : '/'}`, 'latin1');
  const bodyLen = r.body1.length + url.length + r.body2.length;
  s.write(r.head1);
  s.write(url);
  s.write(r.head2);
  s.write(env.date.line);
  s.write(Buffer.from(`Content-Length: ${bodyLen}\r\n\r\n`, 'latin1'));
  if (!isHead) {
    s.write(r.body1);
    s.write(url);
    s.write(r.body2);
  }
}

/** Serves HTTP/1.1 on `s` (the TLS socket, or `raw` itself) for one host until either side closes. */
export function serveHttp(s: Duplex, raw: net.Socket, rt: HostRuntime, secure: boolean, env: ServeEnv): void {
  const host = rt.host;
  const httpsPort = env.httpsPort();
  const defaultAuthority = secure ? (httpsPort === 443 ? host.ip : `${host.ip}:${httpsPort}`) : host.ip;
  let pending: Buffer | null = null;
  let skipBody = 0;
  let busy = false;
  let closed = false;
  /** The client half-closed: finish what is pending, then close our side too. */
  let ended = false;

  const respond = (head: string, req: RequestHead): void => {
    env.onRequest();
    const isHead = req.method === 'HEAD';
    if (host.kind === 'slow-drip') {
      busy = true;
      env.drip.add(s);
      return;
    }
    if (host.kind === 'garbage') {
      busy = true;
      s.end(garbageBytes(host.index + 1));
      return;
    }
    if (host.kind === 'oversized' && rt.table === null) {
      busy = true;
      streamOversized(s, env.date.line, isHead, () => {
        if (!s.destroyed) s.end();
      });
      return;
    }
    s.cork();
    if (!secure && rt.mode === 'redirect') {
      writeHttpsRedirect(s, rt, head, req.target, isHead, env);
    } else if (rt.table !== null) {
      const route = findRoute(rt.table, pathOf(req.target).toLowerCase());
      const m = route.dynamic === null ? route : materialize(route, authorityFrom(head, defaultAuthority));
      s.write(m.pre);
      s.write(env.date.line);
      s.write(m.post);
      if (!isHead && m.body.length > 0) s.write(m.body);
    }
    s.uncork();
    if (!req.keepAlive || (ended && pending === null)) s.end();
  };

  const pump = (): void => {
    while (!busy && !closed && pending !== null) {
      if (skipBody > 0) {
        const n = Math.min(skipBody, pending.length);
        skipBody -= n;
        pending = n === pending.length ? null : pending.subarray(n);
        continue;
      }
      const end = pending.indexOf(CRLFCRLF);
      if (end < 0) {
        if (pending.length > MAX_REQUEST_HEAD) {
          closed = true;
          s.end(BAD_REQUEST);
        }
        return;
      }
      const head = pending.toString('latin1', 0, end + 2);
      pending = end + 4 === pending.length ? null : pending.subarray(end + 4);
      const req = parseRequestHead(head);
      if (req === null) {
        closed = true;
        s.end(BAD_REQUEST);
        return;
      }
      skipBody = req.bodyLength;
      if (!req.keepAlive) closed = true;
      if (env.latencyMs > 0) {
        busy = true;
        setTimeout(() => {
          if (s.destroyed) return;
          busy = false;
          respond(head, req);
          pump();
        }, env.latencyMs);
        return;
      }
      respond(head, req);
    }
  };

  s.on('data', (chunk: Buffer) => {
    if (closed || busy) {
      if (!closed && busy && host.kind !== 'slow-drip' && host.kind !== 'garbage' && host.kind !== 'oversized') {
        pending = pending === null ? chunk : Buffer.concat([pending, chunk]);
      }
      return;
    }
    pending = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pump();
  });
  s.on('error', () => raw.destroy());
  s.on('end', () => {
    ended = true;
    if (!busy) s.end();
  });
}

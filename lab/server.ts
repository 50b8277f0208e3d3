/**
 * The lab server: one TLS port and one plain-HTTP port on 0.0.0.0, every accepted connection mapped to
 * its simulated host by the address it was made to (socket.localAddress), so one process answers for up
 * to 65,536 loopback addresses. Connections not entirely on 127.0.0.0/8 are destroyed unread; addresses
 * outside the estate and closed hosts are reset, like a closed port.
 *
 * Speed matters (the benchmark scans 4,096 lab hosts on the same 2-core machine): TLS is terminated per
 * connection with the host's pre-built SecureContext (ECDSA P-256 mostly), HTTP/1.1 is a lean responder
 * (find the blank line, read the request line, look the path up, write pre-rendered Buffers, keep-alive),
 * and a host's responses are rendered once, on its first connection, then reused.
 *
 *   const lab = await startLab({ hosts: 256, seed: 1 });
 *   // https://127.1.0.0:${lab.httpsPort}/owa/ ... ; lab.hosts is the ground truth
 *   await lab.close();
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { TocsinError } from '../src/core/errors.js';
import { loadExchangeKb } from '../src/products/exchange/kb/index.js';
import { packageRoot } from '../src/platform/paths.js';
import { DEFAULT_MIX, generateEstate, MAX_HOSTS, type LabBuildRow, type LabHost, type LabMix } from './estate.js';
import { BodyCache, httpMode, httpsRedirectParts, httpsRoutes } from './exchange-responses.js';
import { DripPool, garbageBytes, HOSTILE_MAX_MS, SSH_BANNER, streamOversized } from './hostile.js';
import { admitConnection, hostIndex, ipv4ToInt } from './net-guard.js';
import { DateLine, authorityFrom, findRoute, indexOfHeader, materialize, type RouteTable } from './routes.js';

export interface LabOptions {
  /** Number of hosts (1..65,536). Default 256. */
  readonly hosts?: number;
  /** First address; hosts occupy consecutive addresses. Default 127.1.0.0. */
  readonly base?: string;
  /** Seed of the estate generator. Default 1. */
  readonly seed?: number;
  /** TLS port; 0 = ephemeral (default). */
  readonly httpsPort?: number;
  /** Plain HTTP port; 0 = ephemeral (default). */
  readonly httpPort?: number;
  /** Delay each accepted connection and each response by this many ms (simulated RTT). Default 0. */
  readonly latencyMs?: number;
  /** Kind weights (see DEFAULT_MIX). */
  readonly mix?: LabMix;
  /** Write the ground truth as JSONL here once listening. */
  readonly truthPath?: string;
  /** Address to bind. Default 0.0.0.0 (every 127.x.y.z answers; the admission check keeps it loopback-only). */
  readonly listenHost?: string;
  /**
   * Render every host's responses before listening (default: when hosts <= 16,384), so a benchmark does
   * not pay for rendering during the scan; larger estates render each host on its first connection.
   */
  readonly prerender?: boolean;
  /** Build rows to draw from (default: the knowledge base). For tests. */
  readonly builds?: readonly LabBuildRow[];
}

export interface LabStats {
  readonly connections: number;
  readonly rejected: number;
  readonly requests: number;
  readonly open: number;
}

export interface Lab {
  readonly httpsPort: number;
  readonly httpPort: number;
  readonly base: string;
  readonly seed: number;
  /** Ground truth, one entry per address, in address order. */
  readonly hosts: readonly LabHost[];
  /** Writes the ground truth as JSONL (one LabHost per line). */
  writeTruth(path: string): Promise<void>;
  stats(): LabStats;
  close(): Promise<void>;
}

export const DEFAULT_LAB_OPTIONS = { hosts: 256, base: '127.1.0.0', seed: 1, httpsPort: 0, httpPort: 0, latencyMs: 0 } as const;

/** Idle keep-alive connections are closed after this (IIS's default is 120 s; shorter frees sockets sooner). */
const IDLE_MS = 30_000;
/** A request head larger than this gets 400 and the connection closed. */
const MAX_REQUEST_HEAD = 32 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const BAD_REQUEST = Buffer.from(
  'HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=us-ascii\r\nServer: Microsoft-HTTPAPI/2.0\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  'latin1',
);

/** Directory of the lab's certificate files. */
export function certDir(): string {
  return join(packageRoot(), 'lab', 'certs');
}

/**
 * Windows hosts (Exchange, IIS, the IIS-based honeypot) stop at TLS 1.2, as Windows Server 2008 R2 to 2019
 * do; the others (nginx, Apache, Exchange Online) offer TLS 1.3 too.
 */
export function tlsMaxFor(host: LabHost): 'TLSv1.2' | 'TLSv1.3' {
  return host.kind === 'exchange' || host.kind === 'iis' || (host.kind === 'owa-phish' && host.variant === 'iis75-honeypot') ? 'TLSv1.2' : 'TLSv1.3';
}

function contextKey(host: LabHost): string {
  return `${host.cert}|${tlsMaxFor(host)}`;
}

function loadContexts(keys: ReadonlySet<string>): Map<string, tls.SecureContext> {
  const dir = certDir();
  const ca = readFileSync(join(dir, 'lab-ca.cert.pem'), 'latin1');
  const out = new Map<string, tls.SecureContext>();
  for (const k of keys) {
    const [id = '', maxVersion = 'TLSv1.3'] = k.split('|');
    const key = readFileSync(join(dir, `${id}.key.pem`), 'latin1');
    const leaf = readFileSync(join(dir, `${id}.cert.pem`), 'latin1');
    // Send the chain as real servers do (leaf + issuer); self-signed certificates stand alone.
    const chain = id === 'exch-selfsigned' ? leaf : leaf + ca;
    out.set(k, tls.createSecureContext({ key, cert: chain, minVersion: 'TLSv1.2', maxVersion: maxVersion as tls.SecureVersion }));
  }
  return out;
}

/** Per-host state built on the host's first connection. */
interface HostRuntime {
  readonly host: LabHost;
  readonly table: RouteTable | null;
  readonly mode: 'redirect' | 'same';
  readonly redirect: ReturnType<typeof httpsRedirectParts> | null;
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', onError);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : port);
    });
  });
}

/** Resets a connection (RST), as a closed port would. */
function reset(s: net.Socket): void {
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else s.destroy();
}

/** Loads the build rows of the knowledge base as the estate generator wants them. */
export function kbBuilds(): readonly LabBuildRow[] {
  return loadExchangeKb().builds;
}

/** Starts the lab; resolves once both ports listen. */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const o = { ...DEFAULT_LAB_OPTIONS, ...options };
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > MAX_HOSTS) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `hosts must be an integer from 1 to ${MAX_HOSTS}, got ${String(o.hosts)}`);
  }
  const baseInt = ipv4ToInt(o.base);
  if (baseInt === null || baseInt >>> 24 !== 127 || baseInt + o.hosts - 1 > 0x7fffffff) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `base must be an IPv4 address in 127.0.0.0/8 with room for ${o.hosts} hosts, got "${o.base}"`);
  }
  if (!Number.isFinite(o.latencyMs) || o.latencyMs < 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'latencyMs must be >= 0');
  const hosts = generateEstate({ hosts: o.hosts, base: o.base, seed: o.seed, mix: o.mix ?? DEFAULT_MIX }, o.builds ?? kbBuilds());
  const contexts = loadContexts(new Set(hosts.filter((h) => h.ports.https).map(contextKey)));
  const runtimes: (HostRuntime | undefined)[] = new Array<HostRuntime | undefined>(hosts.length);
  const cache = new BodyCache();
  const date = new DateLine();
  date.start();
  const drip = new DripPool();
  const open = new Set<net.Socket>();
  let connections = 0;
  let rejected = 0;
  let requests = 0;
  const latency = o.latencyMs;
  let httpsPort = 0;

  const runtimeOf = (i: number): HostRuntime => {
    let rt = runtimes[i];
    if (rt === undefined) {
      const host = hosts[i] as LabHost;
      const mode = httpMode(host);
      rt = { host, table: httpsRoutes(host, cache), mode, redirect: mode === 'redirect' ? httpsRedirectParts(host) : null };
      runtimes[i] = rt;
    }
    return rt;
  };

  /** Serves HTTP/1.1 on an established stream (TLS or plain) for one host. */
  const serveHttp = (s: Duplex, raw: net.Socket, rt: HostRuntime, secure: boolean): void => {
    const host = rt.host;
    const defaultAuthority = secure ? (httpsPort === 443 ? host.ip : `${host.ip}:${httpsPort}`) : host.ip;
    let pending: Buffer | null = null;
    let skipBody = 0;
    let busy = false;
    let closed = false;
    /** The client half-closed: finish what is pending, then close our side too. */
    let ended = false;

    const respond = (head: string, method: string, target: string, keepAlive: boolean): void => {
      requests++;
      const isHead = method === 'HEAD';
      if (host.kind === 'slow-drip') {
        busy = true;
        drip.add(s);
        return;
      }
      if (host.kind === 'garbage') {
        busy = true;
        s.end(garbageBytes(host.index + 1));
        return;
      }
      if (host.kind === 'oversized' && rt.table === null) {
        busy = true;
        streamOversized(s, date.line, isHead, () => {
          if (!s.destroyed) s.end();
        });
        return;
      }
      let q = target.indexOf('?');
      const h = target.indexOf('#');
      if (h >= 0 && (q < 0 || h < q)) q = h;
      let path = q >= 0 ? target.slice(0, q) : target;
      if (path.startsWith('http://') || path.startsWith('https://')) {
        const slash = path.indexOf('/', path.indexOf('//') + 2);
        path = slash < 0 ? '/' : path.slice(slash);
      }
      s.cork();
      if (!secure && rt.mode === 'redirect' && rt.redirect !== null) {
        // http → https on the same host name (the Host header without its port, else the IP).
        const a = authorityFrom(head, host.ip);
        const hostOnly = a.startsWith('[') ? a.slice(0, a.indexOf(']') + 1) : (a.split(':')[0] ?? host.ip);
        const url = Buffer.from(`https://${hostOnly}${httpsPort === 443 ? '' : `:${httpsPort}`}${target.startsWith('/') ? target : '/'}`, 'latin1');
        const r = rt.redirect;
        const bodyLen = r.body1.length + url.length + r.body2.length;
        s.write(r.head1);
        s.write(url);
        s.write(r.head2);
        s.write(date.line);
        s.write(Buffer.from(`Content-Length: ${bodyLen}\r\n\r\n`, 'latin1'));
        if (!isHead) {
          s.write(r.body1);
          s.write(url);
          s.write(r.body2);
        }
      } else if (rt.table !== null) {
        const route = findRoute(rt.table, path.toLowerCase());
        const m = route.dynamic === null ? route : materialize(route, authorityFrom(head, defaultAuthority));
        s.write(m.pre);
        s.write(date.line);
        s.write(m.post);
        if (!isHead && m.body.length > 0) s.write(m.body);
      }
      s.uncork();
      if (!keepAlive || (ended && pending === null)) s.end();
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
        const lineEnd = head.indexOf('\r\n');
        const line = lineEnd < 0 ? head : head.slice(0, lineEnd);
        const sp1 = line.indexOf(' ');
        const sp2 = line.lastIndexOf(' ');
        if (sp1 <= 0 || sp2 <= sp1) {
          closed = true;
          s.end(BAD_REQUEST);
          return;
        }
        const method = line.slice(0, sp1);
        const target = line.slice(sp1 + 1, sp2);
        const version = line.slice(sp2 + 1);
        const conn = indexOfHeader(head, 'connection');
        const connValue = conn < 0 ? '' : head.slice(conn, head.indexOf('\r\n', conn) >>> 0).trim().toLowerCase();
        const keepAlive = version === 'HTTP/1.1' ? connValue !== 'close' : connValue === 'keep-alive';
        const cl = indexOfHeader(head, 'content-length');
        if (cl >= 0) {
          const v = Number.parseInt(head.slice(cl, head.indexOf('\r\n', cl) >>> 0).trim(), 10);
          if (Number.isFinite(v) && v > 0) skipBody = Math.min(v, 1 << 20);
        }
        if (!keepAlive) closed = true;
        if (latency > 0) {
          busy = true;
          setTimeout(() => {
            if (s.destroyed) return;
            busy = false;
            respond(head, method, target, keepAlive);
            pump();
          }, latency);
          return;
        }
        respond(head, method, target, keepAlive);
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
  };

  const begin = (raw: net.Socket, i: number, secure: boolean): void => {
    if (raw.destroyed) return;
    const rt = runtimeOf(i);
    const host = rt.host;
    switch (host.kind) {
      case 'tarpit':
        // Accept, read nothing, send nothing (not even a TLS ServerHello).
        raw.setTimeout(HOSTILE_MAX_MS);
        return;
      case 'garbage':
        if (host.variant === 'random-bytes') {
          raw.setTimeout(HOSTILE_MAX_MS);
          raw.write(garbageBytes(host.index + 1));
          raw.resume();
          return;
        }
        if (host.variant === 'ssh-banner') {
          raw.setTimeout(HOSTILE_MAX_MS);
          raw.write(SSH_BANNER);
          raw.resume();
          return;
        }
        break;
      case 'slow-drip':
        raw.setTimeout(HOSTILE_MAX_MS);
        break;
      default:
        raw.setTimeout(IDLE_MS);
    }
    if (secure) {
      const ctx = contexts.get(contextKey(host));
      const t = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx, ALPNProtocols: ['http/1.1'] });
      serveHttp(t, raw, rt, true);
    } else {
      serveHttp(raw, raw, rt, false);
    }
  };

  const onConnection = (raw: net.Socket, secure: boolean): void => {
    raw.on('error', () => raw.destroy());
    if (!admitConnection(raw.localAddress, raw.remoteAddress)) {
      rejected++;
      raw.destroy();
      return;
    }
    const i = hostIndex(raw.localAddress, baseInt, hosts.length);
    const host = i < 0 ? undefined : hosts[i];
    if (host === undefined || !(secure ? host.ports.https : host.ports.http)) {
      rejected++;
      reset(raw);
      return;
    }
    connections++;
    open.add(raw);
    raw.once('close', () => open.delete(raw));
    raw.on('timeout', () => raw.destroy());
    raw.setNoDelay(true);
    if (latency > 0) setTimeout(() => begin(raw, i, secure), latency);
    else begin(raw, i, secure);
  };

  if (o.prerender ?? hosts.length <= 16_384) for (let i = 0; i < hosts.length; i++) runtimeOf(i);

  const tlsServer = net.createServer((s) => onConnection(s, true));
  const httpServer = net.createServer((s) => onConnection(s, false));
  const host = o.listenHost ?? '0.0.0.0';
  try {
    httpsPort = await listen(tlsServer, o.httpsPort, host);
  } catch (e) {
    date.stop();
    throw new TocsinError('TOCSIN_LAB_START', `cannot listen on ${host}:${o.httpsPort}: ${(e as Error).message}`, { cause: e });
  }
  let httpPort: number;
  try {
    httpPort = await listen(httpServer, o.httpPort, host);
  } catch (e) {
    date.stop();
    tlsServer.close();
    throw new TocsinError('TOCSIN_LAB_START', `cannot listen on ${host}:${o.httpPort}: ${(e as Error).message}`, { cause: e });
  }

  const lab: Lab = {
    httpsPort,
    httpPort,
    base: o.base,
    seed: o.seed,
    hosts,
    writeTruth: (path) => writeTruthFile(path, hosts),
    stats: () => ({ connections, rejected, requests, open: open.size }),
    close: async () => {
      date.stop();
      drip.stop();
      const closing = [tlsServer, httpServer].map((srv) => new Promise<void>((r) => srv.close(() => r())));
      for (const s of open) s.destroy();
      open.clear();
      await Promise.all(closing);
    },
  };
  if (o.truthPath !== undefined) await lab.writeTruth(o.truthPath);
  return lab;
}

/** Ground truth as JSONL: one LabHost per line, in address order. */
export function truthJsonl(hosts: readonly LabHost[]): string {
  let s = '';
  for (const h of hosts) s += `${JSON.stringify(h)}\n`;
  return s;
}

export async function writeTruthFile(path: string, hosts: readonly LabHost[]): Promise<void> {
  await writeFile(path, truthJsonl(hosts), 'utf8');
}


/**
 * The probe client: a small HTTP/1.1 client over node:net / node:tls that implements `HostSession`
 * (see types.ts). It is the only code in Tocsin that talks to scanned hosts.
 *
 * Why not node:http or undici: zgrab2-style scanning needs the raw status line and raw header lines
 * (latin1, repeated headers kept, malformed lines tolerated), exact byte caps on the header section and
 * the body, hard deadlines per phase (connect, TLS, whole request, whole host) that a slow-drip peer
 * cannot extend, certificates of every host (undici's session cache returns empty certificates for
 * repeat hosts), and "never throw" on hostile input. node:http's parser rejects much of what real
 * servers send, enforces its own header limit globally, and its timeouts are idle timeouts (reset by
 * every byte), which a peer dripping one byte per second defeats. Owning ~500 lines is cheaper than
 * working around both libraries.
 *
 * Performance notes (thousands of hosts/s on 2 cores): one shared TLS SecureContext (creating one per
 * connection costs more than the handshake), one timer per phase, header sections parsed from a
 * Buffer with one latin1 decode, body bytes kept as Buffer slices and concatenated once.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ProbeRequest } from '../../core/contracts/probe.js';
import type { TlsCertSummary } from '../../core/contracts/probe.js';
import { summaryFromSessionDer } from './cert-der.js';
import type { HostSession, NetFailure, NetLimits, ProbeFailure, ProbeOutcome, ProbeTarget, SessionOptions } from '../../core/contracts/probe.js';

/** Status line kept at most this long (hostile text). */
const MAX_STATUS_LINE = 512;
/** A chunk-size line longer than this is broken framing. */
const MAX_CHUNK_LINE = 256;
/** More chunks than this in one body is broken framing (bounds CPU on 1-byte chunks). */
const MAX_CHUNKS = 65_536;
/** Redirect targets longer than this are not followed. */
const MAX_LOCATION = 2048;
/** Caps on what we keep from a certificate (hostile certificates can carry thousands of SANs). */
const MAX_SANS = 100;
const MAX_CERT_FIELD = 256;

let sharedContext: tls.SecureContext | undefined;
/**
 * One context for all connections. We are reading, not trusting: accept every certificate and old
 * protocol versions/ciphers (Exchange 2007/2010 servers may speak only TLS 1.0). The context's client
 * session cache is not used by Node (it never stores client sessions internally), and we never pass a
 * `session` to tls.connect, so no TLS session is ever resumed across hosts.
 */
function secureContext(): tls.SecureContext {
  sharedContext ??= tls.createSecureContext({ minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' });
  return sharedContext;
}

/** Receives socket events for whatever phase the connection is in. */
interface Sink {
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(err: Error): void;
}

/** One socket plus the phase handler its events go to. Listeners are attached once (cheap, no leaks). */
class Conn {
  readonly sock: net.Socket;
  sink: Sink | null = null;
  dead = false;
  /** Responses completed on this connection (a reused connection may have been closed by the peer). */
  uses = 0;

  constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (b: Buffer) => {
      if (this.sink) this.sink.onData(b);
      else this.kill(); // bytes nobody asked for: do not interpret them later as a response
    });
    sock.on('end', () => {
      this.dead = true;
      this.sink?.onEnd();
    });
    sock.on('close', () => {
      this.dead = true;
      this.sink?.onEnd();
    });
    sock.on('error', (err: Error) => {
      this.dead = true;
      this.sink?.onError(err);
    });
  }

  kill(): void {
    this.dead = true;
    this.sink = null;
    this.sock.destroy();
  }
}

type Phase = 'connect' | 'tls' | 'request';

function errCode(err: Error): string {
  const c = (err as NodeJS.ErrnoException).code;
  return typeof c === 'string' ? c : '';
}

/** Maps a socket error to an outcome; TLS-phase failures are all 'tls-error' (wrong protocol, alerts, resets). */
function classify(err: Error, phase: Phase): { kind: NetFailure; detail: string } {
  const code = errCode(err);
  const detail = `${phase}: ${code !== '' ? code : err.message}`.slice(0, 200);
  switch (code) {
    case 'ECONNREFUSED':
      return { kind: 'refused', detail };
    case 'ETIMEDOUT':
      return { kind: 'timeout', detail };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return { kind: 'unreachable', detail };
    default:
      break;
  }
  if (phase === 'tls') return { kind: 'tls-error', detail };
  if (phase === 'connect') return { kind: code === 'ECONNRESET' ? 'reset' : 'unreachable', detail };
  return { kind: 'reset', detail };
}

function cap(v: string | null): string | null {
  return v === null ? null : v.length > MAX_CERT_FIELD ? v.slice(0, MAX_CERT_FIELD) : v;
}

/** A value as Node prints it in subject/SAN strings: JSON-quoted when it holds special characters. */
function unquote(v: string): string {
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) {
    try {
      const u: unknown = JSON.parse(v);
      if (typeof u === 'string') return u;
    } catch {
      // keep as sent
    }
  }
  return v;
}

/** The CN attribute of a distinguished name in Node's "CN=x\nO=y" form. */
function cnOf(dn: string | undefined): string | null {
  if (typeof dn !== 'string') return null;
  for (const line of dn.split('\n')) if (line.startsWith('CN=')) return cap(unquote(line.slice(3)));
  return null;
}

function isoDate(s: unknown): string | null {
  if (typeof s !== 'string' || s === '') return null;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** Splits Node's subjectAltName text ("DNS:a, DNS:b, IP Address:1.2.3.4"), respecting quoted values. */
function sansOf(text: string | undefined): string[] {
  const out: string[] = [];
  if (typeof text !== 'string') return out;
  const re = /(DNS|IP Address|URI|email|DirName|othername|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(text); m !== null && out.length < MAX_SANS; m = re.exec(text)) {
    if ((m[1] === 'DNS' || m[1] === 'IP Address') && m[2] !== undefined) out.push(cap(unquote(m[2])) ?? '');
    if (m[0] === '') break;
  }
  return out;
}

/**
 * Summary of the peer certificate for attribution (never used to decide trust). Uses the X509Certificate
 * view, whose fields are computed on demand (about 3x cheaper than getPeerCertificate(), which also
 * hashes with SHA-1 and SHA-512 and copies the public key).
 */
export function summarizeCert(sock: tls.TLSSocket): TlsCertSummary | null {
  // Fast path (cert-der.ts): the leaf's DER from the session, no copy of the chain; null when unusual.
  try {
    const fast = summaryFromSessionDer(sock.getSession());
    if (fast !== null) return fast;
  } catch {
    // the slow path below decides
  }
  return summarizeCertSlow(sock);
}

/** The X509Certificate view: right for every certificate, ~200 µs when the peer sends a chain. @internal */
export function summarizeCertSlow(sock: tls.TLSSocket): TlsCertSummary | null {
  try {
    const x = sock.getPeerX509Certificate();
    if (x === undefined) return null;
    const fp = x.fingerprint256.replace(/:/g, '').toLowerCase();
    return {
      subjectCn: cnOf(x.subject),
      sans: sansOf(x.subjectAltName),
      issuerCn: cnOf(x.issuer),
      validFrom: isoDate(x.validFrom),
      validTo: isoDate(x.validTo),
      sha256: /^[0-9a-f]{64}$/.test(fp) ? fp : null,
    };
  } catch {
    return null;
  }
}

/** What one request/response exchange on a connection produced. */
type ReadResult =
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly statusLine: string;
      readonly headers: Array<readonly [string, string]>;
      readonly body: Buffer;
      readonly truncated: boolean;
      readonly reusable: boolean;
    }
  /** A reused keep-alive connection was closed by the peer before any byte: retry on a fresh one. */
  | { readonly kind: 'stale' }
  | { readonly kind: NetFailure; readonly detail: string };

const enum St {
  Head,
  Length,
  Chunked,
  UntilClose,
  Done,
}
const enum Ck {
  Size,
  Data,
  Crlf,
  Trailer,
}

const HTTP_PREFIX = Buffer.from('HTTP/', 'latin1');
const STATUS_RE = /^HTTP\/(\d)\.(\d)[ \t]+(\d{3})(?:[ \t]|$)/;

/** Trim spaces and tabs only (String.trim would also eat latin1 NBSP and other bytes that were sent). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9 || s.charCodeAt(b - 1) === 13)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Finds the end of the header section: the first LF followed by LF or CRLF (bare LF tolerated).
 * Returns [headLen, bodyStart] or null when not (yet) found.
 */
function findHeadEnd(buf: Buffer, from: number, len: number): [number, number] | null {
  let i = buf.indexOf(10, from);
  while (i >= 0 && i < len) {
    const n1 = i + 1 < len ? buf[i + 1] : -1;
    if (n1 === 10) return [i, i + 2];
    if (n1 === 13) {
      const n2 = i + 2 < len ? buf[i + 2] : -1;
      if (n2 === 10) return [i, i + 3];
    }
    i = buf.indexOf(10, i + 1);
  }
  return null;
}

/**
 * Incremental response reader for one exchange. Never throws; calls `done` exactly once.
 * Memory is bounded by maxHeaderBytes (head buffer) plus maxBodyBytes (body parts).
 */
class ResponseReader implements Sink {
  private st: St = St.Head;
  private gotAny = false;
  /** Head bytes when the header section spans several chunks (grown by doubling, capped). */
  private headBuf: Buffer | null = null;
  private headLen = 0;
  private searchFrom = 0;
  private prefixChecked = false;

  private status = 0;
  private statusLine = '';
  private headers: Array<readonly [string, string]> = [];
  private keepAlive = false;

  private parts: Buffer[] = [];
  private bodyLen = 0;
  private remaining = 0;
  private ck: Ck = Ck.Size;
  private line = '';
  private chunks = 0;
  private trailerBytes = 0;

  constructor(
    private readonly reused: boolean,
    private readonly isHead: boolean,
    private readonly maxHeader: number,
    private readonly maxBody: number,
    private readonly done: (r: ReadResult) => void,
  ) {}

  /** Called by the exchange's deadline. */
  fail(kind: NetFailure, detail: string): void {
    if (this.st === St.Done) return;
    this.st = St.Done;
    this.done({ kind, detail });
  }

  onData(chunk: Buffer): void {
    if (this.st === St.Done) return;
    if (chunk.length > 0) this.gotAny = true;
    if (this.st === St.Head) this.onHeadData(chunk);
    else this.onBodyData(chunk, 0);
  }

  onEnd(): void {
    if (this.st === St.Done) return;
    if (this.st === St.Head) {
      if (!this.gotAny) {
        if (this.reused) {
          this.st = St.Done;
          this.done({ kind: 'stale' });
        } else this.fail('reset', 'request: connection closed before any response byte');
      } else this.fail('protocol-error', 'connection closed inside the header section');
      return;
    }
    // Close-delimited bodies end here normally; length/chunked bodies cut short are incomplete.
    this.finish(this.st !== St.UntilClose, false);
  }

  onError(err: Error): void {
    if (this.st === St.Done) return;
    if (this.st === St.Head) {
      if (!this.gotAny && this.reused) {
        this.st = St.Done;
        this.done({ kind: 'stale' });
        return;
      }
      const c = classify(err, 'request');
      this.fail(this.gotAny ? 'protocol-error' : c.kind, c.detail);
      return;
    }
    // Headers were read: keep what arrived (detectors can use it), marked incomplete.
    this.finish(true, false);
  }

  private onHeadData(chunk: Buffer): void {
    let buf: Buffer;
    let len: number;
    if (this.headBuf === null && this.headLen === 0) {
      buf = chunk;
      len = chunk.length;
    } else {
      buf = this.appendHead(chunk);
      len = this.headLen;
    }
    if (!this.prefixChecked) {
      const n = Math.min(len, HTTP_PREFIX.length);
      if (buf.compare(HTTP_PREFIX, 0, n, 0, n) !== 0) {
        this.fail('protocol-error', `not HTTP: ${JSON.stringify(buf.toString('latin1', 0, Math.min(len, 40)))}`);
        return;
      }
      if (n === HTTP_PREFIX.length) this.prefixChecked = true;
    }
    const end = findHeadEnd(buf, this.searchFrom, len);
    if (end === null) {
      if (len > this.maxHeader) {
        this.fail('protocol-error', `header section exceeds ${this.maxHeader} bytes`);
        return;
      }
      if (buf === chunk) {
        // keep a copy: the chunk may be a slice of a larger pooled buffer
        this.headBuf = null;
        this.headLen = 0;
        this.appendHead(chunk);
      }
      this.searchFrom = Math.max(0, len - 2);
      return;
    }
    const [headEnd, bodyStart] = end;
    if (headEnd > this.maxHeader) {
      this.fail('protocol-error', `header section exceeds ${this.maxHeader} bytes`);
      return;
    }
    const rest = bodyStart < len ? buf.subarray(bodyStart, len) : null;
    this.headBuf = null;
    this.headLen = 0;
    this.searchFrom = 0;
    if (!this.parseHead(buf.toString('latin1', 0, headEnd))) return;
    if (this.status >= 100 && this.status < 200 && this.status !== 101) {
      // Interim response (100 Continue, 103 Early Hints): the real one follows.
      this.headers = [];
      this.prefixChecked = false;
      if (rest) this.onHeadData(Buffer.from(rest));
      return;
    }
    this.startBody();
    if (rest && this.st !== St.Done) this.onBodyData(rest, 0);
    else if (rest) this.keepAlive = false;
  }

  private appendHead(chunk: Buffer): Buffer {
    const need = this.headLen + chunk.length;
    if (this.headBuf === null || need > this.headBuf.length) {
      const size = Math.min(Math.max(need, (this.headBuf?.length ?? 1024) * 2), this.maxHeader + chunk.length + 4);
      const nb = Buffer.allocUnsafe(Math.max(size, need));
      if (this.headBuf) this.headBuf.copy(nb, 0, 0, this.headLen);
      this.headBuf = nb;
    }
    chunk.copy(this.headBuf, this.headLen);
    this.headLen = need;
    return this.headBuf;
  }

  /** Parses status line and header lines from the one latin1 decode of the header section. */
  private parseHead(text: string): boolean {
    const lines = text.split('\n');
    const first = trimOws(lines[0] ?? '');
    const m = STATUS_RE.exec(first);
    if (!m) {
      this.fail('protocol-error', `bad status line: ${JSON.stringify(first.slice(0, 80))}`);
      return false;
    }
    this.status = Number(m[3]);
    this.statusLine = first.length > MAX_STATUS_LINE ? first.slice(0, MAX_STATUS_LINE) : first;
    const http11 = m[1] === '1' && m[2] === '1';
    const headers: Array<[string, string]> = [];
    for (let i = 1; i < lines.length; i++) {
      const raw = lines[i] as string;
      if (raw.length === 0 || raw === '\r') continue;
      const c0 = raw.charCodeAt(0);
      if ((c0 === 32 || c0 === 9) && headers.length > 0) {
        // obsolete line folding: continuation of the previous value
        const prev = headers[headers.length - 1] as [string, string];
        prev[1] = `${prev[1]} ${trimOws(raw)}`;
        continue;
      }
      const colon = raw.indexOf(':');
      if (colon <= 0) continue; // not a header line: tolerated, ignored
      const name = trimOws(raw.slice(0, colon)).toLowerCase();
      if (name === '' || /[\s]/.test(name)) continue;
      headers.push([name, trimOws(raw.slice(colon + 1))]);
    }
    this.headers = headers;
    let conn = '';
    for (const [k, v] of headers) if (k === 'connection') conn += `,${v.toLowerCase()}`;
    this.keepAlive = http11 ? !/(^|[,\s])close($|[,\s])/.test(conn) : /(^|[,\s])keep-alive($|[,\s])/.test(conn);
    return true;
  }

  private startBody(): void {
    const s = this.status;
    if (this.isHead || s === 204 || s === 304 || (s >= 100 && s < 200)) {
      if (s === 101) this.keepAlive = false;
      this.finish(false, this.keepAlive);
      return;
    }
    let te: string | null = null;
    let cl: string | null = null;
    let clBad = false;
    for (const [k, v] of this.headers) {
      if (k === 'transfer-encoding') te = te === null ? v : `${te},${v}`;
      else if (k === 'content-length') {
        for (const part of v.split(',')) {
          const p = trimOws(part);
          if (!/^\d{1,15}$/.test(p) || (cl !== null && cl !== p)) clBad = true;
          else cl = p;
        }
      }
    }
    if (te !== null) {
      const last = trimOws(te.split(',').pop() ?? '').toLowerCase();
      if (last === 'chunked') {
        this.st = St.Chunked;
        this.ck = Ck.Size;
        return;
      }
      this.st = St.UntilClose;
      this.keepAlive = false;
      return;
    }
    if (cl !== null && !clBad) {
      this.remaining = Number(cl);
      if (this.remaining === 0) {
        this.finish(false, this.keepAlive);
        return;
      }
      this.st = St.Length;
      return;
    }
    this.st = St.UntilClose;
    this.keepAlive = false;
  }

  /** Adds body bytes; at the cap it keeps what fits, marks truncated and ends (connection closed). */
  private addBody(b: Buffer): boolean {
    if (b.length === 0) return true;
    const room = this.maxBody - this.bodyLen;
    if (b.length > room) {
      if (room > 0) {
        this.parts.push(b.subarray(0, room));
        this.bodyLen += room;
      }
      this.finish(true, false);
      return false;
    }
    this.parts.push(b);
    this.bodyLen += b.length;
    return true;
  }

  private onBodyData(b: Buffer, start: number): void {
    if (this.st === St.Length) {
      const avail = b.length - start;
      const take = Math.min(this.remaining, avail);
      if (!this.addBody(b.subarray(start, start + take))) return;
      this.remaining -= take;
      if (this.remaining === 0) this.finish(false, this.keepAlive && take === avail);
      return;
    }
    if (this.st === St.UntilClose) {
      this.addBody(start === 0 ? b : b.subarray(start));
      return;
    }
    if (this.st === St.Chunked) this.onChunked(b, start);
  }

  private onChunked(b: Buffer, start: number): void {
    let pos = start;
    const len = b.length;
    while (pos < len && this.st === St.Chunked) {
      switch (this.ck) {
        case Ck.Size:
        case Ck.Trailer: {
          const nl = b.indexOf(10, pos);
          const end = nl < 0 ? len : nl;
          if (this.ck === Ck.Trailer) {
            this.trailerBytes += end - pos + 1;
            if (this.trailerBytes > this.maxHeader) return this.finish(true, false);
          }
          if (this.line.length + (end - pos) > MAX_CHUNK_LINE && this.ck === Ck.Size) return this.finish(true, false);
          if (this.ck === Ck.Size || this.line.length < 2) this.line += b.toString('latin1', pos, Math.min(end, pos + MAX_CHUNK_LINE));
          if (nl < 0) return;
          pos = nl + 1;
          const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
          this.line = '';
          if (this.ck === Ck.Trailer) {
            if (line === '') {
              this.finish(false, this.keepAlive && pos === len);
              return;
            }
            break;
          }
          const semi = line.indexOf(';');
          const hex = trimOws(semi < 0 ? line : line.slice(0, semi));
          if (!/^[0-9a-fA-F]{1,15}$/.test(hex) || ++this.chunks > MAX_CHUNKS) return this.finish(true, false);
          const size = parseInt(hex, 16);
          if (size === 0) this.ck = Ck.Trailer;
          else {
            this.remaining = size;
            this.ck = Ck.Data;
          }
          break;
        }
        case Ck.Data: {
          const take = Math.min(this.remaining, len - pos);
          if (!this.addBody(b.subarray(pos, pos + take))) return;
          this.remaining -= take;
          pos += take;
          if (this.remaining === 0) {
            this.ck = Ck.Crlf;
            this.line = '';
          }
          break;
        }
        case Ck.Crlf: {
          const c = b[pos];
          if (c === 13 && this.line === '') {
            this.line = '\r';
            pos++;
          } else if (c === 10) {
            this.line = '';
            this.ck = Ck.Size;
            pos++;
          } else return this.finish(true, false);
          break;
        }
      }
    }
  }

  private finish(truncated: boolean, reusable: boolean): void {
    if (this.st === St.Done) return;
    this.st = St.Done;
    const body = this.parts.length === 1 ? Buffer.from(this.parts[0] as Buffer) : Buffer.concat(this.parts, this.bodyLen);
    this.parts = [];
    this.done({
      kind: 'response',
      status: this.status,
      statusLine: this.statusLine,
      headers: this.headers,
      body,
      truncated,
      reusable: reusable && !truncated,
    });
  }
}

/**
 * Feeds a response, cut into the given chunks, through the reader (no sockets). For tests of framing
 * across chunk boundaries; `closed` says whether the peer closes after the last chunk.
 * @internal
 */
export function readChunksForTest(
  chunks: readonly Buffer[],
  opts: { isHead?: boolean; maxHeaderBytes: number; maxBodyBytes: number; closed?: boolean },
): ReadResult | null {
  let result: ReadResult | null = null;
  const r = new ResponseReader(false, opts.isHead === true, opts.maxHeaderBytes, opts.maxBodyBytes, (x) => {
    result = x;
  });
  for (const c of chunks) r.onData(c);
  if (opts.closed === true) r.onEnd();
  return result;
}

export type { ReadResult };

interface Endpoint {
  readonly tls: boolean;
  readonly port: number;
}

function isIp(s: string): boolean {
  return net.isIP(s) !== 0;
}

/** Host as used in URLs and the Host header: name, IPv4, or [IPv6]. */
function hostPart(target: ProbeTarget): string {
  const h = target.hostname ?? target.ip;
  return net.isIPv6(h) ? `[${h}]` : h;
}

/** Lower-cased hosts a redirect may name and still be "the same target". */
function sameTargetHosts(target: ProbeTarget): Set<string> {
  const s = new Set<string>();
  if (target.hostname !== null) s.add(target.hostname.toLowerCase().replace(/\.$/, ''));
  try {
    // URL normalises IPv6 (and IPv4 shorthand) the same way for the target and the Location
    s.add(new URL(`http://${net.isIPv6(target.ip) ? `[${target.ip}]` : target.ip}/`).hostname.toLowerCase());
  } catch {
    s.add(target.ip.toLowerCase());
  }
  return s;
}

function endpointKey(ep: Endpoint): string {
  return `${ep.tls ? 's' : 'p'}${ep.port}`;
}

function hasCtl(s: string): boolean {
   
  return /[\u0000-\u001f\u007f]/.test(s);
}

/** Opens the session for one target. Connections are made lazily by the first request. */
export function openHostSession(target: ProbeTarget, limits: NetLimits, options?: SessionOptions): HostSession {
  return new Session(target, limits, options?.beforeConnect);
}

class Session implements HostSession {
  tlsCert: TlsCertSummary | null = null;
  private readonly conns = new Map<string, Conn>();
  /** Extended by the time spent waiting in beforeConnect (our pacing is not the host's slowness). */
  private budgetEnd: number;
  private readonly hosts: Set<string>;
  private readonly hostHdr: string;
  private readonly ua: string;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Active exchange deadline's abort, so close() can end an in-flight request. */
  private abortActive: (() => void) | null = null;
  /** Same for a connection being established. */
  private abortConnect: (() => void) | null = null;

  constructor(
    private readonly target: ProbeTarget,
    private readonly limits: NetLimits,
    private readonly beforeConnect?: SessionOptions['beforeConnect'],
  ) {
    this.budgetEnd = Date.now() + limits.hostBudgetMs;
    this.hosts = sameTargetHosts(target);
    this.hostHdr = hostPart(target);
    // config validates the User-Agent; still, nothing configurable may break the request framing
     
    this.ua = hasCtl(limits.userAgent) ? limits.userAgent.replace(/[\u0000-\u001f\u007f]/g, ' ') : limits.userAgent;
  }

  request(req: ProbeRequest): Promise<ProbeOutcome> {
    // Requests on one session are serialised: one connection, HTTP/1.1 without pipelining.
    const p = this.chain.then(() => this.run(req)).catch(
      (e: unknown): ProbeOutcome => ({ kind: 'protocol-error', phase: 'request', detail: `internal: ${String(e)}`.slice(0, 200) }),
    );
    this.chain = p;
    return p;
  }

  close(): void {
    this.closed = true;
    this.abortActive?.();
    this.abortConnect?.();
    for (const c of this.conns.values()) c.kill();
    this.conns.clear();
  }

  private url(ep: Endpoint, path: string): string {
    return `${ep.tls ? 'https' : 'http'}://${this.hostHdr}:${ep.port}${path}`;
  }

  private async run(req: ProbeRequest): Promise<ProbeOutcome> {
    let ep: Endpoint = { tls: this.target.tls, port: this.target.port };
    let path = req.path;
    let method = req.method;
    const redirects: string[] = [];
    /** The last 3xx answered: returned if following it fails (the target did answer HTTP). */
    let lastAnswer: ProbeOutcome | null = null;
    for (let hop = 0; ; hop++) {
      const r = await this.exchange(ep, method, path, req.headers);
      if (r.kind !== 'response') {
        if (lastAnswer !== null) return lastAnswer;
        return r;
      }
      const s = r.status;
      const answer: ProbeOutcome = {
        kind: 'ok',
        response: {
          probeId: req.id,
          url: this.url(ep, path),
          status: s,
          statusLine: r.statusLine,
          headers: r.headers,
          body: r.body,
          truncated: r.truncated,
          redirects: [...redirects],
        },
      };
      if ((s === 301 || s === 302 || s === 303 || s === 307 || s === 308) && hop < this.limits.maxRedirects) {
        const next = this.followable(ep, path, r.headers);
        if (next !== null) {
          lastAnswer = answer;
          redirects.push(this.url(next.ep, next.path));
          ep = next.ep;
          path = next.path;
          if (s === 303 && method !== 'HEAD') method = 'GET';
          continue;
        }
      }
      return answer;
    }
  }

  /**
   * A redirect is followed only if it stays on this target: same host (the target's name or IP), and
   * either the same scheme and port, or http→https on the same port or on 443. Anything else is
   * returned as the 3xx itself, Location visible to detectors.
   */
  private followable(ep: Endpoint, path: string, headers: ReadonlyArray<readonly [string, string]>): { ep: Endpoint; path: string } | null {
    let loc: string | undefined;
    for (const [k, v] of headers) if (k === 'location') {
      loc = v;
      break;
    }
    if (loc === undefined || loc === '' || loc.length > MAX_LOCATION || hasCtl(loc)) return null;
    let u: URL;
    try {
      u = new URL(loc, this.url(ep, path));
    } catch {
      return null;
    }
    if (u.username !== '' || u.password !== '') return null;
    const tlsNext = u.protocol === 'https:' ? true : u.protocol === 'http:' ? false : null;
    if (tlsNext === null) return null;
    if (!this.hosts.has(u.hostname.toLowerCase().replace(/\.$/, ''))) return null;
    const port = u.port === '' ? (tlsNext ? 443 : 80) : Number(u.port);
    let ok: boolean;
    if (tlsNext === ep.tls) ok = port === ep.port;
    else ok = tlsNext && (port === ep.port || port === 443);
    if (!ok) return null;
    const nextPath = `${u.pathname}${u.search}`;
    // URL percent-encodes spaces and controls; refuse anything that could still break the request line
    if (!nextPath.startsWith('/') || /[\s]/.test(nextPath)) return null;
    return { ep: { tls: tlsNext, port }, path: nextPath };
  }

  private budgetLeft(): number {
    return this.budgetEnd - Date.now();
  }

  /** One request/response on a (possibly reused) connection; retries once if a reused one went stale. */
  private async exchange(
    ep: Endpoint,
    method: 'GET' | 'HEAD',
    path: string,
    extra: Readonly<Record<string, string>> | undefined,
  ): Promise<Extract<ReadResult, { kind: 'response' }> | ProbeFailure> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.closed) return { kind: 'reset', phase: 'request', detail: 'session closed' };
      const key = endpointKey(ep);
      let conn = this.conns.get(key);
      if (conn !== undefined && conn.dead) {
        conn.kill();
        this.conns.delete(key);
        conn = undefined;
      }
      if (conn === undefined) {
        const c = await this.connect(ep);
        if (!(c instanceof Conn)) return c;
        conn = c;
        this.conns.set(key, conn);
      }
      const r = await this.send(conn, ep, method, path, extra);
      if (r.kind === 'response' && r.reusable && !conn.dead) {
        conn.uses++;
      } else {
        conn.kill();
        if (this.conns.get(key) === conn) this.conns.delete(key);
      }
      if (r.kind === 'response') return r;
      if (r.kind !== 'stale') return { kind: r.kind, phase: 'request', detail: r.detail };
    }
    return { kind: 'reset', phase: 'request', detail: 'connection closed by peer twice' };
  }

  /**
   * Every new connection takes a token first (beforeConnect: the scan's rate limiter), so reconnects
   * after `Connection: close`, redirect hops and retries are paced like first connections.
   */
  private async connect(ep: Endpoint): Promise<Conn | ProbeFailure> {
    if (this.beforeConnect !== undefined) {
      const t0 = Date.now();
      try {
        await this.beforeConnect();
      } catch {
        return { kind: 'reset', phase: 'connect', detail: 'session closed' };
      }
      this.budgetEnd += Date.now() - t0;
      if (this.closed) return { kind: 'reset', phase: 'connect', detail: 'session closed' };
    }
    return this.open(ep);
  }

  private open(ep: Endpoint): Promise<Conn | ProbeFailure> {
    const left = this.budgetLeft();
    if (left <= 0) return Promise.resolve({ kind: 'timeout', phase: 'connect', detail: 'host budget exhausted' });
    const { ip } = this.target;
    return new Promise((resolve) => {
      let sock: net.Socket;
      if (ep.tls) {
        const opts: tls.ConnectionOptions = {
          host: ip,
          port: ep.port,
          rejectUnauthorized: false,
          secureContext: secureContext(),
          // no ALPN: like a plain HTTP/1.1 client, so h2-preferring servers answer in HTTP/1.1
        };
        // SNI only for names, never for an IP literal (RFC 6066)
        const hn = this.target.hostname;
        if (hn !== null && !isIp(hn)) opts.servername = hn;
        sock = tls.connect(opts);
      } else {
        sock = net.connect({ host: ip, port: ep.port });
      }
      sock.setNoDelay(true);
      const conn = new Conn(sock);
      let phase: Phase = 'connect';
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (r: Conn | ProbeFailure): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        this.abortConnect = null;
        conn.sink = null;
        if (!(r instanceof Conn)) conn.kill();
        resolve(r);
      };
      const arm = (ms: number, what: string): void => {
        if (timer !== undefined) clearTimeout(timer);
        const left2 = this.budgetLeft();
        const budget = left2 < ms;
        timer = setTimeout(
          () => settle({ kind: 'timeout', phase, detail: budget ? `${what}: host budget exhausted` : `${what} timeout after ${ms} ms` }),
          Math.max(1, Math.min(ms, left2)),
        );
      };
      conn.sink = {
        onData: () => undefined,
        onEnd: () => settle({ kind: phase === 'tls' ? 'tls-error' : 'reset', phase, detail: `${phase}: connection closed by peer` }),
        onError: (err) => {
          const code = errCode(err);
          settle({ ...classify(err, phase), phase, ...(code === '' ? {} : { code }) });
        },
      };
      arm(this.limits.connectTimeoutMs, 'connect');
      sock.once('connect', () => {
        if (settled) return;
        if (!ep.tls) {
          settle(conn);
          return;
        }
        phase = 'tls';
        arm(this.limits.tlsTimeoutMs, 'TLS handshake');
      });
      if (ep.tls) {
        sock.once('secureConnect', () => {
          if (settled) return;
          if (this.tlsCert === null) this.tlsCert = summarizeCert(sock as tls.TLSSocket);
          settle(conn);
        });
      }
      this.abortConnect = () => settle({ kind: 'reset', phase, detail: 'session closed' });
      if (this.closed) settle({ kind: 'reset', phase, detail: 'session closed' });
    });
  }

  private send(
    conn: Conn,
    ep: Endpoint,
    method: 'GET' | 'HEAD',
    path: string,
    extra: Readonly<Record<string, string>> | undefined,
  ): Promise<ReadResult> {
    const left = this.budgetLeft();
    if (left <= 0) return Promise.resolve({ kind: 'timeout', detail: 'host budget exhausted' });
    const host = (ep.tls && ep.port === 443) || (!ep.tls && ep.port === 80) ? this.hostHdr : `${this.hostHdr}:${ep.port}`;
    let head =
      `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${this.ua}\r\n` +
      'Accept: */*\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n';
    if (extra) {
      for (const k of Object.keys(extra)) {
        const v = extra[k] as string;
        // request headers come from detector data, but never let one smuggle a line break
        if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) && !hasCtl(v)) head += `${k}: ${v}\r\n`;
      }
    }
    head += '\r\n';
    const ms = this.limits.requestTimeoutMs;
    const budget = left < ms;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const reader = new ResponseReader(conn.uses > 0, method === 'HEAD', this.limits.maxHeaderBytes, this.limits.maxBodyBytes, (r) => {
        if (timer !== undefined) clearTimeout(timer);
        conn.sink = null;
        this.abortActive = null;
        resolve(r);
      });
      timer = setTimeout(() => {
        reader.fail('timeout', budget ? 'request: host budget exhausted' : `request timeout after ${ms} ms`);
        conn.kill();
      }, Math.max(1, Math.min(ms, left)));
      this.abortActive = () => {
        reader.fail('reset', 'session closed');
      };
      conn.sink = reader;
      if (conn.dead) {
        reader.onEnd();
        return;
      }
      conn.sock.write(head, 'latin1');
    });
  }
}

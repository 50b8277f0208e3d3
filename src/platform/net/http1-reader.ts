/**
 * A pure, incremental HTTP/1 response reader: bytes in (as many chunks as the socket cuts them into),
 * one result out (status line, raw header lines, body, or a failure value). No sockets: the session
 * feeds it from one, tests feed it chunks directly.
 *
 * Tolerant where real servers are sloppy (bare LF, obsolete line folding, junk header lines, latin1
 * bytes), strict where framing could be abused (bounded header section, status line, chunk-size lines,
 * chunk count, trailers and body). Never throws.
 *
 * Performance (the per-host hot path): the header section is parsed from a Buffer with one latin1
 * decode; it is copied only when it spans several chunks (into one buffer grown by doubling); body bytes
 * are kept as Buffer slices and concatenated once; no closure or regex is made per chunk.
 */
import type { NetFailure, NetLimits, ProbeFailure } from '../../core/contracts/probe.js';
import { failureOf } from './failure.js';

/** Status line kept at most this long (hostile text). */
const MAX_STATUS_LINE = 512;
/** A chunk-size line longer than this is broken framing. */
const MAX_CHUNK_LINE = 256;
/** More chunks than this in one body is broken framing (bounds CPU on 1-byte chunks). */
const MAX_CHUNKS = 65_536;

const HTTP_PREFIX = Buffer.from('HTTP/', 'latin1');
const STATUS_RE = /^HTTP\/(\d)\.(\d)[ \t]+(\d{3})(?:[ \t]|$)/;
const WHITESPACE_RE = /\s/;
const CONN_CLOSE_RE = /(^|[,\s])close($|[,\s])/;
const CONN_KEEP_ALIVE_RE = /(^|[,\s])keep-alive($|[,\s])/;
const CONTENT_LENGTH_RE = /^\d{1,15}$/;
const CHUNK_SIZE_RE = /^[0-9a-fA-F]{1,15}$/;

/** A complete (or, with `truncated`, cut) response. */
export interface Http1Response {
  readonly kind: 'response';
  readonly status: number;
  /** As sent, capped at MAX_STATUS_LINE. */
  readonly statusLine: string;
  /** Names lower-cased, values with surrounding spaces/tabs removed; repeated headers kept in order. */
  readonly headers: Array<readonly [string, string]>;
  readonly body: Buffer;
  /** The body was cut at the cap, or its framing broke, or the peer closed early. */
  readonly truncated: boolean;
  /** The connection may carry the next request (keep-alive, framing complete, no stray bytes). */
  readonly reusable: boolean;
}

/** What one exchange produced. Failures are all in the 'request' phase. */
export type ReadResult =
  | Http1Response
  /** A reused keep-alive connection was closed by the peer before any byte: retry on a fresh one. */
  | { readonly kind: 'stale' }
  | ProbeFailure;

export type ReaderLimits = Pick<NetLimits, 'maxHeaderBytes' | 'maxBodyBytes'>;

// Reader and chunk states as plain numbers (no const enum: type-stripping runtimes cannot run it).
const S_HEAD = 0;
const S_LENGTH = 1;
const S_CHUNKED = 2;
const S_UNTIL_CLOSE = 3;
const S_DONE = 4;
type State = typeof S_HEAD | typeof S_LENGTH | typeof S_CHUNKED | typeof S_UNTIL_CLOSE | typeof S_DONE;
const C_SIZE = 0;
const C_DATA = 1;
const C_CRLF = 2;
const C_TRAILER = 3;
type ChunkState = typeof C_SIZE | typeof C_DATA | typeof C_CRLF | typeof C_TRAILER;

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
 * Returns the offset of that first LF (the header section's length), or -1 when not (yet) found; the
 * body starts 2 bytes later (LF LF) or 3 (LF CR LF).
 */
function findHeadEnd(buf: Buffer, from: number, len: number): number {
  let i = buf.indexOf(10, from);
  while (i >= 0 && i < len) {
    const n1 = i + 1 < len ? buf[i + 1] : -1;
    if (n1 === 10) return i;
    if (n1 === 13) {
      const n2 = i + 2 < len ? buf[i + 2] : -1;
      if (n2 === 10) return i;
    }
    i = buf.indexOf(10, i + 1);
  }
  return -1;
}

/**
 * Reads one response. Feed it with onData/onEnd/onError (the session's socket events, or a test's
 * chunks); it calls `done` exactly once, or never if the bytes stop mid-response and nothing ends the
 * exchange (the session's deadline then calls `fail`). Memory is bounded by maxHeaderBytes (head
 * buffer) plus maxBodyBytes (body parts).
 */
export class ResponseReader {
  private st: State = S_HEAD;
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
  private ck: ChunkState = C_SIZE;
  private line = '';
  private chunks = 0;
  private trailerBytes = 0;
  private readonly maxHeader: number;
  private readonly maxBody: number;

  /**
   * @param reused the connection already carried a response: a close before any byte is 'stale' (retry),
   *   not a failure of this host
   * @param isHead the request was HEAD: no body follows whatever the headers say
   */
  constructor(
    limits: ReaderLimits,
    private readonly isHead: boolean,
    private readonly reused: boolean,
    private readonly done: (r: ReadResult) => void,
  ) {
    this.maxHeader = limits.maxHeaderBytes;
    this.maxBody = limits.maxBodyBytes;
  }

  /** Ends the exchange with a failure (the session's deadline or close); no-op once settled. */
  fail(kind: NetFailure, detail: string): void {
    if (this.st === S_DONE) return;
    this.st = S_DONE;
    this.done({ kind, phase: 'request', detail });
  }

  onData(chunk: Buffer): void {
    if (this.st === S_DONE) return;
    if (chunk.length > 0) this.gotAny = true;
    if (this.st === S_HEAD) this.onHeadData(chunk);
    else this.onBodyData(chunk, 0);
  }

  /** The peer closed (end of stream). */
  onEnd(): void {
    if (this.st === S_DONE) return;
    if (this.st === S_HEAD) {
      if (!this.gotAny) {
        if (this.reused) {
          this.st = S_DONE;
          this.done({ kind: 'stale' });
        } else this.fail('reset', 'request: connection closed before any response byte');
      } else this.fail('protocol-error', 'connection closed inside the header section');
      return;
    }
    // Close-delimited bodies end here normally; length/chunked bodies cut short are incomplete.
    this.finish(this.st !== S_UNTIL_CLOSE, false);
  }

  /** The socket failed. */
  onError(err: Error): void {
    if (this.st === S_DONE) return;
    if (this.st === S_HEAD) {
      if (!this.gotAny && this.reused) {
        this.st = S_DONE;
        this.done({ kind: 'stale' });
        return;
      }
      const f = failureOf(err, 'request');
      this.st = S_DONE;
      this.done(this.gotAny ? { ...f, kind: 'protocol-error' } : f);
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
    const headEnd = findHeadEnd(buf, this.searchFrom, len);
    if (headEnd < 0) {
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
    const bodyStart = headEnd + (buf[headEnd + 1] === 10 ? 2 : 3);
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
    if (rest && this.st !== S_DONE) this.onBodyData(rest, 0);
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
      if (name === '' || WHITESPACE_RE.test(name)) continue;
      headers.push([name, trimOws(raw.slice(colon + 1))]);
    }
    this.headers = headers;
    let conn = '';
    for (const [k, v] of headers) if (k === 'connection') conn += `,${v.toLowerCase()}`;
    this.keepAlive = http11 ? !CONN_CLOSE_RE.test(conn) : CONN_KEEP_ALIVE_RE.test(conn);
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
          if (!CONTENT_LENGTH_RE.test(p) || (cl !== null && cl !== p)) clBad = true;
          else cl = p;
        }
      }
    }
    if (te !== null) {
      const last = trimOws(te.split(',').pop() ?? '').toLowerCase();
      if (last === 'chunked') {
        this.st = S_CHUNKED;
        this.ck = C_SIZE;
        return;
      }
      this.st = S_UNTIL_CLOSE;
      this.keepAlive = false;
      return;
    }
    if (cl !== null && !clBad) {
      this.remaining = Number(cl);
      if (this.remaining === 0) {
        this.finish(false, this.keepAlive);
        return;
      }
      this.st = S_LENGTH;
      return;
    }
    this.st = S_UNTIL_CLOSE;
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
    if (this.st === S_LENGTH) {
      const avail = b.length - start;
      const take = Math.min(this.remaining, avail);
      if (!this.addBody(b.subarray(start, start + take))) return;
      this.remaining -= take;
      if (this.remaining === 0) this.finish(false, this.keepAlive && take === avail);
      return;
    }
    if (this.st === S_UNTIL_CLOSE) {
      this.addBody(start === 0 ? b : b.subarray(start));
      return;
    }
    if (this.st === S_CHUNKED) this.onChunked(b, start);
  }

  private onChunked(b: Buffer, start: number): void {
    let pos = start;
    const len = b.length;
    while (pos < len && this.st === S_CHUNKED) {
      switch (this.ck) {
        case C_SIZE:
        case C_TRAILER: {
          const nl = b.indexOf(10, pos);
          const end = nl < 0 ? len : nl;
          if (this.ck === C_TRAILER) {
            this.trailerBytes += end - pos + 1;
            if (this.trailerBytes > this.maxHeader) return this.finish(true, false);
          }
          if (this.line.length + (end - pos) > MAX_CHUNK_LINE && this.ck === C_SIZE) return this.finish(true, false);
          if (this.ck === C_SIZE || this.line.length < 2) this.line += b.toString('latin1', pos, Math.min(end, pos + MAX_CHUNK_LINE));
          if (nl < 0) return;
          pos = nl + 1;
          const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
          this.line = '';
          if (this.ck === C_TRAILER) {
            if (line === '') {
              this.finish(false, this.keepAlive && pos === len);
              return;
            }
            break;
          }
          const semi = line.indexOf(';');
          const hex = trimOws(semi < 0 ? line : line.slice(0, semi));
          if (!CHUNK_SIZE_RE.test(hex) || ++this.chunks > MAX_CHUNKS) return this.finish(true, false);
          const size = parseInt(hex, 16);
          if (size === 0) this.ck = C_TRAILER;
          else {
            this.remaining = size;
            this.ck = C_DATA;
          }
          break;
        }
        case C_DATA: {
          const take = Math.min(this.remaining, len - pos);
          if (!this.addBody(b.subarray(pos, pos + take))) return;
          this.remaining -= take;
          pos += take;
          if (this.remaining === 0) {
            this.ck = C_CRLF;
            this.line = '';
          }
          break;
        }
        case C_CRLF: {
          const c = b[pos];
          if (c === 13 && this.line === '') {
            this.line = '\r';
            pos++;
          } else if (c === 10) {
            this.line = '';
            this.ck = C_SIZE;
            pos++;
          } else return this.finish(true, false);
          break;
        }
      }
    }
  }

  private finish(truncated: boolean, reusable: boolean): void {
    if (this.st === S_DONE) return;
    this.st = S_DONE;
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

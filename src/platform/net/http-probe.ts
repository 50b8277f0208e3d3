/**
 * The probe client: the session for one target (`openHostSession`, implementing `HostSession` of
 * core/contracts/probe.ts) over node:net / node:tls. With the modules beside it, it is the only code in
 * Tocsin that talks to scanned hosts:
 *   http-probe.ts       connections, keep-alive, deadlines, the beforeConnect hook, failures as values
 *   http1-reader.ts     the HTTP/1 response reader (pure: bytes in, response or failure out, byte caps)
 *   http1-request.ts    the request head (pure)
 *   redirect-policy.ts  which redirects are followed (pure: same target only, at most maxRedirects)
 *   tls-context.ts      the shared TLS context and the certificate summary (with cert-der.ts)
 *   failure.ts          socket errors as {kind, phase, code}
 *
 * Why not node:http or undici: zgrab2-style scanning needs the raw status line and raw header lines
 * (latin1, repeated headers kept, malformed lines tolerated), exact byte caps on the header section and
 * the body, hard deadlines per phase (connect, TLS, whole request, whole host) that a slow-drip peer
 * cannot extend, certificates of every host (undici's session cache returns empty certificates for
 * repeat hosts), and "never throw" on hostile input. node:http's parser rejects much of what real
 * servers send, enforces its own header limit globally, and its timeouts are idle timeouts (reset by
 * every byte), which a peer dripping one byte per second defeats. Owning about 1,100 lines (these six
 * files, tests and cert-der.ts aside) is cheaper than working around both libraries.
 *
 * Performance notes (thousands of hosts/s on 2 cores): one shared TLS SecureContext, one timer per
 * phase, socket listeners attached once per connection, the reader itself as the socket's sink (no
 * closure per chunk); see http1-reader.ts for the parsing side.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type {
  FailurePhase,
  HostSession,
  NetLimits,
  ProbeFailure,
  ProbeOutcome,
  ProbeRequest,
  ProbeTarget,
  SessionOptions,
  TlsCertSummary,
  TlsTiming,
} from '../../core/contracts/probe.js';
import { failureOf } from './failure.js';
import { type Http1Response, type ReadResult, ResponseReader } from './http1-reader.js';
import { requestHead, safeUserAgent } from './http1-request.js';
import { type Endpoint, RedirectPolicy } from './redirect-policy.js';
import { summarizeCert, tlsConnectOptions } from './tls-context.js';

/** Receives socket events for whatever phase the connection is in (a ResponseReader while a request runs). */
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

function endpointKey(ep: Endpoint): string {
  return `${ep.tls ? 's' : 'p'}${ep.port}`;
}

/** Opens the session for one target. Connections are made lazily by the first request. */
export function openHostSession(target: ProbeTarget, limits: NetLimits, options?: SessionOptions): HostSession {
  return new Session(target, limits, options?.beforeConnect);
}

class Session implements HostSession {
  tlsCert: TlsCertSummary | null = null;
  tlsTiming: TlsTiming | null = null;
  private readonly conns = new Map<string, Conn>();
  /** Extended by the time spent waiting in beforeConnect (our pacing is not the host's slowness). */
  private budgetEnd: number;
  private readonly redirects: RedirectPolicy;
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
    this.redirects = new RedirectPolicy(target, limits.maxRedirects);
    this.ua = safeUserAgent(limits.userAgent);
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

  private async run(req: ProbeRequest): Promise<ProbeOutcome> {
    let ep: Endpoint = { tls: this.target.tls, port: this.target.port };
    let path = req.path;
    const redirects: string[] = [];
    /** The last 3xx answered: returned if following it fails (the target did answer HTTP). */
    let lastAnswer: ProbeOutcome | null = null;
    for (;;) {
      const r = await this.exchange(ep, req.method, path, req.headers);
      if (r.kind !== 'response') return lastAnswer ?? r;
      const answer: ProbeOutcome = {
        kind: 'ok',
        response: {
          probeId: req.id,
          url: this.redirects.url(ep, path),
          status: r.status,
          statusLine: r.statusLine,
          headers: r.headers,
          body: r.body,
          truncated: r.truncated,
          redirects: [...redirects],
        },
      };
      const next = this.redirects.next(r.status, r.headers, ep, path, redirects.length);
      if (next === null) return answer;
      lastAnswer = answer;
      redirects.push(this.redirects.url(next.ep, next.path));
      ep = next.ep;
      path = next.path;
    }
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
  ): Promise<Http1Response | ProbeFailure> {
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
      if (r.kind !== 'stale') return r;
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

  /** Connects (and for TLS, handshakes) under the connect and TLS deadlines, both capped by the host budget. */
  private open(ep: Endpoint): Promise<Conn | ProbeFailure> {
    const left = this.budgetLeft();
    if (left <= 0) return Promise.resolve({ kind: 'timeout', phase: 'connect', detail: 'host budget exhausted' });
    const { ip } = this.target;
    return new Promise((resolve) => {
      const sock = ep.tls ? tls.connect(tlsConnectOptions(ip, ep.port, this.target.hostname)) : net.connect({ host: ip, port: ep.port });
      sock.setNoDelay(true);
      const conn = new Conn(sock);
      const t0 = performance.now();
      let tConnect = t0;
      let phase: FailurePhase = 'connect';
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
        onError: (err) => settle(failureOf(err, phase)),
      };
      arm(this.limits.connectTimeoutMs, 'connect');
      sock.once('connect', () => {
        if (settled) return;
        if (!ep.tls) {
          settle(conn);
          return;
        }
        phase = 'tls';
        tConnect = performance.now();
        arm(this.limits.tlsTimeoutMs, 'TLS handshake');
      });
      if (ep.tls) {
        sock.once('secureConnect', () => {
          if (settled) return;
          if (this.tlsCert === null) this.tlsCert = summarizeCert(sock as tls.TLSSocket);
          if (this.tlsTiming === null) this.tlsTiming = { connectMs: tConnect - t0, handshakeMs: performance.now() - tConnect };
          settle(conn);
        });
      }
      this.abortConnect = () => settle({ kind: 'reset', phase, detail: 'session closed' });
      if (this.closed) settle({ kind: 'reset', phase, detail: 'session closed' });
    });
  }

  /** Writes the request and reads its response under the whole-request deadline (capped by the host budget). */
  private send(
    conn: Conn,
    ep: Endpoint,
    method: 'GET' | 'HEAD',
    path: string,
    extra: Readonly<Record<string, string>> | undefined,
  ): Promise<ReadResult> {
    const left = this.budgetLeft();
    if (left <= 0) return Promise.resolve({ kind: 'timeout', phase: 'request', detail: 'host budget exhausted' });
    const hostHdr = this.redirects.host;
    const host = (ep.tls && ep.port === 443) || (!ep.tls && ep.port === 80) ? hostHdr : `${hostHdr}:${ep.port}`;
    const head = requestHead(method, path, host, this.ua, extra);
    const ms = this.limits.requestTimeoutMs;
    const budget = left < ms;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const reader = new ResponseReader(this.limits, method === 'HEAD', conn.uses > 0, (r) => {
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

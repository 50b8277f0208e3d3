/**
 * Contract of the probe client (implemented in http-probe.ts). The client owns every connection:
 * connect/TLS/total deadlines, byte caps on headers and bodies, one keep-alive connection per target,
 * redirects followed only within the same target. Hostile peers never make it throw: every network
 * outcome is a value.
 */

/** A request the engine may send. Paths are fixed strings: nothing from a scanned host goes into a request. */
export interface ProbeRequest {
  /** Stable id, e.g. "owa-logon", referenced by detectors. */
  readonly id: string;
  readonly method: 'GET' | 'HEAD';
  /** Absolute path with query, e.g. "/owa/auth/logon.aspx?replaceCurrent=1". */
  readonly path: string;
  /** Extra request headers (the engine adds Host, User-Agent, Accept, Connection). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Why we send it, shown in docs and evidence. */
  readonly purpose: string;
}

/** What came back for one probe, after redirects within the same target were followed. */
export interface ProbeResponse {
  readonly probeId: string;
  /** The URL finally answered (after same-target redirects), e.g. "https://192.0.2.1:443/owa/auth/logon.aspx". */
  readonly url: string;
  readonly status: number;
  /** Raw status line as sent, capped; hostile text, escape before display. */
  readonly statusLine: string;
  /** Header names lower-cased, values as sent (capped). Repeated headers appear repeatedly. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Body bytes, at most the engine's cap. */
  readonly body: Buffer;
  /** True if the body was cut at the cap. */
  readonly truncated: boolean;
  /** URLs of the redirects followed (each Location target, in order; the request URL itself is not listed). */
  readonly redirects: readonly string[];
}

/** What the probe client read of a host's TLS certificate (kept for attribution). Hostile text. */
export interface TlsCertSummary {
  readonly subjectCn: string | null;
  readonly sans: readonly string[];
  readonly issuerCn: string | null;
  readonly validFrom: string | null;
  readonly validTo: string | null;
  readonly sha256: string | null;
}


export interface ProbeTarget {
  readonly ip: string;
  readonly port: number;
  /** Speak TLS first (HTTPS). */
  readonly tls: boolean;
  /** Sent as SNI and Host when given; else Host is the IP (bracketed for IPv6). */
  readonly hostname: string | null;
}

export interface NetLimits {
  /** TCP connect deadline. */
  readonly connectTimeoutMs: number;
  /** TLS handshake deadline (after connect). */
  readonly tlsTimeoutMs: number;
  /** Whole request: from write to last body byte (defeats slow-drip peers). */
  readonly requestTimeoutMs: number;
  /** All probes of one target together. */
  readonly hostBudgetMs: number;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  readonly maxRedirects: number;
  readonly userAgent: string;
}

export const DEFAULT_LIMITS: NetLimits = {
  connectTimeoutMs: 3000,
  tlsTimeoutMs: 3000,
  requestTimeoutMs: 5000,
  hostBudgetMs: 15000,
  maxHeaderBytes: 32 * 1024,
  maxBodyBytes: 256 * 1024,
  maxRedirects: 3,
  userAgent: 'Tocsin',
};

export type NetFailure = 'refused' | 'timeout' | 'tls-error' | 'reset' | 'protocol-error' | 'unreachable';

/**
 * Where a failure happened, so the engine can judge it without reading message text:
 * 'connect' = no TCP connection (nothing came back from the address, or it refused/reset);
 * 'tls' = connected, the TLS handshake failed or timed out; 'request' = connected (and TLS done),
 * the request or its response failed.
 */
export type FailurePhase = 'connect' | 'tls' | 'request';

/** A network failure as a value: what happened (kind), in which phase, and a short text for people. */
export interface ProbeFailure {
  readonly kind: NetFailure;
  readonly phase: FailurePhase;
  readonly detail: string;
  /** The socket error code when there was one (e.g. 'ECONNRESET'). */
  readonly code?: string;
}

export type ProbeOutcome =
  | { readonly kind: 'ok'; readonly response: ProbeResponse }
  | ProbeFailure;

/** What the caller of openSession may hook into. */
export interface SessionOptions {
  /**
   * Called before EVERY new connection the session opens (first connection, reconnects after
   * `Connection: close` or a stale keep-alive, redirect hops to another endpoint): the scan's rate
   * limiter. The connection is opened when it resolves; if it rejects, the request ends as a
   * 'connect' failure. Time spent waiting here is not charged to the host budget (it is our pacing,
   * not the host's slowness).
   */
  readonly beforeConnect?: () => Promise<void> | void;
}

/** One target's session: reuses one connection while the peer allows keep-alive. */
export interface HostSession {
  request(req: ProbeRequest): Promise<ProbeOutcome>;
  /** Certificate of the first TLS connection, if any. */
  readonly tlsCert: TlsCertSummary | null;
  /**
   * Timing of the first TLS connection, once its handshake completed: TCP connect (ms from the socket's
   * creation) and the TLS handshake after it (ms). The engine's congestion window reads it: a peer
   * that queues handshakes answers them late long before they time out. Optional (test fakes omit it).
   */
  readonly tlsTiming?: TlsTiming | null;
  close(): void;
}

/** Connect and handshake durations of a session's first TLS connection (ms). */
export interface TlsTiming {
  readonly connectMs: number;
  readonly handshakeMs: number;
}

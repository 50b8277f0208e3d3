/**
 * Which redirects the probe client follows (pure: no sockets). A redirect is followed only if it stays
 * on the target: the same host (the target's name or IP), and either the same scheme and port, or
 * http→https on the same port or on 443; and at most `maxRedirects` times per request. Anything else is
 * returned as the 3xx itself, its Location visible to detectors.
 */
import type { ProbeTarget } from '../../core/contracts/probe.js';
import { hasCtl } from './http1-request.js';

/** Redirect targets longer than this are not followed. */
const MAX_LOCATION = 2048;
const TRAILING_DOT_RE = /\.$/;
const WHITESPACE_RE = /\s/;

/** Where a request goes on the target's address. */
export interface Endpoint {
  readonly tls: boolean;
  readonly port: number;
}

/**
 * The next request after a followed redirect, with the same method: 303 would turn other methods into
 * GET, but GET and HEAD, the only ones sent, stay as they are.
 */
export interface Hop {
  readonly ep: Endpoint;
  readonly path: string;
}

/**
 * An address or DNS name is IPv6 iff it has a colon. (node:net's isIPv6 is a large regular expression: ~25 ms to
 * compile in each process and ~2 µs a call, twice per host here.)
 */
function isV6(h: string): boolean {
  return h.includes(':');
}

/** Host as used in URLs and the Host header: name, IPv4, or [IPv6]. */
export function hostPart(target: ProbeTarget): string {
  const h = target.hostname ?? target.ip;
  return isV6(h) ? `[${h}]` : h;
}

/** Lower-cased hosts a redirect may name and still be "the same target". */
export function sameTargetHosts(target: ProbeTarget): Set<string> {
  const s = new Set<string>();
  if (target.hostname !== null) s.add(target.hostname.toLowerCase().replace(TRAILING_DOT_RE, ''));
  try {
    // URL normalises IPv6 (and IPv4 shorthand) the same way for the target and the Location
    s.add(new URL(`http://${isV6(target.ip) ? `[${target.ip}]` : target.ip}/`).hostname.toLowerCase());
  } catch {
    s.add(target.ip.toLowerCase());
  }
  return s;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** One target's redirect policy; made once per session. */
export class RedirectPolicy {
  /** Host as it appears in URLs and the Host header. */
  readonly host: string;
  private readonly hosts: Set<string>;

  constructor(
    target: ProbeTarget,
    private readonly maxRedirects: number,
  ) {
    this.host = hostPart(target);
    this.hosts = sameTargetHosts(target);
  }

  /** The URL of `path` on `ep`, as reported in responses and redirect lists. */
  url(ep: Endpoint, path: string): string {
    return `${ep.tls ? 'https' : 'http'}://${this.host}:${ep.port}${path}`;
  }

  /**
   * The hop to take after a response with `status` and `headers` to `path` on `ep`, when `followed`
   * redirects were already followed for this request; null = return this response.
   */
  next(
    status: number,
    headers: ReadonlyArray<readonly [string, string]>,
    ep: Endpoint,
    path: string,
    followed: number,
  ): Hop | null {
    if (!isRedirect(status) || followed >= this.maxRedirects) return null;
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
    if (!this.hosts.has(u.hostname.toLowerCase().replace(TRAILING_DOT_RE, ''))) return null;
    const port = u.port === '' ? (tlsNext ? 443 : 80) : Number(u.port);
    const ok = tlsNext === ep.tls ? port === ep.port : tlsNext && (port === ep.port || port === 443);
    if (!ok) return null;
    const nextPath = `${u.pathname}${u.search}`;
    // URL percent-encodes spaces and controls; refuse anything that could still break the request line
    if (!nextPath.startsWith('/') || WHITESPACE_RE.test(nextPath)) return null;
    return { ep: { tls: tlsNext, port }, path: nextPath };
  }
}

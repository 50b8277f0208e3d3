/**
 * Pre-rendered HTTP responses and the per-host route table. A route is rendered once into Buffers
 * (status line and headers, then the Date line is inserted per request from a shared buffer, then
 * Content-Length and the body), so the hot path does no string building. Routes whose text depends on
 * the request's authority (redirects to https://<Host>/...) keep their text split at a placeholder and
 * are joined per request: real Exchange builds these URLs from the Host header.
 */

/** Placeholder for the request authority (host[:port]) in dynamic routes. */
export const AUTH = '\u0000AUTH\u0000';
/** Placeholder for the authority percent-encoded as Exchange writes it inside `url=` (":" → "%3a"). */
export const AUTH_ENC = '\u0000AUTHENC\u0000';

function fill(parts: readonly string[], authority: string): string {
  return parts.join(authority).split(AUTH_ENC).join(authority.replace(/:/g, '%3a'));
}

export interface RouteSpec {
  readonly status: number;
  readonly reason: string;
  /** Header lines in wire order (before Date). Values are written as latin1, so raw bytes survive. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string | Buffer;
}

export interface Route {
  /** Status line and headers, up to (not including) Date. */
  readonly pre: Buffer;
  /** `Content-Length: n` and the blank line. */
  readonly post: Buffer;
  readonly body: Buffer;
  /** Set when the route's text contains the authority placeholder. */
  readonly dynamic: { readonly head: readonly string[]; readonly body: readonly string[] } | null;
}

export interface PrefixRoute {
  /** Lower-case path prefix. */
  readonly prefix: string;
  readonly route: Route;
  /** Routes by lower-case file extension (".png"), for static assets. */
  readonly byExt?: ReadonlyMap<string, Route>;
}

export interface RouteTable {
  /** Lower-case path without query → route. */
  readonly exact: ReadonlyMap<string, Route>;
  readonly prefixes: readonly PrefixRoute[];
  readonly fallback: Route;
}

function headText(spec: RouteSpec): string {
  let s = `HTTP/1.1 ${spec.status} ${spec.reason}\r\n`;
  for (const [k, v] of spec.headers) s += `${k}: ${v}\r\n`;
  return s;
}

export function renderRoute(spec: RouteSpec): Route {
  const head = headText(spec);
  const bodyText = typeof spec.body === 'string' ? spec.body : null;
  const isDynamic =
    head.includes(AUTH) || head.includes(AUTH_ENC) || (bodyText !== null && (bodyText.includes(AUTH) || bodyText.includes(AUTH_ENC)));
  const body = typeof spec.body === 'string' ? Buffer.from(spec.body, 'utf8') : spec.body;
  return {
    pre: Buffer.from(head, 'latin1'),
    post: Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'latin1'),
    body,
    dynamic: isDynamic ? { head: head.split(AUTH), body: (bodyText ?? '').split(AUTH) } : null,
  };
}

/** Renders a dynamic route for one request. */
export function materialize(route: Route, authority: string): { pre: Buffer; post: Buffer; body: Buffer } {
  if (route.dynamic === null) return route;
  const body = Buffer.from(fill(route.dynamic.body, authority), 'utf8');
  return {
    pre: Buffer.from(fill(route.dynamic.head, authority), 'latin1'),
    post: Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'latin1'),
    body,
  };
}

/** Finds the route for a lower-case path (query already removed). */
export function findRoute(table: RouteTable, path: string): Route {
  const r = table.exact.get(path);
  if (r !== undefined) return r;
  for (const p of table.prefixes) {
    if (path.startsWith(p.prefix)) {
      if (p.byExt !== undefined) {
        const dot = path.lastIndexOf('.');
        const ext = dot > path.lastIndexOf('/') ? path.slice(dot) : '';
        return p.byExt.get(ext) ?? p.route;
      }
      return p.route;
    }
  }
  return table.fallback;
}

/** Shared `Date:` line, refreshed once a second (the only per-second-varying header). */
export class DateLine {
  private current: Buffer = DateLine.render();
  private timer: NodeJS.Timeout | null = null;
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      this.current = DateLine.render();
    }, 1000);
    this.timer.unref();
  }
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
  get line(): Buffer {
    return this.current;
  }
  static render(): Buffer {
    return Buffer.from(`Date: ${new Date().toUTCString()}\r\n`, 'latin1');
  }
}

/**
 * Reads the request authority from a raw header block: the Host header if it is a plausible
 * host[:port] (it goes into Location headers), else the fallback (the host's IP and port).
 */
export function authorityFrom(head: string, fallback: string): string {
  const i = indexOfHeader(head, 'host');
  if (i < 0) return fallback;
  let end = head.indexOf('\r\n', i);
  if (end < 0) end = head.length;
  const v = head.slice(i, end).trim();
  return /^[A-Za-z0-9.-]{1,253}(?::\d{1,5})?$/.test(v) || /^\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?$/.test(v) ? v : fallback;
}

/** Offset of the value of header `name` (lower-case) in a raw header block, or -1. */
export function indexOfHeader(head: string, name: string): number {
  const lower = head.toLowerCase();
  const needle = `\r\n${name}:`;
  const i = lower.indexOf(needle);
  return i < 0 ? -1 : i + needle.length;
}

/**
 * The HTTP/1.1 request head the probe client writes (pure). Nothing from a scanned host goes into it;
 * still, nothing configurable or taken from detector data may break its framing.
 */

const CTL_RE = /[\u0000-\u001f\u007f]/;
const CTL_ALL_RE = /[\u0000-\u001f\u007f]/g;
/** RFC 9110 token: the only header names we send. */
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** True if `s` holds a control character (CR, LF, NUL, ...). */
export function hasCtl(s: string): boolean {
  return CTL_RE.test(s);
}

/** The User-Agent with control characters blanked (config validates it; this keeps the framing safe regardless). */
export function safeUserAgent(ua: string): string {
  return hasCtl(ua) ? ua.replace(CTL_ALL_RE, ' ') : ua;
}

/**
 * The request head, ending with the empty line. `host` is the Host header value (with the port unless
 * it is the scheme's default). Extra headers whose name is not a token or whose value holds a control
 * character are left out.
 */
export function requestHead(
  method: 'GET' | 'HEAD',
  path: string,
  host: string,
  userAgent: string,
  extra: Readonly<Record<string, string>> | undefined,
): string {
  let head =
    `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${userAgent}\r\n` +
    'Accept: */*\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n';
  if (extra) {
    for (const k of Object.keys(extra)) {
      const v = extra[k] as string;
      if (TOKEN_RE.test(k) && !hasCtl(v)) head += `${k}: ${v}\r\n`;
    }
  }
  return `${head}\r\n`;
}

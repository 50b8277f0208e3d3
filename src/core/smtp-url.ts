/**
 * The grammar of TOCSIN_SMTP_URL and TOCSIN_MAIL_FROM. Pure (no I/O): config.ts validates both at start with it,
 * and the SMTP adapter (src/platform/mail) builds its connections from the parsed value.
 *
 *   smtp://[user:pass@]host[:port][?starttls=required|opportunistic|never][&tlsCa=/path/ca.pem]
 *        [&tlsRejectUnauthorized=false][&maxConnections=N][&name=ehlo.host.name]
 *   smtps://...   implicit TLS (default port 465)
 *
 * smtp:// defaults to port 587 (submission) and STARTTLS when the relay offers it (`opportunistic`); certificates are
 * always verified unless `tlsRejectUnauthorized=false` says otherwise (a test relay), and `tlsCa` adds a CA file.
 */

export type StartTlsPolicy = 'required' | 'opportunistic' | 'never';

export interface SmtpRelay {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly user: string | null;
  readonly pass: string | null;
  readonly startTls: StartTlsPolicy;
  /** A PEM file with the CA (or self-signed certificate) to trust, read by the adapter. */
  readonly tlsCaFile: string | null;
  readonly tlsRejectUnauthorized: boolean;
  readonly maxConnections: number | null;
  /** Name sent in EHLO; null lets the adapter choose. */
  readonly name: string | null;
}

const PARAMS = new Set(['starttls', 'tlsCa', 'tlsRejectUnauthorized', 'maxConnections', 'name']);

/** CR, LF, NUL and the other C0/C1 controls and DEL: never allowed in anything that reaches a header or command. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Parses an SMTP relay URL; returns the relay or the problems (each names the variable as `what`). */
export function parseSmtpUrl(raw: string, what = 'TOCSIN_SMTP_URL'): { relay: SmtpRelay | null; problems: string[] } {
  const problems: string[] = [];
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { relay: null, problems: [`${what} is not a valid URL (expected smtp://host:587 or smtps://user:pass@host:465)`] };
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') {
    return { relay: null, problems: [`${what} must start with smtp:// or smtps:// (got ${u.protocol}//)`] };
  }
  const secure = u.protocol === 'smtps:';
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') problems.push(`${what} has no host`);
  const port = u.port === '' ? (secure ? 465 : 587) : Number(u.port);
  if (u.pathname !== '' && u.pathname !== '/') problems.push(`${what} must not have a path (got ${JSON.stringify(u.pathname)})`);
  for (const key of u.searchParams.keys()) {
    if (!PARAMS.has(key)) problems.push(`${what} has an unknown parameter ${JSON.stringify(key)} (known: ${[...PARAMS].join(', ')})`);
  }
  const st = u.searchParams.get('starttls') ?? 'opportunistic';
  let startTls: StartTlsPolicy = 'opportunistic';
  if (st === 'required' || st === 'opportunistic' || st === 'never') startTls = st;
  else problems.push(`${what}: starttls must be required, opportunistic or never (got ${JSON.stringify(st)})`);
  if (secure && st === 'never') problems.push(`${what}: smtps:// is TLS from the start; starttls=never contradicts it`);
  const rej = u.searchParams.get('tlsRejectUnauthorized') ?? 'true';
  if (rej !== 'true' && rej !== 'false') problems.push(`${what}: tlsRejectUnauthorized must be true or false`);
  const tlsCaFile = u.searchParams.get('tlsCa');
  if (tlsCaFile !== null && !tlsCaFile.startsWith('/')) problems.push(`${what}: tlsCa must be an absolute path`);
  const mc = u.searchParams.get('maxConnections');
  let maxConnections: number | null = null;
  if (mc !== null) {
    if (/^\d+$/.test(mc) && Number(mc) >= 1 && Number(mc) <= 100) maxConnections = Number(mc);
    else problems.push(`${what}: maxConnections must be a whole number 1..100`);
  }
  const name = u.searchParams.get('name');
  if (name !== null && !/^[A-Za-z0-9.-]{1,253}$/.test(name)) problems.push(`${what}: name must be a host name`);
  const user = u.username === '' ? null : decodeURIComponent(u.username);
  const pass = u.password === '' ? null : decodeURIComponent(u.password);
  if ((user !== null && CONTROL_CHARS.test(user)) || (pass !== null && CONTROL_CHARS.test(pass))) {
    problems.push(`${what}: user and password must not contain control characters`);
  }
  if (problems.length > 0) return { relay: null, problems };
  return {
    relay: { secure, host, port, user, pass, startTls, tlsCaFile, tlsRejectUnauthorized: rej !== 'false', maxConnections, name },
    problems,
  };
}

/** The URL without its password, for messages and logs. */
export function redactSmtpUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * A mailbox address we are willing to put in an envelope or a header: one `@`, no spaces, no controls, none of
 * the characters that end an address in a header (`<>()[],;:"\`). Deliberately stricter than RFC 5321 (no quoted
 * local parts): every address we send to or from comes from a registry we control.
 */
export function isMailAddress(s: string): boolean {
  if (s.length > 254 || CONTROL_CHARS.test(s)) return false;
  return /^[^\s@<>()[\],;:"\\]+@[^\s@<>()[\],;:"\\]+\.[^\s@<>()[\],;:"\\]+$/.test(s) || /^[^\s@<>()[\],;:"\\]+@[A-Za-z0-9-]+$/.test(s);
}

/** TOCSIN_MAIL_FROM: `address` or `Display Name <address>`. */
export function parseMailFrom(raw: string, what = 'TOCSIN_MAIL_FROM'): { from: { address: string; name: string | null } | null; problems: string[] } {
  const s = raw.trim();
  if (CONTROL_CHARS.test(raw)) return { from: null, problems: [`${what} must not contain control characters (CR, LF, ...)`] };
  const m = /^(?:"?([^"<>]*?)"?\s*)?<([^<>]+)>$/.exec(s);
  const address = m ? (m[2] ?? '').trim() : s;
  const name = m && m[1] !== undefined && m[1].trim() !== '' ? m[1].trim() : null;
  if (!isMailAddress(address)) return { from: null, problems: [`${what} is not a mail address (expected cert@example.org or "CERT <cert@example.org>")`] };
  return { from: { address, name }, problems: [] };
}

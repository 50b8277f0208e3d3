/**
 * The probe client's TLS side: the one shared client context, and the summary of a peer certificate
 * kept for attribution (never used to decide trust).
 */
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import type { TlsCertSummary } from '../../core/contracts/probe.js';
import { summaryFromSessionDer } from './cert-der.js';

/** Caps on what we keep from a certificate (hostile certificates can carry thousands of SANs); cert-der.ts uses the same. */
const MAX_SANS = 100;
const MAX_CERT_FIELD = 256;

const SAN_RE = /(DNS|IP Address|URI|email|DirName|othername|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
const COLONS_RE = /:/g;
const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

let sharedContext: tls.SecureContext | undefined;

/**
 * One context for all connections: creating one per connection costs more than the handshake. We are
 * reading, not trusting: accept every certificate and old protocol versions/ciphers (Exchange 2007/2010
 * servers may speak only TLS 1.0). The context's client session cache is not used by Node (it never
 * stores client sessions internally), and the session never passes a `session` to tls.connect, so no TLS
 * session is ever resumed across hosts.
 */
export function secureContext(): tls.SecureContext {
  sharedContext ??= tls.createSecureContext({ minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' });
  return sharedContext;
}

/**
 * Options for tls.connect to `ip`. SNI only for a name, never for an IP literal (RFC 6066). No ALPN:
 * like a plain HTTP/1.1 client, so h2-preferring servers answer in HTTP/1.1.
 */
export function tlsConnectOptions(ip: string, port: number, hostname: string | null): tls.ConnectionOptions {
  const opts: tls.ConnectionOptions = { host: ip, port, rejectUnauthorized: false, secureContext: secureContext() };
  if (hostname !== null && isIP(hostname) === 0) opts.servername = hostname;
  return opts;
}

/**
 * Summary of the peer certificate. Fast path (cert-der.ts): the leaf's DER from the session, no copy of
 * the chain; it answers null for anything unusual, and the X509Certificate view decides.
 */
export function summarizeCert(sock: tls.TLSSocket): TlsCertSummary | null {
  try {
    const fast = summaryFromSessionDer(sock.getSession());
    if (fast !== null) return fast;
  } catch {
    // the slow path below decides
  }
  return summarizeCertSlow(sock);
}

/**
 * The X509Certificate view: right for every certificate, ~200 µs when the peer sends a chain (fields
 * are computed on demand; about 3x cheaper than getPeerCertificate(), which also hashes with SHA-1 and
 * SHA-512 and copies the public key). @internal
 */
export function summarizeCertSlow(sock: tls.TLSSocket): TlsCertSummary | null {
  try {
    const x = sock.getPeerX509Certificate();
    if (x === undefined) return null;
    const fp = x.fingerprint256.replace(COLONS_RE, '').toLowerCase();
    return {
      subjectCn: cnOf(x.subject),
      sans: sansOf(x.subjectAltName),
      issuerCn: cnOf(x.issuer),
      validFrom: isoDate(x.validFrom),
      validTo: isoDate(x.validTo),
      sha256: SHA256_HEX_RE.test(fp) ? fp : null,
    };
  } catch {
    return null;
  }
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
  SAN_RE.lastIndex = 0;
  for (let m = SAN_RE.exec(text); m !== null && out.length < MAX_SANS; m = SAN_RE.exec(text)) {
    if ((m[1] === 'DNS' || m[1] === 'IP Address') && m[2] !== undefined) out.push(cap(unquote(m[2])) ?? '');
    if (m[0] === '') break;
  }
  return out;
}

/**
 * A cheap reading of the peer certificate for the probe client's summary (subject CN, DNS/IP SANs,
 * issuer CN, validity, SHA-256), straight from DER.
 *
 * Why: on Node 20 (OpenSSL 3), `getPeerX509Certificate()` duplicates every certificate of the peer's
 * chain (X509_dup re-decodes each public key through OpenSSL 3's decoders): ~200 µs per host whose server
 * sends its issuer along, as real servers do, and 12-15% of a scan's CPU on an all-Exchange estate.
 * `getSession()` hands out the leaf's DER inside the serialised session for ~40 µs, and the fields we keep
 * are a few TLVs away. The session bytes are read here and dropped: nothing is ever resumed.
 *
 * Hostile input: every length is checked against its container, nothing recurses, nothing throws out of
 * `summaryFromSessionDer` (null = use the slow path). Anything this reader would render differently from
 * Node's X509Certificate view (string types other than the plain ones, characters Node escapes or
 * quotes, IPv6 SANs, unusual times, duplicate SAN extensions) returns null too, so the summary is the same
 * whichever path made it.
 */
import { createHash } from 'node:crypto';

export interface CertSummaryFields {
  readonly subjectCn: string | null;
  readonly sans: string[];
  readonly issuerCn: string | null;
  readonly validFrom: string | null;
  readonly validTo: string | null;
  readonly sha256: string | null;
}

/** Same caps as the slow path (tls-context.ts). */
const MAX_SANS = 100;
const MAX_FIELD = 256;

interface Tlv {
  readonly tag: number;
  /** First byte of the TLV (tag). */
  readonly at: number;
  /** Content start and end (exclusive). */
  readonly start: number;
  readonly end: number;
}

/** One DER TLV at `at` inside [at, limit); null when malformed or not inside its container. */
function tlv(b: Buffer, at: number, limit: number): Tlv | null {
  if (at + 2 > limit) return null;
  const tag = b[at] as number;
  if ((tag & 0x1f) === 0x1f) return null; // high-tag-number form: nothing we read uses it
  let len = b[at + 1] as number;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[p++] as number);
  }
  if (p + len > limit) return null;
  return { tag, at, start: p, end: p + len };
}

/** The children of a constructed TLV, at most `max` of them; null when one is malformed. */
function children(b: Buffer, parent: Tlv, max = 64): Tlv[] | null {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end; ) {
    if (out.length >= max) return null;
    const c = tlv(b, p, parent.end);
    if (c === null) return null;
    out.push(c);
    p = c.end;
  }
  return out;
}

const OID_CN = Buffer.from([0x55, 0x04, 0x03]);
const OID_SAN = Buffer.from([0x55, 0x1d, 0x11]);

function isOid(b: Buffer, t: Tlv | undefined, oid: Buffer): boolean {
  return t !== undefined && t.tag === 0x06 && t.end - t.start === oid.length && b.compare(oid, 0, oid.length, t.start, t.end) === 0;
}

/**
 * Names Node prints as they are (no RFC 2253 escaping, no JSON quoting): letters, digits and . * _ - with
 * single inner spaces. Anything else goes the slow path.
 */
const PLAIN_NAME = /^[A-Za-z0-9.*_-]+(?: [A-Za-z0-9.*_-]+)*$/;

/** A directory string: UTF8String, PrintableString or IA5String with a plain value; else undefined. */
function plainString(b: Buffer, t: Tlv): string | undefined {
  if (t.tag !== 0x0c && t.tag !== 0x13 && t.tag !== 0x16) return undefined;
  if (t.end - t.start > MAX_FIELD) return undefined;
  const s = b.toString('latin1', t.start, t.end);
  return PLAIN_NAME.test(s) ? s : undefined;
}

/** The first CN of a Name (SEQUENCE OF SET OF AttributeTypeAndValue); null when none, undefined when unusual. */
function firstCn(b: Buffer, name: Tlv): string | null | undefined {
  if (name.tag !== 0x30) return undefined;
  const rdns = children(b, name);
  if (rdns === null) return undefined;
  for (const rdn of rdns) {
    if (rdn.tag !== 0x31) return undefined;
    const atvs = children(b, rdn, 8);
    if (atvs === null) return undefined;
    for (const atv of atvs) {
      if (atv.tag !== 0x30) return undefined;
      const kv = children(b, atv, 2);
      if (kv === null || kv.length !== 2) return undefined;
      if (isOid(b, kv[0], OID_CN)) return plainString(b, kv[1] as Tlv);
    }
  }
  return null;
}

function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const c = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && c >= 0 && c <= 9 ? a * 10 + c : NaN;
}

/** UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ as ISO text; undefined for anything else. */
function derTime(b: Buffer, t: Tlv): string | undefined {
  const s = b.toString('latin1', t.start, t.end);
  let year: number;
  let rest: string;
  if (t.tag === 0x17 && s.length === 13) {
    const yy = two(s, 0);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
    rest = s.slice(2);
  } else if (t.tag === 0x18 && s.length === 15) {
    year = two(s, 0) * 100 + two(s, 2);
    rest = s.slice(4);
  } else return undefined;
  if (!rest.endsWith('Z')) return undefined;
  const [mo, d, h, mi, se] = [two(rest, 0), two(rest, 2), two(rest, 4), two(rest, 6), two(rest, 8)];
  if (!(year >= 1950 && year <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && se <= 59)) return undefined;
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const date = new Date(ms);
  // 31 February and the like: let the slow path decide what OpenSSL makes of it.
  if (date.getUTCDate() !== d) return undefined;
  return date.toISOString();
}

/** DNS and IPv4 SANs in order; undefined when unusual (IPv6, odd names, malformed). */
function sanList(b: Buffer, ext: Tlv): string[] | undefined {
  // extnValue OCTET STRING → GeneralNames SEQUENCE
  const names = tlv(b, ext.start, ext.end);
  if (names === null || names.tag !== 0x30 || names.end !== ext.end) return undefined;
  const out: string[] = [];
  for (let p = names.start; p < names.end; ) {
    const g = tlv(b, p, names.end);
    if (g === null) return undefined;
    p = g.end;
    if (out.length >= MAX_SANS) continue;
    if (g.tag === 0x82) {
      if (g.end - g.start > MAX_FIELD) return undefined;
      const s = b.toString('latin1', g.start, g.end);
      if (!PLAIN_NAME.test(s) || s.includes(' ')) return undefined;
      out.push(s);
    } else if (g.tag === 0x87) {
      if (g.end - g.start !== 4) return undefined;
      out.push(`${b[g.start]}.${b[g.start + 1]}.${b[g.start + 2]}.${b[g.start + 3]}`);
    } else if (g.tag === 0x81 || g.tag === 0x86 || g.tag === 0x88 || g.tag === 0xa0 || g.tag === 0xa4) {
      // e-mail, URI, registered ID, otherName, directory name: not kept (the slow path skips them too)
    } else return undefined;
  }
  return out;
}

/** The summary from a certificate's DER; null when unusual or malformed (then use the slow path). */
export function summaryFromCertDer(b: Buffer): CertSummaryFields | null {
  try {
    const cert = tlv(b, 0, b.length);
    if (cert === null || cert.tag !== 0x30 || cert.end !== b.length) return null;
    const tbs = tlv(b, cert.start, cert.end);
    if (tbs === null || tbs.tag !== 0x30) return null;
    const f = children(b, tbs, 16);
    if (f === null) return null;
    let i = 0;
    if (f[i]?.tag === 0xa0) i++; // [0] version
    if (f[i]?.tag !== 0x02) return null; // serialNumber
    i++;
    if (f[i]?.tag !== 0x30) return null; // signature algorithm
    i++;
    const issuer = f[i++];
    const validity = f[i++];
    const subject = f[i++];
    const spki = f[i++];
    if (issuer === undefined || validity === undefined || subject === undefined || spki?.tag !== 0x30 || validity.tag !== 0x30) return null;
    const times = children(b, validity, 2);
    if (times === null || times.length !== 2) return null;
    const validFrom = derTime(b, times[0] as Tlv);
    const validTo = derTime(b, times[1] as Tlv);
    const subjectCn = firstCn(b, subject);
    const issuerCn = firstCn(b, issuer);
    if (validFrom === undefined || validTo === undefined || subjectCn === undefined || issuerCn === undefined) return null;
    let sans: string[] = [];
    let sanSeen = false;
    for (; i < f.length; i++) {
      const t = f[i] as Tlv;
      if (t.tag === 0x81 || t.tag === 0x82) continue; // issuer/subject unique IDs
      if (t.tag !== 0xa3) return null;
      const seq = tlv(b, t.start, t.end);
      if (seq === null || seq.tag !== 0x30) return null;
      const exts = children(b, seq, 64);
      if (exts === null) return null;
      for (const e of exts) {
        const parts = e.tag === 0x30 ? children(b, e, 3) : null;
        if (parts === null || parts.length < 2) return null;
        if (!isOid(b, parts[0], OID_SAN)) continue;
        if (sanSeen) return null;
        sanSeen = true;
        const value = parts[parts.length - 1] as Tlv;
        if (value.tag !== 0x04) return null;
        const list = sanList(b, value);
        if (list === undefined) return null;
        sans = list;
      }
    }
    return {
      subjectCn,
      sans,
      issuerCn,
      validFrom,
      validTo,
      sha256: createHash('sha256').update(b).digest('hex'),
    };
  } catch {
    return null;
  }
}

/**
 * The peer certificate's DER from a serialised TLS session (OpenSSL's SSL_SESSION_ASN1: a SEQUENCE whose
 * field [3] EXPLICIT is the peer's leaf certificate); null when absent or malformed.
 */
export function leafDerFromSession(s: Buffer): Buffer | null {
  const seq = tlv(s, 0, s.length);
  if (seq === null || seq.tag !== 0x30) return null;
  for (let p = seq.start, n = 0; p < seq.end && n < 32; n++) {
    const t = tlv(s, p, seq.end);
    if (t === null) return null;
    if (t.tag === 0xa3) {
      const c = tlv(s, t.start, t.end);
      return c === null || c.tag !== 0x30 || c.end !== t.end ? null : s.subarray(c.at, c.end);
    }
    p = t.end;
  }
  return null;
}

/** The summary from a serialised session; null = use the slow path. */
export function summaryFromSessionDer(session: Buffer | undefined): CertSummaryFields | null {
  if (session === undefined) return null;
  try {
    const der = leafDerFromSession(session);
    return der === null ? null : summaryFromCertDer(der);
  } catch {
    return null;
  }
}

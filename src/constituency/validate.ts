/**
 * Validation and normalisation of registry values. Pure. Each function returns the normalised value, or a
 * string saying why the input is not one (so a parser can set the value aside with that reason).
 */
import { domainToASCII } from 'node:url';
import { formatIp, parseCidr, parseIp, type IpValue } from '../core/ip.js';
import { CONTACT_ROLES, type ContactRole, type NetworkSpec } from './types.js';

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(error: string): Checked<T> => ({ ok: false, error });

/** Short, quoted echo of a value for an error message (the caller sanitises the whole message for display). */
export function quote(s: string, max = 60): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max - 1)}…` : s);
}

// Characters that have no place in a name: controls, bidi overrides and zero-width characters (they change
// what a reader sees; see core/text.ts).
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;

/** An organisation name: trimmed, inner white space collapsed, 1-200 characters, no control or bidi characters. */
export function checkOrgName(raw: string): Checked<string> {
  const name = raw.trim().replace(/[ \t]+/g, ' ');
  if (name === '') return bad('the organisation name is empty');
  if (HIDDEN.test(name)) return bad(`the organisation name ${quote(name)} contains control or invisible characters`);
  if (name.length > 200) return bad('the organisation name is longer than 200 characters');
  return ok(name);
}

/** A free-text attribute (sector, size): trimmed, at most `max` characters, no control characters; '' = null. */
export function checkText(what: string, raw: string, max: number): Checked<string | null> {
  const t = raw.trim();
  if (t === '') return ok(null);
  if (HIDDEN.test(t)) return bad(`${what} ${quote(t)} contains control or invisible characters`);
  if (t.length > max) return bad(`${what} is longer than ${max} characters`);
  return ok(t);
}

/** ISO 3166-1 alpha-2 code, upper-case; '' = null. */
export function checkCountry(raw: string): Checked<string | null> {
  const t = raw.trim();
  if (t === '') return ok(null);
  if (!/^[A-Za-z]{2}$/.test(t)) return bad(`country ${quote(t)} is not a two-letter ISO 3166 code`);
  return ok(t.toUpperCase());
}

/**
 * A domain (suffix) as matched against host names: lower-case, IDN labels in punycode (node:url domainToASCII),
 * no trailing dot; a leading "*." is dropped (a domain entry covers its sub-domains anyway). At least two labels.
 */
export function checkDomain(raw: string): Checked<string> {
  let t = raw.trim();
  if (t.startsWith('*.')) t = t.slice(2);
  if (t.endsWith('.')) t = t.slice(0, -1);
  if (t === '') return bad('the domain is empty');
  const ascii = domainToASCII(t.toLowerCase());
  if (ascii === '') return bad(`${quote(t)} is not a valid domain name`);
  const labels = ascii.split('.');
  if (labels.length < 2) return bad(`${quote(t)} is not a domain name (one label; give e.g. example.org)`);
  if (ascii.length > 253) return bad(`${quote(t)} is longer than 253 characters`);
  for (const l of labels) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l) && !/^[a-z0-9_]$/.test(l)) {
      return bad(`${quote(t)} has an invalid label ${quote(l)}`);
    }
  }
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return bad(`${quote(t)} looks like an address, not a domain name`);
  return ok(ascii);
}

/** An e-mail address: one '@', a local part of printable ASCII without spaces, a valid domain (normalised). */
export function checkEmail(raw: string): Checked<string> {
  let t = raw.trim();
  if (t.toLowerCase().startsWith('mailto:')) t = t.slice(7);
  if (t.startsWith('<') && t.endsWith('>')) t = t.slice(1, -1);
  const at = t.lastIndexOf('@');
  if (at <= 0 || at === t.length - 1) return bad(`${quote(t)} is not an e-mail address`);
  const local = t.slice(0, at);
  if (local.length > 64 || !/^[!#-'*+\-/-9=?A-Z^-~.]+$/.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    return bad(`${quote(t)} is not an e-mail address (local part)`);
  }
  const domain = checkDomain(t.slice(at + 1));
  if (!domain.ok) return bad(`${quote(t)} is not an e-mail address (${domain.error})`);
  const email = `${local}@${domain.value}`;
  if (email.length > 254) return bad(`${quote(t)} is longer than 254 characters`);
  return ok(email);
}

/** "AS64496", "as64496", "64496" or asdot "1.10" → number (1 .. 2^32-1; 0 and AS_TRANS 23456 are refused). */
export function checkAsn(raw: string): Checked<number> {
  const t = raw.trim();
  const m = /^(?:AS)?(\d{1,10})(?:\.(\d{1,5}))?$/i.exec(t);
  if (m === null) return bad(`${quote(t)} is not an AS number (give AS64496 or 64496)`);
  const n = m[2] === undefined ? Number(m[1]) : Number(m[1]) * 65536 + Number(m[2]);
  if (m[2] !== undefined && (Number(m[1]) > 65535 || Number(m[2]) > 65535)) return bad(`${quote(t)} is not a valid asdot AS number`);
  if (n < 1 || n > 0xffffffff) return bad(`${quote(t)} is outside the AS number range 1-4294967295`);
  if (n === 23456) return bad(`${quote(t)} is AS_TRANS (23456), a placeholder, not a network's AS`);
  return ok(n);
}

export function formatAsn(n: number): string {
  return `AS${n}`;
}

/** BCP 47 language tag, e.g. "de" or "en-GB" → "en-gb"; '' = null. */
export function checkLanguage(raw: string): Checked<string | null> {
  const t = raw.trim();
  if (t === '') return ok(null);
  if (!/^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$/.test(t)) return bad(`language ${quote(t)} is not a language tag (e.g. de, en, fr-be)`);
  return ok(t.toLowerCase());
}

/** OpenPGP fingerprint: 40 (v4) or 64 (v5/v6) hex digits, spaces and a 0x prefix allowed; '' = null. */
export function checkPgp(raw: string): Checked<string | null> {
  const t = raw.replace(/\s+/g, '').replace(/^0x/i, '');
  if (t === '') return ok(null);
  if (!/^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/.test(t)) return bad(`OpenPGP fingerprint ${quote(raw.trim())} must be 40 or 64 hex digits`);
  return ok(t.toUpperCase());
}

export function checkRole(raw: string): Checked<ContactRole> {
  const t = raw.trim().toLowerCase();
  const role = CONTACT_ROLES.find((r) => r === t);
  return role === undefined ? bad(`contact role ${quote(raw.trim())} must be one of ${CONTACT_ROLES.join(', ')}`) : ok(role);
}

/**
 * A network: a CIDR (host bits are masked off: 192.0.2.5/24 is 192.0.2.0/24), a bare address (a /32 or /128),
 * or a range "first - last" of one family (RPSL inetnum style), turned into the minimal list of CIDRs.
 */
export function checkNetwork(raw: string): Checked<NetworkSpec> {
  const text = raw.trim();
  if (text === '') return bad('the network is empty');
  const dash = /^(\S+)\s*-\s*(\S+)$/.exec(text);
  if (dash !== null && !text.includes('/')) {
    const a = parseIp(dash[1] ?? '');
    const b = parseIp(dash[2] ?? '');
    if (a === null || b === null) return bad(`${quote(text)} is not an address range (give "first - last")`);
    if (a.family !== b.family) return bad(`${quote(text)} mixes IPv4 and IPv6`);
    const lo = big(a);
    const hi = big(b);
    if (lo > hi) return bad(`${quote(text)}: the first address is after the last`);
    return ok({ text, cidrs: rangeToCidrs(a.family, lo, hi) });
  }
  if (!text.includes('/')) {
    const ip = parseIp(text);
    if (ip === null) return bad(`${quote(text)} is not a CIDR, an address or a range`);
    return ok({ text, cidrs: [`${formatIp(ip)}/${ip.family === 4 ? 32 : 128}`] });
  }
  const c = parseCidr(text);
  if (typeof c === 'string') return bad(`${quote(text)} is not a CIDR (${c})`);
  const first: IpValue = c.family === 4 ? { family: 4, value: c.first } : { family: 6, value: c.first };
  return ok({ text, cidrs: [`${formatIp(first)}/${c.prefix}`] });
}

function big(ip: IpValue): bigint {
  return ip.family === 4 ? BigInt(ip.value) : ip.value;
}

/** The minimal list of CIDRs covering exactly lo..hi (inclusive), in ascending order. */
export function rangeToCidrs(family: 4 | 6, lo: bigint, hi: bigint): string[] {
  const bits = family === 4 ? 32 : 128;
  const out: string[] = [];
  let cur = lo;
  while (cur <= hi) {
    // the largest block aligned at cur that does not pass hi
    let size = 0;
    while (size < bits && (cur & ((1n << BigInt(size + 1)) - 1n)) === 0n && cur + (1n << BigInt(size + 1)) - 1n <= hi) size++;
    const ip: IpValue = family === 4 ? { family: 4, value: Number(cur) } : { family: 6, value: cur };
    out.push(`${formatIp(ip)}/${bits - size}`);
    cur += 1n << BigInt(size);
  }
  return out;
}

/** List cells: values separated by white space, ';' or ','; empty pieces dropped. */
export function splitList(cell: string): string[] {
  return cell.split(/[\s;,]+/).filter((x) => x !== '');
}

/**
 * Network list cells: like splitList, except that a range "a - b" (spaces around the dash) stays one value.
 */
export function splitNetworks(cell: string): string[] {
  return cell.replace(/\s*-\s*/g, '-').split(/[\s;,]+/).filter((x) => x !== '').map((x) => x.replace(/^(.+?[.:][^-]*)-(.+)$/, '$1 - $2'));
}

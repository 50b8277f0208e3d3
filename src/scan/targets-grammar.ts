/**
 * The grammar of one target specification: what `tocsin scan TARGET...` accepts, validated and written in
 * canonical form before anything is sent. Pure.
 *
 *   192.0.2.10                 IPv4 address (strict dotted quad: no leading zeros, no shorthand)
 *   2001:db8::10  [2001:db8::10]   IPv6 address
 *   192.0.2.0/24  2001:db8::/120   CIDR (host bits refused; IPv6 prefixes shorter than /112 refused)
 *   192.0.2.10-192.0.2.50      inclusive address range (same family)
 *   mail.example.org           host name (RFC 1123); resolved before the scan (targets-resolve.ts)
 *   mail.example.org=192.0.2.10   host name pinned to an address (no DNS; also what resolution produces)
 */
import { TocsinError } from '../core/errors.js';
import { V4_MAPPED_BASE, canonicalIp, formatIp, formatIPv4, formatIPv6, ipv4Problem, parseCidr, parseIp, type IpValue } from '../core/ip.js';
import { sanitiseText } from '../core/text.js';

/** Shortest IPv6 prefix we expand (/112 = 65,536 addresses); shorter ones are refused as absurd. */
export const MIN_V6_PREFIX = 112;

export type TargetKind = 'ipv4' | 'ipv6' | 'cidr4' | 'cidr6' | 'range4' | 'range6' | 'hostname' | 'pinned';

/** A validated target. `text` is canonical (lower case, RFC 5952 IPv6, masked CIDR) and round-trips. */
export interface TargetSpec {
  readonly text: string;
  readonly kind: TargetKind;
  /** Where it was given: "argument 2", "targets.txt:17", "stdin:3". */
  readonly where: string;
}

/** A token classified and canonicalised, or why it is not a target. */
export type ParsedTarget = { readonly kind: TargetKind; readonly text: string } | { readonly problem: string };

/** Quote hostile input for an error message: unsafe characters replaced, length capped. */
export function quote(s: string): string {
  return `'${sanitiseText(s, { max: 80 })}'`;
}

/** Why `s` is not an RFC 1123 host name, or null. */
export function hostnameProblem(s: string): string | null {
  const h = s.endsWith('.') ? s.slice(0, -1) : s;
  if (h === '') return 'is empty';
  if (h.length > 253) return 'is longer than 253 characters';
  const labels = h.split('.');
  for (const l of labels) {
    if (l === '') return 'has an empty label (..)';
    if (l.length > 63) return `has a label longer than 63 characters`;
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(l)) {
      return `has an invalid label ${quote(l)} (letters, digits and inner hyphens only)`;
    }
  }
  if (/^\d+$/.test(labels[labels.length - 1] as string)) return 'ends in a numeric label (not a name, not an address)';
  return null;
}

/**
 * Strict parse in the canonical family: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 host the
 * kernel connects to, so it is scanned, excluded, deduplicated and rate-limited as that IPv4 address.
 */
function parseHost(s: string): IpValue | null {
  const ip = parseIp(s);
  return ip === null ? null : canonicalIp(ip);
}

/** Canonical text of an address (IPv4-mapped written as IPv4), or null. */
export function normalizeHost(s: string): string | null {
  const ip = parseHost(s);
  return ip === null ? null : formatIp(ip);
}

/** Classifies and validates one token (already trimmed, non-empty). */
export function parseTarget(t: string): ParsedTarget {
  const q = quote(t);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t)) return { problem: `${q} is a URL; give the host name or address only (ports go in --ports)` };
  if (/\s/.test(t)) return { problem: `${q} contains white space (one target per line)` };
  const eq = t.indexOf('=');
  if (eq >= 0) {
    const name = t.slice(0, eq);
    const addr = t.slice(eq + 1);
    const hp = hostnameProblem(name);
    if (hp !== null || parseIp(name) !== null) return { problem: `${q}: ${quote(name)} is not a host name${hp !== null ? ` (${hp})` : ''}` };
    const ip = normalizeHost(addr);
    if (ip === null) return { problem: `${q}: ${quote(addr)} is not an IPv4 or IPv6 address` };
    return { kind: 'pinned', text: `${name.toLowerCase().replace(/\.$/, '')}=${ip}` };
  }
  if (t.includes('/')) return parseCidrTarget(t, q);
  const dash = t.indexOf('-');
  if (dash > 0 && (parseIp(t.slice(0, dash)) !== null || /^[\d.]+$/.test(t.slice(0, dash)))) {
    const a = parseHost(t.slice(0, dash));
    const b = parseHost(t.slice(dash + 1));
    if (a === null || b === null) return { problem: `${q} is not an address range (expected FIRST-LAST, two addresses of one family)` };
    if (a.family !== b.family) return { problem: `${q} mixes IPv4 and IPv6` };
    if (a.value > b.value) return { problem: `${q}: the first address is after the last` };
    if (a.family === 6 && (b.value as bigint) - (a.value as bigint) >= 2n ** BigInt(128 - MIN_V6_PREFIX)) {
      return { problem: `${q}: IPv6 range larger than a /${MIN_V6_PREFIX}` };
    }
    return { kind: a.family === 4 ? 'range4' : 'range6', text: `${formatIp(a)}-${formatIp(b)}` };
  }
  if (t.includes(':')) {
    if (/^[^:[\]]+:\d+$/.test(t)) return { problem: `${q} looks like address:port; give ports with --ports` };
    const raw = parseIp(t);
    if (raw === null || raw.family !== 6) return { problem: `${q} is not an IPv6 address` };
    const ip = canonicalIp(raw);
    return ip.family === 4 ? { kind: 'ipv4', text: formatIPv4(ip.value) } : { kind: 'ipv6', text: formatIPv6(ip.value) };
  }
  if (/^[\d.]+$/.test(t)) {
    const p = ipv4Problem(t);
    if (p !== null) return { problem: `${q} is not an IPv4 address (${p})` };
    return { kind: 'ipv4', text: normalizeHost(t) ?? t };
  }
  const hp = hostnameProblem(t);
  if (hp !== null) return { problem: `${q} is not an address, CIDR or host name (the name ${hp})` };
  return { kind: 'hostname', text: t.toLowerCase().replace(/\.$/, '') };
}

function parseCidrTarget(t: string, q: string): ParsedTarget {
  const parsed = parseCidr(t);
  if (typeof parsed === 'string') return { problem: `${q} is not a CIDR: ${parsed}` };
  let c = parsed;
  const given = parseIp(t.slice(0, t.indexOf('/')));
  if (given !== null && given.value !== c.first) {
    // nmap widens 127.1.0.1/8 to 127.0.0.0/8 without a word: 16.7M addresses where one was probably meant.
    // For a CERT that is a legal risk, so the user must say which one they mean.
    const net = `${c.family === 4 ? formatIPv4(c.first) : formatIPv6(c.first)}/${c.prefix}`;
    const size = c.family === 4 ? (c.last - c.first + 1).toLocaleString('en-US') : `2^${128 - c.prefix}`;
    return {
      problem: `${q} has host bits set: it lies in the network ${net} (${size} addresses); give ${net} to scan that network, or ${formatIp(given)} for the one address`,
    };
  }
  if (c.family === 6 && c.first >> 32n === 0xffffn && c.prefix >= 96) {
    // ::ffff:a.b.c.d/N is the IPv4 network a.b.c.d/(N-96): the same hosts, written the IPv4 way.
    c = { family: 4, prefix: c.prefix - 96, first: Number(c.first - V4_MAPPED_BASE), last: Number(c.last - V4_MAPPED_BASE) };
  }
  if (c.family === 6 && c.prefix < MIN_V6_PREFIX) {
    return { problem: `${q}: IPv6 prefix /${c.prefix} is too large to scan (2^${128 - c.prefix} addresses); use /${MIN_V6_PREFIX} or longer` };
  }
  const base = c.family === 4 ? formatIPv4(c.first) : formatIPv6(c.first);
  return { kind: c.family === 4 ? 'cidr4' : 'cidr6', text: `${base}/${c.prefix}` };
}

/** Validates one target; throws TOCSIN_TARGET_INVALID ("targets.txt:17: '10.0.0.300' is not an IPv4 address ..."). */
export function parseTargetSpec(text: string, where: string): TargetSpec {
  const p = parseTarget(text.trim());
  if ('problem' in p) throw new TocsinError('TOCSIN_TARGET_INVALID', `${where}: ${p.problem}`);
  return { text: p.text, kind: p.kind, where };
}

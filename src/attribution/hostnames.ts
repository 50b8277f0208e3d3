/**
 * Hostnames and domain suffixes: one normal form for both sides of a match, and the suffix walk.
 *
 * A match is on label boundaries only: `example.org` covers `example.org` and `mail.example.org`, never
 * `evil-example.org` (a plain `endsWith` would). Hostnames come from hosts we scanned and from feeds, so they
 * are hostile text: anything that is not a plausible DNS name is dropped here, before it can reach a map key or
 * an explanation.
 */
import { domainToASCII } from 'node:url';

/**
 * Whether `s` (lower case) is LDH labels (underscore allowed: it occurs in real SANs and PTRs), each 1-63
 * characters, not starting or ending with a hyphen. A loop over char codes: this runs for every hostname of
 * every observation (a regex per label cost about 2 µs per name in bench/attribution.ts).
 */
function isLdhName(s: string): boolean {
  let labelLen = 0;
  let prev = 46;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (labelLen === 0 || prev === 45) return false;
      labelLen = 0;
    } else if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45) {
      if (c === 45 && labelLen === 0) return false;
      if (++labelLen > 63) return false;
    } else return false;
    prev = c;
  }
  return labelLen > 0 && prev !== 45;
}

/**
 * The normal form of a DNS name: lower case, no trailing dot, internationalised labels as A-labels
 * (`bücher.example` → `xn--bcher-kva.example`). Null when it is not a name (empty labels, spaces, controls,
 * a bare address, over length).
 */
export function normaliseHostname(raw: string): string | null {
  // Most names arrive in normal form already: checked as they are, they need no lower-casing (a copy).
  let s = raw;
  if (!isLdhName(s) && !isLdhName((s = raw.toLowerCase()))) {
    // The slow path: surrounding space, a trailing dot, non-ASCII (IDN) labels.
    s = s.trim();
    if (s.endsWith('.')) s = s.slice(0, -1);
    if (/[^\x21-\x7e]/.test(s)) s = domainToASCII(s);
    if (!isLdhName(s)) return null;
  }
  if (s.length > 253) return null;
  // An all-numeric last label is an IPv4 address or garbage, never a registrable name.
  let numeric = true;
  for (let i = s.lastIndexOf('.') + 1; i < s.length && numeric; i++) {
    const c = s.charCodeAt(i);
    numeric = c >= 48 && c <= 57;
  }
  return numeric ? null : s;
}

/**
 * The name a certificate name covers for suffix matching: `*.mail.example.org` covers names under
 * `mail.example.org`, so every registry suffix of `mail.example.org` applies to it (a suffix below it, like
 * `x.mail.example.org`, does not: the wildcard proves nothing about one name). A wildcard over a single label
 * (`*.org`) or a partial wildcard (`f*.example.org`) is not honoured, as browsers do not honour it.
 */
export function certificateName(raw: string): { name: string; wildcard: boolean } | null {
  const s = raw.trim();
  if (s.startsWith('*.')) {
    const rest = normaliseHostname(s.slice(2));
    if (rest === null || !rest.includes('.')) return null;
    return { name: rest, wildcard: true };
  }
  const name = normaliseHostname(s);
  return name === null ? null : { name, wildcard: false };
}

/** `certificateName(raw)?.name`, without the object (the engine's per-name path). */
export function certificateHostname(raw: string): string | null {
  // Not a wildcard: the name alone decides (normaliseHostname trims when it must), without the object. When that
  // fails on a name with surrounding space, the full path below decides (a spaced wildcard).
  if (raw.charCodeAt(0) !== 42) {
    const name = normaliseHostname(raw);
    if (name !== null || raw.trim() === raw) return name;
  }
  return certificateName(raw)?.name ?? null;
}

/**
 * The domain-suffix filter: a bitset (2^20 bits, 128 KB, so it stays in cache) with one bit per registry domain,
 * addressed by a hash of the domain read right to left (FNV-1a). Read right to left, one pass over a hostname
 * yields the hash of each of its suffixes, so the suffixes that are surely not registry domains (most of them) are
 * ruled out without cutting a string or probing the map: in bench/attribution.ts the map probe with its substring
 * was the costliest line of a query. About 1% false hits at 10,000 domains; a hit is confirmed in the map.
 */
export const SUFFIX_FILTER_SHIFT = 12;
export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 0x01000193;

export function suffixFilterOf(domains: Iterable<string>): Uint32Array {
  const bits = new Uint32Array(1 << (32 - SUFFIX_FILTER_SHIFT - 5));
  for (const d of domains) {
    let h = FNV_OFFSET;
    for (let i = d.length - 1; i >= 0; i--) h = Math.imul(h ^ d.charCodeAt(i), FNV_PRIME);
    const b = h >>> SUFFIX_FILTER_SHIFT;
    bits[b >>> 5]! |= 1 << (b & 31);
  }
  return bits;
}

/** Number of labels of a normalised name (for "most specific suffix"). */
export function labelCount(name: string): number {
  let n = 1;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) === 46) n++;
  return n;
}

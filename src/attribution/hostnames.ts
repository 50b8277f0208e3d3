/**
 * Hostnames and domain suffixes: one normal form for both sides of a match, and the suffix walk.
 *
 * A match is on label boundaries only: `example.org` covers `example.org` and `mail.example.org`, never
 * `evil-example.org` (a plain `endsWith` would). Hostnames come from hosts we scanned and from feeds, so they
 * are hostile text: anything that is not a plausible DNS name is dropped here, before it can reach a map key or
 * an explanation.
 */
import { domainToASCII } from 'node:url';

/** LDH labels (underscore allowed: it occurs in real SANs and PTRs), 1-63 octets each, 253 in all. */
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * The normal form of a DNS name: lower case, no trailing dot, internationalised labels as A-labels
 * (`bücher.example` → `xn--bcher-kva.example`). Null when it is not a name (empty labels, spaces, controls,
 * a bare address, over length).
 */
export function normaliseHostname(raw: string): string | null {
  let s = raw.trim().toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s === '' || s.length > 253) return null;
  if (/[^\x21-\x7e]/.test(s)) {
    const ascii = domainToASCII(s);
    if (ascii === '') return null;
    s = ascii;
  }
  const labels = s.split('.');
  if (!labels.every((l) => LABEL.test(l))) return null;
  // An all-numeric last label is an IPv4 address or garbage, never a registrable name.
  if (/^\d+$/.test(labels[labels.length - 1]!)) return null;
  return s;
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

/** Number of labels of a normalised name (for "most specific suffix"). */
export function labelCount(name: string): number {
  let n = 1;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) === 46) n++;
  return n;
}

/**
 * Every suffix of `name` on label boundaries, longest first: `a.b.example.org` → itself, `b.example.org`,
 * `example.org`, `org`. The walk the domain map is queried with.
 */
export function* suffixes(name: string): Generator<string> {
  let s = name;
  for (;;) {
    yield s;
    const dot = s.indexOf('.');
    if (dot < 0) return;
    s = s.slice(dot + 1);
  }
}

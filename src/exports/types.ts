/**
 * What an export is built from (issue 10 §6): one campaign or one incident reduced to plain indicators, so the MISP
 * and STIX writers (misp.ts, stix.ts) never see the database. The service (src/services/exports.ts) fills it from
 * the stores; `exportSource` here checks and normalises it (addresses canonical, CVE ids upper-case, each indicator
 * once, in a stable order), so two exports of the same facts are byte-identical.
 *
 * Every string here may come from a scanned host, a feed, an organisation or a forensics run: hostile. The writers
 * put values only into JSON (which escapes them) and STIX patterns (escaped by stix.ts), never into markup.
 */
import { TocsinError } from '../core/errors.js';
import { normalizeIp } from '../core/ip.js';
import { sanitiseText } from '../core/text.js';

/** TLP 2.0 levels (FIRST): what the recipient may do with the export. */
export type Tlp = 'clear' | 'green' | 'amber' | 'amber+strict' | 'red';
export const TLP_LEVELS: readonly Tlp[] = ['clear', 'green', 'amber', 'amber+strict', 'red'];

export interface IpIndicator {
  /** Canonical text form (normalizeIp). */
  readonly ip: string;
  /** CVE ids this address is exposed to (a subset of the source's `cves`). */
  readonly cves: readonly string[];
  /** The organisation it belongs to, if known (hostile text; a comment only). */
  readonly org: string | null;
  readonly compromised: boolean;
}

/** A web-shell (or other dropped file) found on a host: its full path as reported, and its hash when known. */
export interface FileIndicator {
  readonly path: string;
  /** Lower-case hex SHA-256, or null. */
  readonly sha256: string | null;
}

export interface ExportSource {
  readonly kind: 'campaign' | 'incident';
  readonly id: number;
  /** Campaign name or incident title (hostile text). */
  readonly title: string;
  /** When the campaign / incident was created and last changed (pinned: a re-export is identical). */
  readonly created: Date;
  readonly modified: Date;
  readonly tlp: Tlp;
  /** The CERT issuing the export (TOCSIN_CERT_NAME or a default). */
  readonly producer: string;
  readonly ips: readonly IpIndicator[];
  readonly cves: readonly string[];
  readonly files: readonly FileIndicator[];
}

/** What a caller hands in: anything, in any order, with duplicates. */
export interface ExportInput {
  readonly kind: 'campaign' | 'incident';
  readonly id: number;
  readonly title: string;
  readonly created: Date;
  readonly modified?: Date;
  readonly tlp?: Tlp;
  readonly producer?: string;
  readonly ips: readonly { readonly ip: string; readonly cves?: readonly string[]; readonly org?: string | null; readonly compromised?: boolean }[];
  readonly cves?: readonly string[];
  readonly files?: readonly { readonly path: string; readonly sha256?: string | null }[];
}

const CVE_ID = /^CVE-\d{4}-\d{4,7}$/;
const SHA256 = /^[0-9a-f]{64}$/;
export const DEFAULT_PRODUCER = 'Tocsin CERT';

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Checks and normalises an input: invalid addresses and CVE ids are refused (they would make invalid indicators),
 * duplicates merged (an address seen on two ports is one indicator with the union of its CVEs), everything sorted.
 * @throws TocsinError TOCSIN_ARG_INVALID
 */
export function exportSource(input: ExportInput): ExportSource {
  const cveOf = (raw: string): string => {
    const c = raw.trim().toUpperCase();
    if (!CVE_ID.test(c)) throw new TocsinError('TOCSIN_ARG_INVALID', `not a CVE id: ${JSON.stringify(sanitiseText(raw, { max: 40 }))}`);
    return c;
  };
  const ips = new Map<string, { cves: Set<string>; org: string | null; compromised: boolean }>();
  for (const x of input.ips) {
    const ip = normalizeIp(x.ip.trim());
    if (ip === null) throw new TocsinError('TOCSIN_ARG_INVALID', `not an IP address: ${JSON.stringify(sanitiseText(x.ip, { max: 60 }))}`);
    const e = ips.get(ip) ?? { cves: new Set<string>(), org: null, compromised: false };
    for (const c of x.cves ?? []) e.cves.add(cveOf(c));
    e.org ??= x.org ?? null;
    e.compromised ||= x.compromised === true;
    ips.set(ip, e);
  }
  const cves = new Set<string>((input.cves ?? []).map(cveOf));
  for (const e of ips.values()) for (const c of e.cves) cves.add(c);
  const files = new Map<string, string | null>();
  for (const f of input.files ?? []) {
    if (f.path.trim() === '') continue;
    const sha = f.sha256 === undefined || f.sha256 === null ? null : f.sha256.trim().toLowerCase();
    if (sha !== null && !SHA256.test(sha)) throw new TocsinError('TOCSIN_ARG_INVALID', `not a SHA-256: ${JSON.stringify(sanitiseText(f.sha256 ?? '', { max: 70 }))}`);
    // The same path twice is one indicator; a hash given once wins over none.
    files.set(f.path, files.get(f.path) ?? sha);
  }
  const producer = (input.producer ?? '').trim();
  return {
    kind: input.kind,
    id: input.id,
    title: input.title,
    created: input.created,
    modified: input.modified ?? input.created,
    tlp: input.tlp ?? 'amber',
    producer: producer === '' ? DEFAULT_PRODUCER : producer,
    ips: [...ips.entries()].sort(([a], [b]) => byText(a, b)).map(([ip, e]) => ({ ip, cves: [...e.cves].sort(byText), org: e.org, compromised: e.compromised })),
    cves: [...cves].sort(byText),
    files: [...files.entries()].sort(([a], [b]) => byText(a, b)).map(([path, sha256]) => ({ path, sha256 })),
  };
}

/** The last path segment of a Windows or POSIX path (the file name a STIX `file:name` or MISP `filename` wants). */
export function splitPath(path: string): { dir: string | null; name: string } {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  if (cut < 0) return { dir: null, name: path };
  return { dir: cut === 0 ? path.slice(0, 1) : path.slice(0, cut), name: path.slice(cut + 1) };
}

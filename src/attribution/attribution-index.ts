/**
 * The registry snapshot, indexed for many queries: longest-prefix (most specific range) lookup for overrides,
 * networks and the prefix-to-ASN table in each address family, an ASN map and a domain-suffix map.
 * Built once per snapshot (`buildAttributionIndex`); an entry that cannot be used (a malformed network, an unknown
 * organisation) is set aside in `problems` with its reason and the rest is indexed.
 */
import { canonicalIp, formatIp, parseCidr, parseIp, unmapIPv4, type IpValue } from '../core/ip.js';
import { normaliseHostname, suffixFilterOf } from './hostnames.js';
import { buildV4Index, buildV6Index, type Range, type RangeIndex } from './range-index.js';
import type {
  AttributionEvidence,
  ContactChoice,
  ContactRole,
  EntryLayer,
  ManualOverride,
  OrgId,
  PrefixAsn,
  RegistryAsn,
  RegistryDomain,
  RegistryNetwork,
  RegistryOrganisation,
  RegistrySnapshot,
  SnapshotProblem,
} from './types.js';

/** An address range in canonical form: IPv4 (also when written as IPv4-mapped IPv6) or IPv6. */
export type ParsedRange =
  | { readonly family: 4; readonly first: number; readonly last: number; readonly text: string }
  | { readonly family: 6; readonly first: bigint; readonly last: bigint; readonly text: string };

const MAPPED_FIRST = 0xffffn << 32n;
const MAPPED_LAST = MAPPED_FIRST + 0xffffffffn;

function canonicalRange(a: IpValue, b: IpValue, text: string): ParsedRange | string {
  if (a.family !== b.family) return 'mixes an IPv4 and an IPv6 address';
  if (a.family === 4 && b.family === 4) {
    if (a.value > b.value) return 'ends before it starts';
    return { family: 4, first: a.value, last: b.value, text };
  }
  const first = a.value as bigint;
  const last = b.value as bigint;
  if (first > last) return 'ends before it starts';
  // An IPv4-mapped range denotes IPv4 hosts (a dual-stack socket reaches them): index it as IPv4.
  if (first >= MAPPED_FIRST && last <= MAPPED_LAST) {
    const f = unmapIPv4(first) as number;
    const l = unmapIPv4(last) as number;
    return { family: 4, first: f, last: l, text: f === l ? formatIp({ family: 4, value: f }) : describe4(f, l) };
  }
  return { family: 6, first, last, text };
}

/** The CIDR text of an aligned IPv4 range, else `a - b`. */
function describe4(first: number, last: number): string {
  const size = last - first + 1;
  const bits = Math.log2(size);
  if (Number.isInteger(bits) && first % size === 0) return `${formatIp({ family: 4, value: first })}/${32 - bits}`;
  return `${formatIp({ family: 4, value: first })} - ${formatIp({ family: 4, value: last })}`;
}

/**
 * A network, override target or prefix: `addr/len` (host bits are masked off), an inclusive range `a - b` (RPSL
 * inetnum style) or a single address. The text is canonical (RFC 5952, IPv4-mapped as IPv4). A string is the reason
 * it is none of them.
 */
export function parseRange(raw: string): ParsedRange | string {
  const s = raw.trim();
  if (s === '') return 'is empty';
  const dash = s.indexOf(' - ') >= 0 ? s.indexOf(' - ') : s.indexOf('-');
  if (dash > 0 && !s.includes('/')) {
    const sep = s.indexOf(' - ') >= 0 ? 3 : 1;
    const a = parseIp(s.slice(0, dash).trim());
    const b = parseIp(s.slice(dash + sep).trim());
    if (a === null || b === null) return 'is not a CIDR, a range "first - last" or an address';
    return canonicalRange(a, b, `${formatIp(a)} - ${formatIp(b)}`);
  }
  if (s.includes('/')) {
    const c = parseCidr(s);
    if (typeof c === 'string') return c;
    const text = `${formatIp(c.family === 4 ? { family: 4, value: c.first } : { family: 6, value: c.first })}/${c.prefix}`;
    return c.family === 4
      ? canonicalRange({ family: 4, value: c.first }, { family: 4, value: c.last }, text)
      : canonicalRange({ family: 6, value: c.first }, { family: 6, value: c.last }, text);
  }
  const ip = parseIp(s);
  if (ip === null) return 'is not a CIDR, a range "first - last" or an address';
  const c = canonicalIp(ip);
  return canonicalRange(c, c, formatIp(c));
}

/** Addresses in a range, as text (IPv6 sizes exceed 2^53). */
export function rangeSize(r: ParsedRange): string {
  return r.family === 4 ? String(r.last - r.first + 1) : String(r.last - r.first + 1n);
}

/** A range of the table with its record, its size less one (for "more specific") and what the engine answers with. */
export interface RangeEntry<E, X> {
  readonly entry: E;
  readonly range: ParsedRange;
  readonly span: number | bigint;
  /** Built once here, so that a query allocates nothing per matching range. */
  readonly data: X;
}

/** Ranges of one kind in both families, each with its record. */
export interface RangeTable<E, X> {
  readonly v4: { readonly entries: readonly RangeEntry<E, X>[]; readonly index: RangeIndex<number> };
  readonly v6: { readonly entries: readonly RangeEntry<E, X>[]; readonly index: RangeIndex<bigint> };
}

function rangeTable<E, X>(items: readonly (RangeEntry<E, X> & { rank: number })[]): RangeTable<E, X> {
  const v4 = items.filter((x) => x.range.family === 4);
  const v6 = items.filter((x) => x.range.family === 6);
  return {
    v4: {
      entries: v4,
      index: buildV4Index(v4.map((x) => x.range as Range<number>), v4.map((x) => x.rank)),
    },
    v6: {
      entries: v6,
      index: buildV6Index(v6.map((x) => x.range as Range<bigint>), v6.map((x) => x.rank)),
    },
  };
}

export type ManualEvidence = Extract<AttributionEvidence, { rule: 'manual' }>;
export type NetworkEvidence = Extract<AttributionEvidence, { rule: 'network' }>;
export type AsnEvidence = Extract<AttributionEvidence, { rule: 'asn' }>;

export type AsnEntries = readonly { readonly entry: RegistryAsn; readonly feedEvidence: AsnEvidence }[];

export interface IndexedOrganisation {
  readonly org: RegistryOrganisation;
  /** The organisation's own contacts as the engine answers them: security, then abuse, then technical. */
  readonly contacts: readonly ContactChoice[];
}

export interface AttributionIndex {
  readonly organisations: ReadonlyMap<OrgId, IndexedOrganisation>;
  readonly overrides: RangeTable<ManualOverride, ManualEvidence>;
  /** `abuse`: the network's abuse-mailbox as a contact, or null. */
  readonly networks: RangeTable<RegistryNetwork, { readonly evidence: NetworkEvidence; readonly abuse: ContactChoice | null }>;
  readonly prefixAsns: RangeTable<PrefixAsn, null>;
  /**
   * Per prefix-to-ASN row (its position in `prefixAsns`' entries of the family): the row's ASN and that ASN's
   * registry entries (as `asns` has them, empty when none), looked up at build so that a query reads two arrays
   * instead of the row and the map (measured: the costliest line left in a query).
   */
  readonly prefixRoutes: {
    readonly v4: { readonly asn: Float64Array; readonly entries: readonly AsnEntries[] };
    readonly v6: { readonly asn: Float64Array; readonly entries: readonly AsnEntries[] };
  };
  /** Per ASN its entries (with their evidence when the ASN is the feed's own), manual layer first, then by organisation id. */
  readonly asns: ReadonlyMap<number, readonly { readonly entry: RegistryAsn; readonly feedEvidence: AsnEvidence }[]>;
  /** Per normalised domain suffix its entries, manual layer first, then by organisation id. */
  readonly domains: ReadonlyMap<string, readonly (RegistryDomain & { readonly normalised: string })[]>;
  /** A bitset over the keys of `domains` that rules most non-domains out before the map is probed (hostnames.ts). */
  readonly domainFilter: Uint32Array;
  readonly problems: readonly SnapshotProblem[];
  /** Build time in ms and counts, for the benchmark and `tocsin whois`'s footer. */
  readonly stats: { readonly buildMs: number; readonly segmentsV4: number; readonly segmentsV6: number };
}

const layerOf = (e: { readonly layer?: EntryLayer }): EntryLayer => e.layer ?? 'imported';

/** Manual before imported, then the lower organisation id (so a tie is broken the same way on every run). */
function preferOrder(a: { layer?: EntryLayer; orgId: OrgId }, b: { layer?: EntryLayer; orgId: OrgId }): number {
  const la = layerOf(a) === 'manual' ? 0 : 1;
  const lb = layerOf(b) === 'manual' ? 0 : 1;
  return la - lb || a.orgId - b.orgId;
}

const ROLE_ORDER: Record<ContactRole, number> = { security: 0, abuse: 1, technical: 2 };

function orgContacts(o: RegistryOrganisation): readonly ContactChoice[] {
  return Object.freeze(
    (o.contacts ?? [])
      .filter((c) => typeof c.email === 'string' && c.email !== '')
      .sort((x, y) => (ROLE_ORDER[x.role] ?? 3) - (ROLE_ORDER[y.role] ?? 3))
      .map((c): ContactChoice => Object.freeze({
        source: 'organisation', email: c.email, role: c.role, language: c.language ?? null,
        openpgpFingerprint: c.openpgpFingerprint ?? null, network: null, networkOrgId: null,
      })),
  );
}

const isAsn = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

export function buildAttributionIndex(snapshot: RegistrySnapshot): AttributionIndex {
  const started = performance.now();
  const problems: SnapshotProblem[] = [];
  const organisations = new Map<OrgId, IndexedOrganisation>();
  snapshot.organisations.forEach((o, i) => {
    if (!Number.isSafeInteger(o.id)) problems.push({ kind: 'organisation', index: i, value: String(o.id), error: 'the id is not an integer' });
    else if (organisations.has(o.id)) problems.push({ kind: 'organisation', index: i, value: String(o.id), error: 'the id appears twice' });
    else organisations.set(o.id, { org: o, contacts: orgContacts(o) });
  });
  const unknownOrg = (orgId: OrgId): string | null => (organisations.has(orgId) ? null : `organisation ${orgId} is not in the snapshot`);

  /** Ranges of one kind; `owner` is null for entries that name no organisation (prefix-to-ASN rows). */
  const ranged = <E extends object, X>(
    kind: SnapshotProblem['kind'],
    list: readonly E[],
    text: (e: E) => string,
    owner: (e: E) => { orgId: OrgId; layer?: EntryLayer } | null,
    data: (e: E, r: ParsedRange) => X,
    check: (e: E) => string | null = () => null,
  ): RangeTable<E, X> => {
    // Rank decides between ranges of equal size: manual layer first, then organisation id, then input order.
    const order = [...list.keys()].sort((a, b) => {
      const oa = owner(list[a]!);
      const ob = owner(list[b]!);
      return (oa === null || ob === null ? 0 : preferOrder(oa, ob)) || a - b;
    });
    const rank = new Array<number>(list.length);
    order.forEach((pos, r) => (rank[pos] = r));
    const items: (RangeEntry<E, X> & { rank: number })[] = [];
    list.forEach((entry, i) => {
      const value = text(entry);
      const range = typeof value === 'string' ? parseRange(value) : 'is not text';
      const o = owner(entry);
      const otherProblem = o === null ? check(entry) : unknownOrg(o.orgId);
      if (typeof range === 'string') problems.push({ kind, index: i, value: String(value), error: `${kind} ${range}` });
      else if (otherProblem !== null) problems.push({ kind, index: i, value, error: otherProblem });
      else {
        const span = range.family === 4 ? range.last - range.first : range.last - range.first;
        items.push({ entry, range, span, data: data(entry, range), rank: rank[i]! });
      }
    });
    return rangeTable(items);
  };

  const overrides = ranged('override', snapshot.overrides, (o) => o.target, (o) => ({ orgId: o.orgId, layer: 'manual' }), (o, r): ManualEvidence =>
    Object.freeze({ rule: 'manual', target: r.text, overrideId: o.id ?? null, note: o.note ?? null }),
  );
  const networks = ranged('network', snapshot.networks, (n) => n.network, (n) => n, (n, r) =>
    Object.freeze({
      evidence: Object.freeze({
        rule: 'network', network: r.text, size: rangeSize(r), networkId: n.id ?? null, layer: n.layer ?? 'imported', source: n.source ?? null,
      } satisfies NetworkEvidence),
      abuse: typeof n.abuseMailbox === 'string' && n.abuseMailbox !== ''
        ? Object.freeze({
          source: 'network-abuse-mailbox', email: n.abuseMailbox, role: 'abuse', language: null, openpgpFingerprint: null,
          network: r.text, networkOrgId: n.orgId,
        } satisfies ContactChoice)
        : null,
    }),
  );
  const prefixAsns = ranged('prefix-asn', snapshot.prefixAsns ?? [], (p) => p.prefix, () => null, () => null, (p) =>
    isAsn(p.asn) ? null : `the ASN ${String(p.asn)} is not a number 0-4294967295`,
  );

  const asns = new Map<number, { entry: RegistryAsn; feedEvidence: AsnEvidence }[]>();
  snapshot.asns.forEach((a, i) => {
    const orgProblem = unknownOrg(a.orgId);
    if (!isAsn(a.asn)) problems.push({ kind: 'asn', index: i, value: String(a.asn), error: 'the ASN is not a number 0-4294967295' });
    else if (orgProblem !== null) problems.push({ kind: 'asn', index: i, value: String(a.asn), error: orgProblem });
    else {
      const feedEvidence: AsnEvidence = Object.freeze({ rule: 'asn', asn: a.asn, via: 'feed', prefix: null, asnId: a.id ?? null, layer: a.layer ?? 'imported' });
      asns.set(a.asn, [...(asns.get(a.asn) ?? []), { entry: a, feedEvidence }]);
    }
  });
  for (const list of asns.values()) list.sort((x, y) => preferOrder(x.entry, y.entry));
  const NO_ASNS: AsnEntries = Object.freeze([]);
  const routesOf = (rows: readonly RangeEntry<PrefixAsn, null>[]): { asn: Float64Array; entries: AsnEntries[] } => ({
    asn: Float64Array.from(rows, (r) => r.entry.asn),
    entries: rows.map((r) => asns.get(r.entry.asn) ?? NO_ASNS),
  });

  const domains = new Map<string, (RegistryDomain & { normalised: string })[]>();
  snapshot.domains.forEach((d, i) => {
    const normalised = typeof d.domain === 'string' ? normaliseHostname(d.domain) : null;
    const orgProblem = unknownOrg(d.orgId);
    if (normalised === null) problems.push({ kind: 'domain', index: i, value: String(d.domain), error: 'the domain is not a DNS name' });
    else if (!normalised.includes('.')) problems.push({ kind: 'domain', index: i, value: d.domain, error: 'a top-level domain alone would claim every name under it' });
    else if (orgProblem !== null) problems.push({ kind: 'domain', index: i, value: d.domain, error: orgProblem });
    else domains.set(normalised, [...(domains.get(normalised) ?? []), { ...d, normalised }]);
  });
  for (const list of domains.values()) list.sort(preferOrder);

  return {
    organisations,
    overrides,
    networks,
    prefixAsns,
    prefixRoutes: { v4: routesOf(prefixAsns.v4.entries), v6: routesOf(prefixAsns.v6.entries) },
    asns,
    domains,
    domainFilter: suffixFilterOf(domains.keys()),
    problems,
    stats: {
      buildMs: performance.now() - started,
      segmentsV4: networks.v4.index.segments,
      segmentsV6: networks.v6.index.segments,
    },
  };
}

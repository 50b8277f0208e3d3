/**
 * Attribution of one exposure: manual override → most specific network → ASN (the exposure's own, else the
 * prefix-to-ASN table's) → domain (feed hostname, the Host/SNI our scan used, certificate SANs and CN, PTR) →
 * unattributed. Every matching record is a candidate; the best one wins and every other is listed with why it
 * lost, so an analyst can see and correct the decision. Pure: the index is built once (attribution-index.ts).
 *
 * Why it is written this way (bench/attribution.ts, 1,000,000 exposures: see bench/README.md): the candidates
 * arrive already in strength order, rule by rule (the range index answers most specific first with the index's
 * tie order, the ASN lists are sorted at build), so only the domain matches are sorted, and a candidate becomes an
 * object only when it is answered (the winner, the runner-up for the tie check, and the listed losers): a bulk run
 * with `{ candidates: false }` builds two. attribute-reference.ts is the plain version (score all, sort all) this
 * one must equal; the property tests and the benchmark compare them.
 */
import { formatIPv4, formatIPv6, parseIp, parseIPv4, unmapIPv4 } from '../core/ip.js';
import type { AsnEntries, AttributionIndex, ManualEvidence, RangeEntry } from './attribution-index.js';
import { certificateHostname, FNV_OFFSET, FNV_PRIME, normaliseHostname, SUFFIX_FILTER_SHIFT } from './hostnames.js';
import { cmpKey, contactsFor, describeEvidence, explainLoss, layerRank, lossReason, NO_CONTACTS, unattributed, type Scored } from './explain.js';
import {
  CONFIDENCE,
  MAX_CANDIDATES,
  type Attribution,
  type ExposureFacts,
  type HostnameSource,
  type LosingCandidate,
  type ManualOverride,
  type PrefixAsn,
  type RegistryDomain,
} from './types.js';

export { describeEvidence } from './explain.js';

export interface AttributeOptions {
  /**
   * List the losing candidates with why they lost (default true). Bulk attribution that stores only the decision
   * passes false (`candidates` is then empty and `omitted` counts them): the explanation is rebuilt on demand
   * (`tocsin whois`) from the same index, and building its sentences is most of the cost of a query.
   */
  readonly candidates?: boolean;
}

type NetworkEntries = AttributionIndex['networks']['v4']['entries'];

/** A registry domain that is a suffix of one of the exposure's hostnames. */
interface DomainMatch {
  readonly entry: RegistryDomain;
  readonly suffix: string;
  readonly name: string;
  readonly source: HostnameSource;
  /** The strength key as `Scored` has it: a = -confidence, b = -labels of the suffix, c = layer. */
  readonly a: number;
  readonly b: number;
  readonly c: number;
}

/** Every candidate of one exposure, rule by rule, each list in strength order: candidate k is the k-th of their concatenation. */
interface Matches {
  readonly overrides: readonly RangeEntry<ManualOverride, ManualEvidence>[];
  readonly overrideHits: readonly number[];
  readonly networks: NetworkEntries;
  readonly networkHits: readonly number[];
  readonly feedAsns: AsnEntries;
  readonly routed: RangeEntry<PrefixAsn, null> | undefined;
  readonly routedAsns: AsnEntries;
  readonly domains: readonly DomainMatch[];
}

const NO_HITS: readonly number[] = Object.freeze([]);
const NO_ASNS: AsnEntries = Object.freeze([]);
const NO_DOMAINS: readonly DomainMatch[] = Object.freeze([]);

export function attribute(index: AttributionIndex, facts: ExposureFacts, opts: AttributeOptions = {}): Attribution {
  const port = typeof facts.port === 'number' ? facts.port : null;
  const raw = facts.ip;
  if (typeof raw !== 'string') return unattributed(String(raw), port, `'${String(raw)}' is not an IP address`);
  const s = raw.trim();
  // IPv4 stays a number from parse to lookup; a strict dotted quad is already canonical (no leading zeros).
  let v4 = parseIPv4(s);
  let v6 = 0n;
  let ipText = s;
  if (v4 === null) {
    const p = parseIp(s);
    if (p === null) return unattributed(raw, port, `'${raw}' is not an IP address`);
    if (p.family === 4) v4 = p.value;
    else {
      const mapped = unmapIPv4(p.value);
      if (mapped !== null) {
        v4 = mapped;
        ipText = formatIPv4(mapped);
      } else {
        v6 = p.value;
        ipText = formatIPv6(v6);
      }
    }
  }

  let overrideHits: readonly number[];
  let networkHits: readonly number[];
  let routedAt: number | undefined;
  let m: Matches;
  const feedAsn = typeof facts.asn === 'number' && Number.isInteger(facts.asn) && facts.asn >= 0 ? facts.asn : null;
  const feedAsns = feedAsn === null ? NO_ASNS : index.asns.get(feedAsn) ?? NO_ASNS;
  const domains = index.domains.size > 0 ? domainMatches(index, facts) : NO_DOMAINS;
  if (v4 !== null) {
    overrideHits = index.overrides.v4.entries.length > 0 ? index.overrides.v4.index.lookup(v4) : NO_HITS;
    networkHits = index.networks.v4.index.lookup(v4);
    routedAt = index.prefixAsns.v4.entries.length > 0 ? index.prefixAsns.v4.index.lookup(v4)[0] : undefined;
    const routed = routedAt === undefined ? undefined : index.prefixAsns.v4.entries[routedAt];
    const routes = index.prefixRoutes.v4;
    m = {
      overrides: index.overrides.v4.entries, overrideHits, networks: index.networks.v4.entries, networkHits, feedAsns, routed,
      routedAsns: routedAt === undefined || routes.asn[routedAt] === feedAsn ? NO_ASNS : routes.entries[routedAt]!,
      domains,
    };
  } else {
    overrideHits = index.overrides.v6.entries.length > 0 ? index.overrides.v6.index.lookup(v6) : NO_HITS;
    networkHits = index.networks.v6.index.lookup(v6);
    routedAt = index.prefixAsns.v6.entries.length > 0 ? index.prefixAsns.v6.index.lookup(v6)[0] : undefined;
    const routed = routedAt === undefined ? undefined : index.prefixAsns.v6.entries[routedAt];
    const routes = index.prefixRoutes.v6;
    m = {
      overrides: index.overrides.v6.entries, overrideHits, networks: index.networks.v6.entries, networkHits, feedAsns, routed,
      routedAsns: routedAt === undefined || routes.asn[routedAt] === feedAsn ? NO_ASNS : routes.entries[routedAt]!,
      domains,
    };
  }

  const total = overrideHits.length + networkHits.length + feedAsns.length + m.routedAsns.length + domains.length;
  if (total === 0) return unattributed(ipText, port, null);
  const winner = candidateAt(m, 0);
  const second = total > 1 ? candidateAt(m, 1) : null;
  const tie = second !== null && second.orgId !== winner.orgId && cmpKey(second, winner) === 0;
  const winnerOrg = index.organisations.get(winner.orgId);
  const winnerName = winnerOrg?.org.name ?? null;
  const limit = opts.candidates === false ? 0 : Math.min(MAX_CANDIDATES, total - 1);
  const candidates: LosingCandidate[] = [];
  if (limit > 0) {
    const winnerRecord = describeEvidence(winner.evidence);
    for (let i = 1; i <= limit; i++) {
      const c = i === 1 ? second! : candidateAt(m, i);
      const lost = lossReason(c, winner);
      candidates.push({
        orgId: c.orgId, orgName: index.organisations.get(c.orgId)?.org.name ?? null, rule: c.rule, confidence: c.confidence,
        evidence: c.evidence, lost, why: explainLoss(lost, c, winner, winnerName, winnerRecord),
      });
    }
  }
  return {
    ip: ipText,
    port,
    orgId: winner.orgId,
    orgName: winnerName,
    rule: winner.rule,
    confidence: tie ? winner.confidence * CONFIDENCE.tieFactor : winner.confidence,
    evidence: winner.evidence,
    tie,
    candidates,
    omitted: total - 1 - candidates.length,
    contacts: contactsFor(winner.orgId, winnerOrg?.contacts ?? NO_CONTACTS, networkHits, m.networks),
    problem: null,
  };
}

/**
 * Attribution of many exposures against one index, in input order: what a bulk re-attribution (the store's
 * refresh) calls. The same answers as `attribute` on each; one call per batch keeps the loop in the engine.
 */
export function attributeMany(index: AttributionIndex, facts: readonly ExposureFacts[], opts: AttributeOptions = {}): Attribution[] {
  const out = new Array<Attribution>(facts.length);
  for (let i = 0; i < facts.length; i++) out[i] = attribute(index, facts[i]!, opts);
  return out;
}

/** The k-th candidate in strength order, as an object (built only for the candidates that are answered). */
function candidateAt(m: Matches, k: number): Scored {
  let i = k;
  if (i < m.overrideHits.length) {
    const o = m.overrides[m.overrideHits[i]!]!;
    return { orgId: o.entry.orgId, rule: 'manual', a: o.span, b: 0, c: 0, confidence: CONFIDENCE.manual, evidence: o.data };
  }
  i -= m.overrideHits.length;
  const nets = m.networkHits;
  if (i < nets.length) {
    const n = m.networks[nets[i]!]!;
    // Another organisation's less specific network around this one: usually an ISP around its customer.
    let nested = false;
    for (let j = i + 1; j < nets.length && !nested; j++) {
      const outer = m.networks[nets[j]!]!;
      if (outer.entry.orgId !== n.entry.orgId && outer.span > n.span) nested = true;
    }
    return {
      orgId: n.entry.orgId, rule: 'network', a: n.span, b: layerRank(n.entry.layer), c: 0,
      confidence: nested ? CONFIDENCE.networkNested : CONFIDENCE.network, evidence: n.data.evidence,
    };
  }
  i -= nets.length;
  if (i < m.feedAsns.length) {
    const { entry, feedEvidence } = m.feedAsns[i]!;
    return { orgId: entry.orgId, rule: 'asn', a: 0, b: layerRank(entry.layer), c: 0, confidence: CONFIDENCE.asnFeed, evidence: feedEvidence };
  }
  i -= m.feedAsns.length;
  if (i < m.routedAsns.length) {
    const { entry } = m.routedAsns[i]!;
    return {
      orgId: entry.orgId, rule: 'asn', a: 1, b: layerRank(entry.layer), c: 0, confidence: CONFIDENCE.asnPrefixTable,
      evidence: { rule: 'asn', asn: entry.asn, via: 'prefix-table', prefix: m.routed!.range.text, asnId: entry.id ?? null, layer: entry.layer ?? 'imported' },
    };
  }
  i -= m.routedAsns.length;
  const d = m.domains[i]!;
  return {
    orgId: d.entry.orgId, rule: 'domain', a: d.a, b: d.b, c: d.c, confidence: -d.a,
    evidence: { rule: 'domain', domain: d.suffix, hostname: d.name, hostnameSource: d.source, domainId: d.entry.id ?? null, layer: d.entry.layer ?? 'imported' },
  };
}

/**
 * The exposure's hostnames with their sources, normalised, strongest source first; unusable names are dropped, and
 * a name already listed through a source of at least the same confidence is not listed again (a certificate's CN is
 * nearly always one of its SANs: matching it twice would only add a "same organisation" candidate).
 */
function addName(names: string[], sources: HostnameSource[], name: string | null, source: HostnameSource): void {
  if (name === null) return;
  const confidence = CONFIDENCE.domain[source];
  for (let i = 0; i < names.length; i++) if (names[i] === name && CONFIDENCE.domain[sources[i]!] >= confidence) return;
  names.push(name);
  sources.push(source);
}

const plainName = (raw: string | null | undefined): string | null => (typeof raw === 'string' ? normaliseHostname(raw) : null);
const certName = (raw: string | null | undefined): string | null => (typeof raw === 'string' ? certificateHostname(raw) : null);

/** Strength order of domain matches (as `byStrength` orders them); `sort` is stable, so equals keep match order. */
function byDomainStrength(x: DomainMatch, y: DomainMatch): number {
  return x.a - y.a || x.b - y.b || x.c - y.c || x.entry.orgId - y.entry.orgId;
}

/**
 * Registry domains that are suffixes, on label boundaries, of the exposure's hostnames (the longest first for each
 * name; a single label is never a registry domain, rejected at build), in strength order. The same organisation,
 * suffix, source and layer is listed once (the same name as SAN and CN, or listed twice).
 */
function domainMatches(index: AttributionIndex, facts: ExposureFacts): readonly DomainMatch[] {
  const cert = facts.certificate;
  if (facts.requestHost == null && facts.feedHostname == null && cert == null && (facts.ptr === undefined || facts.ptr.length === 0)) {
    return NO_DOMAINS;
  }
  const names: string[] = [];
  const sources: HostnameSource[] = [];
  addName(names, sources, plainName(facts.requestHost), 'request-host');
  addName(names, sources, plainName(facts.feedHostname), 'feed');
  if (cert != null) {
    const sans = cert.sans;
    if (sans !== undefined) for (let i = 0; i < sans.length; i++) addName(names, sources, certName(sans[i]), 'cert-san');
    addName(names, sources, certName(cert.cn), 'cert-cn');
  }
  const ptr = facts.ptr;
  if (ptr !== undefined) for (let i = 0; i < ptr.length; i++) addName(names, sources, plainName(ptr[i]), 'ptr');

  let out: DomainMatch[] | null = null;
  // Duplicates are found by a scan of the matches so far; past a few dozen (a certificate with hundreds of SANs
  // under one registry domain), by a set of keys instead, so the cost stays linear.
  let seen: Set<string> | null = null;
  const filter = index.domainFilter;
  const starts: number[] = [];
  for (let n = 0; n < names.length; n++) {
    const name = names[n]!;
    const source = sources[n]!;
    // Right to left: at the first character of each label left of a dot, `h` is the hash of the suffix starting
    // there; the filter keeps the starts that may be registry domains, as start * 128 + labels (labels <= 127).
    starts.length = 0;
    let h = FNV_OFFSET;
    let dots = 0;
    for (let i = name.length - 1; i >= 0; i--) {
      const c = name.charCodeAt(i);
      h = Math.imul(h ^ c, FNV_PRIME);
      if (c === 46) dots++;
      else if (dots > 0 && (i === 0 || name.charCodeAt(i - 1) === 46)) {
        const b = h >>> SUFFIX_FILTER_SHIFT;
        if ((filter[b >>> 5]! & (1 << (b & 31))) !== 0) starts.push(i * 128 + dots + 1);
      }
    }
    // Longest suffix first.
    for (let k = starts.length - 1; k >= 0; k--) {
      const start = Math.floor(starts[k]! / 128);
      const labels = starts[k]! % 128;
      const suffix = start === 0 ? name : name.slice(start);
      const entries = index.domains.get(suffix);
      if (entries === undefined) continue;
      for (const e of entries) {
        out ??= [];
        if (seen === null && out.length >= SCAN_LIMIT) {
          seen = new Set();
          for (const d of out) seen.add(matchKey(d.entry, d.suffix, d.source));
        }
        if (seen === null ? listed(out, e, suffix, source) : seen.has(matchKey(e, suffix, source))) continue;
        seen?.add(matchKey(e, suffix, source));
        out.push({ entry: e, suffix, name, source, a: -CONFIDENCE.domain[source], b: -labels, c: layerRank(e.layer) });
      }
    }
  }
  if (out === null) return NO_DOMAINS;
  if (out.length > 1) out.sort(byDomainStrength);
  return out;
}

const SCAN_LIMIT = 32;

const matchKey = (e: RegistryDomain, suffix: string, source: HostnameSource): string => `${e.orgId}|${suffix}|${source}|${e.layer ?? ''}`;

function listed(out: readonly DomainMatch[], e: RegistryDomain, suffix: string, source: HostnameSource): boolean {
  for (let i = 0; i < out.length; i++) {
    const d = out[i]!;
    if (d.entry.orgId === e.orgId && d.source === source && d.entry.layer === e.layer && d.suffix === suffix) return true;
  }
  return false;
}

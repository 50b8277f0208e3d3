/**
 * Attribution of one exposure: manual override → most specific network → ASN (the exposure's own, else the
 * prefix-to-ASN table's) → domain (feed hostname, the Host/SNI our scan used, certificate SANs and CN, PTR) →
 * unattributed. Every matching record becomes a candidate; the best one wins and every other is listed with why
 * it lost, so an analyst can see and correct the decision. Pure: the index is built once (attribution-index.ts).
 */
import { canonicalIp, formatIp, parseIp } from '../core/ip.js';
import type { AttributionIndex, RangeTable } from './attribution-index.js';
import type { IpValue } from '../core/ip.js';
import { certificateName, labelCount, normaliseHostname } from './hostnames.js';
import {
  CONFIDENCE,
  MAX_CANDIDATES,
  type Attribution,
  type AttributionEvidence,
  type AttributionRule,
  type ContactChoice,
  type EntryLayer,
  type ExposureFacts,
  type HostnameSource,
  type LosingCandidate,
  type LossReason,
  type OrgId,
} from './types.js';

const RULE_ORDER: Record<AttributionRule, number> = { manual: 0, network: 1, asn: 2, domain: 3 };

/**
 * A candidate with its strength: compared rule first, then `a`, `b`, `c` (lower is stronger), then the
 * organisation id (a deterministic choice between equals, flagged as a tie).
 *  - manual: a = range size;                 b, c = 0
 *  - network: a = range size;                b = layer (manual 0, imported 1)
 *  - asn: a = via (feed 0, prefix table 1);   b = layer
 *  - domain: a = -source confidence;          b = -labels of the suffix; c = layer
 */
interface Scored {
  readonly orgId: OrgId;
  readonly rule: AttributionRule;
  readonly a: number | bigint;
  readonly b: number;
  readonly c: number;
  confidence: number;
  readonly evidence: AttributionEvidence;
}

const layerRank = (l: EntryLayer | undefined): number => (l === 'manual' ? 0 : 1);

function cmpKey(x: Scored, y: Scored): number {
  return RULE_ORDER[x.rule] - RULE_ORDER[y.rule] || (x.a < y.a ? -1 : x.a > y.a ? 1 : 0) || x.b - y.b || x.c - y.c;
}

/**
 * The exposure's hostnames with their sources, normalised; unusable names are dropped, and a name already listed
 * through a source of at least the same confidence is not listed again (a certificate's CN is nearly always one of
 * its SANs: matching it twice would only add a "same organisation" candidate).
 */
function hostnamesOf(facts: ExposureFacts): { name: string; source: HostnameSource }[] {
  const out: { name: string; source: HostnameSource }[] = [];
  const add = (name: string, source: HostnameSource): void => {
    for (const o of out) if (o.name === name && CONFIDENCE.domain[o.source] >= CONFIDENCE.domain[source]) return;
    out.push({ name, source });
  };
  const plain = (raw: string | null | undefined, source: HostnameSource): void => {
    if (typeof raw !== 'string') return;
    const name = normaliseHostname(raw);
    if (name !== null) add(name, source);
  };
  const cert = (raw: string | null | undefined, source: HostnameSource): void => {
    if (typeof raw !== 'string') return;
    const c = certificateName(raw);
    if (c !== null) add(c.name, source);
  };
  plain(facts.requestHost, 'request-host');
  plain(facts.feedHostname, 'feed');
  for (const san of facts.certificate?.sans ?? []) cert(san, 'cert-san');
  cert(facts.certificate?.cn, 'cert-cn');
  for (const p of facts.ptr ?? []) plain(p, 'ptr');
  return out;
}

export interface AttributeOptions {
  /**
   * List the losing candidates with why they lost (default true). Bulk attribution that stores only the decision
   * passes false (`candidates` is then empty and `omitted` counts them): the explanation is rebuilt on demand
   * (`tocsin whois`) from the same index, and building its sentences is most of the cost of a query.
   */
  readonly candidates?: boolean;
}

export function attribute(index: AttributionIndex, facts: ExposureFacts, opts: AttributeOptions = {}): Attribution {
  const port = typeof facts.port === 'number' ? facts.port : null;
  const parsed = typeof facts.ip === 'string' ? parseIp(facts.ip.trim()) : null;
  if (parsed === null) return unattributed(String(facts.ip), port, `'${String(facts.ip)}' is not an IP address`);
  const ip = canonicalIp(parsed);
  const v4 = ip.family === 4;
  const scored: Scored[] = [];

  const overrides = v4 ? index.overrides.v4 : index.overrides.v6;
  for (const h of hitsIn(index.overrides, ip)) {
    const o = overrides.entries[h]!;
    scored.push({ orgId: o.entry.orgId, rule: 'manual', a: o.span, b: 0, c: 0, confidence: CONFIDENCE.manual, evidence: o.data });
  }

  const networks = v4 ? index.networks.v4 : index.networks.v6;
  const nets = hitsIn(index.networks, ip);
  for (let i = 0; i < nets.length; i++) {
    const n = networks.entries[nets[i]!]!;
    // Another organisation's less specific network around this one: usually an ISP around its customer.
    let nested = false;
    for (let j = i + 1; j < nets.length && !nested; j++) {
      const outer = networks.entries[nets[j]!]!;
      if (outer.entry.orgId !== n.entry.orgId && outer.span > n.span) nested = true;
    }
    scored.push({
      orgId: n.entry.orgId, rule: 'network', a: n.span, b: layerRank(n.entry.layer), c: 0,
      confidence: nested ? CONFIDENCE.networkNested : CONFIDENCE.network, evidence: n.data.evidence,
    });
  }

  const feedAsn = typeof facts.asn === 'number' && Number.isInteger(facts.asn) && facts.asn >= 0 ? facts.asn : null;
  if (feedAsn !== null) {
    for (const { entry, feedEvidence } of index.asns.get(feedAsn) ?? []) {
      scored.push({ orgId: entry.orgId, rule: 'asn', a: 0, b: layerRank(entry.layer), c: 0, confidence: CONFIDENCE.asnFeed, evidence: feedEvidence });
    }
  }
  const table = v4 ? index.prefixAsns.v4 : index.prefixAsns.v6;
  const routedAt = hitsIn(index.prefixAsns, ip)[0];
  const routed = routedAt === undefined ? undefined : table.entries[routedAt];
  if (routed !== undefined && routed.entry.asn !== feedAsn) {
    for (const { entry } of index.asns.get(routed.entry.asn) ?? []) {
      scored.push({
        orgId: entry.orgId, rule: 'asn', a: 1, b: layerRank(entry.layer), c: 0, confidence: CONFIDENCE.asnPrefixTable,
        evidence: { rule: 'asn', asn: entry.asn, via: 'prefix-table', prefix: routed.range.text, asnId: entry.id ?? null, layer: entry.layer ?? 'imported' },
      });
    }
  }

  if (index.domains.size > 0) domainCandidates(index, facts, scored);

  // A strict dotted quad is already canonical (parseIPv4 refuses leading zeros): no need to format it again.
  const ipText = parsed.family === 4 ? facts.ip.trim() : formatIp(ip);
  if (scored.length === 0) return unattributed(ipText, port, null);
  if (scored.length > 1) scored.sort(byStrength);
  const winner = scored[0]!;
  const tie = scored.length > 1 && scored[1]!.orgId !== winner.orgId && cmpKey(scored[1]!, winner) === 0;
  const winnerOrg = index.organisations.get(winner.orgId);
  const winnerName = winnerOrg?.org.name ?? null;
  const candidates: LosingCandidate[] = [];
  const limit = opts.candidates === false ? 0 : MAX_CANDIDATES;
  let winnerRecord: string | null = null;
  for (let i = 1; i < scored.length && candidates.length < limit; i++) {
    const s = scored[i]!;
    const lost = lossReason(s, winner);
    winnerRecord ??= describeEvidence(winner.evidence);
    candidates.push({
      orgId: s.orgId, orgName: index.organisations.get(s.orgId)?.org.name ?? null, rule: s.rule, confidence: s.confidence,
      evidence: s.evidence, lost, why: explainLoss(lost, s, winner, winnerName, winnerRecord),
    });
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
    omitted: scored.length - 1 - candidates.length,
    contacts: contactsFor(winner.orgId, winnerOrg?.contacts ?? NO_CONTACTS, nets, networks.entries),
    problem: null,
  };
}

/** Positions (in the family's entries) of the ranges containing `ip`, most specific first. */
function hitsIn<E, X>(table: RangeTable<E, X>, ip: IpValue): readonly number[] {
  return ip.family === 4 ? table.v4.index.lookup(ip.value) : table.v6.index.lookup(ip.value);
}

function byStrength(x: Scored, y: Scored): number {
  return cmpKey(x, y) || x.orgId - y.orgId;
}

const NO_CONTACTS: readonly ContactChoice[] = Object.freeze([]);

function domainCandidates(index: AttributionIndex, facts: ExposureFacts, scored: Scored[]): void {
  const names = hostnamesOf(facts);
  let seen: Set<string> | null = null;
  for (const { name, source } of names) {
    // Suffixes on label boundaries, longest first; a single label is never a registry domain (rejected at build).
    for (let suffix = name, dot = suffix.indexOf('.'); dot >= 0; suffix = suffix.slice(dot + 1), dot = suffix.indexOf('.')) {
      const entries = index.domains.get(suffix);
      if (entries === undefined) continue;
      for (const e of entries) {
        const key = `${e.orgId}|${suffix}|${source}|${e.layer ?? ''}`;
        seen ??= new Set();
        if (seen.has(key)) continue; // the same name as SAN and CN, or listed twice
        seen.add(key);
        const confidence = CONFIDENCE.domain[source];
        scored.push({
          orgId: e.orgId, rule: 'domain', a: -confidence, b: -labelCount(suffix), c: layerRank(e.layer), confidence,
          evidence: { rule: 'domain', domain: suffix, hostname: name, hostnameSource: source, domainId: e.id ?? null, layer: e.layer ?? 'imported' },
        });
      }
    }
  }
}

function unattributed(ip: string, port: number | null, problem: string | null): Attribution {
  return {
    ip, port, orgId: null, orgName: null, rule: null, confidence: 0, evidence: null, tie: false,
    candidates: [], omitted: 0, contacts: [], problem,
  };
}

function lossReason(s: Scored, w: Scored): LossReason {
  if (s.orgId === w.orgId) return 'same-organisation';
  if (s.rule !== w.rule) return 'weaker-rule';
  const aDiffers = s.a !== w.a;
  switch (s.rule) {
    case 'manual':
    case 'network':
      return aDiffers ? 'less-specific' : s.b !== w.b ? 'imported-layer' : 'tie';
    case 'asn':
      return aDiffers ? 'weaker-source' : s.b !== w.b ? 'imported-layer' : 'tie';
    case 'domain':
      return aDiffers ? 'weaker-source' : s.b !== w.b ? 'less-specific' : s.c !== w.c ? 'imported-layer' : 'tie';
  }
}

/** The record of a candidate in a few words (raw values: the caller sanitises before display). */
export function describeEvidence(e: AttributionEvidence): string {
  switch (e.rule) {
    case 'manual':
      return `manual override ${e.target}`;
    case 'network':
      return `network ${e.network} (${e.layer})`;
    case 'asn':
      return e.via === 'feed' ? `AS${e.asn} (the feed's ASN)` : `AS${e.asn} (prefix table: ${e.prefix ?? '?'})`;
    case 'domain':
      return `domain ${e.domain} (${e.hostnameSource} ${e.hostname})`;
  }
}

function explainLoss(lost: LossReason, s: Scored, w: Scored, winnerName: string | null, wRecord: string): string {
  const wName = winnerName ?? `organisation ${w.orgId}`;
  switch (lost) {
    case 'same-organisation':
      return `points at ${wName} too`;
    case 'weaker-rule':
      return `${wRecord} matched: the ${w.rule} rule comes before the ${s.rule} rule`;
    case 'less-specific':
      return `less specific than ${wRecord}`;
    case 'weaker-source':
      return s.rule === 'asn'
        ? `the prefix table's ASN counts less than the feed's own (${wRecord})`
        : `a ${(s.evidence as { hostnameSource: HostnameSource }).hostnameSource} name counts less than ${wRecord}`;
    case 'imported-layer':
      return `imported entry; the manual entry for the same record (${wRecord}) wins`;
    case 'tie':
      return `the same kind of record (${wRecord}) also names ${wName}; the lower organisation id was picked: review it`;
  }
}

/**
 * Who to warn: the organisation's own contacts (security, then abuse, then technical), else the `abuse-mailbox` of
 * the most specific network containing the address that has one, preferring the organisation's own networks (RIPE
 * inherits abuse-c down the inetnum tree; an ISP's abuse desk is the holder's contact of last resort).
 */
function contactsFor(
  orgId: OrgId,
  own: readonly ContactChoice[],
  nets: readonly number[],
  entries: AttributionIndex['networks']['v4']['entries'],
): readonly ContactChoice[] {
  if (own.length > 0) return own;
  let fallback: ContactChoice | null = null;
  for (const h of nets) {
    const n = entries[h]!;
    if (n.data.abuse === null) continue;
    if (n.entry.orgId === orgId) return [n.data.abuse];
    fallback ??= n.data.abuse;
  }
  return fallback === null ? NO_CONTACTS : [fallback];
}

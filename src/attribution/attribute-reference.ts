/**
 * The reference engine: the straightforward attribution the fast engine (attribute.ts) must equal, kept as its
 * specification. Every matching record becomes a scored candidate, all are sorted by strength, the first wins.
 * Slower (1.4-1.7x the fast engine in bench/attribution.ts: every candidate is an object, every suffix probes the map,
 * the sort compares numbers and bigints); used by the property tests and by bench/attribution.ts (`--engine reference`) to check
 * the fast engine on random inputs. Not for production paths.
 */
import { canonicalIp, formatIp, parseIp } from '../core/ip.js';
import type { AttributionIndex, RangeTable } from './attribution-index.js';
import { byStrength, cmpKey, contactsFor, describeEvidence, explainLoss, layerRank, lossReason, NO_CONTACTS, unattributed, type Scored } from './explain.js';
import type { IpValue } from '../core/ip.js';
import { certificateName, labelCount, normaliseHostname } from './hostnames.js';
import {
  CONFIDENCE,
  MAX_CANDIDATES,
  type Attribution,
  type ExposureFacts,
  type HostnameSource,
  type LosingCandidate,
} from './types.js';

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

/** As `AttributeOptions` of the fast engine. */
interface AttributeOptions {
  readonly candidates?: boolean;
}

export function attributeReference(index: AttributionIndex, facts: ExposureFacts, opts: AttributeOptions = {}): Attribution {
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


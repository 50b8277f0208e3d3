/**
 * What the fast engine (attribute.ts) and the reference engine (attribute-reference.ts) share: the strength order
 * of candidates, why a candidate lost and the sentence that says so, and the contacts of the winner. Sharing this
 * keeps the two engines' answers word for word equal, so the reference checks only what differs: which candidates
 * are found and in which order.
 */
import type { AttributionIndex } from './attribution-index.js';
import {
  CONFIDENCE,
  type Attribution,
  type AttributionEvidence,
  type AttributionRule,
  type ContactChoice,
  type EntryLayer,
  type HostnameSource,
  type LossReason,
  type OrgId,
} from './types.js';

export const RULE_ORDER: Record<AttributionRule, number> = { manual: 0, network: 1, asn: 2, domain: 3 };

/**
 * A candidate with its strength: compared rule first, then `a`, `b`, `c` (lower is stronger), then the
 * organisation id (a deterministic choice between equals, flagged as a tie).
 *  - manual: a = range size;                 b, c = 0
 *  - network: a = range size;                b = layer (manual 0, imported 1)
 *  - asn: a = via (feed 0, prefix table 1);   b = layer
 *  - domain: a = -source confidence;          b = -labels of the suffix; c = layer
 */
export interface Scored {
  readonly orgId: OrgId;
  readonly rule: AttributionRule;
  readonly a: number | bigint;
  readonly b: number;
  readonly c: number;
  confidence: number;
  readonly evidence: AttributionEvidence;
}

export const layerRank = (l: EntryLayer | undefined): number => (l === 'manual' ? 0 : 1);

export function cmpKey(x: Scored, y: Scored): number {
  return RULE_ORDER[x.rule] - RULE_ORDER[y.rule] || (x.a < y.a ? -1 : x.a > y.a ? 1 : 0) || x.b - y.b || x.c - y.c;
}

export function byStrength(x: Scored, y: Scored): number {
  return cmpKey(x, y) || x.orgId - y.orgId;
}

export const NO_CONTACTS: readonly ContactChoice[] = Object.freeze([]);

export function unattributed(ip: string, port: number | null, problem: string | null): Attribution {
  return {
    ip, port, orgId: null, orgName: null, rule: null, confidence: 0, evidence: null, tie: false,
    candidates: [], omitted: 0, contacts: [], problem,
  };
}

export function lossReason(s: Scored, w: Scored): LossReason {
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

export function explainLoss(lost: LossReason, s: Scored, w: Scored, winnerName: string | null, wRecord: string): string {
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
export function contactsFor(
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

/** The confidence of a domain candidate by the source of the hostname it matched. */
export const domainConfidence = (source: HostnameSource): number => CONFIDENCE.domain[source];

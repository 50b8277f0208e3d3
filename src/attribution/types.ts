/**
 * The attribution engine's vocabulary: what it reads (a registry snapshot, an exposure's facts) and what it
 * answers (an organisation, the rule and record that matched, a confidence, the candidates that lost and the
 * contacts to warn). Plain data only: the constituency store fills a `RegistrySnapshot` from its tables, a
 * test or a benchmark writes one by hand; nothing here does I/O.
 */

/** Organisation ids are the registry's bigint ids, returned as numbers (docs/ARCHITECTURE.md §3). */
export type OrgId = number;

/**
 * Which layer a registry entry comes from (certbund-contact's two layers): `imported` (CSV/JSON/RPSL import,
 * replaced by a re-import) or `manual` (entered by an analyst, never erased by an import). For the same record
 * (the same range, ASN or domain) held by two organisations, the manual entry wins.
 */
export type EntryLayer = 'manual' | 'imported';

export type ContactRole = 'security' | 'abuse' | 'technical';

export interface RegistryContact {
  readonly role: ContactRole;
  readonly email: string;
  readonly language?: string | null;
  readonly openpgpFingerprint?: string | null;
}

export interface RegistryOrganisation {
  readonly id: OrgId;
  readonly name: string;
  readonly sector?: string | null;
  readonly contacts?: readonly RegistryContact[];
}

/**
 * A network of an organisation: a CIDR (`192.0.2.0/24`, `2001:db8::/32`) or an inclusive range as RPSL writes
 * inetnums (`192.0.2.0 - 192.0.2.127`; need not be CIDR-aligned). IPv4-mapped IPv6 networks
 * (`::ffff:192.0.2.0/120`) are read as the IPv4 network they denote.
 */
export interface RegistryNetwork {
  /** The store's id of this entry, echoed in evidence so an analyst can edit it. */
  readonly id?: number | string;
  readonly orgId: OrgId;
  readonly network: string;
  readonly layer?: EntryLayer;
  /** The RPSL `abuse-mailbox` of the network's abuse-c role, where an import found one. */
  readonly abuseMailbox?: string | null;
  /** Where it came from (import source name), for the explanation. */
  readonly source?: string | null;
}

export interface RegistryAsn {
  readonly id?: number | string;
  readonly orgId: OrgId;
  readonly asn: number;
  readonly layer?: EntryLayer;
  readonly source?: string | null;
}

/** A domain suffix of an organisation: `example.org` covers `example.org` and every name under it. */
export interface RegistryDomain {
  readonly id?: number | string;
  readonly orgId: OrgId;
  readonly domain: string;
  readonly layer?: EntryLayer;
  readonly source?: string | null;
}

/** An analyst's assignment of an address or a network to an organisation: beats every other rule. */
export interface ManualOverride {
  readonly id?: number | string;
  readonly orgId: OrgId;
  /** An address (`192.0.2.7`) or a CIDR / range, as for networks. */
  readonly target: string;
  readonly note?: string | null;
}

/** One row of an imported prefix-to-ASN table (e.g. from a routing table dump). */
export interface PrefixAsn {
  readonly prefix: string;
  readonly asn: number;
}

/** Everything the engine needs from the registry, read once and indexed (`buildAttributionIndex`). */
export interface RegistrySnapshot {
  readonly organisations: readonly RegistryOrganisation[];
  readonly networks: readonly RegistryNetwork[];
  readonly asns: readonly RegistryAsn[];
  readonly domains: readonly RegistryDomain[];
  readonly overrides: readonly ManualOverride[];
  /** Used when an exposure carries no ASN of its own. */
  readonly prefixAsns?: readonly PrefixAsn[];
}

/** Where a hostname of an exposure was seen; each source has its own confidence (CONFIDENCE below). */
export type HostnameSource = 'feed' | 'request-host' | 'cert-san' | 'cert-cn' | 'ptr';

/** What is known about one exposure. Only `ip` is required. */
export interface ExposureFacts {
  readonly ip: string;
  /** Not used by the rules; echoed in the result so an explanation names the exposure. */
  readonly port?: number | null;
  /** The ASN a feed row gave for this address. */
  readonly asn?: number | null;
  /** The hostname a feed row gave. */
  readonly feedHostname?: string | null;
  /** The SNI / Host our scan used. */
  readonly requestHost?: string | null;
  readonly certificate?: { readonly cn?: string | null; readonly sans?: readonly string[] } | null;
  /** Reverse DNS names where stored. */
  readonly ptr?: readonly string[];
}

export type AttributionRule = 'manual' | 'network' | 'asn' | 'domain';

/** The record behind a candidate. Text values are as the registry or the host gave them: sanitise before display. */
export type AttributionEvidence =
  | { readonly rule: 'manual'; readonly target: string; readonly overrideId: number | string | null; readonly note: string | null }
  | {
      readonly rule: 'network';
      readonly network: string;
      /** Addresses in the network (a string: IPv6 sizes exceed 2^53). */
      readonly size: string;
      readonly networkId: number | string | null;
      readonly layer: EntryLayer;
      readonly source: string | null;
    }
  | {
      readonly rule: 'asn';
      readonly asn: number;
      /** `feed`: the exposure's own ASN; `prefix-table`: looked up in the prefix-to-ASN table (`prefix` says where). */
      readonly via: 'feed' | 'prefix-table';
      readonly prefix: string | null;
      readonly asnId: number | string | null;
      readonly layer: EntryLayer;
    }
  | {
      readonly rule: 'domain';
      /** The registry's domain suffix that matched. */
      readonly domain: string;
      /** The exposure's hostname it matched (as normalised: lower case, no trailing dot, IDN as A-labels). */
      readonly hostname: string;
      readonly hostnameSource: HostnameSource;
      readonly domainId: number | string | null;
      readonly layer: EntryLayer;
    };

/** Why a candidate lost (stable codes; `why` says it in words). */
export type LossReason =
  /** A rule earlier in manual > network > asn > domain matched. */
  | 'weaker-rule'
  /** The same rule matched a more specific record (a smaller network or override, a longer domain suffix). */
  | 'less-specific'
  /** The same rule matched through a stronger source (feed ASN over prefix table, certificate over PTR). */
  | 'weaker-source'
  /** The same record is held by the winner through the manual layer; this one is imported. */
  | 'imported-layer'
  /** The same record, same layer, another organisation: the winner was picked by the lower organisation id. */
  | 'tie'
  /** Points at the winning organisation too: it confirms, it does not compete. */
  | 'same-organisation';

export interface AttributionCandidate {
  readonly orgId: OrgId;
  readonly orgName: string | null;
  readonly rule: AttributionRule;
  readonly confidence: number;
  readonly evidence: AttributionEvidence;
}

export interface LosingCandidate extends AttributionCandidate {
  readonly lost: LossReason;
  readonly why: string;
}

export interface ContactChoice {
  /** `organisation`: the organisation's own contact; `network-abuse-mailbox`: the RPSL abuse-mailbox fallback. */
  readonly source: 'organisation' | 'network-abuse-mailbox';
  readonly email: string;
  readonly role: ContactRole;
  readonly language: string | null;
  readonly openpgpFingerprint: string | null;
  /** For the abuse-mailbox fallback: the network it was read from, and that network's organisation (it may be
   *  another than the attributed one: an ISP's abuse desk for a customer without contacts of its own). */
  readonly network: string | null;
  readonly networkOrgId: OrgId | null;
}

export interface Attribution {
  /** The address in canonical form (IPv4-mapped IPv6 as IPv4, IPv6 per RFC 5952), or the input when invalid. */
  readonly ip: string;
  readonly port: number | null;
  readonly orgId: OrgId | null;
  readonly orgName: string | null;
  readonly rule: AttributionRule | null;
  /** 0..1, see CONFIDENCE; 0 when unattributed. */
  readonly confidence: number;
  readonly evidence: AttributionEvidence | null;
  /** Two organisations held the winning record equally: a case for the review queue. */
  readonly tie: boolean;
  /** Every other candidate, best first, with why it lost (at most MAX_CANDIDATES; `omitted` counts the rest). */
  readonly candidates: readonly LosingCandidate[];
  readonly omitted: number;
  /** Who to warn, best first: the organisation's contacts, else the abuse-mailbox of the address's network. */
  readonly contacts: readonly ContactChoice[];
  /** Set when the facts could not be used (e.g. the address does not parse); the rest is then unattributed. */
  readonly problem: string | null;
}

/**
 * The confidence scale. It orders evidence by how directly it names the owner; it is not a probability.
 *  - manual 1.0: an analyst said so.
 *  - network 0.95: the address is in a network registered to the organisation; 0.9 when a less specific network
 *    of another organisation also contains it (an ISP's block around a customer's assignment: usually right,
 *    but the registry could be out of date on who holds the assignment now).
 *  - asn 0.7 from the exposure's own ASN (the feed's), 0.65 via the prefix-to-ASN table (one lookup more).
 *  - domain: 0.65 from the Host/SNI our scan used (someone named this host so), 0.6 from the feed's hostname or a
 *    certificate SAN or CN (the host presents it), 0.5 from a PTR (the network operator, often the ISP, writes it).
 *  - a tie (the same record held equally by two organisations) halves the winner's confidence.
 */
export const CONFIDENCE = {
  manual: 1,
  network: 0.95,
  networkNested: 0.9,
  asnFeed: 0.7,
  asnPrefixTable: 0.65,
  domain: { 'request-host': 0.65, feed: 0.6, 'cert-san': 0.6, 'cert-cn': 0.6, ptr: 0.5 } satisfies Record<HostnameSource, number>,
  tieFactor: 0.5,
} as const;

/** Candidates kept in a result (a certificate may list hundreds of SANs). */
export const MAX_CANDIDATES = 32;

/** An entry of the snapshot the index could not use: set aside with the reason, the rest is indexed. */
export interface SnapshotProblem {
  readonly kind: 'organisation' | 'network' | 'asn' | 'domain' | 'override' | 'prefix-asn';
  /** Position in its snapshot array. */
  readonly index: number;
  /** The offending value as given (sanitise before display). */
  readonly value: string;
  readonly error: string;
}

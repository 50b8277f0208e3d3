/**
 * The incident-report vocabulary (issue 10 §5): what an organisation (or an analyst taking a call) reports in
 * stages, the triage states and the categories. Plain data; the services fill these from the store.
 * Every text value comes from a reporter: hostile until escaped by whoever displays it.
 */

/** What kind of incident (multi-select at stage 0). */
export const INCIDENT_TYPES = [
  'exploited-service', 'web-shell', 'ransomware', 'data-breach', 'phishing-bec', 'ddos', 'other',
] as const;
export type IncidentType = (typeof INCIDENT_TYPES)[number];

/** Human labels for the types, in the order forms list them. */
export const INCIDENT_TYPE_LABELS: Readonly<Record<IncidentType, string>> = {
  'exploited-service': 'Exploited internet-facing service',
  'web-shell': 'Web shell found',
  ransomware: 'Ransomware',
  'data-breach': 'Data breach',
  'phishing-bec': 'Phishing / business e-mail compromise',
  ddos: 'DDoS',
  other: 'Other',
};

/** Traffic Light Protocol 2.0 (FIRST, 2022): who the reporter allows us to share the report with. */
export const TLP_VALUES = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'] as const;
export type Tlp = (typeof TLP_VALUES)[number];

/** Triage states (see ./triage.ts for the allowed transitions). */
export const INCIDENT_STATUSES = ['received', 'triage', 'incident', 'duplicate', 'rejected', 'resolved'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/** Severity categories C1 (national cyber emergency) to C6 (localised incident); see ./sla.ts. */
export const CATEGORIES = ['C1', 'C2', 'C3', 'C4', 'C5', 'C6'] as const;
export type Category = (typeof CATEGORIES)[number];

export type DataExfiltrated = 'yes' | 'no' | 'unknown';

export interface Reporter {
  readonly name: string;
  readonly role: string;
  readonly phone: string;
  /** A mailbox on a system that is not compromised (the organisation's own mail may be read by the attacker). */
  readonly email: string;
}

export interface Impact {
  readonly confidentiality: boolean;
  readonly integrity: boolean;
  readonly availability: boolean;
  readonly personalData: boolean;
}

/** Stage 0: what a reporter can give in under five minutes. */
export interface Stage0 {
  readonly reporter: Reporter;
  /** The organisation from the registry (by id or name), or free text when it is not in the registry. */
  readonly orgId: number | null;
  readonly org: string | null;
  readonly summary: string;
  readonly types: readonly IncidentType[];
  /** Upper-case CVE ids (may be empty). */
  readonly cves: readonly string[];
  /** The warning the report was started from: a campaign id and/or a message ticket. */
  readonly campaignId: number | null;
  readonly ticket: string | null;
  /** ISO 8601 with an explicit offset or Z. */
  readonly detectedAt: string;
  /** The reporter's IANA time zone (e.g. Europe/Berlin), when given. */
  readonly timeZone: string | null;
  readonly ongoing: boolean;
  readonly impact: Impact;
  readonly helpRequested: string;
  readonly tlp: Tlp;
}

/** Stage 1: technical details, once the reporter has looked. */
export interface Stage1 {
  /** Affected systems (host names, addresses, roles). */
  readonly assets: readonly string[];
  /** Indicators of compromise (addresses, domains, hashes, paths, URLs). */
  readonly indicators: readonly string[];
  readonly actionsTaken: string;
  /** Who else was told (police, data-protection authority, insurer, vendor, ...). */
  readonly othersInformed: readonly string[];
  readonly notes: string;
}

/** The final report, when it is over. */
export interface FinalReport {
  readonly rootCause: string;
  readonly resolution: string;
  readonly lessonsLearned: string;
  readonly dataExfiltrated: DataExfiltrated;
}

/**
 * The campaign vocabulary (issue 9 §2): what a campaign selects (exposures of organisations), who it warns
 * (a recipient chain per organisation), and the state of each organisation's one message in the outbox.
 * Plain data only: the services fill these from the stores; nothing here does I/O.
 * Text values (organisation names, host names, builds, banners) come from registries, feeds and scanned hosts:
 * hostile until rendered through ./template.ts.
 */

/** Where the facts about an exposure came from: our own scan, or a feed (Shadowserver, ...). */
export type ExposureSource = 'scan' | 'feed';

/**
 * Why a host is in a campaign for a CVE, in the words the message uses:
 * - `confirmed-by-build`: our verdict for the build we read is vulnerable;
 * - `update-not-visible`: only the CU is visible and a security update for it exists (indeterminate);
 * - `reported-by-feed`: a feed (e.g. Shadowserver) reported it.
 */
export type EvidenceKind = 'confirmed-by-build' | 'update-not-visible' | 'reported-by-feed';

/** What is known about one service (ip, port), from the latest scan assessment or a feed row. */
export interface ExposureFact {
  readonly ip: string;
  readonly port: number | null;
  readonly hostname: string | null;
  /** `scan` when our scan saw it (its build and verdicts are ours), else `feed`. */
  readonly source: ExposureSource;
  /** The (first) feed that reported the service (e.g. `shadowserver`); null when no feed did. */
  readonly feed: string | null;
  readonly product: string | null;
  readonly build: string | null;
  readonly buildPrecision: 'exact' | 'cu' | null;
  /** Our verdicts (scan, or a feed row judged by the knowledge base). */
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  /** What the feed itself said (tags naming CVEs). */
  readonly reportedCves: readonly string[];
  /** A feed reported signs of compromise (web shell, ...). */
  readonly compromised: boolean;
  /** ISO time of the observation. */
  readonly seenAt: string;
  /** A short banner or header excerpt as seen (hostile text). */
  readonly banner?: string | null;
}

export interface CveEvidence {
  readonly cve: string;
  readonly evidence: EvidenceKind;
  /** The feed's name for `reported-by-feed`. */
  readonly feed: string | null;
}

/** One service of an organisation in a campaign, with the selected CVEs it is exposed to. */
export interface CampaignExposure {
  readonly ip: string;
  readonly port: number | null;
  readonly hostname: string | null;
  readonly build: string | null;
  readonly source: ExposureSource;
  readonly cves: readonly CveEvidence[];
  readonly compromised: boolean;
  readonly seenAt: string;
  readonly banner: string | null;
}

/** What `campaign create` asked for; stored with the campaign. */
export interface CampaignSelection {
  /** CVE ids (upper case); a group given by name is expanded to its CVEs before selection. */
  readonly cves: readonly string[];
  /** The group name when one was given (for the message's wording), else null. */
  readonly group: string | null;
  /** Only hosts with evidence of compromise. */
  readonly compromisedOnly: boolean;
  readonly source: ExposureSource | 'any';
  /** Only organisations of this sector (compared case-insensitively); null = all. */
  readonly sector: string | null;
  /** Only these organisations (compared case-insensitively); empty = all. */
  readonly orgs: readonly string[];
}

export type ContactRole = 'security' | 'abuse' | 'technical';

export interface OrgContact {
  readonly role: ContactRole;
  readonly email: string;
  readonly language: string | null;
}

/** An organisation as the campaign needs it (from the constituency registry). */
export interface CampaignOrg {
  readonly id: number;
  readonly name: string;
  readonly sector: string | null;
  readonly contacts: readonly OrgContact[];
  /** Abuse mailboxes of the organisation's networks (RPSL abuse-c), most specific first. */
  readonly networkAbuseMailboxes: readonly string[];
  readonly optOuts: readonly { readonly condition: string; readonly expiresAt: string | null }[];
}

/** Where one step of the chain comes from. */
export type RecipientSource = ContactRole | 'network-abuse-mailbox' | 'fallback';

/** One step of an organisation's recipient chain: every address of the step gets the message at once. */
export interface RecipientStep {
  readonly source: RecipientSource;
  readonly emails: readonly string[];
}

/**
 * The states of an organisation's message (`campaign status`):
 * queued (waiting), sending (an SMTP transaction is, or was, in flight), sent (accepted by the relay),
 * deferred (4xx: retried after `next_attempt_at`), bounced (5xx on every step of the chain), uncertain (found
 * `sending` after a killed sender: maybe delivered, never resent on its own), acknowledged (the token came back),
 * suppressed (opt-out, no contact), cancelled (the campaign was cancelled before it was sent).
 */
export type OutboxState = 'queued' | 'sending' | 'sent' | 'deferred' | 'bounced' | 'uncertain' | 'acknowledged' | 'suppressed' | 'cancelled';

export const OUTBOX_STATES: readonly OutboxState[] = ['queued', 'sending', 'sent', 'deferred', 'bounced', 'uncertain', 'acknowledged', 'suppressed', 'cancelled'];

/**
 * What the SMTP adapter answers for one message (src/platform/mail/smtp-sender.ts): results are values, never
 * thrown. `uncertain`: the transaction broke after DATA was sent (the relay may have accepted it).
 */
export type SendOutcome =
  | { readonly kind: 'accepted'; readonly reply: string }
  | { readonly kind: 'transient'; readonly reply: string }
  | { readonly kind: 'permanent'; readonly reply: string }
  | { readonly kind: 'uncertain'; readonly reply: string };

/** A message ready for the SMTP adapter. Every header value is free of CR/LF (render.ts checks). */
export interface OutgoingMessage {
  readonly from: string;
  readonly to: readonly string[];
  readonly subject: string;
  readonly messageId: string;
  readonly text: string;
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly attachments: readonly { readonly filename: string; readonly contentType: string; readonly content: string }[];
}

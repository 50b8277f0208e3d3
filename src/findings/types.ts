/**
 * The findings vocabulary (issue 9 §1): one finding per (ip, port, CVE), plus one per host (port null, CVE id
 * `compromised`) for compromise evidence, with an append-only event history.
 */

export const FINDING_STATES = ['open', 'closed'] as const;
export type FindingState = (typeof FINDING_STATES)[number];

/** Reasons the fold closes a finding on its own. */
export const AUTO_CLOSE_REASONS = ['patched', 'service-gone', 'left-scope'] as const;
/** Reasons only an analyst gives; both carry an optional expiry. */
export const ANALYST_CLOSE_REASONS = ['false-positive', 'accepted-risk'] as const;
export const CLOSE_REASONS = [...AUTO_CLOSE_REASONS, ...ANALYST_CLOSE_REASONS] as const;
export type AutoCloseReason = (typeof AUTO_CLOSE_REASONS)[number];
export type AnalystCloseReason = (typeof ANALYST_CLOSE_REASONS)[number];
export type CloseReason = (typeof CLOSE_REASONS)[number];

export const EVENT_KINDS = ['opened', 'verified', 'notified', 'acknowledged', 'closed', 'reopened', 'changed', 'owner-changed'] as const;
export type FindingEventKind = (typeof EVENT_KINDS)[number];

/** What the latest evidence said about the CVE: our knowledge base's verdict, or compromise evidence. */
export type FindingVerdict = 'vulnerable' | 'indeterminate' | 'compromised';

/** The CVE id of the host-level finding for compromise evidence (feed `webshell` tag / compromised flag). */
export const COMPROMISED = 'compromised';

/** The finding as the rules need it (a row of the store, read side). */
export interface FindingSnapshot {
  readonly state: FindingState;
  readonly closeReason: CloseReason | null;
  readonly closedAt: Date | null;
  /** Expiry of a false-positive / accepted-risk closure (null = never expires). */
  readonly closedUntil: Date | null;
  readonly product: string | null;
  readonly verdict: FindingVerdict;
  /** The latest evidence still shows the CVE. */
  readonly present: boolean;
  /** Time of the latest evidence applied. */
  readonly lastAt: Date;
}

/**
 * One piece of evidence about one (ip, port) at one time, as the fold reads it:
 * - `verdict`: an assessed observation (scan or feed): its product, whether a build was read, and the CVEs the
 *   knowledge base found vulnerable or indeterminate (every other CVE is not-vulnerable for that build).
 * - `gone`: a scan that covered the ip:port found the port closed (refused) or answering without a service.
 * - `compromised`: a feed row flagged compromised (host level).
 * Outcomes that say nothing (timeout, unreachable, TLS error) are not evidence at all.
 */
export type Evidence =
  | {
    readonly kind: 'verdict';
    readonly at: Date;
    readonly fromScan: boolean;
    readonly product: string | null;
    readonly buildKnown: boolean;
    readonly vulnerable: readonly string[];
    readonly indeterminate: readonly string[];
  }
  | { readonly kind: 'gone'; readonly at: Date }
  | { readonly kind: 'compromised'; readonly at: Date };

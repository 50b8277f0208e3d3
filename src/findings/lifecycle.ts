/**
 * The findings state machine (issue 9 §1), pure: what one piece of evidence, an expiry or an analyst's action
 * does to one finding. The store's fold (src/platform/db/finding-store.ts) applies the same rules set-based in
 * SQL for speed; test/findings-rules.test.ts checks the two agree on the same histories.
 *
 * Rules:
 * - Evidence about a CVE is `seen` (vulnerable or indeterminate in the assessment, or compromise evidence),
 *   `fixed` (the same product with a build read, and the CVE in neither list: the knowledge base says that build
 *   is not vulnerable; a CU-precision build whose security update is not visible is indeterminate, so it never
 *   counts as fixed), `gone` (a scan covering the ip:port found it closed, or not this product), or nothing.
 *   A timeout, an unreachable host or a feed that does not speak of the port is no evidence: it never closes.
 * - open + seen: stays open (`verified` when the verdict becomes vulnerable, `changed` when it becomes
 *   indeterminate); open + fixed: closed `patched`; open + gone: closed `service-gone`.
 * - closed (patched, service-gone, left-scope) + seen: within 90 days of closing it reopens (first seen kept);
 *   later it is a new finding.
 * - closed by an analyst (false-positive, accepted-risk): evidence only updates `present`; once the expiry has
 *   passed, a finding still present comes back (`reopened`).
 * - Evidence older than the latest evidence already applied never moves the state (a late feed report).
 */
import { TocsinError } from '../core/errors.js';
import {
  AUTO_CLOSE_REASONS,
  COMPROMISED,
  type AnalystCloseReason,
  type AutoCloseReason,
  type CloseReason,
  type Evidence,
  type FindingSnapshot,
  type FindingVerdict,
} from './types.js';

/** A finding that reappears within this long after closing is reopened; later, a new finding is opened. */
export const REOPEN_WINDOW_DAYS = 90;
export const REOPEN_WINDOW_MS = REOPEN_WINDOW_DAYS * 24 * 3600 * 1000;

export type EvidenceEffect =
  | { readonly kind: 'seen'; readonly verdict: FindingVerdict }
  | { readonly kind: 'fixed' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'none' };

/** What one piece of evidence says about one CVE of a finding whose product is `product`. */
export function effectOn(cve: string, product: string | null, e: Evidence): EvidenceEffect {
  if (e.kind === 'compromised') return cve === COMPROMISED ? { kind: 'seen', verdict: 'compromised' } : { kind: 'none' };
  if (cve === COMPROMISED) return { kind: 'none' }; // compromise is not undone by a patch or a closed port
  if (e.kind === 'gone') return { kind: 'gone' };
  if (e.vulnerable.includes(cve)) return { kind: 'seen', verdict: 'vulnerable' };
  if (e.indeterminate.includes(cve)) return { kind: 'seen', verdict: 'indeterminate' };
  if (e.product !== product) return e.fromScan ? { kind: 'gone' } : { kind: 'none' };
  return e.buildKnown ? { kind: 'fixed' } : { kind: 'none' };
}

export type Step =
  /** No finding yet and the CVE is seen: open one. */
  | { readonly action: 'open'; readonly verdict: FindingVerdict }
  /** Evidence applies without a state change (last seen, present); `event` when the verdict changed. */
  | { readonly action: 'touch'; readonly verdict: FindingVerdict | null; readonly present: boolean; readonly event: 'verified' | 'changed' | null }
  | { readonly action: 'close'; readonly reason: AutoCloseReason }
  | { readonly action: 'reopen'; readonly verdict: FindingVerdict }
  /** Closed too long ago: the old finding is kept as history and a new one opened. */
  | { readonly action: 'supersede'; readonly verdict: FindingVerdict }
  | { readonly action: 'none' };

export function isAutoReason(r: CloseReason | null): r is AutoCloseReason {
  return r !== null && (AUTO_CLOSE_REASONS as readonly string[]).includes(r);
}

/** One piece of evidence applied to the current finding of (ip, port, cve), or to none. */
export function step(f: FindingSnapshot | null, cve: string, e: Evidence): Step {
  if (f === null) {
    const eff = effectOn(cve, null, e);
    return eff.kind === 'seen' ? { action: 'open', verdict: eff.verdict } : { action: 'none' };
  }
  if (e.at.getTime() < f.lastAt.getTime()) return { action: 'none' };
  const eff = effectOn(cve, f.product, e);
  if (eff.kind === 'none') return { action: 'none' };
  if (f.state === 'open') {
    if (eff.kind === 'fixed') return { action: 'close', reason: 'patched' };
    if (eff.kind === 'gone') return { action: 'close', reason: 'service-gone' };
    const event = eff.verdict === f.verdict ? null : eff.verdict === 'vulnerable' ? 'verified' : 'changed';
    return { action: 'touch', verdict: eff.verdict, present: true, event };
  }
  if (!isAutoReason(f.closeReason)) {
    // An analyst's closure: evidence is remembered; it reopens only once expired (the seen case reopens now).
    if (eff.kind === 'seen' && f.closedUntil !== null && f.closedUntil.getTime() <= e.at.getTime()) return { action: 'reopen', verdict: eff.verdict };
    return { action: 'touch', verdict: eff.kind === 'seen' ? eff.verdict : null, present: eff.kind === 'seen', event: null };
  }
  if (eff.kind !== 'seen') return { action: 'touch', verdict: null, present: false, event: null };
  const closedAt = f.closedAt?.getTime() ?? f.lastAt.getTime();
  return e.at.getTime() - closedAt <= REOPEN_WINDOW_MS ? { action: 'reopen', verdict: eff.verdict } : { action: 'supersede', verdict: eff.verdict };
}

/** A false-positive / accepted-risk closure that has expired while the CVE is still seen comes back at `now`. */
export function expired(f: FindingSnapshot, now: Date): boolean {
  return f.state === 'closed' && !isAutoReason(f.closeReason) && f.closedUntil !== null && f.closedUntil.getTime() <= now.getTime() && f.present;
}

/** Checks an analyst's closure; throws a coded error when it is not allowed. */
export function checkAnalystClose(f: Pick<FindingSnapshot, 'state'>, reason: string, until: Date | null, now: Date): AnalystCloseReason {
  if (reason !== 'false-positive' && reason !== 'accepted-risk') {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--reason must be false-positive or accepted-risk (the others are decided by scans and feeds)`);
  }
  if (until !== null && until.getTime() <= now.getTime()) throw new TocsinError('TOCSIN_ARG_INVALID', `--until must be in the future, got ${until.toISOString()}`);
  if (f.state !== 'open') throw new TocsinError('TOCSIN_FINDING_STATE', 'the finding is closed already');
  return reason;
}

/** Checks an analyst's reopening. */
export function checkAnalystReopen(f: Pick<FindingSnapshot, 'state'>, reason: string): void {
  if (reason.trim() === '') throw new TocsinError('TOCSIN_ARG_INVALID', '--reason must say why the finding is reopened');
  if (f.state !== 'closed') throw new TocsinError('TOCSIN_FINDING_STATE', 'the finding is open already');
}

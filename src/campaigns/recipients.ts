/**
 * Who gets an organisation's warning, and whether it may get one at all. Pure.
 * The chain (issue 9 §2): the organisation's security contacts, else its abuse contacts, else its technical
 * contacts, then the abuse mailbox of its networks (RPSL abuse-c), then a configured fallback (sector or national
 * CERT). Each step is tried only when the previous one bounced (5xx): a 550 moves the message down the chain.
 * Opt-outs (constituency_opt_outs.condition): `all`, `cve:CVE-...`, `source:scan|feed|<feed name>`; an expired
 * one no longer counts.
 */
import type { CampaignExposure, CampaignOrg, ContactRole, RecipientStep } from './types.js';

/** A plausible mailbox (local@domain, no spaces, no control characters, no header syntax). */
const EMAIL = /^[^\s@<>()",;:\\[\]\u0000-\u001f\u007f]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

export function isEmail(s: string): boolean {
  return s.length <= 254 && EMAIL.test(s);
}

const ROLES: readonly ContactRole[] = ['security', 'abuse', 'technical'];

/** The steps of the chain, without empty steps and without an address twice (case-insensitively). */
export function recipientChain(org: Pick<CampaignOrg, 'contacts' | 'networkAbuseMailboxes'>, fallback: string | null): RecipientStep[] {
  const seen = new Set<string>();
  const take = (emails: readonly string[]): string[] => {
    const out: string[] = [];
    for (const raw of emails) {
      const e = raw.trim();
      if (!isEmail(e) || seen.has(e.toLowerCase())) continue;
      seen.add(e.toLowerCase());
      out.push(e);
    }
    return out;
  };
  const steps: RecipientStep[] = [];
  for (const role of ROLES) {
    const emails = take(org.contacts.filter((c) => c.role === role).map((c) => c.email));
    if (emails.length > 0) steps.push({ source: role, emails });
  }
  // One network mailbox per step: each is another desk, tried in turn.
  for (const m of take(org.networkAbuseMailboxes)) steps.push({ source: 'network-abuse-mailbox', emails: [m] });
  if (fallback !== null) {
    const emails = take([fallback]);
    if (emails.length > 0) steps.push({ source: 'fallback', emails });
  }
  return steps;
}

/** The language of the message: the first step's first contact's, when a template exists for it. */
export function languageFor(org: Pick<CampaignOrg, 'contacts'>, chain: readonly RecipientStep[], available: readonly string[], fallback: string): string {
  const first = chain[0]?.emails[0]?.toLowerCase();
  const contact = org.contacts.find((c) => c.email.toLowerCase() === first);
  const lang = contact?.language?.toLowerCase().slice(0, 2) ?? null;
  return lang !== null && available.includes(lang) ? lang : fallback;
}

export interface OptOutVerdict {
  /** Exposures still to report. */
  readonly exposures: readonly CampaignExposure[];
  /** Why nothing is sent (null: something is). */
  readonly suppressed: string | null;
}

function active(o: { readonly expiresAt: string | null }, now: Date): boolean {
  return o.expiresAt === null || Date.parse(o.expiresAt) > now.getTime();
}

/** Applies an organisation's opt-outs to its exposures. */
export function applyOptOuts(org: Pick<CampaignOrg, 'optOuts'>, exposures: readonly CampaignExposure[], now: Date): OptOutVerdict {
  const conds = org.optOuts.filter((o) => active(o, now)).map((o) => o.condition.trim().toLowerCase());
  if (conds.includes('all')) return { exposures: [], suppressed: 'opt-out: all' };
  const cves = new Set(conds.filter((c) => c.startsWith('cve:')).map((c) => c.slice(4).toUpperCase()));
  const sources = new Set(conds.filter((c) => c.startsWith('source:')).map((c) => c.slice(7)));
  const kept: CampaignExposure[] = [];
  for (const e of exposures) {
    const fromFeedOnly = e.cves.every((c) => c.evidence === 'reported-by-feed');
    const feedNames = new Set(e.cves.map((c) => c.feed).filter((f): f is string => f !== null));
    if (fromFeedOnly && (sources.has('feed') || [...feedNames].some((f) => sources.has(f.toLowerCase())))) continue;
    if (!fromFeedOnly && sources.has('scan')) continue;
    const left = e.cves.filter((c) => !cves.has(c.cve));
    if (left.length === 0 && !e.compromised) continue;
    kept.push(left.length === e.cves.length ? e : { ...e, cves: left });
  }
  if (kept.length === 0 && exposures.length > 0) return { exposures: [], suppressed: `opt-out: ${conds.filter((c) => c !== '').join(', ')}` };
  return { exposures: kept, suppressed: null };
}

/**
 * Renders one organisation's warning: subject (with the ticket), text and HTML parts from the language's
 * templates, a formula-safe CSV attachment of its exposures, and the headers (Message-ID, List-Id,
 * Auto-Submitted). Pure: the templates come in compiled, the ids and the acknowledgement link come in made.
 * The organisation sees only its own exposures: the caller passes them, and nothing else reaches the data.
 */
import { csvDocument } from '../core/csv.js';
import { TocsinError } from '../core/errors.js';
import { escapeHtml, escapeText, renderTemplate, type CompiledTemplate, type TemplateValue } from './template.js';
import type { CampaignExposure, OutgoingMessage } from './types.js';

/** The three files of a template in one language (data/templates/<template>/<lang>/). */
export interface TemplateSet {
  readonly language: string;
  readonly subject: CompiledTemplate;
  readonly text: CompiledTemplate;
  readonly html: CompiledTemplate;
}

export interface MessageInput {
  readonly campaignId: number;
  readonly campaignName: string;
  readonly ticket: string;
  readonly messageId: string;
  readonly org: string;
  readonly exposures: readonly CampaignExposure[];
  /** The selection's group name (e.g. ProxyLogon) or null; the CVEs selected. */
  readonly group: string | null;
  readonly cves: readonly string[];
  readonly from: string;
  readonly to: readonly string[];
  /** The signed acknowledgement link, or null when none is configured. */
  readonly ackUrl: string | null;
  /** Where recipients learn about the sender's scanning and can opt out (TOCSIN_CONTACT_URL). */
  readonly contactUrl: string;
  /** A follow-up: the first warning it refers to (In-Reply-To/References, and a line on top of the text). */
  readonly followUpOf?: { readonly ticket: string; readonly messageId: string; readonly sentAt: string | null } | null;
}

const MSRC = 'https://msrc.microsoft.com/update-guide/vulnerability/';
/** ProxyLogon's CVEs: Microsoft shipped a one-click mitigation (EOMT) for them. */
const PROXYLOGON = new Set(['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065']);

export const CSV_COLUMNS = ['ticket', 'ip', 'port', 'hostname', 'build', 'cve', 'evidence', 'reported_by', 'compromised', 'seen_at', 'banner'] as const;

function feedName(feed: string | null): string {
  if (feed === null || feed === '') return 'a feed';
  return feed.charAt(0).toUpperCase() + feed.slice(1);
}

/** The template data: everything a template may name (docs: data/templates/README.md). */
export function templateData(m: MessageInput): { readonly [key: string]: TemplateValue } {
  const allCves = [...new Set(m.exposures.flatMap((e) => e.cves.map((c) => c.cve)))].sort();
  return {
    ticket: m.ticket,
    org: m.org,
    campaign: m.campaignName,
    cveSummary: m.group ?? (m.cves.length <= 3 ? m.cves.join(', ') : `${m.cves.slice(0, 3).join(', ')} and ${m.cves.length - 3} more`),
    exposureCount: m.exposures.length,
    compromised: m.exposures.some((e) => e.compromised),
    exposures: m.exposures.map((e) => ({
      ip: e.ip,
      port: e.port === null ? '' : String(e.port),
      hostname: e.hostname ?? '',
      build: e.build ?? '',
      banner: e.banner ?? '',
      compromised: e.compromised,
      seenAt: e.seenAt.slice(0, 10),
      cves: e.cves.map((c) => ({
        cve: c.cve,
        confirmed: c.evidence === 'confirmed-by-build',
        notVisible: c.evidence === 'update-not-visible',
        reported: c.evidence === 'reported-by-feed',
        feed: feedName(c.feed),
      })),
    })),
    updates: allCves.map((cve) => ({ cve, url: `${MSRC}${cve}` })),
    proxyLogon: allCves.some((c) => PROXYLOGON.has(c)),
    forensicsCommand: 'tocsin forensics',
    ackUrl: m.ackUrl ?? '',
    contactUrl: m.contactUrl,
    followUpTicket: m.followUpOf?.ticket ?? '',
  };
}

function evidenceWord(c: CampaignExposure['cves'][number]): string {
  if (c.evidence === 'confirmed-by-build') return 'confirmed by build';
  if (c.evidence === 'update-not-visible') return 'security update not visible';
  return `reported by ${feedName(c.feed)}`;
}

/** The attachment: one row per (service, CVE); every text cell formula-guarded and quoted by src/core/csv.ts. */
export function exposuresCsv(ticket: string, exposures: readonly CampaignExposure[]): string {
  const rows = exposures.flatMap((e) => {
    const base = (cve: string, evidence: string, feed: string): (string | number | boolean | null)[] => [
      ticket, e.ip, e.port, e.hostname, e.build, cve, evidence, feed, e.compromised, e.seenAt, e.banner === null ? null : escapeText(e.banner),
    ];
    if (e.cves.length === 0) return [base('', 'compromise reported', '')];
    return e.cves.map((c) => base(c.cve, evidenceWord(c), c.evidence === 'reported-by-feed' ? feedName(c.feed) : ''));
  });
  return csvDocument(CSV_COLUMNS, rows);
}

/** `<ticket.nonce@domain>`: ours, unique, and the same on every attempt of the message (a recipient can dedupe). */
export function makeMessageId(ticket: string, nonce: string, fromAddress: string): string {
  const domain = fromAddress.slice(fromAddress.lastIndexOf('@') + 1).replace(/[^A-Za-z0-9.-]/g, '') || 'tocsin.invalid';
  return `<${ticket}.${nonce.replace(/[^A-Za-z0-9]/g, '')}@${domain}>`;
}

function listPhrase(name: string): string {
  const words = escapeText(name).replace(/[^A-Za-z0-9 ._-]/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 60).trim();
  return words === '' ? '' : `${words} `;
}

function oneLine(name: string, v: string): string {
  if (/[\r\n\0]/.test(v)) throw new TocsinError('TOCSIN_TEMPLATE_INVALID', `header ${name} would contain a line break`);
  return v;
}

export function renderMessage(t: TemplateSet, m: MessageInput): OutgoingMessage {
  const data = templateData(m);
  const subject = renderTemplate(t.subject, data, 'header');
  const listLabel = `campaign-${m.campaignId}.${m.from.slice(m.from.lastIndexOf('@') + 1).replace(/[^A-Za-z0-9.-]/g, '') || 'tocsin.invalid'}`;
  const headers: Record<string, string> = {
    // The phrase as plain atoms: a quoted string would make the composer encode the whole header (RFC 2047), and
    // an encoded List-Id is read by no list filter.
    'List-Id': oneLine('List-Id', `${listPhrase(m.campaignName)}<${listLabel}>`),
    'Auto-Submitted': 'auto-generated',
    'X-Tocsin-Ticket': oneLine('X-Tocsin-Ticket', m.ticket),
  };
  let text = renderTemplate(t.text, data, 'text');
  let html = renderTemplate(t.html, data, 'html');
  const f = m.followUpOf;
  if (f !== undefined && f !== null) {
    // Threads with the first warning in the recipient's mail client; the ticket and Message-ID are ours (no CR/LF).
    headers['In-Reply-To'] = oneLine('In-Reply-To', f.messageId);
    headers.References = oneLine('References', f.messageId);
    const line = `This is a follow-up to ticket ${f.ticket}${f.sentAt === null ? '' : ` (sent ${f.sentAt.slice(0, 10)})`}: the exposures below were still open at our latest check.`;
    text = `${escapeText(line)}\n\n${text}`;
    const p = `<p><strong>${escapeHtml(line)}</strong></p>`;
    html = /<body[^>]*>/i.test(html) ? html.replace(/<body[^>]*>/i, (b) => `${b}\n${p}`) : `${p}\n${html}`;
  }
  return {
    from: oneLine('From', m.from),
    to: m.to.map((a) => oneLine('To', a)),
    subject: oneLine('Subject', subject),
    messageId: oneLine('Message-ID', m.messageId),
    text,
    html,
    headers,
    attachments: [{ filename: `tocsin-${m.ticket}.csv`, contentType: 'text/csv; charset=utf-8', content: exposuresCsv(m.ticket, m.exposures) }],
  };
}

/**
 * `tocsin mail ingest PATH`: delivery tracking from the mailbox the campaigns' bounces and replies arrive in
 * (issue 9 §2). Each mail is read (src/platform/mail/mailbox-reader.ts), classified (src/campaigns/dsn.ts),
 * matched to a campaign message by our Message-ID (In-Reply-To / References / the returned message) or a ticket
 * number, and then:
 * - a DSN that returns our Message-ID and whose `Action: failed` names a recipient the message went to: recorded;
 *   once every recipient of that chain step has failed, the message moves to the next contact (`queued` on the
 *   next step: security -> abuse -> technical -> network abuse mailbox -> fallback, sent by the next
 *   `campaign send`) or ends `bounced`. A DSN for an address the message never went to, or matched by the
 *   (sequential, guessable) ticket alone, is noted only: a forged or misdirected report cannot move a warning;
 * - a delayed DSN: noted only;
 * - a reply: linked (sender, date, subject, the first 4 KiB of text); an auto-reply likewise, marked as such;
 *   neither is an acknowledgement (only the signed link is);
 * - anything else: remembered as unmatched.
 * Every mail is remembered by the SHA-256 of its bytes and its Message-ID, in the same transaction as its
 * effect: ingesting the same mailbox again changes nothing.
 */
import type { Kysely } from 'kysely';
import { afterOutcome, classifyInbound, type DsnRecipient, type Inbound, type RecipientStep } from '../campaigns/index.js';
import { messageById } from '../platform/db/campaign-store.js';
import {
  applyBounce, failedRecipients, lockMessage, mailSeen, matchMessage, recordInbound, recordMail, type IngestRecord,
} from '../platform/db/mail-store.js';
import type { DbSchema } from '../platform/db/schema.js';
import { readMailbox, type MailboxEntry, type MailboxOptions } from '../platform/mail/mailbox-reader.js';

type Db = Kysely<DbSchema>;

/** Characters of a reply's text stored (the issue's "first 4 KiB"). */
export const REPLY_EXCERPT_CHARS = 4096;

export type IngestEffect =
  | 'duplicate' | 'unmatched' | 'unreadable' | 'rerouted' | 'bounced' | 'bounce-partial' | 'bounce-not-ours' | 'bounce-ignored'
  | 'delayed' | 'dsn-noted' | 'bounce-unparsed' | 'reply' | 'auto-reply';

/** One line of `mail ingest` (a published format: field names are a contract). */
export interface IngestItem {
  readonly location: string;
  readonly kind: Inbound['kind'] | 'unreadable' | 'duplicate';
  readonly effect: IngestEffect;
  readonly campaign: number | null;
  readonly org: string | null;
  readonly ticket: string | null;
  /** Hostile text from the mail (a recipient, a status, a subject): sanitise before showing. */
  readonly detail: string;
}

export interface IngestSummary {
  readonly read: number;
  readonly duplicates: number;
  readonly counts: Readonly<Record<string, number>>;
  /** Campaigns with a message moved to its next contact: `tocsin campaign send ID` sends it. */
  readonly campaignsToSend: readonly number[];
}

export interface IngestOptions extends MailboxOptions {
  onItem?(item: IngestItem): void;
}

function chainOf(chain: unknown): RecipientStep[] {
  return Array.isArray(chain) ? (chain as RecipientStep[]) : [];
}

/** The recipient of ours a DSN block is about (by Final-Recipient, else Original-Recipient), or null. */
function ours(r: DsnRecipient, sentTo: ReadonlySet<string>): string | null {
  if (r.finalRecipient !== null && sentTo.has(r.finalRecipient)) return r.finalRecipient;
  if (r.originalRecipient !== null && sentTo.has(r.originalRecipient)) return r.originalRecipient;
  return null;
}

interface Outcome {
  readonly effect: IngestEffect;
  readonly detail: string;
}

async function applyDsn(trx: Db, mailId: number, messageRowId: number, inbound: Inbound, byMessageId: boolean): Promise<Outcome> {
  const m = await lockMessage(trx, messageRowId);
  if (m === null) return { effect: 'unmatched', detail: 'the message is gone' };
  const chain = chainOf(m.chain);
  const sent = new Set((m.sentTo ?? chain[m.step]?.emails ?? []).map((e) => e.toLowerCase()));
  const failedNow: DsnRecipient[] = [];
  const unverified: DsnRecipient[] = [];
  let delayed = 0;
  let notOurs = 0;
  for (const r of inbound.recipients) {
    const who = ours(r, sent);
    const base = { messageRowId, mailId, step: m.step, finalRecipient: r.finalRecipient, action: r.action, status: r.status, diagnostic: r.diagnostic };
    if (who === null) {
      notOurs++;
      await recordInbound(trx, { ...base, kind: 'dsn-other', effect: 'noted: not a recipient of this message' });
    } else if (r.failed && !byMessageId) {
      // Tickets are sequential, so guessable; our Message-IDs carry a random part. Only a report that returns the
      // Message-ID may move a warning.
      unverified.push(r);
      await recordInbound(trx, { ...base, finalRecipient: who, kind: 'dsn-other', effect: 'noted: failed, but matched by ticket only' });
    } else if (r.failed) {
      failedNow.push(r);
      await recordInbound(trx, { ...base, finalRecipient: who, kind: 'bounce', effect: 'failed' });
    } else if (r.action === 'delayed') {
      delayed++;
      await recordInbound(trx, { ...base, finalRecipient: who, kind: 'delay', effect: 'noted: delayed' });
    } else {
      await recordInbound(trx, { ...base, finalRecipient: who, kind: 'dsn-other', effect: `noted: ${r.action}` });
    }
  }
  const statusText = (r: DsnRecipient): string => `${r.finalRecipient ?? '?'} ${r.status ?? ''} ${r.diagnostic ?? ''}`.replace(/\s+/g, ' ').trim();
  if (failedNow.length === 0) {
    if (unverified.length > 0) return { effect: 'bounce-ignored', detail: `matched by ticket only (no Message-ID of ours in the report): ${unverified.map(statusText).join('; ')}` };
    if (delayed > 0) return { effect: 'delayed', detail: inbound.recipients.map(statusText).join('; ') };
    if (notOurs > 0) return { effect: 'bounce-not-ours', detail: inbound.recipients.map((r) => r.finalRecipient ?? '?').join(', ') };
    return { effect: 'dsn-noted', detail: inbound.recipients.map(statusText).join('; ') };
  }
  if (m.state !== 'sent' && m.state !== 'uncertain') {
    return { effect: 'bounce-ignored', detail: `the message is ${m.state}: ${failedNow.map(statusText).join('; ')}` };
  }
  const failed = await failedRecipients(trx, messageRowId, m.step);
  const left = [...sent].filter((a) => !failed.has(a));
  if (left.length > 0) return { effect: 'bounce-partial', detail: `${failedNow.map(statusText).join('; ')}; still delivered to ${left.length} other recipient(s)` };
  const reply = `DSN: ${failedNow.map(statusText).join('; ')}`.slice(0, 500);
  const patch = afterOutcome({ step: m.step, steps: chain.length, transientFailures: m.transientFailures }, { kind: 'permanent', reply }, new Date());
  const reason = patch.state === 'queued' ? `bounced after delivery (${reply}): next contact, ${chain[patch.step]?.source ?? '?'}` : `bounced after delivery, no contact left (${reply})`;
  const changed = await applyBounce(trx, messageRowId, m.step, { state: patch.state, step: patch.step, reason });
  if (!changed) return { effect: 'bounce-ignored', detail: 'the message changed meanwhile' };
  if (patch.state === 'queued') return { effect: 'rerouted', detail: `${reply} -> ${chain[patch.step]?.source ?? '?'}: ${(chain[patch.step]?.emails ?? []).join(', ')}` };
  return { effect: 'bounced', detail: reply };
}

async function ingestOne(db: Db, e: MailboxEntry): Promise<IngestItem> {
  const inbound = classifyInbound(e.raw.toString('latin1'), e.summary?.subject ?? null);
  const mailMessageId = inbound.messageId ?? e.summary?.messageId ?? null;
  if (await mailSeen(db, e.sha256, mailMessageId)) {
    return { location: e.location, kind: 'duplicate', effect: 'duplicate', campaign: null, org: null, ticket: null, detail: 'ingested before' };
  }
  const kind: IngestRecord['kind'] = e.summary === null && inbound.kind === 'other' ? 'unreadable' : inbound.kind;
  const match = inbound.kind === 'other' ? null : await matchMessage(db, inbound.refersTo, inbound.tickets);
  const messageRowId = match?.id ?? null;
  const result = await db.transaction().execute(async (trx): Promise<Outcome | null> => {
    let outcome: Outcome;
    if (kind === 'unreadable') outcome = { effect: 'unreadable', detail: e.parseError ?? 'unreadable' };
    else if (messageRowId === null) outcome = { effect: 'unmatched', detail: e.summary?.subject ?? '' };
    else if (kind === 'dsn') outcome = { effect: 'dsn-noted', detail: '' }; // decided after the mail is recorded
    else if (kind === 'bounce-unparsed') outcome = { effect: 'bounce-unparsed', detail: 'a bounce without a delivery-status report: not acted on, check it by hand' };
    else outcome = { effect: kind === 'auto-reply' ? 'auto-reply' : 'reply', detail: `${e.summary?.from ?? '?'}: ${e.summary?.subject ?? ''}${inbound.autoReason === null ? '' : ` (${inbound.autoReason})`}` };
    const mailId = await recordMail(trx, { sha256: e.sha256, mailMessageId, kind, messageRowId, effect: outcome.effect, location: e.location, bytes: e.size });
    if (mailId === null) return null; // recorded by a concurrent ingest
    if (messageRowId === null) return outcome;
    if (kind === 'dsn') {
      outcome = await applyDsn(trx, mailId, messageRowId, inbound, match?.by === 'message-id');
      await trx.updateTable('mail_ingested').set({ effect: outcome.effect }).where('id', '=', mailId).execute();
    } else {
      const m = await lockMessage(trx, messageRowId);
      const isReply = kind === 'reply' || kind === 'auto-reply';
      await recordInbound(trx, {
        messageRowId, mailId, kind: isReply ? kind : 'dsn-other', step: m?.step ?? 0,
        from: e.summary?.from ?? null, subject: e.summary?.subject?.slice(0, 1000) ?? null, date: e.summary?.date ?? null,
        excerpt: isReply ? (e.summary?.text ?? '').slice(0, REPLY_EXCERPT_CHARS) : null, effect: outcome.effect,
      });
    }
    return outcome;
  });
  if (result === null) return { location: e.location, kind: 'duplicate', effect: 'duplicate', campaign: null, org: null, ticket: null, detail: 'ingested meanwhile' };
  const m = messageRowId === null ? null : await messageById(db, messageRowId);
  return { location: e.location, kind, effect: result.effect, campaign: m?.campaignId ?? null, org: m?.orgName ?? null, ticket: m?.ticket ?? null, detail: result.detail };
}

/** Reads every mail of a Maildir or mbox and applies what it says (see the file comment). */
export async function ingestMailbox(db: Db, path: string, opts: IngestOptions = {}): Promise<IngestSummary> {
  let read = 0;
  let duplicates = 0;
  const counts: Record<string, number> = {};
  const toSend = new Set<number>();
  for await (const e of readMailbox(path, opts)) {
    read++;
    const item = await ingestOne(db, e);
    if (item.effect === 'duplicate') duplicates++;
    counts[item.effect] = (counts[item.effect] ?? 0) + 1;
    if (item.effect === 'rerouted' && item.campaign !== null) toSend.add(item.campaign);
    opts.onItem?.(item);
  }
  return { read, duplicates, counts, campaignsToSend: [...toSend].sort((a, b) => a - b) };
}

export { campaignInbound, type InboundRow } from '../platform/db/mail-store.js';

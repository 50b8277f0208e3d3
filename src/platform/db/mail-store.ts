/**
 * Delivery tracking and follow-up queries (migration 0015; the outbox itself is campaign-store.ts). Queries only:
 * what a bounce or a reply means is decided in src/campaigns/dsn.ts and src/services/mail-ingest.ts.
 */
import { sql, type Kysely } from 'kysely';
import type { DbSchema } from './schema.js';

type Db = Kysely<DbSchema>;

/** Has a mail with these bytes, or this Message-ID, been ingested before? */
export async function mailSeen(db: Db, sha256: string, messageId: string | null): Promise<boolean> {
  let q = db.selectFrom('mail_ingested').select('id').where('sha256', '=', sha256);
  if (messageId !== null) q = db.selectFrom('mail_ingested').select('id').where((eb) => eb.or([eb('sha256', '=', sha256), eb('mail_message_id', '=', messageId)]));
  return (await q.limit(1).executeTakeFirst()) !== undefined;
}

/** The campaign message one of these Message-IDs (ours) names, else the one with the first ticket found (and which matched); null when none. */
export async function matchMessage(db: Db, messageIds: readonly string[], tickets: readonly string[]): Promise<{ id: number; by: 'message-id' | 'ticket' } | null> {
  if (messageIds.length > 0) {
    const r = await db.selectFrom('campaign_messages').select(['id', 'message_id']).where('message_id', 'in', [...messageIds]).execute();
    for (const mid of messageIds) {
      const hit = r.find((x) => x.message_id === mid);
      if (hit !== undefined) return { id: hit.id, by: 'message-id' };
    }
  }
  for (const t of tickets) {
    const r = await db.selectFrom('campaign_messages').select('id').where('ticket', '=', t).executeTakeFirst();
    if (r !== undefined) return { id: r.id, by: 'ticket' };
  }
  return null;
}

export interface IngestRecord {
  readonly sha256: string;
  readonly mailMessageId: string | null;
  readonly kind: 'dsn' | 'reply' | 'auto-reply' | 'bounce-unparsed' | 'other' | 'unreadable';
  readonly messageRowId: number | null;
  readonly effect: string;
  readonly location: string;
  readonly bytes: number;
}

/** Remembers a mail; false when another ingest recorded the same bytes meanwhile (nothing else is then written). */
export async function recordMail(trx: Db, r: IngestRecord): Promise<number | null> {
  const row = await trx.insertInto('mail_ingested').values({
    sha256: r.sha256, mail_message_id: r.mailMessageId, kind: r.kind, message_id: r.messageRowId, effect: r.effect, location: r.location, bytes: r.bytes,
  }).onConflict((oc) => oc.column('sha256').doNothing()).returning('id').executeTakeFirst();
  return row?.id ?? null;
}

export interface InboundRecord {
  readonly messageRowId: number;
  readonly mailId: number;
  readonly kind: 'bounce' | 'delay' | 'reply' | 'auto-reply' | 'dsn-other';
  readonly step: number;
  readonly from?: string | null;
  readonly subject?: string | null;
  readonly date?: Date | null;
  readonly excerpt?: string | null;
  readonly finalRecipient?: string | null;
  readonly action?: string | null;
  readonly status?: string | null;
  readonly diagnostic?: string | null;
  readonly effect: string;
}

export async function recordInbound(trx: Db, r: InboundRecord): Promise<void> {
  await trx.insertInto('campaign_inbound').values({
    message_id: r.messageRowId, mail_id: r.mailId, kind: r.kind, step: r.step, from_addr: r.from ?? null, subject: r.subject ?? null,
    mail_date: r.date ?? null, excerpt: r.excerpt ?? null, final_recipient: r.finalRecipient ?? null, dsn_action: r.action ?? null,
    dsn_status: r.status ?? null, diagnostic: r.diagnostic ?? null, effect: r.effect,
  }).execute();
}

/** Recipients reported failed (DSN) for a message on a chain step, lower case. */
export async function failedRecipients(trx: Db, messageRowId: number, step: number): Promise<Set<string>> {
  const rows = await trx.selectFrom('campaign_inbound').select('final_recipient').where('message_id', '=', messageRowId)
    .where('step', '=', step).where('kind', '=', 'bounce').execute();
  return new Set(rows.map((r) => (r.final_recipient ?? '').toLowerCase()).filter((x) => x !== ''));
}

/** Locks the message row for the rest of the transaction and returns what a bounce decision needs. */
export async function lockMessage(trx: Db, id: number): Promise<{ state: string; step: number; chain: unknown; sentTo: string[] | null; transientFailures: number } | null> {
  const r = await trx.selectFrom('campaign_messages').select(['state', 'step', 'chain', 'sent_to', 'transient_failures']).where('id', '=', id).forUpdate().executeTakeFirst();
  return r === undefined ? null : { state: r.state, step: r.step, chain: r.chain, sentTo: r.sent_to, transientFailures: r.transient_failures };
}

/**
 * A bounce after the relay accepted: the message goes to the next step of its chain (`queued`, sent by the next
 * `campaign send`) or ends `bounced`. Only from `sent`/`uncertain` on the step the bounce is about, so a message
 * that moved on meanwhile is left alone. Returns whether the row changed.
 */
export async function applyBounce(trx: Db, id: number, fromStep: number, p: { state: string; step: number; reason: string }): Promise<boolean> {
  const r = await trx.updateTable('campaign_messages')
    .set({ state: p.state, step: p.step, reason: p.reason, transient_failures: 0, next_attempt_at: null, updated_at: sql<Date>`now()` })
    .where('id', '=', id).where('step', '=', fromStep).where('state', 'in', ['sent', 'uncertain']).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export interface InboundRow {
  readonly org: string;
  readonly ticket: string;
  readonly kind: string;
  readonly step: number;
  readonly from: string | null;
  readonly subject: string | null;
  readonly date: Date | null;
  readonly excerpt: string | null;
  readonly finalRecipient: string | null;
  readonly status: string | null;
  readonly effect: string;
  readonly at: Date;
}

/** What came back for a campaign's messages, oldest first. */
export async function campaignInbound(db: Db, campaignId: number): Promise<InboundRow[]> {
  const rows = await db.selectFrom('campaign_inbound as i').innerJoin('campaign_messages as m', 'm.id', 'i.message_id')
    .select(['m.org_name', 'm.ticket', 'i.kind', 'i.step', 'i.from_addr', 'i.subject', 'i.mail_date', 'i.excerpt', 'i.final_recipient', 'i.dsn_status', 'i.effect', 'i.at'])
    .where('m.campaign_id', '=', campaignId).orderBy('i.id').execute();
  return rows.map((r) => ({
    org: r.org_name, ticket: r.ticket, kind: r.kind, step: r.step, from: r.from_addr, subject: r.subject, date: r.mail_date, excerpt: r.excerpt,
    finalRecipient: r.final_recipient, status: r.dsn_status, effect: r.effect, at: r.at,
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// follow-ups

/** (message row, ip, port, CVE) of a campaign's frozen exposures whose current finding is still open. */
export async function stillOpen(db: Db, campaignId: number): Promise<Array<{ messageId: number; ip: string; port: number | null; cve: string }>> {
  const r = await sql<{ message_id: number; ip: string; port: number | null; cve: string }>`
    SELECT DISTINCT m.id AS message_id, x->>'ip' AS ip, (x->>'port')::int AS port, v->>'cve' AS cve
    FROM campaign_messages m
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(m.exposures) = 'array' THEN m.exposures ELSE '[]'::jsonb END) x
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(x->'cves') = 'array' THEN x->'cves' ELSE '[]'::jsonb END) v
    JOIN findings f ON f.current AND f.state = 'open' AND f.ip = (x->>'ip')::inet
                   AND coalesce(f.port, -1) = coalesce((x->>'port')::int, -1) AND f.cve = v->>'cve'
    WHERE m.campaign_id = ${campaignId}`.execute(db);
  return r.rows.map((x) => ({ messageId: Number(x.message_id), ip: x.ip, port: x.port, cve: x.cve }));
}

/** Campaigns (not cancelled) whose selection says they follow `campaignId`. */
export async function followUpCampaigns(db: Db, campaignId: number): Promise<number[]> {
  const r = await sql<{ id: number }>`SELECT id FROM campaigns WHERE state <> 'cancelled' AND selection->>'followUpOf' = ${String(campaignId)} ORDER BY id`.execute(db);
  return r.rows.map((x) => Number(x.id));
}

/** Per organisation of the follow-up campaigns: the latest sent time, and whether one is still on its way. */
export async function followUpStateByOrg(db: Db, campaignIds: readonly number[]): Promise<Map<number, { lastSentAt: Date | null; pending: boolean }>> {
  const out = new Map<number, { lastSentAt: Date | null; pending: boolean }>();
  if (campaignIds.length === 0) return out;
  const rows = await db.selectFrom('campaign_messages').select(['org_id', 'state', 'sent_at']).where('campaign_id', 'in', [...campaignIds]).execute();
  for (const r of rows) {
    const o = out.get(r.org_id) ?? { lastSentAt: null, pending: false };
    if (r.sent_at !== null && (o.lastSentAt === null || r.sent_at > o.lastSentAt)) o.lastSentAt = r.sent_at;
    if (['queued', 'deferred', 'sending', 'uncertain'].includes(r.state)) o.pending = true;
    out.set(r.org_id, o);
  }
  return out;
}

/** For a follow-up campaign: the first warning to each organisation (ticket, Message-ID, when it was sent). */
export async function firstWarnings(db: Db, followUpOf: number): Promise<Map<number, { ticket: string; messageId: string; sentAt: Date | null }>> {
  const rows = await db.selectFrom('campaign_messages').select(['org_id', 'ticket', 'message_id', 'sent_at']).where('campaign_id', '=', followUpOf).execute();
  return new Map(rows.map((r) => [r.org_id, { ticket: r.ticket, messageId: r.message_id, sentAt: r.sent_at }]));
}

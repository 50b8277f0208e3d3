/**
 * Campaign storage and the durable outbox (migration 0013). Queries only: what a state change means is decided
 * in src/campaigns/outbox.ts and driven by src/services/campaigns.ts.
 *
 * Durability rules kept here:
 * - one message per (campaign, organisation): the unique key, written once when the campaign is created;
 * - `claim` commits `sending` (+ the attempt row) BEFORE the SMTP transaction starts; `finish` commits its outcome
 *   after; a kill between the two leaves `sending`, which `sweepInFlight` (run under the send lock, so no live
 *   sender owns it) turns into `uncertain`;
 * - one sender per campaign: a session-level advisory lock on a connection held for the whole send (released by
 *   the server when that connection dies, so a killed sender never leaves it held).
 */
import { sql, type Kysely } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import type { DbSchema, Json } from './schema.js';

/** Arbitrary constant naming "campaign send" among two-key advisory locks (the second key is the campaign id). */
const SEND_LOCK_CLASS = 730_513;

export type CampaignState = 'draft' | 'approved' | 'cancelled';

export interface CampaignRow {
  readonly id: number;
  readonly name: string;
  readonly selection: Json;
  readonly template: string;
  readonly languageDefault: string;
  readonly state: CampaignState;
  readonly unattributed: number;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly approvedAt: Date | null;
  readonly approvedBy: string | null;
  readonly cancelledAt: Date | null;
  readonly cancelledBy: string | null;
}

export interface NewMessage {
  readonly orgId: number;
  readonly orgName: string;
  readonly language: string;
  readonly exposures: Json;
  readonly chain: Json;
  /** queued, or suppressed with its reason. */
  readonly state: 'queued' | 'suppressed';
  readonly reason: string | null;
}

export interface MessageRow {
  readonly id: number;
  readonly campaignId: number;
  readonly orgId: number;
  readonly orgName: string;
  readonly ticket: string;
  readonly messageId: string;
  readonly language: string;
  readonly exposures: Json;
  readonly chain: Json;
  readonly step: number;
  readonly state: string;
  readonly reason: string | null;
  readonly attempts: number;
  readonly transientFailures: number;
  readonly nextAttemptAt: Date | null;
  readonly smtpReply: string | null;
  readonly sentTo: readonly string[] | null;
  readonly sentAt: Date | null;
  readonly acknowledgedAt: Date | null;
}

function toCampaign(r: {
  id: number; name: string; selection: Json; template: string; language_default: string; state: CampaignState; unattributed: number;
  created_at: Date; created_by: string; approved_at: Date | null; approved_by: string | null; cancelled_at: Date | null; cancelled_by: string | null;
}): CampaignRow {
  return {
    id: r.id, name: r.name, selection: r.selection, template: r.template, languageDefault: r.language_default, state: r.state,
    unattributed: r.unattributed, createdAt: r.created_at, createdBy: r.created_by, approvedAt: r.approved_at, approvedBy: r.approved_by,
    cancelledAt: r.cancelled_at, cancelledBy: r.cancelled_by,
  };
}

export const MESSAGE_COLUMNS = [
  'id', 'campaign_id', 'org_id', 'org_name', 'ticket', 'message_id', 'language', 'exposures', 'chain', 'step', 'state', 'reason',
  'attempts', 'transient_failures', 'next_attempt_at', 'smtp_reply', 'sent_to', 'sent_at', 'acknowledged_at',
] as const;

export type MessageSelect = {
  id: number; campaign_id: number; org_id: number; org_name: string; ticket: string; message_id: string; language: string;
  exposures: Json; chain: Json; step: number; state: string; reason: string | null; attempts: number; transient_failures: number;
  next_attempt_at: Date | null; smtp_reply: string | null; sent_to: string[] | null; sent_at: Date | null; acknowledged_at: Date | null;
};

export function toMessage(r: MessageSelect): MessageRow {
  return {
    id: r.id, campaignId: r.campaign_id, orgId: r.org_id, orgName: r.org_name, ticket: r.ticket, messageId: r.message_id,
    language: r.language, exposures: r.exposures, chain: r.chain, step: r.step, state: r.state, reason: r.reason, attempts: r.attempts,
    transientFailures: r.transient_failures, nextAttemptAt: r.next_attempt_at, smtpReply: r.smtp_reply, sentTo: r.sent_to,
    sentAt: r.sent_at, acknowledgedAt: r.acknowledged_at,
  };
}

/** A campaign id as typed (digits only), or null. */
export function parseCampaignId(s: string): number | null {
  return /^\d{1,15}$/.test(s.trim()) ? Number(s.trim()) : null;
}

export async function getCampaign(db: Kysely<DbSchema>, id: number): Promise<CampaignRow | null> {
  const r = await db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirst();
  return r === undefined ? null : toCampaign(r);
}

export async function requireCampaign(db: Kysely<DbSchema>, id: number): Promise<CampaignRow> {
  const c = await getCampaign(db, id);
  if (c === null) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `no campaign with id ${id}`);
  return c;
}

/**
 * Stores a campaign and its outbox in one transaction: every message gets a ticket (YYYYMMDD-NNNNNNNN, from
 * `campaign_ticket_seq`) and a Message-ID made by `messageIdOf(ticket)`. Returns the campaign id.
 */
export async function insertCampaign(
  db: Kysely<DbSchema>,
  c: { readonly name: string; readonly selection: Json; readonly template: string; readonly languageDefault: string; readonly unattributed: number; readonly createdBy: string },
  messages: readonly NewMessage[],
  ticketOf: (n: number, createdAt: Date) => string,
  messageIdOf: (ticket: string) => string,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.insertInto('campaigns').values({
      name: c.name, selection: JSON.stringify(c.selection), template: c.template, language_default: c.languageDefault,
      unattributed: c.unattributed, created_by: c.createdBy,
    }).returning(['id', 'created_at']).executeTakeFirstOrThrow();
    if (messages.length > 0) {
      const numbers = (await sql<{ n: number }>`SELECT nextval('campaign_ticket_seq')::int8 AS n FROM generate_series(1, ${messages.length}::int)`.execute(trx)).rows;
      const values = messages.map((m, i) => {
        const ticket = ticketOf(numbers[i]!.n, row.created_at);
        return {
          campaign_id: row.id, org_id: m.orgId, org_name: m.orgName, ticket, message_id: messageIdOf(ticket), language: m.language,
          exposures: JSON.stringify(m.exposures), chain: JSON.stringify(m.chain), state: m.state, reason: m.reason,
        };
      });
      for (let i = 0; i < values.length; i += 1000) await trx.insertInto('campaign_messages').values(values.slice(i, i + 1000)).execute();
    }
    return row.id;
  });
}

export interface CampaignListRow extends CampaignRow {
  readonly counts: Readonly<Record<string, number>>;
}

/** Campaigns in id order; `page` reads one keyset page (ids above `afterId`, at most `limit`) for a streamed download. */
export async function listCampaigns(db: Kysely<DbSchema>, page?: { readonly afterId: number; readonly limit: number }): Promise<CampaignListRow[]> {
  let q = db.selectFrom('campaigns').selectAll().orderBy('id');
  if (page !== undefined) q = q.where('id', '>', page.afterId).limit(page.limit);
  const rows = await q.execute();
  if (rows.length === 0) return [];
  let cq = db.selectFrom('campaign_messages').select(['campaign_id', 'state', db.fn.countAll<number>().as('n')]);
  // A page counts only its own campaigns' messages (the whole list counts them all in one pass).
  if (page !== undefined) cq = cq.where('campaign_id', 'in', rows.map((r) => r.id));
  const counts = await cq.groupBy(['campaign_id', 'state']).execute();
  return rows.map((r) => {
    const c: Record<string, number> = {};
    for (const x of counts) if (x.campaign_id === r.id) c[x.state] = Number(x.n);
    return { ...toCampaign(r), counts: c };
  });
}

/** The campaign's messages in organisation-name order; `orgName` narrows to one (case-insensitively). */
export async function campaignMessages(db: Kysely<DbSchema>, campaignId: number, orgName?: string): Promise<MessageRow[]> {
  let q = db.selectFrom('campaign_messages').select([...MESSAGE_COLUMNS]).where('campaign_id', '=', campaignId);
  if (orgName !== undefined) q = q.where(sql<boolean>`lower(org_name) = lower(${orgName})`);
  return (await q.orderBy(sql`lower(org_name)`).orderBy('id').execute()).map(toMessage);
}

export async function setCampaignState(
  db: Kysely<DbSchema>, id: number, state: 'approved' | 'cancelled', who: string,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (state === 'approved') {
      await trx.updateTable('campaigns').set({ state, approved_at: sql<Date>`now()`, approved_by: who }).where('id', '=', id).execute();
    } else {
      await trx.updateTable('campaigns').set({ state, cancelled_at: sql<Date>`now()`, cancelled_by: who }).where('id', '=', id).execute();
      // What has not gone out stays unsent; what is in flight or sent keeps its state (it may have arrived).
      await trx.updateTable('campaign_messages').set({ state: 'cancelled', reason: `campaign cancelled by ${who}`, updated_at: sql<Date>`now()` })
        .where('campaign_id', '=', id).where('state', 'in', ['queued', 'deferred']).execute();
    }
  });
}

/** How long a busy send lock is asked again before TOCSIN_CAMPAIGN_BUSY, and how often. */
const SEND_LOCK_PATIENCE_MS = 5_000;
const SEND_LOCK_RETRY_MS = 100;

/**
 * Runs `fn` holding the campaign's send lock (session-level, on a connection of its own for the whole run).
 * @throws TocsinError TOCSIN_CAMPAIGN_BUSY when another session still holds it after SEND_LOCK_PATIENCE_MS
 */
export async function withSendLock<T>(db: Kysely<DbSchema>, campaignId: number, fn: () => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    // A sender that was just killed (kill -9, a closed terminal) still holds the lock until its server backend notices
    // the closed socket, which under load takes a moment: a send started right after it would be refused although
    // nobody is sending (seen in CI). So a busy lock is asked again for a few seconds before the answer is "busy".
    let got = false;
    for (let waited = 0; ; waited += SEND_LOCK_RETRY_MS) {
      got = (await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${SEND_LOCK_CLASS}::int4, ${campaignId}::int4) AS ok`.execute(conn)).rows[0]?.ok === true;
      if (got || waited >= SEND_LOCK_PATIENCE_MS) break;
      await new Promise((resolve) => setTimeout(resolve, SEND_LOCK_RETRY_MS));
    }
    if (!got) throw new TocsinError('TOCSIN_CAMPAIGN_BUSY', `campaign ${campaignId} is being sent by another process`);
    try {
      return await fn();
    } finally {
      await sql`SELECT pg_advisory_unlock(${SEND_LOCK_CLASS}::int4, ${campaignId}::int4)`.execute(conn).catch(() => undefined);
    }
  });
}

/**
 * Messages left `sending` by a sender that died (call under the send lock: no live sender owns them) become
 * `uncertain`, and their open attempts `killed`. Returns their organisations.
 */
export async function sweepInFlight(db: Kysely<DbSchema>, campaignId: number): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx.updateTable('campaign_messages')
      .set({ state: 'uncertain', reason: 'the sender stopped during the SMTP transaction: it may have been delivered; resend only after checking', updated_at: sql<Date>`now()` })
      .where('campaign_id', '=', campaignId).where('state', '=', 'sending').returning(['id', 'org_name']).execute();
    if (rows.length > 0) {
      await trx.updateTable('campaign_attempts').set({ outcome: 'killed', finished_at: sql<Date>`now()` })
        .where('message_id', 'in', rows.map((r) => r.id)).where('outcome', 'is', null).execute();
    }
    return rows.map((r) => r.org_name);
  });
}

/** Ids of the messages a send may pick up now (queued, or deferred and due), in id order. */
export async function sendableIds(db: Kysely<DbSchema>, campaignId: number, now: Date): Promise<number[]> {
  const rows = await db.selectFrom('campaign_messages').select('id').where('campaign_id', '=', campaignId)
    .where((eb) => eb.or([eb('state', '=', 'queued'), eb.and([eb('state', '=', 'deferred'), eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', now)])])]))
    .orderBy('id').execute();
  return rows.map((r) => r.id);
}

/** The earliest retry time of the deferred messages, or null. */
export async function nextRetryAt(db: Kysely<DbSchema>, campaignId: number): Promise<Date | null> {
  const r = await db.selectFrom('campaign_messages').select((eb) => eb.fn.min('next_attempt_at').as('t'))
    .where('campaign_id', '=', campaignId).where('state', '=', 'deferred').executeTakeFirst();
  return (r?.t as Date | null | undefined) ?? null;
}

/**
 * Marks a message `sending` with its next attempt number and records the attempt, committed before any byte is
 * sent. Returns null when the row is no longer sendable (cancelled meanwhile).
 */
export async function claimMessage(db: Kysely<DbSchema>, id: number, recipients: (m: MessageRow) => readonly string[], now: Date): Promise<{ message: MessageRow; attempt: number; recipients: readonly string[] } | null> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('campaign_messages').select([...MESSAGE_COLUMNS]).where('id', '=', id)
      .where('state', 'in', ['queued', 'deferred']).forUpdate().executeTakeFirst();
    if (row === undefined) return null;
    const message = toMessage(row);
    const to = recipients(message);
    const attempt = message.attempts + 1;
    await trx.updateTable('campaign_messages').set({ state: 'sending', attempts: attempt, updated_at: sql<Date>`now()` }).where('id', '=', id).execute();
    await trx.insertInto('campaign_attempts').values({ message_id: id, attempt, step: message.step, recipients: to, started_at: now }).execute();
    return { message, attempt, recipients: to };
  });
}

export interface FinishPatch {
  readonly state: string;
  readonly step: number;
  readonly transientFailures: number;
  readonly nextAttemptAt: Date | null;
  readonly reason: string | null;
  readonly outcome: 'accepted' | 'transient' | 'permanent' | 'uncertain';
  readonly reply: string;
  readonly recipients: readonly string[];
}

/** Stores an attempt's outcome and the message's next state in one transaction. */
export async function finishAttempt(db: Kysely<DbSchema>, id: number, attempt: number, p: FinishPatch): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const sent = p.state === 'sent';
    await trx.updateTable('campaign_messages').set({
      state: p.state, step: p.step, transient_failures: p.transientFailures, next_attempt_at: p.nextAttemptAt, reason: p.reason,
      smtp_reply: p.reply,
      ...(sent ? { sent_to: p.recipients, sent_at: sql<Date>`now()` } : {}),
      updated_at: sql<Date>`now()`,
    }).where('id', '=', id).where('state', '=', 'sending').execute();
    await trx.updateTable('campaign_attempts').set({ outcome: p.outcome, reply: p.reply, finished_at: sql<Date>`now()` })
      .where('message_id', '=', id).where('attempt', '=', attempt).execute();
    if (sent) await recordFindingEvents(trx, id, 'notified');
  });
}

/**
 * Appends `notified` / `acknowledged` to the history of the current findings (migration 0009) that the message
 * told about (its frozen exposures: ip, port, CVE), in the caller's transaction: the event and the outbox state
 * commit together. Returns how many events were written.
 */
export async function recordFindingEvents(trx: Kysely<DbSchema>, messageRowId: number | readonly number[], kind: 'notified' | 'acknowledged'): Promise<number> {
  const ids = typeof messageRowId === 'number' ? [messageRowId] : [...messageRowId];
  if (ids.length === 0) return 0;
  const r = await sql`
    INSERT INTO finding_events (finding_id, kind, at, who, detail)
    SELECT DISTINCT ON (m.id, f.id) f.id, ${kind}, now(), 'campaign:' || m.campaign_id,
           jsonb_build_object('campaign', m.campaign_id, 'ticket', m.ticket, 'messageId', m.message_id)
    FROM campaign_messages m
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(m.exposures) = 'array' THEN m.exposures ELSE '[]'::jsonb END) x
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(x->'cves') = 'array' THEN x->'cves' ELSE '[]'::jsonb END) v
    JOIN findings f ON f.current AND f.ip = (x->>'ip')::inet AND coalesce(f.port, -1) = coalesce((x->>'port')::int, -1) AND f.cve = v->>'cve'
    WHERE m.id = ANY(${ids}::int8[])`.execute(trx);
  return Number(r.numAffectedRows ?? 0);
}

/** Analyst's decision after checking: an uncertain or bounced message goes back to the queue. */
export async function requeueMessage(db: Kysely<DbSchema>, id: number, who: string): Promise<void> {
  await db.updateTable('campaign_messages')
    .set({ state: 'queued', reason: `resend confirmed by ${who}`, transient_failures: 0, next_attempt_at: null, updated_at: sql<Date>`now()` })
    .where('id', '=', id).where('state', 'in', ['uncertain', 'bounced']).execute();
}

export async function messageById(db: Kysely<DbSchema>, id: number): Promise<MessageRow | null> {
  const r = await db.selectFrom('campaign_messages').select([...MESSAGE_COLUMNS]).where('id', '=', id).executeTakeFirst();
  return r === undefined ? null : toMessage(r);
}

/** The message with this ticket (for acknowledgements), or null. */
export async function messageByTicket(db: Kysely<DbSchema>, ticket: string): Promise<MessageRow | null> {
  const r = await db.selectFrom('campaign_messages').select([...MESSAGE_COLUMNS]).where('ticket', '=', ticket).executeTakeFirst();
  return r === undefined ? null : toMessage(r);
}

/** Marks a message acknowledged (idempotent: the first time is kept). */
export async function acknowledgeMessage(db: Kysely<DbSchema>, id: number, at: Date): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const r = await trx.updateTable('campaign_messages').set({ state: 'acknowledged', acknowledged_at: at, updated_at: sql<Date>`now()` })
      .where('id', '=', id).where('state', 'in', ['sent', 'uncertain']).executeTakeFirst();
    const first = Number(r.numUpdatedRows) > 0;
    if (first) await recordFindingEvents(trx, id, 'acknowledged');
    return first;
  });
}

export interface AttemptRow {
  readonly attempt: number;
  readonly step: number;
  readonly recipients: readonly string[];
  readonly outcome: string | null;
  readonly reply: string | null;
  readonly startedAt: Date;
}

export async function attemptsOf(db: Kysely<DbSchema>, messageRowId: number): Promise<AttemptRow[]> {
  const rows = await db.selectFrom('campaign_attempts').select(['attempt', 'step', 'recipients', 'outcome', 'reply', 'started_at'])
    .where('message_id', '=', messageRowId).orderBy('attempt').execute();
  return rows.map((r) => ({ attempt: r.attempt, step: r.step, recipients: r.recipients, outcome: r.outcome, reply: r.reply, startedAt: r.started_at }));
}

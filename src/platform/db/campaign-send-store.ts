/**
 * Batched outbox writes for the concurrent sender (src/services/campaign-sender.ts). Same durability rules as the
 * single-row `claimMessage` / `finishAttempt` of campaign-store.ts, with one commit for many rows:
 * - `claimMessages` commits `sending` (+ one attempt row each) for a batch BEFORE any of their SMTP transactions
 *   starts; a kill before their outcomes are written leaves the whole batch `sending`, which the next send's sweep
 *   turns into `uncertain` (conservative: a claimed message whose transaction had not started yet is listed too);
 * - `finishAttempts` commits the outcomes of the replies received so far in one transaction, with the `notified`
 *   finding events of the sent ones. That commit does not wait for the WAL flush (synchronous_commit off): the
 *   sender frees a slot only once its outcome is committed, so a flush per group (~15-30 ms on a busy disk) held
 *   every slot that long after each reply (outbox/bare 0.8 at the same relay). Losing such a commit takes a crash of
 *   PostgreSQL or the machine (a kill of the sender loses nothing committed), and it leaves the rows `sending`,
 *   which the next send makes `uncertain`: never a second message. Claims stay synchronous: a lost claim would put
 *   an already-sent message back to `queued`. The next synchronous commit (a claim) flushes the earlier ones too.
 */
import { sql, type Kysely } from 'kysely';
import { MESSAGE_COLUMNS, recordFindingEvents, toMessage, type FinishPatch, type MessageRow, type MessageSelect } from './campaign-store.js';
import type { DbSchema } from './schema.js';

/** The rows with these ids (any state), in id order. */
export async function messagesByIds(db: Kysely<DbSchema>, ids: readonly number[]): Promise<MessageRow[]> {
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('campaign_messages').select([...MESSAGE_COLUMNS]).where('id', 'in', [...ids]).orderBy('id').execute();
  return rows.map(toMessage);
}

export interface Claimed {
  /** The row as it was before the claim (its state is the one it was claimed from). */
  readonly message: MessageRow;
  readonly attempt: number;
  readonly recipients: readonly string[];
}

/**
 * Marks the still-sendable ones of `ids` `sending` (attempt number + 1) and records their attempts, in one committed
 * transaction. Rows no longer queued or deferred (cancelled meanwhile) are left out of the result.
 */
export async function claimMessages(
  db: Kysely<DbSchema>, ids: readonly number[], recipients: (m: MessageRow) => readonly string[], now: Date,
): Promise<Claimed[]> {
  if (ids.length === 0) return [];
  return db.transaction().execute(async (trx) => {
    // Locked in id order, so two transactions touching the same rows cannot deadlock.
    const rows = (await trx.selectFrom('campaign_messages').select([...MESSAGE_COLUMNS]).where('id', 'in', [...ids])
      .where('state', 'in', ['queued', 'deferred']).orderBy('id').forUpdate().execute() as MessageSelect[]).map(toMessage);
    if (rows.length === 0) return [];
    const claimed = rows.map((message) => ({ message, attempt: message.attempts + 1, recipients: recipients(message) }));
    await trx.updateTable('campaign_messages').set({ state: 'sending', attempts: sql<number>`attempts + 1`, updated_at: sql<Date>`now()` })
      .where('id', 'in', rows.map((r) => r.id)).execute();
    await trx.insertInto('campaign_attempts')
      .values(claimed.map((c) => ({ message_id: c.message.id, attempt: c.attempt, step: c.message.step, recipients: [...c.recipients], started_at: now })))
      .execute();
    return claimed;
  });
}

export interface Finished {
  readonly id: number;
  readonly attempt: number;
  readonly patch: FinishPatch;
}

/** Stores many attempts' outcomes and their messages' next states in one transaction (rows still `sending` only). */
export async function finishAttempts(db: Kysely<DbSchema>, done: readonly Finished[]): Promise<void> {
  if (done.length === 0) return;
  const rows = done.map((d) => ({
    id: d.id, attempt: d.attempt, state: d.patch.state, step: d.patch.step, tf: d.patch.transientFailures,
    nat: d.patch.nextAttemptAt?.toISOString() ?? null, reason: d.patch.reason, outcome: d.patch.outcome, reply: d.patch.reply,
    recipients: [...d.patch.recipients],
  }));
  const json = JSON.stringify(rows);
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL synchronous_commit = off`.execute(trx);
    const updated = await sql<{ id: number }>`
      UPDATE campaign_messages m SET
        state = v.state, step = v.step, transient_failures = v.tf, next_attempt_at = v.nat, reason = v.reason, smtp_reply = v.reply,
        sent_to = CASE WHEN v.state = 'sent' THEN ARRAY(SELECT jsonb_array_elements_text(v.recipients)) ELSE m.sent_to END,
        sent_at = CASE WHEN v.state = 'sent' THEN now() ELSE m.sent_at END,
        updated_at = now()
      FROM jsonb_to_recordset(${json}::jsonb) AS v(id int8, attempt int, state text, step int, tf int, nat timestamptz, reason text, outcome text, reply text, recipients jsonb)
      WHERE m.id = v.id AND m.state = 'sending'
      RETURNING m.id, m.state`.execute(trx);
    await sql`
      UPDATE campaign_attempts a SET outcome = v.outcome, reply = v.reply, finished_at = now()
      FROM jsonb_to_recordset(${json}::jsonb) AS v(id int8, attempt int, outcome text, reply text)
      WHERE a.message_id = v.id AND a.attempt = v.attempt`.execute(trx);
    const sent = (updated.rows as Array<{ id: number | string; state: string }>).filter((r) => r.state === 'sent').map((r) => Number(r.id));
    await recordFindingEvents(trx, sent, 'notified');
  });
}

/**
 * The campaign send loop (issue 9 §2 durable outbox, §6 speed): up to `concurrency` SMTP transactions at once,
 * every durability rule of the one-at-a-time loop kept:
 * - a message is committed `sending` (with its attempt row) before its transaction starts. Claims are batched: up to
 *   `concurrency` messages are claimed in ONE committed transaction (unpaced: a round ahead of the free slots, so
 *   there is one commit per batch, not per message; paced by --rate/--per-domain: only those that may start now).
 *   A kill then leaves the batch `sending` (up to 2 x concurrency with those in flight), and the next send's sweep
 *   makes every one of them `uncertain` (listed for the analyst, never resent on its own) even if its transaction
 *   had not started: the conservative outcome. A stop by signal or error puts the unstarted ones back as they were;
 * - the outcome is written after the reply. Writes are group-committed: one writer stores every reply received
 *   since its last commit in one transaction, and a slot is freed only when its outcome is committed, so a kill
 *   leaves `sending` only what was in flight or claimed ahead, and never marks sent a message that was not accepted;
 * - pacing (overall rate, per recipient domain per minute) is applied to the start of each transaction, as before;
 * - the caller holds the campaign's advisory send lock around the whole loop (src/services/campaigns.ts).
 * Rendering happens before the claim, so a template problem leaves the row queued.
 */
import type { Kysely } from 'kysely';
import { afterOutcome, domainsOf, Pacer, type SendOutcome } from '../campaigns/index.js';
import { claimMessages, finishAttempts, messagesByIds, type Claimed, type Finished } from '../platform/db/campaign-send-store.js';
import { sendableIds, type MessageRow } from '../platform/db/campaign-store.js';
import type { DbSchema } from '../platform/db/schema.js';
import type { CampaignMailer, MailerMessage, MailerOutcome } from './campaigns.js';

type Db = Kysely<DbSchema>;

/** Default SMTP transactions at once (the SMTP adapter's pool should allow as many connections). */
export const DEFAULT_SEND_CONCURRENCY = 8;
/** Rows read ahead per query while dispatching. */
const READ_AHEAD = 256;

/** What the loop needs from the campaign (rendering and the recipient chain live in services/campaigns.ts). */
export interface SendLoopDeps {
  readonly mailer: CampaignMailer;
  /** The message for a row, without its envelope recipients (the claim fixes those). May throw: the row stays queued. */
  render(m: MessageRow): Omit<MailerMessage, 'to'>;
  recipients(m: MessageRow): readonly string[];
  /** Steps in the row's recipient chain. */
  steps(m: MessageRow): number;
  outcomeOf(o: MailerOutcome): SendOutcome;
}

export interface SendLoopOptions {
  /** SMTP transactions at once (default 8; 1 = the one-at-a-time order). */
  readonly concurrency?: number;
  readonly ratePerSecond?: number;
  readonly perDomainPerMinute?: number;
  readonly signal?: AbortSignal;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => Date;
  onMessage?(org: string, state: string, reply: string | null): void;
}

export interface SendLoopCounts {
  readonly considered: number;
  readonly sent: number;
  readonly deferred: number;
  readonly bounced: number;
  readonly rerouted: number;
  readonly uncertain: number;
  readonly stopped: boolean;
}

/**
 * Sends what is due (queued, deferred and due) until a pass sends nothing new (a 5xx moves a message down its chain
 * and back to `queued`: the next pass sends it). Call under the campaign's send lock, after the sweep.
 */
export async function runSendLoop(db: Db, campaignId: number, deps: SendLoopDeps, o: SendLoopOptions): Promise<SendLoopCounts> {
  const concurrency = Math.max(1, Math.floor(o.concurrency ?? DEFAULT_SEND_CONCURRENCY));
  const pacer = new Pacer(o.ratePerSecond ?? 0, o.perDomainPerMinute ?? 0);
  let considered = 0, sent = 0, deferred = 0, bounced = 0, rerouted = 0, uncertain = 0;
  let stopped = false;
  let failure: { readonly error: unknown } | null = null;

  // Group commit of outcomes: one writer at a time takes everything pending.
  const pending: Finished[] = [];
  // A slot is freed only once its outcome is committed (or its write failed): a kill then leaves `sending` only the
  // messages whose transaction was in flight or claimed ahead, never one whose reply had already come back.
  const written = new Map<Finished, () => void>();
  const committed = (f: Finished): Promise<void> => new Promise((resolve) => written.set(f, resolve));
  const release = (batch: readonly Finished[]): void => {
    for (const f of batch) {
      written.get(f)?.();
      written.delete(f);
    }
  };
  let writer: Promise<void> | null = null;
  const write = (): void => {
    if (writer !== null) return;
    writer = (async () => {
      try {
        while (pending.length > 0) {
          const batch = pending.splice(0);
          try {
            await finishAttempts(db, batch);
          } finally {
            release(batch);
          }
        }
      } catch (e) {
        // Unwritten outcomes stay `sending` in the database: the next send makes them uncertain, never resends.
        failure ??= { error: e };
        release(pending.splice(0));
      } finally {
        writer = null;
      }
    })();
  };
  const settle = async (): Promise<void> => {
    while (writer !== null || (pending.length > 0 && failure === null)) {
      if (writer === null) write();
      await writer;
    }
  };

  const inFlight = new Set<Promise<void>>();
  const paced = (o.ratePerSecond ?? 0) > 0 || (o.perDomainPerMinute ?? 0) > 0;
  /** Claimed (committed `sending`), not started yet: at most one batch. */
  const ready: Array<{ claimed: Claimed; body: Omit<MailerMessage, 'to'> }> = [];
  const start = (c: Claimed, body: Omit<MailerMessage, 'to'>): void => {
    const task = (async () => {
      let outcome: SendOutcome;
      try {
        outcome = deps.outcomeOf(await deps.mailer.send({ ...body, to: c.recipients.map((address) => ({ address })) }));
      } catch (e) {
        // Refused before a byte was sent (a bug upstream): back to the queue, and stop.
        pending.push({ id: c.message.id, attempt: c.attempt, patch: {
          state: 'queued', step: c.message.step, transientFailures: c.message.transientFailures, nextAttemptAt: null,
          reason: `refused before sending: ${e instanceof Error ? e.message : String(e)}`, outcome: 'transient', reply: 'not sent', recipients: c.recipients,
        } });
        failure ??= { error: e };
        write();
        return;
      }
      const patch = afterOutcome({ step: c.message.step, steps: deps.steps(c.message), transientFailures: c.message.transientFailures }, outcome, o.now());
      const finished: Finished = { id: c.message.id, attempt: c.attempt, patch: { ...patch, outcome: outcome.kind, reply: outcome.reply, recipients: c.recipients } };
      const stored = committed(finished);
      pending.push(finished);
      write();
      await stored;
      if (patch.state === 'sent') sent++;
      else if (patch.state === 'deferred') deferred++;
      else if (patch.state === 'bounced') bounced++;
      else if (patch.state === 'uncertain') uncertain++;
      else if (patch.state === 'queued') rerouted++;
      try {
        o.onMessage?.(c.message.orgName, patch.state, outcome.reply);
      } catch {
        // a progress printer's failure is no outcome of the message
      }
    })();
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
  };

  try {
    await passes();
  } finally {
    // Even when a query fails, every transaction started gets its outcome written before the lock is released.
    while (inFlight.size > 0) await Promise.race(inFlight);
    await settle();
  }
  if (failure !== null) throw (failure as { readonly error: unknown }).error;
  return { considered, sent, deferred, bounced, rerouted, uncertain, stopped };

  async function passes(): Promise<void> {
    for (let pass = 0; pass < 16 && !stopped && failure === null; pass++) {
      const ids = await sendableIds(db, campaignId, o.now());
      if (ids.length === 0) break;
      let next = 0;
      let ahead: MessageRow[] = [];
      while (!stopped && failure === null) {
        if (o.signal?.aborted === true) {
          stopped = true;
          break;
        }
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        const r = ready.shift();
        if (r !== undefined) {
          start(r.claimed, r.body);
          continue;
        }
        if (ahead.length === 0) {
          if (next >= ids.length) break;
          const window = ids.slice(next, next + READ_AHEAD);
          next += window.length;
          ahead = await messagesByIds(db, window);
          continue;
        }
        // The batch: as many of the next messages as have a free slot and may start now by the pacer.
        const batch: Array<{ row: MessageRow; body: Omit<MailerMessage, 'to'> }> = [];
        // Unpaced, a batch claims a full round ahead (one commit per `concurrency` messages); paced, only what starts now.
        const free = paced ? concurrency - inFlight.size : concurrency;
        while (batch.length < free && ahead.length > 0) {
          const row = ahead[0]!;
          const domains = domainsOf(deps.recipients(row));
          const wait = pacer.waitMs(domains, Date.now());
          if (wait > 0) {
            if (batch.length > 0) break; // start these now; the next one waits its turn
            await o.sleep(wait);
            continue;
          }
          let body: Omit<MailerMessage, 'to'>;
          try {
            body = deps.render(row);
          } catch (e) {
            failure = { error: e };
            break;
          }
          ahead.shift();
          pacer.took(domains, Date.now());
          batch.push({ row, body });
        }
        if (batch.length === 0) continue;
        const bodies = new Map(batch.map((b) => [b.row.id, b.body]));
        const claimed = await claimMessages(db, batch.map((b) => b.row.id), deps.recipients, o.now());
        considered += claimed.length;
        for (const c of claimed) ready.push({ claimed: c, body: bodies.get(c.message.id)! });
      }
      // Stopped (signal, failure) with claimed messages not started: they go back as they were, never `uncertain`.
      for (const r of ready.splice(0)) {
        const m = r.claimed.message;
        considered--;
        pending.push({ id: m.id, attempt: r.claimed.attempt, patch: {
          state: m.state === 'deferred' ? 'deferred' : 'queued', step: m.step, transientFailures: m.transientFailures, nextAttemptAt: m.nextAttemptAt,
          reason: m.reason, outcome: 'transient', reply: 'not sent: the sender stopped before this transaction started', recipients: r.claimed.recipients,
        } });
        write();
      }
      // A pass ends when every transaction it started has its outcome committed.
      while (inFlight.size > 0) await Promise.race(inFlight);
      await settle();
    }
  }
}

/**
 * The outbox state machine: what happens to an organisation's message on each event. Pure: the store applies
 * the patches (each in its own committed transaction, so a kill between two steps leaves a state that says
 * what is known).
 *
 *   queued/deferred --claim--> sending --accepted--> sent --ack--> acknowledged
 *                                      --transient--> deferred (next_attempt_at = now + backoff) ... or bounced
 *                                                     after MAX_TRANSIENT_ATTEMPTS
 *                                      --permanent--> queued on the next step of the chain, or bounced at its end
 *                                      --uncertain--> uncertain (the relay may have it: never resent on its own)
 *   sending, found at the start of a `send` (its sender was killed) --> uncertain
 *   uncertain --analyst resend--> queued
 *   queued/deferred --cancel--> cancelled
 */
import type { OutboxState, SendOutcome } from './types.js';

/** Transient failures (4xx) after which a message is given up as bounced. */
export const MAX_TRANSIENT_ATTEMPTS = 8;

/** Retry delays after the n-th transient failure (1-based): 1, 5, 15, 30 min, 1, 2, 4 h, ... capped at 8 h. */
export function backoffMs(failures: number): number {
  const minutes = [1, 5, 15, 30, 60, 120, 240];
  const m = minutes[Math.max(0, failures - 1)] ?? 480;
  return m * 60_000;
}

/** States a `send` picks up: queued now, deferred when due. */
export function isSendable(state: OutboxState, nextAttemptAt: Date | null, now: Date): boolean {
  if (state === 'queued') return true;
  return state === 'deferred' && (nextAttemptAt === null || nextAttemptAt.getTime() <= now.getTime());
}

/** Final states: nothing more happens without the analyst. */
export function isFinal(state: OutboxState): boolean {
  return state === 'sent' || state === 'bounced' || state === 'acknowledged' || state === 'suppressed' || state === 'cancelled';
}

export interface OutcomePatch {
  readonly state: OutboxState;
  /** The chain step to use next (unchanged unless a bounce moved down the chain). */
  readonly step: number;
  readonly transientFailures: number;
  readonly nextAttemptAt: Date | null;
  readonly reason: string | null;
}

/** The row after an SMTP outcome for the step it was sent to. */
export function afterOutcome(
  row: { readonly step: number; readonly steps: number; readonly transientFailures: number },
  outcome: SendOutcome,
  now: Date,
): OutcomePatch {
  switch (outcome.kind) {
    case 'accepted':
      return { state: 'sent', step: row.step, transientFailures: row.transientFailures, nextAttemptAt: null, reason: null };
    case 'uncertain':
      return { state: 'uncertain', step: row.step, transientFailures: row.transientFailures, nextAttemptAt: null, reason: `in flight when the transaction broke: ${outcome.reply}` };
    case 'transient': {
      const failures = row.transientFailures + 1;
      if (failures >= MAX_TRANSIENT_ATTEMPTS) {
        return { state: 'bounced', step: row.step, transientFailures: failures, nextAttemptAt: null, reason: `gave up after ${failures} temporary failures: ${outcome.reply}` };
      }
      return { state: 'deferred', step: row.step, transientFailures: failures, nextAttemptAt: new Date(now.getTime() + backoffMs(failures)), reason: outcome.reply };
    }
    case 'permanent':
      if (row.step + 1 < row.steps) {
        return { state: 'queued', step: row.step + 1, transientFailures: 0, nextAttemptAt: null, reason: `step ${row.step + 1} bounced: ${outcome.reply}` };
      }
      return { state: 'bounced', step: row.step, transientFailures: row.transientFailures, nextAttemptAt: null, reason: outcome.reply };
  }
}

/** Per-domain and overall pacing: when the next message to `domain` may start. */
export class Pacer {
  private nextOverall = 0;
  private readonly perDomain = new Map<string, number[]>();
  /**
   * @param ratePerSecond overall messages per second (0 = unlimited)
   * @param perDomainPerMinute messages per recipient domain per rolling minute (0 = unlimited)
   */
  constructor(private readonly ratePerSecond: number, private readonly perDomainPerMinute: number) {}

  /** Milliseconds to wait before a message to these domains may start at `now`; 0 = go. */
  waitMs(domains: readonly string[], now: number): number {
    let wait = this.ratePerSecond > 0 ? Math.max(0, this.nextOverall - now) : 0;
    if (this.perDomainPerMinute > 0) {
      for (const d of domains) {
        const times = (this.perDomain.get(d) ?? []).filter((t) => t > now - 60_000);
        this.perDomain.set(d, times);
        if (times.length >= this.perDomainPerMinute) wait = Math.max(wait, times[times.length - this.perDomainPerMinute]! + 60_000 - now);
      }
    }
    return wait;
  }

  /** Records a message started at `now`. */
  took(domains: readonly string[], now: number): void {
    if (this.ratePerSecond > 0) this.nextOverall = Math.max(this.nextOverall, now) + 1000 / this.ratePerSecond;
    if (this.perDomainPerMinute > 0) for (const d of domains) (this.perDomain.get(d) ?? this.perDomain.set(d, []).get(d)!).push(now);
  }
}

/** The domains of a step's addresses (lower case), for per-domain pacing. */
export function domainsOf(emails: readonly string[]): string[] {
  return [...new Set(emails.map((e) => e.slice(e.lastIndexOf('@') + 1).toLowerCase()))];
}

/**
 * Service-level clocks per category. Pure.
 *
 * Categories follow the UK NCSC's incident categorisation (C1 national cyber emergency, C2 highly significant,
 * C3 significant, C4 substantial, C5 moderate, C6 localised), which national CERTs commonly mirror. The targets
 * are ours, scaled the way CSIRT services usually commit (FIRST CSIRT Services Framework: acknowledge fast,
 * then a first substantive response): a national emergency is acknowledged within a quarter of an hour and
 * answered within the hour; a localised incident within a working day and a few days.
 *
 * | category | acknowledge | first response |
 * |---|---|---|
 * | C1 | 15 min | 1 h |
 * | C2 | 30 min | 4 h |
 * | C3 | 1 h | 8 h |
 * | C4 | 4 h | 24 h |
 * | C5 | 8 h | 3 days |
 * | C6 | 24 h | 5 days |
 *
 * Before triage gives a category the report runs on C3's clocks ("significant until shown otherwise"): a report
 * nobody has looked at yet must still be acknowledged within the hour. Clocks run from the time the report was
 * received; a later category change moves the due times (computed again from the received time).
 */
import type { Category, IncidentStatus } from './types.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export interface SlaTarget {
  readonly acknowledgeMs: number;
  readonly firstResponseMs: number;
}

export const SLA_TARGETS: Readonly<Record<Category, SlaTarget>> = {
  C1: { acknowledgeMs: 15 * MIN, firstResponseMs: 1 * HOUR },
  C2: { acknowledgeMs: 30 * MIN, firstResponseMs: 4 * HOUR },
  C3: { acknowledgeMs: 1 * HOUR, firstResponseMs: 8 * HOUR },
  C4: { acknowledgeMs: 4 * HOUR, firstResponseMs: 24 * HOUR },
  C5: { acknowledgeMs: 8 * HOUR, firstResponseMs: 3 * DAY },
  C6: { acknowledgeMs: 24 * HOUR, firstResponseMs: 5 * DAY },
};

/** The category whose clocks an uncategorised report runs on. */
export const PROVISIONAL_CATEGORY: Category = 'C3';

export const CATEGORY_LABELS: Readonly<Record<Category, string>> = {
  C1: 'National cyber emergency',
  C2: 'Highly significant incident',
  C3: 'Significant incident',
  C4: 'Substantial incident',
  C5: 'Moderate incident',
  C6: 'Localised incident',
};

export interface DueTimes {
  readonly acknowledgeDue: Date;
  readonly firstResponseDue: Date;
}

export function dueTimes(receivedAt: Date, category: Category | null): DueTimes {
  const t = SLA_TARGETS[category ?? PROVISIONAL_CATEGORY];
  return { acknowledgeDue: new Date(receivedAt.getTime() + t.acknowledgeMs), firstResponseDue: new Date(receivedAt.getTime() + t.firstResponseMs) };
}

export interface Clock {
  readonly due: string;
  /** When it was met (null: not yet). */
  readonly at: string | null;
  /** Not met and past due at `now`. */
  readonly overdue: boolean;
  /** Met, but after the due time. */
  readonly late: boolean;
}

export interface SlaClocks {
  readonly category: Category;
  /** The category is the provisional one (not triaged yet). */
  readonly provisional: boolean;
  readonly acknowledge: Clock;
  readonly firstResponse: Clock;
  /** Either clock overdue. */
  readonly overdue: boolean;
}

export interface ClockInput {
  readonly status: IncidentStatus;
  readonly category: Category | null;
  readonly receivedAt: Date;
  readonly acknowledgedAt: Date | null;
  readonly firstResponseAt: Date | null;
}

function clock(due: Date, at: Date | null, now: Date, stopped: boolean): Clock {
  return {
    due: due.toISOString(),
    at: at?.toISOString() ?? null,
    // A resolved report has no running clock, whatever was stamped.
    overdue: at === null && !stopped && now.getTime() > due.getTime(),
    late: at !== null && at.getTime() > due.getTime(),
  };
}

/** The report's SLA clocks at `now`. */
export function slaClocks(i: ClockInput, now: Date): SlaClocks {
  const d = dueTimes(i.receivedAt, i.category);
  const stopped = i.status === 'resolved';
  const acknowledge = clock(d.acknowledgeDue, i.acknowledgedAt, now, stopped);
  const firstResponse = clock(d.firstResponseDue, i.firstResponseAt, now, stopped);
  return {
    category: i.category ?? PROVISIONAL_CATEGORY, provisional: i.category === null, acknowledge, firstResponse,
    overdue: acknowledge.overdue || firstResponse.overdue,
  };
}

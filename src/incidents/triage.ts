/**
 * The triage state machine. Pure.
 *
 *   received ─► triage ─► incident | duplicate | rejected ─► resolved
 *
 * Besides the forward path: a decision may be corrected (incident, duplicate, rejected back to triage, or one to
 * another), and a resolved report may be reopened to triage (new evidence). `resolved` is reachable only from a
 * decision, so every closed report says what it was. Going to `incident` needs a category (it starts the SLA
 * clocks of that category); `duplicate` needs the report it duplicates (not itself).
 */
import { TocsinError } from '../core/errors.js';
import type { Category, IncidentStatus } from './types.js';

const NEXT: Readonly<Record<IncidentStatus, readonly IncidentStatus[]>> = {
  received: ['triage'],
  triage: ['incident', 'duplicate', 'rejected'],
  incident: ['resolved', 'triage', 'duplicate', 'rejected'],
  duplicate: ['resolved', 'triage', 'incident', 'rejected'],
  rejected: ['resolved', 'triage', 'incident', 'duplicate'],
  resolved: ['triage'],
};

/** The states a report in `from` may move to. */
export function allowedTransitions(from: IncidentStatus): readonly IncidentStatus[] {
  return NEXT[from];
}

export function canTransition(from: IncidentStatus, to: IncidentStatus): boolean {
  return NEXT[from].includes(to);
}

/** A triage decision as asked (status may stay the same when only category, owner or a note change). */
export interface TriageChange {
  readonly status?: IncidentStatus;
  readonly category?: Category;
  readonly owner?: string | null;
  readonly duplicateOf?: number;
  readonly note?: string;
}

export interface TriageCurrent {
  readonly id: number;
  readonly status: IncidentStatus;
  readonly category: Category | null;
}

/** What a triage does to the report's clocks (decided here so every caller stamps the same way). */
export interface TriageEffect {
  readonly status: IncidentStatus;
  readonly category: Category | null;
  /** The report leaves `received`: the acknowledge clock stops (if it had not). */
  readonly acknowledges: boolean;
  /** A decision (incident/duplicate/rejected) or a note: the first-response clock stops (if it had not). */
  readonly responds: boolean;
  readonly resolves: boolean;
}

/**
 * Checks a triage change against the current report.
 * @throws TocsinError TOCSIN_INCIDENT_STATE for a transition the machine does not allow (naming the allowed ones),
 *   TOCSIN_INCIDENT_INVALID for a decision missing what it needs.
 */
export function applyTriage(cur: TriageCurrent, ch: TriageChange): TriageEffect {
  const to = ch.status ?? cur.status;
  if (to !== cur.status && !canTransition(cur.status, to)) {
    throw new TocsinError('TOCSIN_INCIDENT_STATE', `incident ${cur.id} is ${cur.status}: it cannot go to ${to} (allowed: ${NEXT[cur.status].join(', ')})`);
  }
  const category = ch.category ?? cur.category;
  if (to === 'incident' && category === null) throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'category: an incident needs a category (C1 to C6)');
  if (to === 'duplicate' && to !== cur.status && ch.duplicateOf === undefined) throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'duplicateOf: a duplicate needs the id of the report it duplicates');
  if (ch.duplicateOf !== undefined && to !== 'duplicate') throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'duplicateOf: only with status duplicate');
  if (ch.duplicateOf === cur.id) throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'duplicateOf: a report cannot duplicate itself');
  const hasNote = ch.note !== undefined && ch.note.trim() !== '';
  if (to === cur.status && ch.category === undefined && ch.owner === undefined && !hasNote) {
    throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'status: nothing to change (give a new status, a category, an owner or a note)');
  }
  return {
    status: to,
    category,
    acknowledges: to !== 'received',
    responds: hasNote || to === 'incident' || to === 'duplicate' || to === 'rejected' || to === 'resolved',
    resolves: to === 'resolved',
  };
}

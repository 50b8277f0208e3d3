/**
 * Incident reports (issue 10 §5): report (stage 0), add stage 1 and the final report, triage, list and show, and
 * attachments (forensics-kit output). Rules are src/incidents (pure); queries are platform/db/incident-store.ts.
 *
 * Scope: an organisation account's report is ALWAYS for its own organisation, whatever the body says; it reads
 * and changes only its own reports (the organisation is in every query's WHERE clause; another organisation's
 * report answers TOCSIN_INCIDENT_NOT_FOUND, exactly like a missing one). Triage is for staff only.
 *
 * Linking: a report started from a warning (a campaign id or a message ticket) is linked to that campaign, and a
 * report naming CVEs (its own or the campaign's) is linked to its organisation's current open findings of those
 * CVEs, so the triage queue shows which exposures the report is probably about.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import {
  CATEGORIES, INCIDENT_STATUSES, applyTriage, dueTimes, slaClocks, validateFinal, validateStage0, validateStage1,
  type Category, type IncidentStatus, type SlaClocks,
} from '../incidents/index.js';
import { getCampaign, messageByTicket } from '../platform/db/campaign-store.js';
import {
  addIncidentLink, appendIncidentEvent, attachmentContent, attachmentsOf, campaignMessageFor, getIncident, incidentEvents, incidentExists,
  incidentLinks, insertAttachment, insertIncident, linkOpenFindings, linkTargetExists, listIncidents, lockIncident, orgById, orgByName, updateIncident,
  type AttachmentMeta, type IncidentEventRow, type IncidentLinkRow, type IncidentRow,
} from '../platform/db/incident-store.js';
import type { DbSchema, Json } from '../platform/db/schema.js';
import type { Principal, Scope } from './accounts.js';

type Db = Kysely<DbSchema>;

export type { AttachmentMeta };

/** Who acts, and what they may see (decided from the login, never from input). */
export interface Actor {
  readonly who: string;
  readonly scope: Scope;
}

export function actorOf(p: Principal): Actor {
  if (p.role !== 'org') return { who: p.email, scope: { kind: 'all' } };
  if (p.orgId === null || p.org === null) throw new TocsinError('TOCSIN_FORBIDDEN', 'this organisation account has no organisation');
  return { who: p.email, scope: { kind: 'org', orgId: p.orgId, org: p.org } };
}

/** An analyst at the command line (sees everything). */
export function staffActor(who: string): Actor {
  return { who, scope: { kind: 'all' } };
}

function orgScopeOf(s: Scope): number | null {
  return s.kind === 'org' ? s.orgId : null;
}

const shown = (s: string, max = 60): string => JSON.stringify(sanitiseText(s, { max }));

/** A report as the queue lists it. */
export interface IncidentSummary {
  readonly id: number;
  readonly status: IncidentStatus;
  readonly category: Category | null;
  readonly owner: string | null;
  readonly orgId: number | null;
  readonly org: string | null;
  /** The organisation is free text (not in the registry). */
  readonly orgUnregistered: boolean;
  readonly tlp: string;
  readonly types: readonly string[];
  readonly cves: readonly string[];
  readonly summary: string;
  readonly ongoing: boolean;
  readonly detectedAt: string;
  readonly reportedAt: string;
  readonly reportedVia: string;
  readonly duplicateOf: number | null;
  readonly sla: SlaClocks;
}

export interface IncidentEvent {
  readonly at: string;
  readonly who: string;
  readonly kind: string;
  readonly detail: Json | null;
}

export interface IncidentLink {
  readonly kind: 'finding' | 'campaign' | 'incident';
  readonly targetId: number;
  readonly relation: string;
  readonly finding: { ip: string; port: number | null; cve: string; state: string } | null;
  readonly campaign: { name: string } | null;
  readonly incident: { status: string; summary: string } | null;
}

export interface AttachmentInfo {
  readonly id: number;
  readonly filename: string;
  readonly contentType: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly uploadedAt: string;
  readonly uploadedBy: string;
}

export interface IncidentDetail extends IncidentSummary {
  readonly reporter: { name: string; role: string; phone: string; email: string };
  readonly reportedBy: string;
  readonly stage0: Json;
  readonly stage1: Json | null;
  readonly stage1At: string | null;
  readonly final: Json | null;
  readonly finalAt: string | null;
  readonly events: readonly IncidentEvent[];
  readonly links: readonly IncidentLink[];
  readonly attachments: readonly AttachmentInfo[];
}

function asStatus(s: string): IncidentStatus {
  const v = INCIDENT_STATUSES.find((x) => x === s);
  if (v === undefined) throw new TocsinError('TOCSIN_INTERNAL', `stored incident status ${shown(s)} is unknown`);
  return v;
}

function asCategory(s: string | null): Category | null {
  if (s === null) return null;
  const v = CATEGORIES.find((x) => x === s);
  if (v === undefined) throw new TocsinError('TOCSIN_INTERNAL', `stored incident category ${shown(s)} is unknown`);
  return v;
}

function summaryOf(r: IncidentRow, scope: Scope, now: Date): IncidentSummary {
  const status = asStatus(r.status);
  const category = asCategory(r.category);
  return {
    id: r.id, status, category,
    // The analyst's address is the CERT's business, not the organisation's.
    owner: scope.kind === 'org' ? null : r.owner,
    orgId: r.orgId, org: r.org, orgUnregistered: r.orgId === null, tlp: r.tlp, types: r.types, cves: r.cves, summary: r.summary,
    ongoing: r.ongoing, detectedAt: r.detectedAt.toISOString(), reportedAt: r.createdAt.toISOString(), reportedVia: r.reportedVia,
    duplicateOf: r.duplicateOf,
    sla: slaClocks({ status, category, receivedAt: r.createdAt, acknowledgedAt: r.acknowledgedAt, firstResponseAt: r.firstResponseAt }, now),
  };
}

function eventOf(e: IncidentEventRow, scope: Scope): IncidentEvent {
  if (scope.kind !== 'org') return { at: e.at.toISOString(), who: e.who, kind: e.kind, detail: e.detail };
  // An organisation sees what happened to its report, not the analysts' names, notes or who owns it.
  const d = e.detail !== null && typeof e.detail === 'object' && !Array.isArray(e.detail) ? (e.detail as { readonly [k: string]: Json }) : {};
  const who = d['by'] === 'organisation' ? e.who : 'CERT';
  if (e.kind === 'triaged') {
    const kept: Record<string, Json> = {};
    for (const k of ['from', 'to', 'category'] as const) if (d[k] !== undefined) kept[k] = d[k];
    return { at: e.at.toISOString(), who, kind: e.kind, detail: kept };
  }
  if (e.kind === 'linked') {
    // A hand link's note is internal, and its target may be another organisation's finding or report.
    const kept: Record<string, Json> = {};
    for (const k of ['kind', 'findings', 'campaigns', 'automatic'] as const) if (d[k] !== undefined) kept[k] = d[k];
    return { at: e.at.toISOString(), who, kind: e.kind, detail: kept };
  }
  return { at: e.at.toISOString(), who, kind: e.kind, detail: e.detail };
}

/** Who acted, as the organisation's view of the history tells it (its own users by name, the CERT as "CERT"). */
function byOf(actor: Actor): 'organisation' | 'cert' {
  return actor.scope.kind === 'org' ? 'organisation' : 'cert';
}

function linkOf(l: IncidentLinkRow): IncidentLink {
  return { kind: l.kind, targetId: l.targetId, relation: l.relation, finding: l.finding, campaign: l.campaign, incident: l.incident };
}

function attachmentOf(a: AttachmentMeta): AttachmentInfo {
  return { id: a.id, filename: a.filename, contentType: a.contentType, bytes: a.bytes, sha256: a.sha256, uploadedAt: a.uploadedAt.toISOString(), uploadedBy: a.uploadedBy };
}

function notFound(id: number): TocsinError {
  return new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', `no incident report ${id}`);
}

/** The report with its history, links, attachments (metadata) and clocks, within the scope. */
export async function showIncident(db: Db, scope: Scope, id: number, now: Date = new Date()): Promise<IncidentDetail> {
  const r = await getIncident(db, id, orgScopeOf(scope));
  if (r === null) throw notFound(id);
  const [events, links, attachments] = await Promise.all([incidentEvents(db, id), incidentLinks(db, id, orgScopeOf(scope)), attachmentsOf(db, id)]);
  return {
    ...summaryOf(r, scope, now),
    reporter: { name: r.reporterName, role: (r.stage0 as { reporter?: { role?: string } }).reporter?.role ?? '', phone: r.reporterPhone, email: r.reporterEmail },
    reportedBy: scope.kind === 'org' ? (r.reportedVia === 'portal' ? r.reportedBy : 'CERT') : r.reportedBy,
    stage0: r.stage0, stage1: r.stage1, stage1At: r.stage1At?.toISOString() ?? null, final: r.final, finalAt: r.finalAt?.toISOString() ?? null,
    events: events.map((e) => eventOf(e, scope)), links: links.map(linkOf), attachments: attachments.map(attachmentOf),
  };
}

export interface ReportOptions {
  /** How it came in: an organisation's portal/API, an analyst's API call, or the CLI (a report taken by phone). */
  readonly via: 'portal' | 'api' | 'cli' | 'staff';
  readonly now?: Date;
}

function campaignCves(selection: Json): string[] {
  if (typeof selection !== 'object' || selection === null || Array.isArray(selection)) return [];
  const cves = (selection as { readonly [k: string]: Json })['cves'];
  return Array.isArray(cves) ? cves.filter((c): c is string => typeof c === 'string').map((c) => c.toUpperCase()) : [];
}

/**
 * Stage 0. Returns the stored report (with its automatic links).
 * @throws TocsinError TOCSIN_INCIDENT_INVALID (named fields), TOCSIN_ORG_NOT_FOUND (an analyst's orgId),
 *   TOCSIN_CAMPAIGN_NOT_FOUND (a warning that does not exist or was not sent to this organisation)
 */
export async function reportIncident(db: Db, actor: Actor, input: unknown, o: ReportOptions): Promise<IncidentDetail> {
  const now = o.now ?? new Date();
  const s0 = validateStage0(input, now);
  // The organisation: an organisation account's own, always; for staff, the registry entry named, else free text.
  let orgId: number | null = null;
  let orgText: string | null = null;
  if (actor.scope.kind === 'org') {
    orgId = actor.scope.orgId;
  } else if (s0.orgId !== null) {
    const org = await orgById(db, s0.orgId);
    if (org === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `orgId: no organisation with id ${s0.orgId} in the registry`);
    orgId = org.id;
  } else if (s0.org !== null) {
    const org = await orgByName(db, s0.org);
    if (org === null) orgText = s0.org;
    else orgId = org.id;
  } else {
    throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'org: give the affected organisation (orgId from the registry, or org as a name)', { details: ['org: required'] });
  }

  // The warning it was started from. An organisation may name only a warning it received: any other answers
  // as if the campaign did not exist (no oracle for other organisations' campaigns).
  let campaignId = s0.campaignId;
  if (s0.ticket !== null) {
    const m = await messageByTicket(db, s0.ticket);
    if (m === null || (orgId !== null && m.orgId !== orgId)) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `ticket: no warning ${shown(s0.ticket, 40)} for this organisation`);
    if (campaignId !== null && campaignId !== m.campaignId) throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'ticket: belongs to another campaign than campaignId', { details: ['ticket: belongs to another campaign than campaignId'] });
    campaignId = m.campaignId;
  }
  const cves = [...s0.cves];
  if (campaignId !== null) {
    const c = await getCampaign(db, campaignId);
    const received = c !== null && orgId !== null ? await campaignMessageFor(db, campaignId, orgId) : null;
    if (c === null || (actor.scope.kind === 'org' && received === null)) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `campaignId: no warning ${campaignId} for this organisation`);
    for (const cve of campaignCves(c.selection)) if (!cves.includes(cve)) cves.push(cve);
  }
  const stored = { ...s0, orgId, org: actor.scope.kind === 'org' ? actor.scope.org : s0.org, campaignId, cves };
  const due = dueTimes(now, null);
  const id = await db.transaction().execute(async (trx) => {
    const newId = await insertIncident(trx, {
      orgId, orgText, reporterName: s0.reporter.name, reporterEmail: s0.reporter.email, reporterPhone: s0.reporter.phone, tlp: s0.tlp,
      types: s0.types, cves, ongoing: s0.ongoing, detectedAt: s0.detectedAt, stage0: stored as unknown as Json, reportedBy: actor.who,
      reportedVia: o.via, createdAt: now, ackDueAt: due.acknowledgeDue, responseDueAt: due.firstResponseDue,
    });
    let campaigns = 0;
    if (campaignId !== null && (await addIncidentLink(trx, { incidentId: newId, kind: 'campaign', targetId: campaignId, relation: 'reported-from', who: 'tocsin' }))) campaigns++;
    const findings = orgId === null ? 0 : await linkOpenFindings(trx, newId, orgId, cves, 'tocsin');
    if (campaigns + findings > 0) await appendIncidentEvent(trx, { incidentId: newId, who: 'tocsin', kind: 'linked', at: now, detail: { findings, campaigns, automatic: true } });
    return newId;
  });
  return showIncident(db, actor.scope, id, now);
}

async function addStage(db: Db, actor: Actor, id: number, stage: 'stage1' | 'final', input: unknown, now: Date): Promise<IncidentDetail> {
  const value = stage === 'stage1' ? validateStage1(input) : validateFinal(input);
  await db.transaction().execute(async (trx) => {
    const r = await lockIncident(trx, id, orgScopeOf(actor.scope));
    if (r === null) throw notFound(id);
    const replaced = (stage === 'stage1' ? r.stage1 : r.final) !== null;
    await updateIncident(trx, id, stage === 'stage1' ? { stage1: value as unknown as Json, stage1At: now } : { final: value as unknown as Json, finalAt: now });
    await appendIncidentEvent(trx, { incidentId: id, who: actor.who, kind: stage, at: now, detail: { replaced, by: byOf(actor) } });
  });
  return showIncident(db, actor.scope, id, now);
}

/** Stage 1 (technical details); a second one replaces the first (the event history keeps that it did). */
export async function addStage1(db: Db, actor: Actor, id: number, input: unknown, now: Date = new Date()): Promise<IncidentDetail> {
  return addStage(db, actor, id, 'stage1', input, now);
}

/** The final report. */
export async function addFinal(db: Db, actor: Actor, id: number, input: unknown, now: Date = new Date()): Promise<IncidentDetail> {
  return addStage(db, actor, id, 'final', input, now);
}

export interface TriageInput {
  readonly status?: string;
  readonly category?: string;
  /** An e-mail or name; '' or null clears it. */
  readonly owner?: string | null;
  readonly duplicateOf?: number;
  readonly note?: string;
}

/**
 * A triage step (staff only): status along the state machine, category (moves the SLA due times), owner, a
 * duplicate-of link, a note. Stamps the acknowledge and first-response clocks the first time they are met.
 * @throws TocsinError TOCSIN_FORBIDDEN (organisation accounts), TOCSIN_INCIDENT_NOT_FOUND, TOCSIN_INCIDENT_STATE,
 *   TOCSIN_INCIDENT_INVALID
 */
export async function triageIncident(db: Db, actor: Actor, id: number, t: TriageInput, now: Date = new Date()): Promise<IncidentDetail> {
  if (actor.scope.kind !== 'all') throw new TocsinError('TOCSIN_FORBIDDEN', 'triage is for CERT analysts');
  const problems: string[] = [];
  const status = t.status === undefined ? undefined : INCIDENT_STATUSES.find((s) => s === t.status?.trim().toLowerCase());
  if (t.status !== undefined && status === undefined) problems.push(`status: must be one of ${INCIDENT_STATUSES.join(', ')}`);
  const category = t.category === undefined ? undefined : CATEGORIES.find((c) => c === t.category?.trim().toUpperCase());
  if (t.category !== undefined && category === undefined) problems.push(`category: must be one of ${CATEGORIES.join(', ')}`);
  const owner = t.owner === undefined ? undefined : t.owner === null || t.owner.trim() === '' ? null : t.owner.trim();
  if (owner !== undefined && owner !== null && (owner.length > 200 || /[\u0000-\u001f\u007f]/.test(owner))) problems.push('owner: at most 200 characters, one line');
  if (t.note !== undefined && (t.note.length > 20_000 || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(t.note))) problems.push('note: at most 20000 characters, no control characters');
  if (t.duplicateOf !== undefined && (!Number.isSafeInteger(t.duplicateOf) || t.duplicateOf <= 0)) problems.push('duplicateOf: must be a report id');
  if (problems.length > 0) throw new TocsinError('TOCSIN_INCIDENT_INVALID', `triage: ${problems.join('; ')}`, { details: problems });
  await db.transaction().execute(async (trx) => {
    const r = await lockIncident(trx, id, null);
    if (r === null) throw notFound(id);
    const cur = { id, status: asStatus(r.status), category: asCategory(r.category) };
    const effect = applyTriage(cur, {
      ...(status === undefined ? {} : { status }), ...(category === undefined ? {} : { category }), ...(owner === undefined ? {} : { owner }),
      ...(t.duplicateOf === undefined ? {} : { duplicateOf: t.duplicateOf }), ...(t.note === undefined ? {} : { note: t.note }),
    });
    if (t.duplicateOf !== undefined && !(await incidentExists(trx, t.duplicateOf))) throw new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', `duplicateOf: no incident report ${t.duplicateOf}`);
    const due = effect.category !== cur.category ? dueTimes(r.createdAt, effect.category) : undefined;
    await updateIncident(trx, id, {
      status: effect.status,
      ...(category === undefined ? {} : { category: effect.category }),
      ...(owner === undefined ? {} : { owner }),
      ...(t.duplicateOf === undefined ? (effect.status !== 'duplicate' && effect.status !== 'resolved' ? { duplicateOf: null } : {}) : { duplicateOf: t.duplicateOf }),
      ...(effect.acknowledges && r.acknowledgedAt === null ? { acknowledgedAt: now } : {}),
      ...(effect.responds && r.firstResponseAt === null ? { firstResponseAt: now } : {}),
      ...(effect.resolves ? { resolvedAt: now } : effect.status !== cur.status ? { resolvedAt: null } : {}),
      ...(due === undefined ? {} : { ackDueAt: due.acknowledgeDue, responseDueAt: due.firstResponseDue }),
    });
    if (t.duplicateOf !== undefined) await addIncidentLink(trx, { incidentId: id, kind: 'incident', targetId: t.duplicateOf, relation: 'duplicate-of', who: actor.who });
    const detail: Record<string, Json> = { from: cur.status, to: effect.status };
    if (category !== undefined) detail['category'] = effect.category;
    if (owner !== undefined) detail['owner'] = owner;
    if (t.duplicateOf !== undefined) detail['duplicateOf'] = t.duplicateOf;
    if (t.note !== undefined && t.note.trim() !== '') detail['note'] = t.note;
    await appendIncidentEvent(trx, { incidentId: id, who: actor.who, kind: 'triaged', at: now, detail });
  });
  return showIncident(db, actor.scope, id, now);
}

export const LINK_KINDS = ['finding', 'campaign', 'incident'] as const;
export type LinkKind = (typeof LINK_KINDS)[number];

/**
 * Links a report to a finding, campaign or other report by hand (staff), with an optional note kept in the
 * history (internal: the organisation's view of the history leaves it out). Linking twice is one link.
 * @throws TocsinError TOCSIN_FORBIDDEN (organisation accounts), TOCSIN_INCIDENT_NOT_FOUND (the report, or another
 *   report as the target), TOCSIN_FINDING_NOT_FOUND, TOCSIN_CAMPAIGN_NOT_FOUND, TOCSIN_INCIDENT_INVALID (a report
 *   linked to itself, a bad id, a note with control characters)
 */
export async function linkIncident(
  db: Db, actor: Actor, id: number, kind: LinkKind, targetId: number, o: { readonly note?: string; readonly now?: Date } = {},
): Promise<IncidentDetail> {
  if (actor.scope.kind !== 'all') throw new TocsinError('TOCSIN_FORBIDDEN', 'links are made by CERT analysts');
  const now = o.now ?? new Date();
  const problems: string[] = [];
  if (!LINK_KINDS.includes(kind)) problems.push(`kind: must be one of ${LINK_KINDS.join(', ')}`);
  if (!Number.isSafeInteger(targetId) || targetId <= 0) problems.push('targetId: must be a positive id');
  if (kind === 'incident' && targetId === id) problems.push('targetId: a report cannot be linked to itself');
  const note = o.note?.trim() ?? '';
  if (note.length > 20_000 || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(note)) problems.push('note: at most 20000 characters, no control characters');
  if (problems.length > 0) throw new TocsinError('TOCSIN_INCIDENT_INVALID', `link: ${problems.join('; ')}`, { details: problems });
  await db.transaction().execute(async (trx) => {
    if ((await lockIncident(trx, id, null)) === null) throw notFound(id);
    if (!(await linkTargetExists(trx, kind, targetId))) {
      throw kind === 'finding' ? new TocsinError('TOCSIN_FINDING_NOT_FOUND', `no finding ${targetId}`)
        : kind === 'campaign' ? new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `no campaign ${targetId}`)
          : new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', `no incident report ${targetId} to link to`);
    }
    const created = await addIncidentLink(trx, { incidentId: id, kind, targetId, relation: 'related', who: actor.who });
    // A repeated link with a note still records the note; a bare repeat changes nothing.
    if (created || note !== '') {
      await appendIncidentEvent(trx, { incidentId: id, who: actor.who, kind: 'linked', at: now, detail: { kind, targetId, ...(created ? {} : { existing: true }), ...(note === '' ? {} : { note }) } });
    }
  });
  return showIncident(db, actor.scope, id, now);
}

export interface ListQuery {
  /** One status, a comma list, or `open` (received, triage, incident). */
  readonly status?: string;
  readonly category?: string;
  readonly overdue?: boolean;
  /** Organisation name (staff filter; an organisation account may name only its own). */
  readonly org?: string;
  /** From a previous page's nextCursor. */
  readonly cursor?: string;
  readonly limit: number;
}

export interface IncidentPage {
  readonly items: readonly IncidentSummary[];
  readonly nextCursor: string | null;
  /** The organisation the read was limited to (for the audit row). */
  readonly orgScope: number | null;
}

export function parseStatusFilter(raw: string | undefined): IncidentStatus[] | undefined {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'all') return undefined;
  const out: IncidentStatus[] = [];
  for (const part of raw.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')) {
    if (part === 'open') {
      out.push('received', 'triage', 'incident');
      continue;
    }
    const s = INCIDENT_STATUSES.find((x) => x === part);
    if (s === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `status must be open, all or one of ${INCIDENT_STATUSES.join(', ')} (comma-separated), got ${shown(part, 30)}`);
    out.push(s);
  }
  return [...new Set(out)];
}

/** Newest first, keyset-paged, within the scope (in the query). */
export async function listIncidentPage(db: Db, scope: Scope, q: ListQuery, now: Date = new Date()): Promise<IncidentPage> {
  const statuses = parseStatusFilter(q.status);
  const category = q.category === undefined || q.category === '' ? undefined : CATEGORIES.find((c) => c === q.category?.trim().toUpperCase());
  if (q.category !== undefined && q.category !== '' && category === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `category must be one of ${CATEGORIES.join(', ')}, got ${shown(q.category, 30)}`);
  let orgId: number | undefined;
  if (q.org !== undefined && q.org.trim() !== '') {
    if (scope.kind === 'org') {
      if (q.org.trim().toLowerCase() !== scope.org.toLowerCase()) throw new TocsinError('TOCSIN_FORBIDDEN', 'an organisation account sees only its own organisation');
    } else {
      const org = await orgByName(db, q.org);
      if (org === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${shown(q.org)}`);
      orgId = org.id;
    }
  }
  let beforeId: number | undefined;
  if (q.cursor !== undefined && q.cursor !== '') {
    if (!/^\d{1,15}$/.test(q.cursor)) throw new TocsinError('TOCSIN_ARG_INVALID', 'cursor is not one this API returned');
    beforeId = Number(q.cursor);
  }
  const rows = await listIncidents(db, {
    orgScope: orgScopeOf(scope), limit: q.limit + 1,
    ...(statuses === undefined ? {} : { statuses }), ...(category === undefined ? {} : { category }), ...(orgId === undefined ? {} : { orgId }),
    ...(q.overdue === true ? { overdueAt: now } : {}), ...(beforeId === undefined ? {} : { beforeId }),
  });
  const more = rows.length > q.limit;
  const items = rows.slice(0, q.limit).map((r) => summaryOf(r, scope, now));
  // Defence in depth: the store filtered by organisation; another organisation's report here is a bug, never shown.
  if (scope.kind === 'org' && items.some((i) => i.orgId !== scope.orgId)) throw new TocsinError('TOCSIN_INTERNAL', 'scoped incident listing returned another organisation\'s report');
  const last = items[items.length - 1];
  return { items, nextCursor: more && last !== undefined ? String(last.id) : null, orgScope: orgScopeOf(scope) ?? orgId ?? null };
}

/** Keyset page size of a whole-list read (CLI listing, API download). */
const EXPORT_PAGE = 500;

/** Every page of a listing (the CLI streams them). */
export async function* allIncidents(db: Db, scope: Scope, q: Omit<ListQuery, 'cursor' | 'limit'>, now: Date = new Date()): AsyncGenerator<IncidentSummary> {
  let cursor: string | undefined;
  for (;;) {
    const page = await listIncidentPage(db, scope, { ...q, limit: EXPORT_PAGE, ...(cursor === undefined ? {} : { cursor }) }, now);
    yield* page.items;
    if (page.nextCursor === null) return;
    cursor = page.nextCursor;
  }
}

/**
 * The whole listing for a download (`GET /api/incidents?format=csv|jsonl`), within the scope (in the query, as
 * listIncidentPage). The first page is read before anything is sent, so a bad filter or a forbidden organisation
 * answers with its error code instead of a cut stream; then one keyset page at a time (never the list in memory).
 */
export async function incidentExport(
  db: Db, scope: Scope, q: Omit<ListQuery, 'cursor' | 'limit'>, o: { readonly pageSize?: number; readonly now?: Date } = {},
): Promise<{ records: AsyncIterable<IncidentSummary>; orgScope: number | null }> {
  const now = o.now ?? new Date();
  const limit = o.pageSize ?? EXPORT_PAGE;
  const first = await listIncidentPage(db, scope, { ...q, limit }, now);
  async function* all(): AsyncGenerator<IncidentSummary> {
    yield* first.items;
    let cursor = first.nextCursor;
    while (cursor !== null) {
      const page = await listIncidentPage(db, scope, { ...q, limit, cursor }, now);
      yield* page.items;
      cursor = page.nextCursor;
    }
  }
  return { records: all(), orgScope: first.orgScope };
}

/** CSV columns of an incident listing (`tocsin incident list --format csv` and the API download). */
export const INCIDENT_CSV_COLUMNS = [
  'id', 'status', 'category', 'owner', 'org', 'org_id', 'tlp', 'types', 'cves', 'ongoing', 'detected_at', 'reported_at', 'reported_via',
  'acknowledge_due', 'acknowledged_at', 'first_response_due', 'first_response_at', 'overdue', 'duplicate_of', 'summary',
] as const;

/** One report's cells under INCIDENT_CSV_COLUMNS (the writer makes them formula-safe). Pure. */
export function incidentCsvCells(i: IncidentSummary): Array<string | number | boolean | null> {
  return [
    i.id, i.status, i.category, i.owner, i.org, i.orgId, i.tlp, i.types.join(' '), i.cves.join(' '), i.ongoing, i.detectedAt, i.reportedAt, i.reportedVia,
    i.sla.acknowledge.due, i.sla.acknowledge.at, i.sla.firstResponse.due, i.sla.firstResponse.at, i.sla.overdue, i.duplicateOf, i.summary,
  ];
}

/** Largest attachment accepted: a forensics-kit report with its CSV of hits fits easily. */
export const MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024;

/**
 * A file name safe in a Content-Disposition header, on any file system and in a page: the last path component,
 * letters, digits, dot, dash and underscore only, no leading dot, at most 100 characters.
 */
export function safeFilename(raw: string): string {
  const last = raw.split(/[\\/]/).pop() ?? '';
  const cleaned = last.normalize('NFKD').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-100);
  return cleaned === '' || /^_+$/.test(cleaned) ? 'attachment.bin' : cleaned;
}

/**
 * What the bytes are, decided here (never the uploader's claim, so a file cannot make itself text/html):
 * JSON, UTF-8 text, or opaque bytes.
 */
export function sniffContentType(content: Buffer): string {
  if (content.includes(0)) return 'application/octet-stream';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    return 'application/octet-stream';
  }
  try {
    JSON.parse(text);
    return 'application/json';
  } catch {
    return 'text/plain; charset=utf-8';
  }
}

/**
 * Stores an upload (e.g. forensics-kit output) on a report within the scope; the same content twice is one file.
 * @throws TocsinError TOCSIN_INCIDENT_INVALID (empty, over MAX_ATTACHMENT_BYTES), TOCSIN_INCIDENT_NOT_FOUND
 */
export async function addAttachment(db: Db, actor: Actor, id: number, file: { filename: string; content: Buffer }, now: Date = new Date()): Promise<AttachmentInfo & { created: boolean }> {
  if (file.content.length === 0) throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'content: the file is empty', { details: ['content: empty'] });
  if (file.content.length > MAX_ATTACHMENT_BYTES) {
    throw new TocsinError('TOCSIN_INCIDENT_INVALID', `content: larger than ${MAX_ATTACHMENT_BYTES} bytes (5 MiB); compress it or send the kit's JSON report only`, { details: ['content: too large'] });
  }
  const filename = safeFilename(file.filename);
  const sha256 = createHash('sha256').update(file.content).digest('hex');
  return db.transaction().execute(async (trx) => {
    if ((await lockIncident(trx, id, orgScopeOf(actor.scope))) === null) throw notFound(id);
    const { meta, created } = await insertAttachment(trx, { incidentId: id, filename, contentType: sniffContentType(file.content), sha256, content: file.content, who: actor.who });
    if (created) await appendIncidentEvent(trx, { incidentId: id, who: actor.who, kind: 'attachment', at: now, detail: { attachment: meta.id, filename, bytes: meta.bytes, sha256, by: byOf(actor) } });
    return { ...attachmentOf(meta), created };
  });
}

/** An attachment's bytes, through its report's scope. */
export async function getAttachment(db: Db, scope: Scope, id: number, attachmentId: number): Promise<AttachmentInfo & { content: Buffer }> {
  if ((await getIncident(db, id, orgScopeOf(scope))) === null) throw notFound(id);
  const a = await attachmentContent(db, id, attachmentId);
  if (a === null) throw new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', `incident report ${id} has no attachment ${attachmentId}`);
  return { ...attachmentOf(a), content: a.content };
}

/**
 * What the portal's report form pre-fills when started from a warning: the campaign and its CVEs, only when the
 * campaign warned this organisation (null otherwise, and for staff without an organisation to check).
 */
export async function warningPrefill(db: Db, scope: Scope, campaignId: number): Promise<{ campaignId: number; name: string; cves: string[] } | null> {
  if (scope.kind !== 'org') return null;
  const c = await getCampaign(db, campaignId);
  if (c === null || (await campaignMessageFor(db, campaignId, scope.orgId)) === null) return null;
  return { campaignId, name: c.name, cves: campaignCves(c.selection) };
}

/** The vocabulary the pages show (src/web reaches the pure rules only through the services). */
export {
  CATEGORIES, CATEGORY_LABELS, INCIDENT_STATUSES, INCIDENT_TYPES, INCIDENT_TYPE_LABELS, SLA_TARGETS, TLP_VALUES, allowedTransitions,
} from '../incidents/index.js';

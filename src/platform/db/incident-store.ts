/**
 * Incident report storage (migration 0017). Queries only: what a report may contain and which triage changes are
 * allowed is decided in src/incidents (pure) and driven by src/services/incidents.ts.
 *
 * Scoping: every read that an organisation account can reach takes `orgScope` (null = staff, all) and puts it in
 * the WHERE clause, so another organisation's report is never read, not merely hidden afterwards.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DbSchema, Json } from './schema.js';

type Executor = Kysely<DbSchema> | Transaction<DbSchema>;

export interface IncidentRow {
  readonly id: number;
  readonly status: string;
  readonly category: string | null;
  readonly owner: string | null;
  readonly orgId: number | null;
  /** The registry name when orgId is set, else the reporter's free text. */
  readonly org: string | null;
  readonly orgText: string | null;
  readonly reporterName: string;
  readonly reporterEmail: string;
  readonly reporterPhone: string;
  readonly tlp: string;
  readonly types: readonly string[];
  readonly cves: readonly string[];
  readonly ongoing: boolean;
  readonly detectedAt: Date;
  readonly summary: string;
  readonly stage0: Json;
  readonly stage1: Json | null;
  readonly final: Json | null;
  readonly stage1At: Date | null;
  readonly finalAt: Date | null;
  readonly duplicateOf: number | null;
  readonly reportedBy: string;
  readonly reportedVia: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly acknowledgedAt: Date | null;
  readonly firstResponseAt: Date | null;
  readonly resolvedAt: Date | null;
  readonly ackDueAt: Date;
  readonly responseDueAt: Date;
}

export interface NewIncident {
  readonly orgId: number | null;
  readonly orgText: string | null;
  readonly reporterName: string;
  readonly reporterEmail: string;
  readonly reporterPhone: string;
  readonly tlp: string;
  readonly types: readonly string[];
  readonly cves: readonly string[];
  readonly ongoing: boolean;
  readonly detectedAt: string;
  readonly stage0: Json;
  readonly reportedBy: string;
  readonly reportedVia: 'portal' | 'api' | 'cli' | 'staff';
  readonly createdAt: Date;
  readonly ackDueAt: Date;
  readonly responseDueAt: Date;
}

function base(db: Executor) {
  return db.selectFrom('incidents as i')
    .leftJoin('organisations as o', 'o.id', 'i.org_id')
    .select([
      'i.id', 'i.status', 'i.category', 'i.owner', 'i.org_id', 'o.name as org_name', 'i.org_text', 'i.reporter_name', 'i.reporter_email',
      'i.reporter_phone', 'i.tlp', 'i.types', 'i.cves', 'i.ongoing', 'i.detected_at', 'i.stage0', 'i.stage1', 'i.final', 'i.stage1_at',
      'i.final_at', 'i.duplicate_of', 'i.reported_by', 'i.reported_via', 'i.created_at', 'i.updated_at', 'i.acknowledged_at',
      'i.first_response_at', 'i.resolved_at', 'i.ack_due_at', 'i.response_due_at',
      sql<string>`coalesce(i.stage0->>'summary', '')`.as('summary'),
    ]);
}

type BaseRow = Awaited<ReturnType<ReturnType<typeof base>['executeTakeFirstOrThrow']>>;

function toRow(r: BaseRow): IncidentRow {
  return {
    id: r.id, status: r.status, category: r.category, owner: r.owner, orgId: r.org_id, org: r.org_name ?? r.org_text, orgText: r.org_text,
    reporterName: r.reporter_name, reporterEmail: r.reporter_email, reporterPhone: r.reporter_phone, tlp: r.tlp, types: r.types, cves: r.cves,
    ongoing: r.ongoing, detectedAt: r.detected_at, summary: r.summary, stage0: r.stage0, stage1: r.stage1, final: r.final,
    stage1At: r.stage1_at, finalAt: r.final_at, duplicateOf: r.duplicate_of, reportedBy: r.reported_by, reportedVia: r.reported_via,
    createdAt: r.created_at, updatedAt: r.updated_at, acknowledgedAt: r.acknowledged_at, firstResponseAt: r.first_response_at,
    resolvedAt: r.resolved_at, ackDueAt: r.ack_due_at, responseDueAt: r.response_due_at,
  };
}

/** Inserts the report and its `reported` event; returns the id. */
export async function insertIncident(db: Executor, n: NewIncident): Promise<number> {
  const r = await db.insertInto('incidents').values({
    org_id: n.orgId, org_text: n.orgText, reporter_name: n.reporterName, reporter_email: n.reporterEmail, reporter_phone: n.reporterPhone,
    tlp: n.tlp, types: n.types, cves: n.cves, ongoing: n.ongoing, detected_at: n.detectedAt, stage0: JSON.stringify(n.stage0),
    reported_by: n.reportedBy, reported_via: n.reportedVia, created_at: n.createdAt, ack_due_at: n.ackDueAt, response_due_at: n.responseDueAt,
  }).returning('id').executeTakeFirstOrThrow();
  await appendIncidentEvent(db, { incidentId: r.id, who: n.reportedBy, kind: 'reported', at: n.createdAt, detail: { via: n.reportedVia, by: n.reportedVia === 'portal' ? 'organisation' : 'cert' } });
  return r.id;
}

export async function appendIncidentEvent(db: Executor, e: { incidentId: number; who: string; kind: IncidentEventRow['kind']; at: Date; detail: Json | null }): Promise<void> {
  await db.insertInto('incident_events').values({
    incident_id: e.incidentId, who: e.who, kind: e.kind, at: e.at, detail: e.detail === null ? null : JSON.stringify(e.detail),
  }).execute();
}

/** One report, within the scope (null: any organisation). */
export async function getIncident(db: Executor, id: number, orgScope: number | null): Promise<IncidentRow | null> {
  let q = base(db).where('i.id', '=', id);
  if (orgScope !== null) q = q.where('i.org_id', '=', orgScope);
  const r = await q.executeTakeFirst();
  return r === undefined ? null : toRow(r);
}

/** The report locked for a change (FOR UPDATE), within the scope. */
export async function lockIncident(trx: Transaction<DbSchema>, id: number, orgScope: number | null): Promise<IncidentRow | null> {
  let q = base(trx).where('i.id', '=', id);
  if (orgScope !== null) q = q.where('i.org_id', '=', orgScope);
  const r = await q.forUpdate('i').executeTakeFirst();
  return r === undefined ? null : toRow(r);
}

export interface IncidentListQuery {
  /** null: all organisations (staff); else only this organisation's reports. */
  readonly orgScope: number | null;
  readonly statuses?: readonly string[];
  readonly category?: string;
  /** Only reports of this registry organisation (staff filter). */
  readonly orgId?: number;
  /** Only reports with a clock overdue at this time. */
  readonly overdueAt?: Date;
  /** Keyset: reports with a smaller id (newest first). */
  readonly beforeId?: number;
  readonly limit: number;
}

/** Newest first, keyset-paged by id. */
export async function listIncidents(db: Executor, q: IncidentListQuery): Promise<IncidentRow[]> {
  let s = base(db);
  if (q.orgScope !== null) s = s.where('i.org_id', '=', q.orgScope);
  if (q.orgId !== undefined) s = s.where('i.org_id', '=', q.orgId);
  if (q.statuses !== undefined && q.statuses.length > 0) s = s.where('i.status', 'in', [...q.statuses]);
  if (q.category !== undefined) s = s.where('i.category', '=', q.category);
  if (q.beforeId !== undefined) s = s.where('i.id', '<', q.beforeId);
  if (q.overdueAt !== undefined) {
    const at = q.overdueAt;
    s = s.where('i.status', '<>', 'resolved').where((eb) => eb.or([
      eb.and([eb('i.acknowledged_at', 'is', null), eb('i.ack_due_at', '<', at)]),
      eb.and([eb('i.first_response_at', 'is', null), eb('i.response_due_at', '<', at)]),
    ]));
  }
  const rows = await s.orderBy('i.id', 'desc').limit(q.limit).execute();
  return rows.map(toRow);
}

export interface IncidentPatch {
  readonly status?: string;
  readonly category?: string | null;
  readonly owner?: string | null;
  readonly duplicateOf?: number | null;
  readonly acknowledgedAt?: Date;
  readonly firstResponseAt?: Date;
  readonly resolvedAt?: Date | null;
  readonly ackDueAt?: Date;
  readonly responseDueAt?: Date;
  readonly stage1?: Json;
  readonly stage1At?: Date;
  readonly final?: Json;
  readonly finalAt?: Date;
}

export async function updateIncident(db: Executor, id: number, p: IncidentPatch): Promise<void> {
  await db.updateTable('incidents').set({
    updated_at: sql<Date>`now()`,
    ...(p.status === undefined ? {} : { status: p.status }),
    ...(p.category === undefined ? {} : { category: p.category }),
    ...(p.owner === undefined ? {} : { owner: p.owner }),
    ...(p.duplicateOf === undefined ? {} : { duplicate_of: p.duplicateOf }),
    ...(p.acknowledgedAt === undefined ? {} : { acknowledged_at: p.acknowledgedAt }),
    ...(p.firstResponseAt === undefined ? {} : { first_response_at: p.firstResponseAt }),
    ...(p.resolvedAt === undefined ? {} : { resolved_at: p.resolvedAt }),
    ...(p.ackDueAt === undefined ? {} : { ack_due_at: p.ackDueAt }),
    ...(p.responseDueAt === undefined ? {} : { response_due_at: p.responseDueAt }),
    ...(p.stage1 === undefined ? {} : { stage1: JSON.stringify(p.stage1) }),
    ...(p.stage1At === undefined ? {} : { stage1_at: p.stage1At }),
    ...(p.final === undefined ? {} : { final: JSON.stringify(p.final) }),
    ...(p.finalAt === undefined ? {} : { final_at: p.finalAt }),
  }).where('id', '=', id).execute();
}

export interface IncidentEventRow {
  readonly id: number;
  readonly at: Date;
  readonly who: string;
  readonly kind: 'reported' | 'stage1' | 'final' | 'triaged' | 'linked' | 'attachment';
  readonly detail: Json | null;
}

export async function incidentEvents(db: Executor, incidentId: number): Promise<IncidentEventRow[]> {
  const rows = await db.selectFrom('incident_events').select(['id', 'at', 'who', 'kind', 'detail']).where('incident_id', '=', incidentId).orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, at: r.at, who: r.who, kind: r.kind, detail: r.detail }));
}

/** Adds a link (idempotent: an existing link is kept as it is); true when it was new. */
export async function addIncidentLink(db: Executor, l: { incidentId: number; kind: 'finding' | 'campaign' | 'incident'; targetId: number; relation: 'related' | 'duplicate-of' | 'reported-from'; who: string }): Promise<boolean> {
  const r = await db.insertInto('incident_links')
    .values({ incident_id: l.incidentId, kind: l.kind, target_id: l.targetId, relation: l.relation, created_by: l.who })
    .onConflict((oc) => oc.columns(['incident_id', 'kind', 'target_id']).doNothing())
    .returning('id').executeTakeFirst();
  return r !== undefined;
}

/** Links the organisation's current open findings of these CVEs; returns how many links were new. */
export async function linkOpenFindings(db: Executor, incidentId: number, orgId: number, cves: readonly string[], who: string): Promise<number> {
  if (cves.length === 0) return 0;
  const r = await sql<{ n: number }>`
    WITH ins AS (
      INSERT INTO incident_links (incident_id, kind, target_id, relation, created_by)
      SELECT ${incidentId}, 'finding', f.id, 'related', ${who}
        FROM findings f
       WHERE f.current AND f.state = 'open' AND f.org_id = ${orgId} AND upper(f.cve) = ANY(${sql.val([...cves])}::text[])
      ON CONFLICT (incident_id, kind, target_id) DO NOTHING
      RETURNING 1
    )
    SELECT count(*)::int AS n FROM ins`.execute(db);
  return r.rows[0]?.n ?? 0;
}

export interface IncidentLinkRow {
  readonly kind: 'finding' | 'campaign' | 'incident';
  readonly targetId: number;
  readonly relation: string;
  readonly createdAt: Date;
  readonly createdBy: string;
  /** What the target is, in a few words (finding: ip, port, cve, state; campaign: name; incident: status and summary). */
  readonly finding: { ip: string; port: number | null; cve: string; state: string } | null;
  readonly campaign: { name: string } | null;
  readonly incident: { status: string; summary: string } | null;
}

/**
 * The report's links with what they point at. With an organisation scope, a finding or report of another
 * organisation is left out (an analyst may link across organisations; the organisation must not see the other).
 */
export async function incidentLinks(db: Executor, incidentId: number, orgScope: number | null): Promise<IncidentLinkRow[]> {
  const rows = await sql<{
    kind: 'finding' | 'campaign' | 'incident'; target_id: number; relation: string; created_at: Date; created_by: string;
    f_ip: string | null; f_port: number | null; f_cve: string | null; f_state: string | null; f_org: number | null;
    c_name: string | null; i_status: string | null; i_summary: string | null; i_org: number | null;
  }>`
    SELECT l.kind, l.target_id, l.relation, l.created_at, l.created_by,
           host(f.ip) AS f_ip, f.port AS f_port, f.cve AS f_cve, f.state AS f_state, f.org_id AS f_org,
           c.name AS c_name, o.status AS i_status, o.stage0->>'summary' AS i_summary, o.org_id AS i_org
      FROM incident_links l
      LEFT JOIN findings f ON l.kind = 'finding' AND f.id = l.target_id
      LEFT JOIN campaigns c ON l.kind = 'campaign' AND c.id = l.target_id
      LEFT JOIN incidents o ON l.kind = 'incident' AND o.id = l.target_id
     WHERE l.incident_id = ${incidentId}
       AND (${orgScope}::bigint IS NULL
            OR (l.kind = 'finding' AND f.org_id = ${orgScope}::bigint)
            OR l.kind = 'campaign'
            OR (l.kind = 'incident' AND o.org_id = ${orgScope}::bigint))
     ORDER BY l.kind, l.target_id`.execute(db);
  return rows.rows.map((r) => ({
    kind: r.kind, targetId: r.target_id, relation: r.relation, createdAt: r.created_at, createdBy: r.created_by,
    finding: r.f_ip === null || r.f_cve === null || r.f_state === null ? null : { ip: r.f_ip, port: r.f_port, cve: r.f_cve, state: r.f_state },
    campaign: r.c_name === null ? null : { name: r.c_name },
    incident: r.i_status === null ? null : { status: r.i_status, summary: r.i_summary ?? '' },
  }));
}

export interface AttachmentMeta {
  readonly id: number;
  readonly filename: string;
  readonly contentType: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly uploadedAt: Date;
  readonly uploadedBy: string;
}

/** Stores a file once per report and content; returns it and whether it was new. */
export async function insertAttachment(db: Executor, a: { incidentId: number; filename: string; contentType: string; sha256: string; content: Buffer; who: string }): Promise<{ meta: AttachmentMeta; created: boolean }> {
  const ins = await db.insertInto('incident_attachments').values({
    incident_id: a.incidentId, filename: a.filename, content_type: a.contentType, bytes: a.content.length, sha256: a.sha256, content: a.content, uploaded_by: a.who,
  }).onConflict((oc) => oc.columns(['incident_id', 'sha256']).doNothing()).returning('id').executeTakeFirst();
  const r = await db.selectFrom('incident_attachments').select(['id', 'filename', 'content_type', 'bytes', 'sha256', 'uploaded_at', 'uploaded_by'])
    .where('incident_id', '=', a.incidentId).where('sha256', '=', a.sha256).executeTakeFirstOrThrow();
  return { meta: { id: r.id, filename: r.filename, contentType: r.content_type, bytes: r.bytes, sha256: r.sha256, uploadedAt: r.uploaded_at, uploadedBy: r.uploaded_by }, created: ins !== undefined };
}

export async function attachmentsOf(db: Executor, incidentId: number): Promise<AttachmentMeta[]> {
  const rows = await db.selectFrom('incident_attachments').select(['id', 'filename', 'content_type', 'bytes', 'sha256', 'uploaded_at', 'uploaded_by'])
    .where('incident_id', '=', incidentId).orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, filename: r.filename, contentType: r.content_type, bytes: r.bytes, sha256: r.sha256, uploadedAt: r.uploaded_at, uploadedBy: r.uploaded_by }));
}

/** One attachment's content, only through its report (whose scope the caller checked with getIncident). */
export async function attachmentContent(db: Executor, incidentId: number, attachmentId: number): Promise<(AttachmentMeta & { content: Buffer }) | null> {
  const r = await db.selectFrom('incident_attachments').select(['id', 'filename', 'content_type', 'bytes', 'sha256', 'uploaded_at', 'uploaded_by', 'content'])
    .where('incident_id', '=', incidentId).where('id', '=', attachmentId).executeTakeFirst();
  return r === undefined ? null : { id: r.id, filename: r.filename, contentType: r.content_type, bytes: r.bytes, sha256: r.sha256, uploadedAt: r.uploaded_at, uploadedBy: r.uploaded_by, content: r.content };
}

/** Registry organisation by id (to check an analyst's orgId), or by name case-insensitively. */
export async function orgById(db: Executor, id: number): Promise<{ id: number; name: string } | null> {
  const r = await db.selectFrom('organisations').select(['id', 'name']).where('id', '=', id).executeTakeFirst();
  return r ?? null;
}

export async function orgByName(db: Executor, name: string): Promise<{ id: number; name: string } | null> {
  const r = await db.selectFrom('organisations').select(['id', 'name']).where(sql<string>`lower(name)`, '=', name.trim().toLowerCase()).executeTakeFirst();
  return r ?? null;
}

/** The campaign's message to this organisation (a warning it received), or null. */
export async function campaignMessageFor(db: Executor, campaignId: number, orgId: number): Promise<{ id: number; ticket: string } | null> {
  const r = await db.selectFrom('campaign_messages').select(['id', 'ticket']).where('campaign_id', '=', campaignId).where('org_id', '=', orgId).executeTakeFirst();
  return r ?? null;
}

/** Whether an incident with this id exists (any organisation: for an analyst's duplicate-of link). */
export async function incidentExists(db: Executor, id: number): Promise<boolean> {
  return (await db.selectFrom('incidents').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

/** Whether a link target exists (any organisation: an analyst may link across organisations). */
export async function linkTargetExists(db: Executor, kind: 'finding' | 'campaign' | 'incident', id: number): Promise<boolean> {
  const table = kind === 'finding' ? 'findings' : kind === 'campaign' ? 'campaigns' : 'incidents';
  return (await db.selectFrom(table).select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

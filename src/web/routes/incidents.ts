/**
 * Incident reports over the API (issue 10 §5). Any logged-in user may report (an organisation account always for
 * its own organisation, decided by the service), read and complete its reports; triage is for staff. Every route
 * is audited; scoping is the service's, in its queries (src/services/incidents.ts), never a filter here.
 */
import { TocsinError } from '../../core/errors.js';
import {
  INCIDENT_CSV_COLUMNS, LINK_KINDS, MAX_ATTACHMENT_BYTES, actorOf, addAttachment, addFinal, addStage1, getAttachment, incidentCsvCells, incidentExport,
  linkIncident, listIncidentPage, reportIncident, showIncident, triageIncident, type IncidentSummary, type LinkKind,
} from '../../services/incidents.js';
import { LIST_FORMAT, isDownload, sendList, type ListSpec } from '../export-format.js';
import { scopeOf } from '../../services/accounts.js';
import type { JsonSchema } from '../openapi.js';
import { need, needStaff, type RouteModule } from '../route.js';
import type { FastifyRequest } from 'fastify';

const CLOCK: JsonSchema = {
  type: 'object', required: ['due', 'at', 'overdue', 'late'],
  properties: { due: { type: 'string' }, at: { type: ['string', 'null'] }, overdue: { type: 'boolean' }, late: { type: 'boolean' } },
};

const SLA: JsonSchema = {
  type: 'object', required: ['category', 'provisional', 'acknowledge', 'firstResponse', 'overdue'],
  properties: { category: { type: 'string' }, provisional: { type: 'boolean' }, acknowledge: CLOCK, firstResponse: CLOCK, overdue: { type: 'boolean' } },
};

const SUMMARY_PROPS: Record<string, JsonSchema> = {
  id: { type: 'integer' }, status: { type: 'string' }, category: { type: ['string', 'null'] }, owner: { type: ['string', 'null'] },
  orgId: { type: ['integer', 'null'] }, org: { type: ['string', 'null'] }, orgUnregistered: { type: 'boolean' }, tlp: { type: 'string' },
  types: { type: 'array', items: { type: 'string' } }, cves: { type: 'array', items: { type: 'string' } }, summary: { type: 'string' },
  ongoing: { type: 'boolean' }, detectedAt: { type: 'string' }, reportedAt: { type: 'string' }, reportedVia: { type: 'string' },
  duplicateOf: { type: ['integer', 'null'] }, sla: SLA,
};

/** A download of the list: the CLI's CSV columns; JSONL has each report as the JSON list gives it. */
const INCIDENT_LIST: ListSpec<IncidentSummary> = { name: 'incidents', columns: INCIDENT_CSV_COLUMNS, cells: incidentCsvCells };

export const INCIDENT_SUMMARY: JsonSchema = { type: 'object', required: ['id', 'status', 'org', 'sla'], properties: SUMMARY_PROPS };

const ATTACHMENT: JsonSchema = {
  type: 'object', required: ['id', 'filename', 'contentType', 'bytes', 'sha256'],
  properties: {
    id: { type: 'integer' }, filename: { type: 'string' }, contentType: { type: 'string' }, bytes: { type: 'integer' }, sha256: { type: 'string' },
    uploadedAt: { type: 'string' }, uploadedBy: { type: 'string' }, created: { type: 'boolean' },
  },
};

const ANY_OBJECT: JsonSchema = { type: 'object', additionalProperties: true };

export const INCIDENT_DETAIL: JsonSchema = {
  type: 'object', required: ['id', 'status', 'org', 'sla', 'events', 'links', 'attachments'],
  properties: {
    ...SUMMARY_PROPS,
    reporter: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string' }, phone: { type: 'string' }, email: { type: 'string' } } },
    reportedBy: { type: 'string' },
    stage0: ANY_OBJECT, stage1: { type: ['object', 'null'], additionalProperties: true }, stage1At: { type: ['string', 'null'] },
    final: { type: ['object', 'null'], additionalProperties: true }, finalAt: { type: ['string', 'null'] },
    events: { type: 'array', items: { type: 'object', properties: { at: { type: 'string' }, who: { type: 'string' }, kind: { type: 'string' }, detail: { type: ['object', 'null'], additionalProperties: true } } } },
    links: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string' }, targetId: { type: 'integer' }, relation: { type: 'string' },
          finding: { type: ['object', 'null'], properties: { ip: { type: 'string' }, port: { type: ['integer', 'null'] }, cve: { type: 'string' }, state: { type: 'string' } } },
          campaign: { type: ['object', 'null'], properties: { name: { type: 'string' } } },
          incident: { type: ['object', 'null'], properties: { status: { type: 'string' }, summary: { type: 'string' } } },
        },
      },
    },
    attachments: { type: 'array', items: ATTACHMENT },
  },
};

const TEXT = { type: 'string', maxLength: 20_000 } as const;
const LINE = { type: 'string', maxLength: 500 } as const;
const LIST = { type: 'array', maxItems: 200, items: LINE } as const;

/** Documents stage 0; the service validates it field by field (coded errors naming each bad field). */
const STAGE0_BODY: JsonSchema = {
  type: 'object',
  required: ['reporter', 'summary', 'types', 'detectedAt', 'ongoing'],
  properties: {
    reporter: {
      type: 'object', required: ['name', 'role', 'phone', 'email'],
      properties: { name: LINE, role: LINE, phone: { type: 'string', maxLength: 40 }, email: { type: 'string', maxLength: 320 } },
    },
    orgId: { type: ['integer', 'null'], minimum: 1 }, org: { type: ['string', 'null'], maxLength: 200 }, summary: TEXT,
    types: { type: 'array', minItems: 1, maxItems: 7, items: { type: 'string', enum: ['exploited-service', 'web-shell', 'ransomware', 'data-breach', 'phishing-bec', 'ddos', 'other'] } },
    cves: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 30 } },
    campaignId: { type: ['integer', 'null'], minimum: 1 }, ticket: { type: ['string', 'null'], maxLength: 100 },
    detectedAt: { type: 'string', maxLength: 40 }, timeZone: { type: ['string', 'null'], maxLength: 64 }, ongoing: { type: 'boolean' },
    impact: {
      type: 'object',
      properties: { confidentiality: { type: 'boolean' }, integrity: { type: 'boolean' }, availability: { type: 'boolean' }, personalData: { type: 'boolean' } },
    },
    helpRequested: TEXT, tlp: { type: 'string', enum: ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'] },
  },
};

const STAGE1_BODY: JsonSchema = {
  type: 'object',
  properties: { assets: LIST, indicators: LIST, actionsTaken: TEXT, othersInformed: LIST, notes: TEXT },
};

const FINAL_BODY: JsonSchema = {
  type: 'object', required: ['rootCause', 'resolution'],
  properties: { rootCause: TEXT, resolution: TEXT, lessonsLearned: TEXT, dataExfiltrated: { type: 'string', enum: ['yes', 'no', 'unknown'] } },
};

const LINK_BODY: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['kind', 'targetId'],
  properties: {
    kind: { type: 'string', enum: [...LINK_KINDS] }, targetId: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    note: { ...TEXT, description: 'why; kept in the history, not shown to the organisation' },
  },
};

const TRIAGE_BODY: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    status: { type: 'string', maxLength: 20 }, category: { type: 'string', maxLength: 4 }, owner: { type: ['string', 'null'], maxLength: 200 },
    duplicateOf: { type: 'integer', minimum: 1 }, note: TEXT,
  },
};

/** Base64 of MAX_ATTACHMENT_BYTES, plus slack for line breaks some encoders add. */
const MAX_BASE64 = Math.ceil(MAX_ATTACHMENT_BYTES / 3) * 4 + 4096;

const ATTACHMENT_BODY: JsonSchema = {
  type: 'object', required: ['filename'],
  properties: {
    filename: { type: 'string', minLength: 1, maxLength: 300 },
    /** The file, base64-encoded (any file). */
    contentBase64: { type: 'string', maxLength: MAX_BASE64 },
    /** Or the file as text (the portal's paste box: the kit's JSON report is text). */
    text: { type: 'string', maxLength: MAX_ATTACHMENT_BYTES + 1 },
  },
};

function idParam(req: FastifyRequest, name = 'id'): number {
  const raw = (req.params as Record<string, string | undefined>)[name] ?? '';
  if (!/^\d{1,15}$/.test(raw)) throw new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', `no incident report ${JSON.stringify(raw.slice(0, 20))}`);
  return Number(raw);
}

function decodeBase64(s: string): Buffer {
  const compact = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'contentBase64: not base64', { details: ['contentBase64: not base64'] });
  return Buffer.from(compact, 'base64');
}

/** Content-Disposition for a stored (already sanitised) file name; the RFC 5987 form as well, for safety. */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

export const incidentRoutes: RouteModule = ({ db }) => [
  {
    method: 'POST', url: '/api/incidents', summary: 'Report an incident (stage 0); an organisation account reports for its own organisation', auth: true, audit: true,
    body: STAGE0_BODY,
    response: { 200: INCIDENT_DETAIL },
    handler: async (req) => {
      const actor = actorOf(need(req));
      req.orgScope = actor.scope.kind === 'org' ? actor.scope.orgId : null;
      const out = await reportIncident(db, actor, req.body, { via: actor.scope.kind === 'org' ? 'portal' : 'api' });
      req.orgScope = out.orgId;
      return out;
    },
  },
  {
    method: 'GET', url: '/api/incidents', summary: 'Incident reports, newest first (keyset cursor); organisation accounts see only their own', auth: true, audit: true,
    querystring: {
      type: 'object', additionalProperties: false,
      properties: {
        status: { type: 'string', maxLength: 100 }, category: { type: 'string', maxLength: 4 }, overdue: { type: 'boolean' },
        org: { type: 'string', minLength: 1, maxLength: 200 }, cursor: { type: 'string', maxLength: 20 },
        limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 }, format: LIST_FORMAT,
      },
    },
    response: { 200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: INCIDENT_SUMMARY }, nextCursor: { type: ['string', 'null'] } } } },
    handler: async (req, reply) => {
      const scope = scopeOf(need(req));
      if (scope.kind === 'org') req.orgScope = scope.orgId;
      const q = req.query as { status?: string; category?: string; overdue?: boolean; org?: string; cursor?: string; limit: number; format?: string };
      if (isDownload(q.format)) {
        // The whole list from the first report (every keyset page, streamed; cursor and limit do not apply).
        const out = await incidentExport(db, scope, {
          ...(q.status === undefined ? {} : { status: q.status }), ...(q.category === undefined ? {} : { category: q.category }),
          ...(q.overdue === undefined ? {} : { overdue: q.overdue }), ...(q.org === undefined ? {} : { org: q.org }),
        });
        req.orgScope = out.orgScope;
        return sendList(reply, q.format, INCIDENT_LIST, out.records);
      }
      const page = await listIncidentPage(db, scope, q);
      req.orgScope = page.orgScope;
      return { items: page.items, nextCursor: page.nextCursor };
    },
  },
  {
    method: 'GET', url: '/api/incidents/:id', summary: 'One incident report with its history, links, attachments and SLA clocks', auth: true, audit: true,
    response: { 200: INCIDENT_DETAIL },
    handler: async (req) => {
      const scope = scopeOf(need(req));
      if (scope.kind === 'org') req.orgScope = scope.orgId;
      const out = await showIncident(db, scope, idParam(req));
      req.orgScope = out.orgId;
      return out;
    },
  },
  {
    method: 'PUT', url: '/api/incidents/:id/stage1', summary: 'Add (or replace) the technical details (stage 1) of a report', auth: true, audit: true,
    body: STAGE1_BODY,
    response: { 200: INCIDENT_DETAIL },
    handler: async (req) => {
      const actor = actorOf(need(req));
      if (actor.scope.kind === 'org') req.orgScope = actor.scope.orgId;
      const out = await addStage1(db, actor, idParam(req), req.body);
      req.orgScope = out.orgId;
      return out;
    },
  },
  {
    method: 'PUT', url: '/api/incidents/:id/final', summary: 'Add (or replace) the final report', auth: true, audit: true,
    body: FINAL_BODY,
    response: { 200: INCIDENT_DETAIL },
    handler: async (req) => {
      const actor = actorOf(need(req));
      if (actor.scope.kind === 'org') req.orgScope = actor.scope.orgId;
      const out = await addFinal(db, actor, idParam(req), req.body);
      req.orgScope = out.orgId;
      return out;
    },
  },
  {
    method: 'POST', url: '/api/incidents/:id/triage', summary: 'Triage a report: status, category (C1-C6), owner, duplicate-of, note (staff)', auth: true, audit: true,
    body: TRIAGE_BODY,
    response: { 200: INCIDENT_DETAIL },
    handler: async (req) => {
      const actor = actorOf(needStaff(req));
      const out = await triageIncident(db, actor, idParam(req), req.body as { status?: string; category?: string; owner?: string | null; duplicateOf?: number; note?: string });
      req.orgScope = out.orgId;
      return out;
    },
  },
  {
    method: 'POST', url: '/api/incidents/:id/links', summary: 'Link a report by hand to a finding, a campaign or another report, with an optional internal note (staff)', auth: true, audit: true,
    body: LINK_BODY,
    response: { 200: INCIDENT_DETAIL },
    handler: async (req) => {
      const actor = actorOf(needStaff(req));
      const b = req.body as { kind: LinkKind; targetId: number; note?: string };
      const out = await linkIncident(db, actor, idParam(req), b.kind, b.targetId, b.note === undefined ? {} : { note: b.note });
      req.orgScope = out.orgId;
      return out;
    },
  },
  {
    method: 'POST', url: '/api/incidents/:id/attachments', summary: 'Upload a file to a report (forensics-kit output), at most 5 MiB: JSON {filename, contentBase64} or {filename, text}', auth: true, audit: true,
    bodyLimit: MAX_BASE64 + 64 * 1024,
    body: ATTACHMENT_BODY,
    response: { 200: ATTACHMENT },
    handler: async (req) => {
      const actor = actorOf(need(req));
      if (actor.scope.kind === 'org') req.orgScope = actor.scope.orgId;
      const b = req.body as { filename: string; contentBase64?: string; text?: string };
      if ((b.contentBase64 === undefined) === (b.text === undefined)) {
        throw new TocsinError('TOCSIN_INCIDENT_INVALID', 'content: give exactly one of contentBase64 or text', { details: ['content: exactly one of contentBase64, text'] });
      }
      const content = b.contentBase64 !== undefined ? decodeBase64(b.contentBase64) : Buffer.from(b.text ?? '', 'utf8');
      return addAttachment(db, actor, idParam(req), { filename: b.filename, content });
    },
  },
  {
    method: 'GET', url: '/api/incidents/:id/attachments/:aid', summary: 'Download an attachment of a report', auth: true, audit: true, raw: true,
    response: { 200: { type: 'string' } },
    handler: async (req, reply) => {
      const scope = scopeOf(need(req));
      if (scope.kind === 'org') req.orgScope = scope.orgId;
      const aid = (req.params as { aid?: string }).aid ?? '';
      if (!/^\d{1,15}$/.test(aid)) throw new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', 'no such attachment');
      const a = await getAttachment(db, scope, idParam(req), Number(aid));
      return reply.header('content-disposition', contentDisposition(a.filename)).type(a.contentType).send(a.content);
    },
  },
];

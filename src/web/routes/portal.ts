/**
 * The organisation portal's API (issue 10 §4): /api/my/* answers about the caller's own organisation (staff name
 * one with ?org=NAME), scoped in the services' queries (src/services/portal.ts portalOrg); the forensics kit for
 * anyone logged in.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyRequest } from 'fastify';
import { TocsinError } from '../../core/errors.js';
import {
  PORTAL_CSV_COLUMNS, acknowledgeWarnings, forensicsKitFile, portalCsvCells, portalExposureRecords, portalExposures, portalOrg,
  portalWarningRecords, portalWarnings, type PortalExposure, type PortalOrg, type PortalWarning,
} from '../../services/portal.js';
import { RescanThrottledError, listRescans, requestRescan, rescanRecords, type RescanView } from '../../services/rescan-requests.js';
import { LIST_FORMAT, isDownload, sendList, type ListSpec } from '../export-format.js';
import type { JsonSchema } from '../openapi.js';
import { need, type RouteModule, type RouteContext } from '../route.js';

const ORG_QUERY: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: { org: { type: 'string', minLength: 1, maxLength: 200, description: 'staff only: the organisation to read' } },
};

/** A list route's query: ORG_QUERY and `format` (json: the answer as before; csv or jsonl: the whole list as a download). */
const LIST_QUERY: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: { org: { type: 'string', minLength: 1, maxLength: 200, description: 'staff only: the organisation to read' }, format: LIST_FORMAT },
};

/** The same columns as /api/my/exposures.csv; JSONL has every field (findings, evidence, remediation). */
const PORTAL_EXPOSURE_LIST: ListSpec<PortalExposure> = { name: 'exposures', columns: PORTAL_CSV_COLUMNS, cells: portalCsvCells };

const WARNING_LIST: ListSpec<PortalWarning> = {
  name: 'warnings',
  columns: ['id', 'campaign_id', 'campaign', 'ticket', 'state', 'sent_at', 'delivered', 'bounced', 'acknowledged', 'acknowledged_at', 'exposures'],
  cells: (r) => [r.id, r.campaignId, r.campaign, r.ticket, r.state, r.sentAt, r.delivered, r.bounced, r.acknowledged, r.acknowledgedAt, r.exposures],
};

/** A target as ip:port ([ip]:port for IPv6), the targets of a request separated by spaces. */
const target = (t: { readonly ip: string; readonly port: number }): string => (t.ip.includes(':') ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`);

const RESCAN_LIST: ListSpec<RescanView> = {
  name: 'rescans',
  columns: ['id', 'status', 'targets', 'requested_by', 'requested_at', 'started_at', 'finished_at', 'scan_ids', 'closed', 'still_open', 'error'],
  cells: (r) => [r.id, r.status, r.targets.map(target).join(' '), r.requestedBy, r.requestedAt, r.startedAt, r.finishedAt, r.scanIds.join(' '), r.closed, r.stillOpen, r.error],
};

const STRINGS: JsonSchema = { type: 'array', items: { type: 'string' } };

const PORTAL_EXPOSURE: JsonSchema = {
  type: 'object',
  required: ['ip', 'port', 'vulnerable', 'indeterminate', 'findings', 'evidence', 'remediation'],
  properties: {
    ip: { type: 'string' }, port: { type: ['integer', 'null'] }, hostname: { type: ['string', 'null'] }, sources: STRINGS,
    product: { type: ['string', 'null'] }, edition: { type: ['string', 'null'] }, build: { type: ['string', 'null'] },
    buildPrecision: { type: ['string', 'null'] }, vulnerable: STRINGS, indeterminate: STRINGS, reportedCves: STRINGS, compromised: { type: 'boolean' },
    firstSeen: { type: ['string', 'null'] }, lastSeen: { type: ['string', 'null'] },
    findings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          cve: { type: 'string' }, state: { type: 'string' }, closeReason: { type: ['string', 'null'] }, closedAt: { type: ['string', 'null'] },
          verdict: { type: 'string' }, firstSeen: { type: 'string' },
        },
      },
    },
    evidence: {
      type: 'array',
      items: { type: 'object', properties: { detector: { type: 'string' }, where: { type: 'string' }, name: { type: ['string', 'null'] }, excerpt: { type: 'string' }, url: { type: 'string' } } },
    },
    remediation: {
      type: 'array',
      items: { type: 'object', properties: { cve: { type: 'string' }, group: { type: ['string', 'null'] }, action: { type: 'string' }, references: STRINGS } },
    },
  },
};

const WARNING: JsonSchema = {
  type: 'object',
  required: ['id', 'campaignId', 'campaign', 'state', 'acknowledged'],
  properties: {
    id: { type: 'integer' }, campaignId: { type: 'integer' }, campaign: { type: 'string' }, ticket: { type: 'string' }, state: { type: 'string' },
    sentAt: { type: ['string', 'null'] }, delivered: { type: 'boolean' }, bounced: { type: 'boolean' }, acknowledged: { type: 'boolean' },
    acknowledgedAt: { type: ['string', 'null'] }, exposures: { type: 'integer' },
  },
};

const RESCAN: JsonSchema = {
  type: 'object',
  required: ['id', 'status', 'targets'],
  properties: {
    id: { type: 'integer' }, status: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
    targets: { type: 'array', items: { type: 'object', properties: { ip: { type: 'string' }, port: { type: 'integer' } } } },
    requestedBy: { type: 'string' }, requestedAt: { type: 'string' }, startedAt: { type: ['string', 'null'] }, finishedAt: { type: ['string', 'null'] },
    scanIds: { type: 'array', items: { type: 'integer' } }, closed: { type: ['integer', 'null'] }, stillOpen: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
  },
};

/** The organisation of the answer, recorded for the audit row before anything is read. */
async function orgOf(ctx: RouteContext, req: FastifyRequest): Promise<PortalOrg> {
  const p = need(req);
  if (p.role === 'org') req.orgScope = p.orgId;
  const o = await portalOrg(ctx.db, p, (req.query as { org?: string } | undefined)?.org);
  req.orgScope = o.orgId;
  return o;
}

export const portalRoutes: RouteModule = (ctx) => [
  {
    method: 'GET', url: '/api/my/exposures', summary: 'Own exposures with evidence, verdicts, findings and remediation per CVE', auth: true, audit: true,
    querystring: LIST_QUERY,
    response: { 200: { type: 'object', required: ['org', 'items'], properties: { org: { type: 'string' }, items: { type: 'array', items: PORTAL_EXPOSURE } } } },
    handler: async (req, reply) => {
      const o = await orgOf(ctx, req);
      const { format } = req.query as { format?: string };
      // Every own exposure (keyset pages of the organisation's only, streamed; no cap): src/web/export-format.ts.
      if (isDownload(format)) return sendList(reply, format, PORTAL_EXPOSURE_LIST, portalExposureRecords(ctx.db, o));
      return { org: o.org, items: await portalExposures(ctx.db, o) };
    },
  },
  {
    method: 'GET', url: '/api/my/exposures.csv', summary: 'Own exposures as CSV, all of them (cells guarded against spreadsheet formulas); the same as /api/my/exposures?format=csv', auth: true, audit: true, raw: true,
    querystring: ORG_QUERY,
    response: { 200: { type: 'string', description: 'text/csv' } },
    handler: async (req, reply) => {
      const o = await orgOf(ctx, req);
      // Streamed like ?format=csv (one download code path), so it is no longer cut at PORTAL_MAX_EXPOSURES.
      return sendList(reply, 'csv', PORTAL_EXPOSURE_LIST, portalExposureRecords(ctx.db, o));
    },
  },
  {
    method: 'GET', url: '/api/my/warnings', summary: 'Warnings (campaign messages) sent to the own organisation', auth: true, audit: true,
    querystring: LIST_QUERY,
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: WARNING } } } },
    handler: async (req, reply) => {
      const o = await orgOf(ctx, req);
      const { format } = req.query as { format?: string };
      if (isDownload(format)) return sendList(reply, format, WARNING_LIST, portalWarningRecords(ctx.db, o));
      return { items: await portalWarnings(ctx.db, o) };
    },
  },
  {
    method: 'POST', url: '/api/my/acknowledge', summary: 'Acknowledge an own warning (as the e-mailed link does; idempotent; organisation accounts only)', auth: true, audit: true,
    body: {
      type: 'object', additionalProperties: false,
      properties: { messageId: { type: 'integer', minimum: 1 }, campaignId: { type: 'integer', minimum: 1 } },
    },
    response: { 200: { type: 'object', required: ['items', 'newlyAcknowledged'], properties: { items: { type: 'array', items: WARNING }, newlyAcknowledged: { type: 'integer' } } } },
    handler: async (req) => {
      // Acknowledging is the organisation's own act (as the e-mailed link is): staff do not acknowledge on its behalf.
      if (need(req).role !== 'org') throw new TocsinError('TOCSIN_FORBIDDEN', 'only the organisation acknowledges its warnings');
      const o = await orgOf(ctx, req);
      const body = req.body as { messageId?: number; campaignId?: number };
      const r = await acknowledgeWarnings(ctx.db, o, body);
      return { items: r.warnings, newlyAcknowledged: r.newlyAcknowledged };
    },
  },
  {
    method: 'POST', url: '/api/my/rescans', summary: 'Ask for a verification rescan of own exposed services (rate-limited per organisation)', auth: true, audit: true,
    querystring: ORG_QUERY,
    body: {
      type: 'object', additionalProperties: false,
      properties: { ips: { type: 'array', minItems: 1, maxItems: 1024, items: { type: 'string', maxLength: 64 }, description: 'default: every own exposed service' } },
    },
    response: { 200: RESCAN },
    handler: async (req, reply) => {
      const p = need(req);
      const o = await orgOf(ctx, req);
      try {
        return await requestRescan(ctx.db, { orgId: o.orgId, org: o.org, userId: p.userId, email: p.email }, (req.body as { ips?: string[] } | undefined)?.ips);
      } catch (e) {
        if (e instanceof RescanThrottledError) void reply.header('retry-after', String(e.retryAfterSeconds));
        throw e;
      }
    },
  },
  {
    method: 'GET', url: '/api/my/rescans', summary: 'Own verification rescans and their outcome, newest first', auth: true, audit: true,
    querystring: LIST_QUERY,
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: RESCAN } } } },
    handler: async (req, reply) => {
      const o = await orgOf(ctx, req);
      const { format } = req.query as { format?: string };
      if (isDownload(format)) return sendList(reply, format, RESCAN_LIST, rescanRecords(ctx.db, o.orgId));
      return { items: await listRescans(ctx.db, o.orgId) };
    },
  },
  {
    method: 'GET', url: '/api/forensics-kit', summary: 'The self-contained forensics kit (one JavaScript file, run with node)', auth: true, raw: true,
    response: { 200: { type: 'string', description: 'application/javascript' } },
    handler: async (req, reply) => {
      need(req);
      const kit = forensicsKitFile();
      const body = await readFile(kit.path);
      return reply.type('application/javascript').header('content-disposition', `attachment; filename="${kit.name}"`).send(body);
    },
  },
];

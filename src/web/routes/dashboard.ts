/**
 * The analyst dashboard's API (issue 10 §3), staff only: the national picture, the patch curve (JSON and SVG),
 * campaigns with delivery states and burn-down, a campaign message preview, hosts (paged, filtered on the server)
 * and one host's drill-down. Every figure comes from src/services/dashboard.ts, which the HTML pages call too.
 * Reads that show organisations' data (a campaign's recipients, a preview, hosts) are audited.
 */
import type { FastifyRequest } from 'fastify';
import { TocsinError } from '../../core/errors.js';
import {
  campaignBurndownSvg, campaignPreview, campaignRecords, campaignView, campaignsOverview, hostDetail, hostPage, hostRecords, nationalSummary, patchCurve,
  patchCurveSvg, type CampaignLine, type HostLine,
} from '../../services/dashboard.js';
import { LIST_FORMAT, isDownload, sendList, type ListSpec } from '../export-format.js';
import type { JsonSchema } from '../openapi.js';
import { needStaff, type RouteModule } from '../route.js';

/** CSV columns of a host download (?format=csv); JSONL has the records as the JSON listing shows them. */
const HOST_LIST: ListSpec<HostLine> = {
  name: 'hosts',
  columns: ['ip', 'org', 'org_id', 'sector', 'rule', 'hostname', 'product', 'build', 'last_seen', 'open_cves', 'patched', 'compromised'],
  cells: (r) => [r.ip, r.org, r.orgId, r.sector, r.rule, r.hostname, r.product, r.build, r.lastSeen, r.openCves.join(' '), r.patched, r.compromised],
};

/** CSV columns of a campaign download: the messages per delivery state as one compact JSON cell. */
const CAMPAIGN_LIST: ListSpec<CampaignLine> = {
  name: 'campaigns',
  columns: ['id', 'name', 'state', 'template', 'created_at', 'created_by', 'approved_at', 'messages', 'deliveries'],
  cells: (r) => [r.id, r.name, r.state, r.template, r.createdAt, r.createdBy, r.approvedAt, r.messages, JSON.stringify(r.deliveries)],
};

const INT = { type: 'integer' } as const;
const STR = { type: 'string' } as const;
const STR_OR_NULL = { type: ['string', 'null'] } as const;
const INT_OR_NULL = { type: ['integer', 'null'] } as const;
const STRINGS = { type: 'array', items: STR } as const;
/** Stored JSON (evidence, candidates, event details): passed through as it is. */
const ANY: JsonSchema = {};

const COUNT_PROPS = {
  hostsExposed: INT, hostsVulnerable: INT, hostsCompromised: INT, organisationsExposed: INT, findingsOpen: INT, findingsPatched: INT, findingsNotified: INT,
} as const;
const COUNTS: JsonSchema = { type: 'object', required: Object.keys(COUNT_PROPS), properties: COUNT_PROPS };

export const SUMMARY: JsonSchema = {
  type: 'object',
  required: ['computedAt', 'product', 'definitions', 'totals', 'byGroup', 'bySector'],
  properties: {
    computedAt: STR, product: STR,
    definitions: { type: 'object', properties: Object.fromEntries(Object.keys(COUNT_PROPS).map((k) => [k, STR])) },
    totals: COUNTS,
    byGroup: { type: 'array', items: { type: 'object', required: ['group', 'headline', 'cves', ...Object.keys(COUNT_PROPS)], properties: { group: STR, headline: { type: 'boolean' }, cves: STRINGS, ...COUNT_PROPS } } },
    bySector: { type: 'array', items: { type: 'object', required: ['sector', ...Object.keys(COUNT_PROPS)], properties: { sector: STR, ...COUNT_PROPS } } },
  },
};

const CURVE_QUERY: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    from: { type: 'string', maxLength: 10, description: 'first day, YYYY-MM-DD (UTC)' },
    to: { type: 'string', maxLength: 10, description: 'last day, YYYY-MM-DD (default: today)' },
    by: { type: 'string', enum: ['all', 'sector', 'org', 'cve'], default: 'all' },
  },
};

const POINT: JsonSchema = {
  type: 'object', required: ['group', 'day', 'exposed', 'notified', 'acknowledged', 'patched', 'compromised'],
  properties: { group: STR, day: STR, exposed: INT, notified: INT, acknowledged: INT, patched: INT, compromised: INT },
};

const CURVE: JsonSchema = {
  type: 'object', required: ['computedAt', 'from', 'to', 'by', 'series', 'timeToPatch'],
  properties: {
    computedAt: STR, from: STR, to: STR, by: STR_OR_NULL, series: { type: 'array', items: POINT },
    timeToPatch: {
      type: 'array',
      items: {
        type: 'object', required: ['group', 'basis', 'patched', 'censored'],
        properties: {
          group: STR, basis: STR, patched: INT, censored: INT, medianDays: { type: ['number', 'null'] }, p90Days: { type: ['number', 'null'] },
          survivalMedianDays: { type: ['number', 'null'] },
        },
      },
    },
  },
};

const CAMPAIGN_LINE: JsonSchema = {
  type: 'object', required: ['id', 'name', 'state', 'createdAt', 'deliveries', 'messages'],
  properties: {
    id: INT, name: STR, state: STR, template: STR, createdAt: STR, createdBy: STR, approvedAt: STR_OR_NULL,
    deliveries: { type: 'object', additionalProperties: INT, description: 'messages per delivery state' }, messages: INT,
  },
};

const STATUS_RECORD: JsonSchema = {
  type: 'object', required: ['org', 'state', 'ticket'],
  properties: {
    org: STR, recipients: STRINGS, state: STR, ticket: STR, messageId: STR, reason: STR_OR_NULL, attempts: INT, step: INT, exposures: INT,
    smtpReply: STR_OR_NULL, nextAttemptAt: STR_OR_NULL, sentAt: STR_OR_NULL, acknowledgedAt: STR_OR_NULL,
  },
};

const BURNDOWN: JsonSchema = {
  type: ['object', 'null'],
  properties: {
    id: INT, name: STR, state: STR, createdAt: STR, findings: INT, messagesSent: INT,
    points: { type: 'array', items: { type: 'object', properties: { day: STR, open: INT, patched: INT, notified: INT, acknowledged: INT } } },
  },
};

const PREVIEW: JsonSchema = {
  type: 'object', required: ['org', 'state', 'to', 'subject', 'text', 'html', 'message'],
  properties: {
    org: STR, state: STR, reason: STR_OR_NULL, to: STRINGS, subject: STR_OR_NULL, text: STR_OR_NULL, html: { ...STR_OR_NULL, description: 'the HTML part as source: never render it' },
    message: { type: 'string', description: 'all of it as one plain text, for display' },
  },
};

const HOST_LINE: JsonSchema = {
  type: 'object', required: ['ip', 'org', 'orgId', 'openCves', 'compromised'],
  properties: {
    ip: STR, org: STR_OR_NULL, orgId: INT_OR_NULL, sector: STR_OR_NULL, rule: STR_OR_NULL, hostname: STR_OR_NULL, product: STR_OR_NULL,
    build: STR_OR_NULL, lastSeen: STR_OR_NULL, openCves: STRINGS, patched: INT, compromised: { type: 'boolean' },
  },
};

const HOST_DETAIL: JsonSchema = {
  type: 'object', required: ['ip', 'attribution', 'observations', 'feedRows', 'findings', 'cap'],
  properties: {
    ip: STR,
    attribution: {
      type: ['object', 'null'],
      properties: {
        org: STR_OR_NULL, orgId: INT_OR_NULL, sector: STR_OR_NULL, rule: STR_OR_NULL, confidence: { type: 'number' }, evidence: ANY, tie: { type: 'boolean' },
        candidates: ANY, attributedAt: STR,
        changes: { type: 'array', items: { type: 'object', properties: { from: STR_OR_NULL, to: STR_OR_NULL, rule: STR_OR_NULL, at: STR } } },
      },
    },
    observations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: INT, source: STR, scanId: INT_OR_NULL, port: INT, hostname: STR_OR_NULL, tls: { type: 'boolean' }, status: INT_OR_NULL, seenAt: STR,
          product: STR_OR_NULL, edition: STR_OR_NULL, build: STR_OR_NULL, buildPrecision: STR_OR_NULL, cu: STR_OR_NULL, su: STR_OR_NULL, evidence: ANY,
          verdict: { type: ['object', 'null'], properties: { kbRevision: STR_OR_NULL, vulnerable: STRINGS, indeterminate: STRINGS, notes: ANY } },
        },
      },
    },
    feedRows: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: INT, feed: STR, kind: STR, reportType: STR, reportDate: STR, port: INT_OR_NULL, hostname: STR_OR_NULL, seenAt: STR_OR_NULL, tags: STRINGS,
          reportedCves: STRINGS, compromised: { type: 'boolean' }, product: STR_OR_NULL, build: STR_OR_NULL, file: STR_OR_NULL, line: INT, raw: STR,
        },
      },
    },
    findings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: INT, port: INT_OR_NULL, cve: STR, state: STR, closeReason: STR_OR_NULL, verdict: STR, present: { type: 'boolean' }, org: STR_OR_NULL,
          firstSeen: STR, lastSeen: STR,
          events: { type: 'array', items: { type: 'object', properties: { id: INT, kind: STR, at: STR, who: STR, observationId: INT_OR_NULL, detail: ANY } } },
        },
      },
    },
    cap: INT,
  },
};

/** A positive integer path parameter, else TOCSIN_ARG_INVALID. */
export function idParam(req: FastifyRequest, name = 'id'): number {
  const raw = (req.params as Record<string, string | undefined>)[name] ?? '';
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new TocsinError('TOCSIN_ARG_INVALID', `${name} must be a positive integer`);
  return n;
}

export const dashboardRoutes: RouteModule = ({ db }) => [
  {
    method: 'GET', url: '/api/summary', summary: 'The national picture: exposed, vulnerable, patched, notified, compromised; per CVE group and per sector (cached, see computedAt)', auth: true,
    response: { 200: SUMMARY },
    handler: async (req) => {
      needStaff(req);
      return nationalSummary(db);
    },
  },
  {
    method: 'GET', url: '/api/stats/patch-curve', summary: 'The patch curve: findings exposed, notified, acknowledged, patched and compromised per day, and time to patch', auth: true,
    querystring: CURVE_QUERY, response: { 200: CURVE },
    handler: async (req) => {
      needStaff(req);
      return patchCurve(db, req.query as { from?: string; to?: string; by?: string });
    },
  },
  {
    method: 'GET', url: '/api/charts/patch-curve.svg', summary: 'The patch curve as an SVG chart', auth: true, raw: true,
    querystring: CURVE_QUERY, response: { 200: { type: 'string', description: 'image/svg+xml' } },
    handler: async (req, reply) => {
      needStaff(req);
      const svg = await patchCurveSvg(db, req.query as { from?: string; to?: string; by?: string });
      return reply.type('image/svg+xml; charset=utf-8').send(svg);
    },
  },
  {
    method: 'GET', url: '/api/campaigns', summary: 'Every campaign with its messages counted per delivery state', auth: true,
    querystring: { type: 'object', additionalProperties: false, properties: { format: LIST_FORMAT } },
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: CAMPAIGN_LINE } } } },
    handler: async (req, reply) => {
      needStaff(req);
      const q = req.query as { format?: string };
      if (isDownload(q.format)) return sendList(reply, q.format, CAMPAIGN_LIST, campaignRecords(db));
      return { items: await campaignsOverview(db) };
    },
  },
  {
    method: 'GET', url: '/api/campaigns/:id', summary: 'One campaign: the delivery state per organisation and the burn-down of its findings', auth: true, audit: true,
    response: { 200: { type: 'object', required: ['campaign', 'organisations', 'burndown'], properties: { campaign: CAMPAIGN_LINE, organisations: { type: 'array', items: STATUS_RECORD }, burndown: BURNDOWN, burndownComputedAt: STR } } },
    handler: async (req) => {
      needStaff(req);
      return campaignView(db, idParam(req));
    },
  },
  {
    method: 'GET', url: '/api/charts/campaigns/:id/burndown.svg', summary: 'A campaign\'s burn-down as an SVG chart', auth: true, raw: true,
    response: { 200: { type: 'string', description: 'image/svg+xml' } },
    handler: async (req, reply) => {
      needStaff(req);
      const svg = await campaignBurndownSvg(db, idParam(req));
      return reply.type('image/svg+xml; charset=utf-8').send(svg);
    },
  },
  {
    method: 'POST', url: '/api/campaigns/:id/preview', summary: 'One organisation\'s message as it would be sent now (nothing is sent or stored; its acknowledgement link does not work)', auth: true, audit: true,
    body: { type: 'object', additionalProperties: false, required: ['org'], properties: { org: { type: 'string', minLength: 1, maxLength: 200 } } },
    response: { 200: PREVIEW },
    handler: async (req) => {
      needStaff(req);
      return campaignPreview(db, idParam(req), (req.body as { org: string }).org);
    },
  },
  {
    method: 'GET', url: '/api/hosts', summary: 'Hosts in address order, paged by a keyset cursor, filtered by organisation, sector, CVE or address', auth: true, audit: true,
    querystring: {
      type: 'object', additionalProperties: false,
      properties: {
        cursor: { type: 'string', maxLength: 200 }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
        org: { type: 'string', maxLength: 200 }, sector: { type: 'string', maxLength: 200 }, cve: { type: 'string', maxLength: 30 },
        q: { type: 'string', maxLength: 60, description: 'an address, a CIDR or the start of an IPv4 address' }, format: LIST_FORMAT,
      },
    },
    response: { 200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: HOST_LINE }, nextCursor: STR_OR_NULL } } },
    handler: async (req, reply) => {
      needStaff(req);
      const q = req.query as { cursor?: string; limit?: number; org?: string; sector?: string; cve?: string; q?: string; format?: string };
      if (isDownload(q.format)) {
        // Every matching host (all keyset pages, streamed; cursor and limit do not apply): src/web/export-format.ts.
        const out = await hostRecords(db, q);
        req.orgScope = out.orgScope;
        return sendList(reply, q.format, HOST_LIST, out.records);
      }
      const page = await hostPage(db, q);
      req.orgScope = page.orgScope;
      return { items: page.items, nextCursor: page.nextCursor };
    },
  },
  {
    method: 'GET', url: '/api/hosts/:ip', summary: 'One address: every observation (scans, feeds) with evidence and verdicts, findings with their history, attribution', auth: true, audit: true,
    response: { 200: HOST_DETAIL },
    handler: async (req) => {
      needStaff(req);
      const d = await hostDetail(db, (req.params as { ip?: string }).ip ?? '');
      req.orgScope = d.attribution?.orgId ?? null;
      return d;
    },
  },
];

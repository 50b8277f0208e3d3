/**
 * The constituency registry editor and the attribution review queue (issue 10 §3), for CERT staff only; an
 * organisation account gets 403 on all of these, and reads its own registry entry at GET /api/my/org.
 * Every route is audited (web_audit), and every change goes through the same store calls as `tocsin org` and
 * `tocsin attribution`, recorded in the registry's own trail (constituency_audit; the override row for
 * assignments) with the logged-in account's e-mail as the author.
 *
 * `:id` is an organisation's id or its name (URL-encoded). DELETE /api/orgs/:id/entries says which entry in the
 * JSON body or, for clients that cannot send a body with DELETE (src/web/assets/app.js sends none), in the query.
 */
import type { FastifyRequest } from 'fastify';
import { TocsinError } from '../../core/errors.js';
import { scopeOf } from '../../services/accounts.js';
import {
  ENTRY_KINDS,
  addOrgEntry,
  assignTarget,
  createOrg,
  editContact,
  findOrg,
  myOrg,
  orgHistory,
  orgHistoryRecords,
  orgPage,
  orgRecords,
  removeOrgEntry,
  reviewPage,
  reviewRecords,
  unassignTarget,
  updateOrg,
  type AuditRow,
  type EntryArgs,
  type EntryKind,
  type OrgListRow,
  type ReviewItem,
} from '../../services/registry-web.js';
import { LIST_FORMAT, isDownload, sendList, type ListSpec } from '../export-format.js';
import type { JsonSchema } from '../openapi.js';
import { need, needStaff, type RouteModule } from '../route.js';

const S = (maxLength: number): JsonSchema => ({ type: 'string', maxLength });
const NS: JsonSchema = { type: ['string', 'null'] };
const PROV = { layer: { type: 'string', enum: ['imported', 'manual'] }, source: { type: 'string' } } as const;

const ORG_FIELDS = { id: { type: 'integer' }, name: { type: 'string' }, sector: NS, country: NS, size: NS, parent: NS, ...PROV } as const;

export const ORG_ROW: JsonSchema = {
  type: 'object',
  required: ['id', 'name', 'sector', 'country', 'size', 'parent', 'layer', 'source', 'networks', 'asns', 'domains', 'contacts'],
  properties: { ...ORG_FIELDS, networks: { type: 'integer' }, asns: { type: 'integer' }, domains: { type: 'integer' }, contacts: { type: 'integer' } },
};

const item = (props: Record<string, JsonSchema>): JsonSchema => ({
  type: 'object', required: ['id', ...Object.keys(props), 'layer', 'source'], properties: { id: { type: 'integer' }, ...props, ...PROV },
});

export const ORG_DETAIL: JsonSchema = {
  type: 'object',
  required: ['id', 'name', 'sector', 'country', 'size', 'parent', 'layer', 'source', 'networks', 'asns', 'domains', 'contacts', 'optOuts'],
  properties: {
    ...ORG_FIELDS,
    networks: { type: 'array', items: item({ network: { type: 'string' }, text: { type: 'string' }, abuseMailbox: NS }) },
    asns: { type: 'array', items: item({ asn: { type: 'integer' } }) },
    domains: { type: 'array', items: item({ domain: { type: 'string' } }) },
    contacts: { type: 'array', items: item({ role: { type: 'string', enum: ['security', 'abuse', 'technical'] }, email: { type: 'string' }, language: NS, pgp: NS }) },
    optOuts: { type: 'array', items: item({ condition: { type: 'string' }, expiresAt: NS }) },
  },
};

const REFRESH: JsonSchema = {
  type: 'object', additionalProperties: true,
  required: ['registryRev', 'considered', 'attributed', 'unattributed', 'changed', 'written', 'ms'],
  properties: {
    registryRev: { type: 'integer' }, considered: { type: 'integer' }, attributed: { type: 'integer' }, unattributed: { type: 'integer' },
    changed: { type: 'integer' }, written: { type: 'integer' }, ms: { type: 'integer' },
  },
};

const JSONB: JsonSchema = { type: ['object', 'null'], additionalProperties: true };

const AUDIT_ROW: JsonSchema = {
  type: 'object', required: ['id', 'at', 'who', 'action', 'entity', 'entityId', 'orgId', 'source', 'before', 'after'],
  properties: {
    id: { type: 'integer' }, at: { type: 'string' }, who: { type: 'string' }, action: { type: 'string', enum: ['create', 'update', 'delete'] },
    entity: { type: 'string' }, entityId: { type: 'integer' }, orgId: { type: 'integer' }, source: { type: 'string' }, before: JSONB, after: JSONB,
  },
};

const REVIEW_ITEM: JsonSchema = {
  type: 'object', required: ['ip', 'kind', 'org', 'orgId', 'rule', 'ports', 'hostnames', 'feedAsn', 'firstSeen', 'lastSeen', 'candidates'],
  properties: {
    ip: { type: 'string' }, kind: { type: 'string', enum: ['unattributed', 'ambiguous'] }, org: NS, orgId: { type: ['integer', 'null'] }, rule: NS,
    ports: { type: 'array', items: { type: 'integer' } }, hostnames: { type: 'array', items: { type: 'string' } }, feedAsn: { type: ['integer', 'null'] },
    firstSeen: NS, lastSeen: NS,
    candidates: {
      type: 'array',
      items: { type: 'object', properties: { org: NS, orgId: { type: ['integer', 'null'] }, rule: NS, confidence: { type: ['number', 'null'] }, lost: NS, why: NS } },
    },
  },
};

/** Organisation fields as a form sends them: '' clears a field (the name cannot be cleared). */
const ORG_EDIT_PROPS = {
  sector: { ...S(100), description: 'e.g. health, energy; empty clears it' },
  country: { ...S(2), description: 'ISO 3166 two-letter code; empty clears it' },
  size: { ...S(40), description: 'free text, e.g. 250-999; empty clears it' },
  parent: { ...S(200), description: 'the parent organisation\'s name; empty clears it' },
} as const;

const ENTRY_PROPS = {
  kind: { type: 'string', enum: ENTRY_KINDS },
  value: { ...S(200), description: 'network (CIDR, address or range "a - b"), asn (AS64496) or domain' },
  role: { type: 'string', enum: ['security', 'abuse', 'technical'], description: 'contact' },
  email: { ...S(254), description: 'contact' },
  language: { ...S(35), description: 'contact (e.g. de, en-gb)' },
  pgp: { ...S(100), description: 'contact: OpenPGP fingerprint' },
  condition: { ...S(200), description: 'opt-out, e.g. all, cve:CVE-2021-26855, source:shadowserver' },
  expires: { ...S(40), description: 'opt-out: YYYY-MM-DD, an ISO time, or never' },
} as const;

/** CSV columns of the downloads (?format=csv|jsonl); JSONL has the records as the JSON listings show them. */
const ORG_LIST: ListSpec<OrgListRow> = {
  name: 'organisations',
  columns: ['id', 'name', 'sector', 'country', 'size', 'parent', 'layer', 'source', 'networks', 'asns', 'domains', 'contacts'],
};

const AUDIT_LIST: ListSpec<AuditRow> = {
  name: 'organisation-audit',
  columns: ['id', 'at', 'who', 'action', 'entity', 'entity_id', 'org_id', 'source', 'before', 'after'],
  cells: (r) => [r.id, r.at, r.who, r.action, r.entity, r.entityId, r.orgId, r.source, r.before === null ? null : JSON.stringify(r.before), r.after === null ? null : JSON.stringify(r.after)],
};

const REVIEW_LIST: ListSpec<ReviewItem> = {
  name: 'attribution-review',
  columns: ['ip', 'kind', 'org', 'org_id', 'rule', 'ports', 'hostnames', 'feed_asn', 'first_seen', 'last_seen', 'candidates'],
  cells: (r) => [r.ip, r.kind, r.org, r.orgId, r.rule, r.ports.join(' '), r.hostnames.join(' '), r.feedAsn, r.firstSeen, r.lastSeen, JSON.stringify(r.candidates)],
};

const PAGE_QUERY = { offset: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } as const;

const ORG_ANSWER: JsonSchema = { type: 'object', required: ['id', 'org'], properties: { id: { type: 'integer' }, org: ORG_DETAIL } };

function idOf(req: FastifyRequest): string {
  const id = (req.params as { id?: string }).id ?? '';
  if (id === '' || id.length > 200) throw new TocsinError('TOCSIN_ARG_INVALID', 'the organisation (id or name) must be 1-200 characters');
  return id;
}

type EntryBody = { kind: EntryKind } & { [K in keyof EntryArgs]?: string };

function entryArgs(b: EntryBody): EntryArgs {
  const out: { -readonly [K in keyof EntryArgs]: EntryArgs[K] } = {};
  for (const k of ['value', 'role', 'email', 'language', 'pgp', 'condition', 'expires'] as const) {
    const v = b[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

export const registryRoutes: RouteModule = ({ db }) => [
  {
    method: 'GET', url: '/api/orgs', summary: 'Organisations of the constituency registry in name order, paged; filter by part of the name (q) or the sector (staff)', auth: true, audit: true,
    querystring: { type: 'object', additionalProperties: false, properties: { q: S(200), sector: S(100), ...PAGE_QUERY, format: LIST_FORMAT } },
    response: {
      200: {
        type: 'object', required: ['items', 'total', 'offset', 'nextOffset', 'sectors'],
        properties: { items: { type: 'array', items: ORG_ROW }, total: { type: 'integer' }, offset: { type: 'integer' }, nextOffset: { type: ['integer', 'null'] }, sectors: { type: 'array', items: { type: 'string' } } },
      },
    },
    handler: async (req, reply) => {
      needStaff(req);
      const q = req.query as { q?: string; sector?: string; offset: number; limit: number; format?: string };
      // Every matching organisation (all keyset pages, streamed; offset and limit do not apply): src/web/export-format.ts.
      if (isDownload(q.format)) return sendList(reply, q.format, ORG_LIST, orgRecords(db, q));
      return orgPage(db, q);
    },
  },
  {
    method: 'POST', url: '/api/orgs', summary: 'Add an organisation by hand (manual layer; audited as the caller) (staff)', auth: true, audit: true,
    body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, ...ORG_EDIT_PROPS } },
    response: { 200: ORG_ANSWER },
    handler: async (req) => {
      const p = needStaff(req);
      const org = await createOrg(db, req.body as { name: string }, p.email);
      req.orgScope = org.id;
      return { id: org.id, org };
    },
  },
  {
    method: 'GET', url: '/api/orgs/:id', summary: 'One organisation (by id or name) with its networks, ASNs, domains, contacts and opt-outs, each with its layer and source (staff)', auth: true, audit: true,
    response: { 200: ORG_DETAIL },
    handler: async (req) => {
      needStaff(req);
      const org = await findOrg(db, idOf(req));
      req.orgScope = org.id;
      return org;
    },
  },
  {
    method: 'PATCH', url: '/api/orgs/:id', summary: 'Change an organisation\'s name, sector, country, size or parent (an edited organisation becomes manual: imports no longer change it) (staff)', auth: true, audit: true,
    body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, ...ORG_EDIT_PROPS } },
    response: { 200: { type: 'object', required: ['id', 'org', 'changed'], properties: { id: { type: 'integer' }, org: ORG_DETAIL, changed: { type: 'boolean' } } } },
    handler: async (req) => {
      const p = needStaff(req);
      const r = await updateOrg(db, idOf(req), req.body as { name?: string }, p.email);
      req.orgScope = r.org.id;
      return { id: r.org.id, org: r.org, changed: r.changed };
    },
  },
  {
    method: 'GET', url: '/api/orgs/:id/audit', summary: 'The registry\'s change trail of one organisation, newest first: who, when, what, before and after (staff)', auth: true, audit: true,
    querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, format: LIST_FORMAT } },
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: AUDIT_ROW } } } },
    handler: async (req, reply) => {
      needStaff(req);
      const q = req.query as { limit: number; format?: string };
      if (isDownload(q.format)) {
        // The whole trail, not only the newest `limit` rows.
        const out = await orgHistoryRecords(db, idOf(req));
        req.orgScope = out.org.id;
        return sendList(reply, q.format, AUDIT_LIST, out.records);
      }
      const r = await orgHistory(db, idOf(req), q.limit);
      req.orgScope = r.org.id;
      return { items: r.rows };
    },
  },
  {
    method: 'POST', url: '/api/orgs/:id/entries', summary: 'Add a manual network, ASN, domain, contact or opt-out to an organisation (staff)', auth: true, audit: true,
    body: { type: 'object', additionalProperties: false, required: ['kind'], properties: ENTRY_PROPS },
    response: { 200: { type: 'object', required: ['id', 'org', 'added'], properties: { id: { type: 'integer' }, org: ORG_DETAIL, added: { type: 'boolean' } } } },
    handler: async (req) => {
      const p = needStaff(req);
      const b = req.body as EntryBody;
      const r = await addOrgEntry(db, idOf(req), b.kind, entryArgs(b), p.email);
      req.orgScope = r.org.id;
      return { id: r.org.id, org: r.org, added: r.added };
    },
  },
  {
    method: 'DELETE', url: '/api/orgs/:id/entries',
    summary: 'Remove one network, ASN, domain, contact (by role and e-mail) or opt-out (by condition) of any layer; which one is in the body, or in the query when no body is sent (staff)',
    auth: true, audit: true,
    querystring: { type: 'object', additionalProperties: false, properties: ENTRY_PROPS },
    // Null allowed: Fastify validates a missing body as null, and app.js sends none with DELETE (the query says which).
    body: { type: ['object', 'null'], additionalProperties: false, required: ['kind'], properties: ENTRY_PROPS },
    response: { 200: { type: 'object', required: ['id', 'org', 'removed'], properties: { id: { type: 'integer' }, org: ORG_DETAIL, removed: { type: 'integer' } } } },
    handler: async (req) => {
      const p = needStaff(req);
      const b = (req.body ?? req.query) as Partial<EntryBody>;
      if (b.kind === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', 'say which entry to remove: kind (and value, role and email, or condition), in the body or the query');
      const r = await removeOrgEntry(db, idOf(req), b.kind, entryArgs(b as EntryBody), p.email);
      req.orgScope = r.org.id;
      return { id: r.org.id, org: r.org, removed: r.removed };
    },
  },
  {
    method: 'PATCH', url: '/api/orgs/:id/contacts',
    summary: 'Edit a contact (found by role and e-mail): its role, e-mail, language or OpenPGP key; the result is a manual contact (staff)', auth: true, audit: true,
    body: {
      type: 'object', additionalProperties: false, required: ['role', 'email', 'set'],
      properties: {
        role: ENTRY_PROPS.role, email: ENTRY_PROPS.email,
        set: {
          type: 'object', additionalProperties: false, minProperties: 1,
          properties: { role: ENTRY_PROPS.role, email: ENTRY_PROPS.email, language: { ...ENTRY_PROPS.language, description: 'empty clears it' }, pgp: { ...ENTRY_PROPS.pgp, description: 'empty clears it' } },
        },
      },
    },
    response: { 200: ORG_ANSWER },
    handler: async (req) => {
      const p = needStaff(req);
      const b = req.body as { role: string; email: string; set: { role?: string; email?: string; language?: string; pgp?: string } };
      const r = await editContact(db, idOf(req), { role: b.role, email: b.email }, b.set, p.email);
      req.orgScope = r.org.id;
      return { id: r.org.id, org: r.org };
    },
  },
  {
    method: 'GET', url: '/api/my/org', summary: 'The caller\'s own organisation as the registry holds it (organisation accounts; read-only)', auth: true, audit: true,
    response: { 200: ORG_DETAIL },
    handler: async (req) => {
      const scope = scopeOf(need(req));
      if (scope.kind === 'org') req.orgScope = scope.orgId;
      return myOrg(db, scope);
    },
  },
  {
    method: 'GET', url: '/api/attribution/review',
    summary: 'The attribution review queue after a refresh: observed addresses with no organisation, then ties ("ambiguous"), in address order, paged (staff)', auth: true, audit: true,
    querystring: { type: 'object', additionalProperties: false, properties: { ...PAGE_QUERY, format: LIST_FORMAT } },
    response: {
      200: {
        type: 'object', required: ['items', 'offset', 'nextOffset', 'refresh'],
        properties: { items: { type: 'array', items: REVIEW_ITEM }, offset: { type: 'integer' }, nextOffset: { type: ['integer', 'null'] }, refresh: REFRESH },
      },
    },
    handler: async (req, reply) => {
      needStaff(req);
      const q = req.query as { offset: number; limit: number; format?: string };
      // The whole queue (refreshed first, walked in keyset pages, streamed; offset and limit do not apply).
      if (isDownload(q.format)) return sendList(reply, q.format, REVIEW_LIST, await reviewRecords(db));
      return reviewPage(db, q);
    },
  },
  {
    method: 'POST', url: '/api/attribution/assign',
    summary: 'Assign an address or a network to an organisation by hand (beats every other rule, survives re-imports), then refresh (staff)', auth: true, audit: true,
    body: {
      type: 'object', additionalProperties: false, required: ['target', 'org'],
      properties: { target: { ...S(100), description: 'an address or a CIDR' }, org: { type: 'string', minLength: 1, maxLength: 200 }, note: S(1000) },
    },
    response: {
      200: {
        type: 'object', required: ['target', 'org', 'orgId', 'note', 'createdBy', 'createdAt', 'attribution', 'refresh'],
        properties: {
          target: { type: 'string' }, org: { type: 'string' }, orgId: { type: 'integer' }, note: NS, createdBy: { type: 'string' }, createdAt: { type: 'string' },
          attribution: {
            type: ['object', 'null'], required: ['ip', 'org', 'orgId', 'rule', 'confidence'],
            properties: { ip: { type: 'string' }, org: NS, orgId: { type: ['integer', 'null'] }, rule: NS, confidence: { type: 'number' } },
          },
          refresh: REFRESH,
        },
      },
    },
    handler: async (req) => {
      const p = needStaff(req);
      const b = req.body as { target: string; org: string; note?: string };
      const r = await assignTarget(db, { target: b.target, org: b.org, note: b.note ?? null, who: p.email });
      req.orgScope = r.orgId;
      return r;
    },
  },
  {
    method: 'POST', url: '/api/attribution/unassign', summary: 'Remove the manual assignment of exactly this address or network, then refresh (staff)', auth: true, audit: true,
    body: { type: 'object', additionalProperties: false, required: ['target'], properties: { target: { ...S(100), description: 'an address or a CIDR' } } },
    response: { 200: { type: 'object', required: ['target', 'refresh'], properties: { target: { type: 'string' }, refresh: REFRESH } } },
    handler: async (req) => {
      needStaff(req);
      return unassignTarget(db, (req.body as { target: string }).target);
    },
  },
];

/** Exposures, scoped to the caller's organisation in the query (issue 10 §1). */
import type { JsonSchema } from '../openapi.js';
import { exposurePage, scopeOf } from '../../services/accounts.js';
import { need, type RouteModule } from '../route.js';
import { exposureExport } from '../../services/exports.js';
import type { ExposureRecord } from '../../services/exposures.js';
import { LIST_FORMAT, isDownload, sendList, type ListSpec } from '../export-format.js';

/** CSV columns of an exposure download (the same as `tocsin exposures --format csv`); JSONL has every field. */
const EXPOSURE_LIST: ListSpec<ExposureRecord> = {
  name: 'exposures',
  columns: ['ip', 'port', 'sources', 'hostname', 'product', 'edition', 'build', 'build_precision', 'cu', 'su', 'vulnerable', 'indeterminate',
    'reported_cves', 'compromised', 'org', 'org_id', 'sector', 'rule', 'confidence', 'attribution_evidence', 'first_seen', 'last_seen'],
  cells: (r) => [
    r.ip, r.port, r.sources.join(' '), r.hostname, r.product, r.edition, r.build, r.buildPrecision, r.cu, r.su, r.vulnerable.join(' '),
    r.indeterminate.join(' '), r.reportedCves.join(' '), r.compromised, r.org, r.orgId, r.sector, r.rule, r.confidence,
    r.attributionEvidence === null ? null : JSON.stringify(r.attributionEvidence), r.firstSeen, r.lastSeen,
  ],
};

export const EXPOSURE: JsonSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['ip', 'port', 'sources', 'org', 'orgId'],
  properties: {
    ip: { type: 'string' }, port: { type: ['integer', 'null'] }, sources: { type: 'array', items: { type: 'string' } },
    hostname: { type: ['string', 'null'] }, product: { type: ['string', 'null'] }, build: { type: ['string', 'null'] },
    vulnerable: { type: 'array', items: { type: 'string' } }, reportedCves: { type: 'array', items: { type: 'string' } },
    compromised: { type: 'boolean' }, org: { type: ['string', 'null'] }, orgId: { type: ['integer', 'null'] }, sector: { type: ['string', 'null'] },
  },
};

export const exposureRoutes: RouteModule = ({ db }) => [
  {
    method: 'GET', url: '/api/exposures', summary: 'Exposures (one record per ip:port), paged by a keyset cursor; organisation accounts see only their own', auth: true, audit: true,
    querystring: {
      type: 'object', additionalProperties: false,
      properties: {
        cursor: { type: 'string', maxLength: 200 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        cve: { type: 'string', maxLength: 30 }, org: { type: 'string', minLength: 1, maxLength: 200 }, format: LIST_FORMAT,
      },
    },
    response: { 200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: EXPOSURE }, nextCursor: { type: ['string', 'null'] } } } },
    handler: async (req, reply) => {
      const scope = scopeOf(need(req));
      if (scope.kind === 'org') req.orgScope = scope.orgId;
      const q = req.query as { cursor?: string; limit: number; cve?: string; org?: string; format?: string };
      if (isDownload(q.format)) {
        // The whole list (every keyset page, streamed), not one page: src/web/export-format.ts.
        const out = await exposureExport(db, scope, q);
        req.orgScope = out.orgScope;
        return sendList(reply, q.format, EXPOSURE_LIST, out.records);
      }
      const page = await exposurePage(db, scope, q);
      req.orgScope = page.orgScope;
      return { items: page.items, nextCursor: page.nextCursor };
    },
  },
];

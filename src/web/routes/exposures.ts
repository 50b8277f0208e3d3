/** Exposures, scoped to the caller's organisation in the query (issue 10 §1). */
import type { JsonSchema } from '../openapi.js';
import { exposurePage, scopeOf } from '../../services/accounts.js';
import { need, type RouteModule } from '../route.js';

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
        cve: { type: 'string', maxLength: 30 }, org: { type: 'string', minLength: 1, maxLength: 200 },
      },
    },
    response: { 200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: EXPOSURE }, nextCursor: { type: ['string', 'null'] } } } },
    handler: async (req) => {
      const scope = scopeOf(need(req));
      if (scope.kind === 'org') req.orgScope = scope.orgId;
      const q = req.query as { cursor?: string; limit: number; cve?: string; org?: string };
      const page = await exposurePage(db, scope, q);
      req.orgScope = page.orgScope;
      return { items: page.items, nextCursor: page.nextCursor };
    },
  },
];

/**
 * MISP and STIX 2.1 downloads per campaign and per incident (issue 10 §6). Staff only and audited: an export holds
 * many organisations' addresses. The document is built by src/services/exports.ts; the answer is an attachment.
 */
import { TocsinError } from '../../core/errors.js';
import { exportCampaign, exportIncident, parseTlp, type ExportFormat } from '../../services/exports.js';
import { sendAttachment } from '../export-format.js';
import { needStaff, type Route, type RouteModule } from '../route.js';
import type { FastifyRequest } from 'fastify';

const QUERY = {
  type: 'object', additionalProperties: false,
  properties: { tlp: { type: 'string', enum: ['clear', 'green', 'amber', 'amber+strict', 'red'], description: 'override the TLP level' } },
};

function idOf(req: FastifyRequest, what: string): number {
  const raw = (req.params as { id?: string }).id ?? '';
  if (!/^\d{1,15}$/.test(raw)) throw new TocsinError('TOCSIN_ARG_INVALID', `${what} ids are numbers`);
  return Number(raw);
}

export const exportRoutes: RouteModule = ({ db }) => {
  const routes: Route[] = [];
  for (const kind of ['campaign', 'incident'] as const) {
    for (const format of ['misp', 'stix'] as const satisfies readonly ExportFormat[]) {
      routes.push({
        method: 'GET', url: `/api/${kind}s/:id/${format}.json`, auth: true, audit: true, raw: true,
        summary: `The ${kind} as a ${format === 'misp' ? 'MISP event (MISP core format)' : 'STIX 2.1 bundle'}, as a download (staff)`,
        querystring: QUERY,
        response: { 200: { type: 'object' } },
        handler: async (req, reply) => {
          needStaff(req);
          const id = idOf(req, kind);
          const q = req.query as { tlp?: string };
          const o = q.tlp === undefined ? {} : { tlp: parseTlp(q.tlp) };
          const doc = kind === 'campaign' ? await exportCampaign(db, id, format, o) : await exportIncident(db, id, format, o);
          return sendAttachment(reply, doc.filename, doc.contentType, doc.document);
        },
      });
    }
  }
  return routes;
};

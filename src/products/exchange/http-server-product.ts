/**
 * Detector: the web server product of a host that answered, for the record (decoys such as a bare
 * IIS or nginx in front of nothing). Reads the Server header of the stage-0 answer and, for IIS, the
 * default "IIS Windows Server" page. These facts never make anything Exchange; the fingerprint uses
 * them only to name a non-Exchange service.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { bodyEvidence, headerEvidence, headerValues, needle, trimOws } from './common.js';
import { PROBE_OWA_LOGON } from './probes.js';

export const HTTP_SERVER_PRODUCT_ID = 'http-server-product';

/** Server header prefix (lower-case) → product id. */
const SERVER_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['microsoft-iis', 'iis'],
  ['nginx', 'nginx'],
  ['apache', 'apache'],
  ['microsoft-httpapi', 'microsoft-httpapi'],
  ['lighttpd', 'lighttpd'],
  ['caddy', 'caddy'],
];
const IIS_DEFAULT_PAGE = needle('<title>IIS Windows Server</title>');
const IIS_START_IMAGE = needle('iisstart.png');
const IIS_PAGE_WINDOW = 4096;

export const httpServerProduct: Detector = {
  id: HTTP_SERVER_PRODUCT_ID,
  revision: 1,
  product: 'http-server',
  description: 'Names the web server product (IIS, nginx, Apache, ...) from the Server header or the IIS default page; never an Exchange signal.',
  probes: [PROBE_OWA_LOGON],
  emits: ['product'],
  references: ['https://www.rfc-editor.org/rfc/rfc9110#name-server'],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const r = responses.get(PROBE_OWA_LOGON);
    if (r === undefined) return [];
    const facts: Fact[] = [];
    const server = headerValues(r, 'server')[0];
    if (server !== undefined) {
      const v = trimOws(server).slice(0, 200);
      const lower = v.toLowerCase();
      const hit = SERVER_PREFIXES.find(([prefix]) => lower.startsWith(prefix));
      if (hit !== undefined) facts.push({ kind: 'product', product: hit[1], evidence: headerEvidence(HTTP_SERVER_PRODUCT_ID, r, 'server', v) });
    }
    if (!facts.some((f) => f.kind === 'product' && f.product === 'iis')) {
      // The IIS start page is under 1 KB: its markers sit at the start, never deep in a big body.
      const head = r.body.subarray(0, IIS_PAGE_WINDOW);
      const at = head.indexOf(IIS_DEFAULT_PAGE);
      const at2 = at >= 0 ? at : head.indexOf(IIS_START_IMAGE);
      if (at2 >= 0) facts.push({ kind: 'product', product: 'iis', evidence: bodyEvidence(HTTP_SERVER_PRODUCT_ID, r, at2, 40, 'iis-default-page') });
    }
    return facts;
  },
};

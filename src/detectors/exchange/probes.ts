/**
 * The Exchange probe plan, as data: which requests exist, why, and in which stage the engine sends
 * them. Paths are fixed strings: nothing a scanned host sends ever goes into a request (no
 * /ecp/<build>/ guessing), and every request is a plain GET of a page that Exchange serves to
 * anonymous clients. Nothing here exploits anything.
 *
 * Stages (the engine calls `nextProbes` with empty maps, then after each batch, until it returns []):
 *   0. `owa-logon` for every host. Most Exchange 2010-2019/SE servers answer with the logon page
 *      (page markers, asset path) AND the X-OWA-Version / X-FEServer headers: two signal kinds and an
 *      exact build in ONE request. A non-Exchange host answers 404 (or anything) and we stop there.
 *   1. `ecp-exporttool` only when stage 0 showed some Exchange sign but we still lack an exact build or
 *      a second signal kind (headers stripped by a reverse proxy, 2013+ page showing only the CU, or a
 *      phishing clone, which we must judge fairly).
 *   2. `autodiscover-xml` only when the exact build is still missing and Exchange headers were seen:
 *      the front end adds X-OWA-Version to its anonymous 401 for Autodiscover even where the OWA vdir
 *      hides it or ECP is blocked from the internet (common).
 * Exchange Online front ends stop after stage 0: nothing on-premises to learn.
 */
import type { ProbeRequest, ProbeResponse } from '../sdk.js';
import {
  EXCHANGE_SERVER_HEADERS,
  headerValues,
  findAssetBuilds,
  isOnlineBuild,
  isOnlineHostName,
  isServerName,
  needle,
  owaVersionHeader,
  parseExporttoolManifest,
  trimOws,
  urlPath,
} from './common.js';

export const PROBE_OWA_LOGON = 'owa-logon';
export const PROBE_EXPORTTOOL = 'ecp-exporttool';
export const PROBE_AUTODISCOVER = 'autodiscover-xml';

/** The ClickOnce manifest path; "Current" is ECP's alias of the installed version folder. */
export const EXPORTTOOL_PATH = '/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application';

export const EXCHANGE_PROBES: readonly ProbeRequest[] = [
  {
    id: PROBE_OWA_LOGON,
    method: 'GET',
    path: '/owa/auth/logon.aspx',
    purpose:
      'Stage 0, every host: the OWA logon page. Headers X-OWA-Version (exact build), X-FEServer & co; body markers and ' +
      'asset path (/owa/auth/15.x.y/ = CU on 2013+, /owa/14.x.y.z/ = full build on 2010, /owa/8.x.y.z/ on 2007).',
  },
  {
    id: PROBE_EXPORTTOOL,
    method: 'GET',
    path: EXPORTTOOL_PATH,
    purpose:
      'Stage 1, only Exchange-like hosts without an exact build or with a single signal kind: the eDiscovery export tool ' +
      'ClickOnce manifest, whose <assemblyIdentity version> is the exact build (2013 and later).',
  },
  {
    id: PROBE_AUTODISCOVER,
    method: 'GET',
    path: '/autodiscover/autodiscover.xml',
    purpose:
      'Stage 2, only hosts with Exchange headers and still no exact build: the anonymous 401 of Autodiscover carries ' +
      'X-OWA-Version and X-FEServer from the front end.',
  },
];

function probe(id: string): ProbeRequest {
  const p = EXCHANGE_PROBES.find((x) => x.id === id);
  // Unreachable unless the table above is edited inconsistently; the registry test covers it.
  if (p === undefined) throw new Error(`probe ${id} missing from EXCHANGE_PROBES`);
  return p;
}

const MARKERS: readonly Buffer[] = [
  needle('OwaPage = ASP.auth_logon_aspx'),
  needle('name="logonForm"'),
  needle('/owa/auth.owa'),
  needle('/owa/auth/owaauth.dll'),
  needle('Outlook Web App'),
  needle('Outlook Web Access'),
];

/** What stage 0/1 answers told us, computed cheaply (the detectors do the careful work later). */
interface Seen {
  exchangeHeaders: boolean;
  page: boolean;
  exact: boolean;
  online: boolean;
}

function scanResponse(r: ProbeResponse, seen: Seen): void {
  const v = owaVersionHeader(r);
  if (v !== null) {
    seen.exchangeHeaders = true;
    if (isOnlineBuild(v)) seen.online = true;
    else seen.exact = true;
  }
  for (const h of EXCHANGE_SERVER_HEADERS) {
    for (const raw of headerValues(r, h)) {
      const value = trimOws(raw);
      if (!isServerName(value)) continue;
      seen.exchangeHeaders = true;
      if (isOnlineHostName(value)) seen.online = true;
    }
  }
  if (r.probeId !== PROBE_OWA_LOGON) return;
  if (urlPath(r.url).startsWith('/owa/auth/errorfe.aspx')) seen.page = true;
  const body = r.body;
  for (const hit of findAssetBuilds(body)) {
    seen.page = true;
    // 2010/2007 asset path /owa/14.3.513.0/ is a full build: that is exact.
    if (hit.precision === 'exact') seen.exact = true;
    if (isOnlineBuild(hit.build)) seen.online = true;
  }
  if (!seen.page) for (const m of MARKERS) if (body.indexOf(m) >= 0) seen.page = true;
}

/**
 * Pure: the next batch of probes for one (host, port), given what was answered and what was sent.
 * Returns [] when nothing more is worth asking. Never returns a probe that was already sent.
 */
export function nextProbes(answered: ReadonlyMap<string, ProbeResponse>, sent: ReadonlySet<string>): readonly ProbeRequest[] {
  if (!sent.has(PROBE_OWA_LOGON)) return [probe(PROBE_OWA_LOGON)];
  const seen: Seen = { exchangeHeaders: false, page: false, exact: false, online: false };
  for (const r of answered.values()) scanResponse(r, seen);
  if (seen.online) return [];
  if (!seen.exchangeHeaders && !seen.page) return [];
  const kinds = (seen.exchangeHeaders ? 1 : 0) + (seen.page ? 1 : 0);
  if (!sent.has(PROBE_EXPORTTOOL)) {
    if (seen.exact && kinds >= 2) return [];
    return [probe(PROBE_EXPORTTOOL)];
  }
  const manifest = answered.get(PROBE_EXPORTTOOL);
  if (manifest !== undefined && parseExporttoolManifest(manifest) !== null) return [];
  if (!sent.has(PROBE_AUTODISCOVER) && !seen.exact && seen.exchangeHeaders) return [probe(PROBE_AUTODISCOVER)];
  return [];
}


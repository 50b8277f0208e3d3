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
 *      phishing clone, which we must judge fairly), or when the IIS version in the Server header cannot
 *      run the claimed 2013+ build (a honeypot tell: copyable headers then need the manifest to confirm).
 *      Skipped for Exchange 2010/2007 pages (no export tool there).
 *   2. `autodiscover-xml` only when the exact build is still missing and Exchange headers were seen:
 *      the front end adds X-OWA-Version to its anonymous 401 for Autodiscover, which helps where only
 *      the OWA vdir hides it (a per-vdir rewrite rule) and ECP is blocked from the internet (common).
 *   3. `owa-root` only when a single signal kind is still all we have: OWA's FBA redirect of /owa/ is
 *      server routing, the second kind for Exchange 2010 with X-OWA-Version stripped (no CAFE headers,
 *      no export tool on 2010), and what a phishing clone fails.
 * Costs: Exchange showing X-OWA-Version: 1 request; Exchange 2013+ without it: 2-3; Exchange 2010
 * without it: 2 (the /owa/ redirect is followed by the engine: one more round trip); non-Exchange: 1;
 * an OWA phishing clone: 3 (2 for a 2010 clone); a 2013+ claim its IIS version contradicts: 2. Exchange Online
 * front ends stop after stage 0.
 */
import type { ProbeRequest, ProbeResponse } from '../sdk.js';
import {
  EXCHANGE_SERVER_HEADERS,
  fbaRedirectOf,
  findPageMarkers,
  headerValues,
  findAssetBuilds,
  iisOfResponse,
  platformContradiction,
  isOnlineBuild,
  isOnlineHostName,
  isServerName,
  owaVersionHeader,
  parseExporttoolManifest,
  trimOws,
  urlPath,
} from './common.js';

export const PROBE_OWA_LOGON = 'owa-logon';
export const PROBE_EXPORTTOOL = 'ecp-exporttool';
export const PROBE_AUTODISCOVER = 'autodiscover-xml';
export const PROBE_OWA_ROOT = 'owa-root';

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
      'Stage 1, only Exchange-like hosts without an exact build or with a single signal kind, or whose IIS version cannot ' +
      'run the claimed 2013+ build (a honeypot tell): the eDiscovery export tool ClickOnce manifest, whose <assemblyIdentity ' +
      'version> is the exact build (2013 and later); a 404 there contradicts a claimed 2013+ exact build.',
  },
  {
    id: PROBE_AUTODISCOVER,
    method: 'GET',
    path: '/autodiscover/autodiscover.xml',
    purpose:
      'Stage 2, only hosts with Exchange headers and still no exact build: the anonymous 401 of Autodiscover carries ' +
      'X-OWA-Version and X-FEServer from the front end.',
  },
  {
    id: PROBE_OWA_ROOT,
    method: 'GET',
    path: '/owa/',
    purpose:
      "Last stage, only hosts still showing a single signal kind (e.g. Exchange 2010 with X-OWA-Version stripped, or a " +
      "phishing clone): OWA's forms-based-authentication redirect to /owa/auth/logon.aspx?url=...&reason=0 is server " +
      'routing that a copied page does not bring along.',
  },
];

function probe(id: string): ProbeRequest {
  const p = EXCHANGE_PROBES.find((x) => x.id === id);
  // Unreachable unless the table above is edited inconsistently; the registry test covers it.
  if (p === undefined) throw new Error(`probe ${id} missing from EXCHANGE_PROBES`);
  return p;
}

/** What the answers so far told us, computed cheaply (the detectors do the careful work later). */
interface Seen {
  exchangeHeaders: boolean;
  page: boolean;
  manifest: boolean;
  fba: boolean;
  exact: boolean;
  online: boolean;
  /** Exchange 2010/2007 asset path: no export tool exists on those. */
  legacy: boolean;
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
  if (r.probeId === PROBE_EXPORTTOOL && parseExporttoolManifest(r) !== null) {
    seen.manifest = true;
    seen.exact = true;
  }
  if (r.probeId === PROBE_OWA_ROOT && fbaRedirectOf(r) !== null) seen.fba = true;
  if (r.probeId !== PROBE_OWA_LOGON) return;
  if (urlPath(r.url).startsWith('/owa/auth/errorfe.aspx')) seen.page = true;
  const body = r.body;
  for (const hit of findAssetBuilds(body)) {
    seen.page = true;
    // 2010/2007 asset path /owa/14.3.513.0/ is a full build: that is exact.
    if (hit.precision === 'exact') {
      seen.exact = true;
      seen.legacy = true;
    }
    if (isOnlineBuild(hit.build)) seen.online = true;
  }
  if (!seen.page && findPageMarkers(body).length > 0) seen.page = true;
}

/**
 * True when the logon page's Server header is an IIS version that the claimed 2013+ build (X-OWA-Version or
 * asset path) cannot run on. Cheap: one header and the asset paths already found for the plan.
 */
function contradicted2013Plus(answered: ReadonlyMap<string, ProbeResponse>): boolean {
  const logon = answered.get(PROBE_OWA_LOGON);
  if (logon === undefined) return false;
  const iis = iisOfResponse(logon);
  if (iis === null) return false;
  const builds = findAssetBuilds(logon.body).map((h) => h.build);
  for (const id of [PROBE_OWA_LOGON, PROBE_AUTODISCOVER]) {
    const r = answered.get(id);
    const v = r === undefined ? null : owaVersionHeader(r);
    if (v !== null) builds.push(v);
  }
  return platformContradiction(iis, builds.filter((b) => b.startsWith('15.') && !isOnlineBuild(b))) !== null;
}

/**
 * Pure: the next batch of probes for one (host, port), given what was answered and what was sent.
 * Returns [] when nothing more is worth asking. Never returns a probe that was already sent.
 */
export function nextProbes(answered: ReadonlyMap<string, ProbeResponse>, sent: ReadonlySet<string>): readonly ProbeRequest[] {
  if (!sent.has(PROBE_OWA_LOGON)) return [probe(PROBE_OWA_LOGON)];
  const seen: Seen = { exchangeHeaders: false, page: false, manifest: false, fba: false, exact: false, online: false, legacy: false };
  for (const r of answered.values()) scanResponse(r, seen);
  // Nothing Exchange-like, or Exchange Online: done.
  if (seen.online || (!seen.exchangeHeaders && !seen.page)) return [];
  const kinds = [seen.exchangeHeaders, seen.page, seen.manifest, seen.fba].filter(Boolean).length;
  // A 2013+ build the server's platform contradicts (a 2016 page on IIS 7.5: a honeypot tell) is not taken
  // on copyable headers alone: the export tool manifest is the second, consistent signal it needs.
  if (!sent.has(PROBE_EXPORTTOOL) && contradicted2013Plus(answered)) return [probe(PROBE_EXPORTTOOL)];
  if (seen.exact && kinds >= 2) return [];
  // The export tool manifest gives an exact build and a signal kind at once (2013 and later only).
  if (!sent.has(PROBE_EXPORTTOOL) && !seen.legacy) return [probe(PROBE_EXPORTTOOL)];
  // The front end's Autodiscover 401 carries X-OWA-Version where OWA's is stripped.
  if (!seen.exact && seen.exchangeHeaders && !sent.has(PROBE_AUTODISCOVER)) return [probe(PROBE_AUTODISCOVER)];
  // Still one signal kind: ask for OWA's redirect (routing, which a copied page does not bring).
  if (kinds < 2 && !sent.has(PROBE_OWA_ROOT)) return [probe(PROBE_OWA_ROOT)];
  return [];
}
